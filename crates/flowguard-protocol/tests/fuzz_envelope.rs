//! Fuzz target 1: `Envelope::parse`, `kind()`, the door and the builders, on arbitrary bytes,
//! on generated JSON-RPC messages and on mutations of them. Never a panic; whatever the door
//! accepts, serde_json reads as a `Value` (and what it refuses for depth, surrogates or
//! numbers, serde_json refuses too); an accepted message rebuilt by `encode` parses back to the
//! same id, method and raw parts. Corpus files named `ok-*` must be accepted, `err-*` refused.

mod fuzz_support;
#[path = "fuzz_support/json.rs"]
mod json;

use flowguard_protocol::envelope::EnvelopeError;
use flowguard_protocol::{door, encode, Envelope, ErrorCode, Kind};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;

/// The raw parts of a message, to compare two parses.
fn parts<'a>(e: &Envelope<'a>) -> [Option<&'a str>; 4] {
    [e.id, e.params, e.result, e.error].map(|p| p.map(RawValue::get))
}

/// Everything that must hold for any input; `Ok(())` if it was accepted.
fn check_message(bytes: &[u8]) -> Result<(), EnvelopeError> {
    let _ = door::check(bytes); // on anything, JSON or not
    let lenient = Envelope::parse_lenient(bytes);
    let env = match Envelope::parse(bytes) {
        Ok(env) => env,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(e.code() == ErrorCode::Parse, e.is_parse());
            let refused_at_door = matches!(
                e,
                EnvelopeError::TooDeep { .. }
                    | EnvelopeError::LoneSurrogate { .. }
                    | EnvelopeError::NumberOutOfRange { .. }
            );
            if refused_at_door {
                assert!(serde_json::from_slice::<Value>(bytes).is_err(), "{e}");
                // Without the door, at most the message itself may be wrong (its kind).
                assert!(lenient.as_ref().map_or_else(|l| !l.is_parse(), |_| true));
            } else if e == EnvelopeError::NullId {
                // From a server, a method with a null id is read as a notification.
                assert!(lenient.is_ok(), "{lenient:?}");
            } else {
                assert_eq!(lenient.err().as_ref(), Some(&e));
            }
            return Err(e);
        }
    };
    if let Err(e) = serde_json::from_slice::<Value>(bytes) {
        panic!("the door let in what serde_json refuses: {e}");
    }
    let lenient = lenient.expect("parse accepted it");
    assert_eq!(parts(&env), parts(&lenient));
    let kind = env.kind().expect("parse checked the kind");
    let id = env.id.map_or("null", RawValue::get);
    let rebuilt = match kind {
        Kind::Request => encode::request(id, env.method(), env.params),
        Kind::Notification => encode::notification(env.method(), env.params),
        Kind::Response if env.result.is_some() => encode::response(id, env.result, None),
        Kind::Response => encode::response(id, None, env.error),
    };
    let again = Envelope::parse(&rebuilt).expect("a rebuilt message parses");
    assert_eq!(again.kind(), Ok(kind));
    assert_eq!(again.method(), env.method());
    assert_eq!(again.id.map(RawValue::get), env.id.map(RawValue::get));
    match kind {
        Kind::Request | Kind::Notification => assert_eq!(
            again.params.map(RawValue::get),
            env.params.map(RawValue::get)
        ),
        Kind::Response => assert_eq!(
            again.result.or(again.error).map(RawValue::get),
            env.result.or(env.error).map(RawValue::get)
        ),
    }
    Ok(())
}

#[test]
fn corpus_replays() {
    for (name, bytes) in fuzz_support::corpus("envelope") {
        let outcome = std::panic::catch_unwind(|| check_message(&bytes))
            .unwrap_or_else(|_| panic!("{name} panicked"));
        if name.starts_with("ok-") {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        } else if name.starts_with("err-") {
            assert!(outcome.is_err(), "{name} was accepted");
        }
    }
}

proptest! {
    #![proptest_config(fuzz_support::config())]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = check_message(&bytes);
    }

    #[test]
    fn generated_messages(msg in json::message()) {
        let _ = check_message(msg.as_bytes());
    }

    #[test]
    fn mutated_messages(bytes in json::message().prop_flat_map(json::mutated)) {
        let _ = check_message(&bytes);
    }

    /// The door agrees with serde_json on every text that is JSON at all.
    #[test]
    fn door_is_serdes_limit(text in json::value(6)) {
        let syntax_ok = serde_json::from_str::<&RawValue>(&text).is_ok();
        prop_assume!(syntax_ok);
        let serde_ok = serde_json::from_str::<Value>(&text).is_ok();
        prop_assert_eq!(door::check(text.as_bytes()).is_ok(), serde_ok, "{}", text);
    }

    #[test]
    fn error_replies_are_json_whatever_the_message(message in any::<String>(), id in prop::option::of(any::<i64>())) {
        let id = id.map(|n| n.to_string());
        let reply = encode::error(id.as_deref(), ErrorCode::InvalidRequest, &message);
        let v: Value = serde_json::from_slice(&reply).expect("valid JSON");
        prop_assert_eq!(v["error"]["message"].as_str(), Some(message.as_str()));
        prop_assert!(Envelope::parse(&reply).is_ok());
    }
}
