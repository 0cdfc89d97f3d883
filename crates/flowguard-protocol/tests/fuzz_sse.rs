//! Fuzz target 2: the SSE parser (`sse::Parser::feed`). Never a panic; a stream cut anywhere,
//! in any number of pieces, gives the same events and the same last event id as in one piece;
//! streams written with any line ends give back the events written; `message_event` parses
//! back to its data (line breaks as `\n`).

mod fuzz_support;

use flowguard_protocol::sse::{message_event, Event, Parser};
use proptest::prelude::*;

fn parse(pieces: &[&[u8]]) -> (Vec<Event>, Option<String>) {
    let (mut p, mut out) = (Parser::default(), vec![]);
    for piece in pieces {
        p.feed(piece, &mut out);
    }
    (out, p.last_event_id().map(str::to_string))
}

fn same_whatever_the_cuts(stream: &[u8], cuts: &[usize]) {
    let whole = parse(&[stream]);
    assert_eq!(parse(&fuzz_support::pieces(stream, cuts)), whole);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(parse(&bytes), whole);
}

#[test]
fn corpus_replays() {
    for (name, stream) in fuzz_support::corpus("sse") {
        let (events, _) = parse(&[&stream]);
        for cuts in [&[][..], &[1], &[2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]] {
            same_whatever_the_cuts(&stream, cuts);
        }
        assert!(events.iter().all(|e| !e.data.is_empty()), "{name}");
    }
}

/// One event as a server may write it: fields in any order, comments, any line end.
fn written_event() -> impl Strategy<Value = (Event, Vec<u8>)> {
    let line_end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    (
        prop::option::of("[a-z0-9.-]{0,8}"),
        prop::option::of("[a-z]{1,8}"),
        prop::collection::vec("[^\r\n]{0,12}", 1..4),
        line_end,
        any::<bool>(),
    )
        .prop_map(|(id, event, data, end, comment)| {
            let mut text = String::new();
            if comment {
                text.push_str(&format!(": keepalive{end}"));
            }
            if let Some(id) = &id {
                text.push_str(&format!("id: {id}{end}"));
            }
            if let Some(name) = &event {
                text.push_str(&format!("event:{name}{end}"));
            }
            for line in &data {
                text.push_str(&format!("data: {line}{end}"));
            }
            text.push_str(end);
            let data = data.join("\n");
            (Event { id, event, data }, text.into_bytes())
        })
}

proptest! {
    #![proptest_config(fuzz_support::config())]

    #[test]
    fn arbitrary_streams_cut_anywhere(
        stream in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b':')], 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        same_whatever_the_cuts(&stream, &cuts);
    }

    #[test]
    fn written_events_come_back(
        events in prop::collection::vec(written_event(), 0..6),
        bom in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut stream = if bom { b"\xEF\xBB\xBF".to_vec() } else { vec![] };
        for (_, text) in &events {
            stream.extend_from_slice(text);
        }
        let want: Vec<Event> = events.into_iter().map(|(e, _)| e).filter(|e| !e.data.is_empty()).collect();
        let (got, _) = parse(&fuzz_support::pieces(&stream, &cuts));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn message_events_parse_back(data in "[^\u{0}]{0,40}", id in prop::option::of("[a-z0-9-]{1,8}")) {
        let (got, last) = parse(&[&message_event(id.as_deref(), data.as_bytes())]);
        let want = data.replace("\r\n", "\n").replace('\r', "\n");
        if want.is_empty() {
            prop_assert!(got.is_empty());
        } else {
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].data, &want);
            prop_assert_eq!(got[0].event.as_deref(), Some("message"));
            prop_assert_eq!(&got[0].id, &id);
        }
        prop_assert_eq!(last, id);
    }
}
