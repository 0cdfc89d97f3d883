use super::*;
use serde_json::Value;

fn arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` levels in all, the message object being level 1.
fn message_with_params_depth(depth: usize) -> String {
    let inner = arrays(depth - 2);
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":{inner}}}}}"#)
}

#[test]
fn the_depth_limit_is_serde_jsons_own() {
    for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2] {
        let text = arrays(depth);
        let serde = serde_json::from_str::<Value>(&text).is_ok();
        assert_eq!(check(text.as_bytes()).is_ok(), serde, "depth {depth}");
        let msg = message_with_params_depth(depth);
        let serde = serde_json::from_str::<Value>(&msg).is_ok();
        assert_eq!(
            check(msg.as_bytes()).is_ok(),
            serde,
            "message of depth {depth}"
        );
    }
    assert!(check(arrays(127).as_bytes()).is_ok());
    assert_eq!(
        check(arrays(128).as_bytes()),
        Err(Refusal::TooDeep { at: 127 })
    );
}

#[test]
fn brackets_in_strings_do_not_count() {
    let text = format!(r#"{{"a":"{}","b":"\"[[[\\"}}"#, "[{".repeat(500));
    assert_eq!(check(text.as_bytes()), Ok(()));
    // Depth is counted across siblings correctly: many shallow arrays are fine.
    let wide = format!("[{}[]]", "[[]],".repeat(1000));
    assert_eq!(check(wide.as_bytes()), Ok(()));
}

#[test]
fn surrogates_must_pair() {
    let cases: &[(&str, Result<(), Refusal>)] = &[
        (r#""\ud800\udc00""#, Ok(())),
        (r#""\uD83D\uDE00 ok""#, Ok(())),
        (
            r#""x\ud800""#,
            Err(Refusal::LoneSurrogate {
                code: 0xd800,
                at: 2,
            }),
        ),
        (
            r#""\udc00""#,
            Err(Refusal::LoneSurrogate {
                code: 0xdc00,
                at: 1,
            }),
        ),
        (
            r#""\ud800\u0041""#,
            Err(Refusal::LoneSurrogate {
                code: 0xd800,
                at: 1,
            }),
        ),
        (
            r#""\ud800\ud800\udc00""#,
            Err(Refusal::LoneSurrogate {
                code: 0xd800,
                at: 1,
            }),
        ),
        (
            r#""\udbff\n""#,
            Err(Refusal::LoneSurrogate {
                code: 0xdbff,
                at: 1,
            }),
        ),
        (
            r#""\ud800""#,
            Err(Refusal::LoneSurrogate {
                code: 0xd800,
                at: 1,
            }),
        ),
        (r#""\\ud800""#, Ok(())),
        (r#""\\\ud800\udfff""#, Ok(())),
        (r#""\\\\ud800""#, Ok(())),
        (r#""\u00e9\u0000\uffff""#, Ok(())),
        (
            r#"{"\udfff":1}"#,
            Err(Refusal::LoneSurrogate {
                code: 0xdfff,
                at: 2,
            }),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&check(text.as_bytes()), want, "{text}");
        let serde = serde_json::from_str::<Value>(text).is_ok();
        assert_eq!(serde, want.is_ok(), "serde_json disagrees on {text}");
    }
}

#[test]
fn numbers_beyond_f64_are_refused() {
    let long_int = format!("[{}]", "9".repeat(400));
    let long_fraction = format!("[0.{}1]", "0".repeat(400));
    let cases: &[(&str, bool)] = &[
        ("[1e308]", true),
        ("[1e309]", false),
        ("[-1E400]", false),
        ("[1e-400]", true),
        ("[1.7976931348623157e308]", true),
        ("[123456789012345678901234567890]", true),
        (&long_int, false),
        (&long_fraction, true),
        (r#"{"a":-0,"b":0.5e+3}"#, true),
    ];
    for (text, ok) in cases {
        assert_eq!(check(text.as_bytes()).is_ok(), *ok, "{text}");
        let serde = serde_json::from_str::<Value>(text).is_ok();
        assert_eq!(serde, *ok, "serde_json disagrees on {text}");
    }
    assert_eq!(
        check(b"[1, 2e999]"),
        Err(Refusal::NumberOutOfRange { at: 4 })
    );
}

#[test]
fn truncated_and_garbled_text_never_panics() {
    for text in [
        &b"\"\\"[..],
        b"\"\\u",
        b"\"\\ud8",
        b"\"\\ud800\\",
        b"\"\\ud800\\u",
        b"\"\\ud800\\udc",
        b"\"\\uzzzz\"",
        b"\"\\ud800\\uzzzz\"",
        b"-",
        b"1e",
        b"]]]]}}}",
        b"",
    ] {
        let _ = check(text);
    }
    assert!(check(b"\"\\ud800\\udc").is_err());
}
