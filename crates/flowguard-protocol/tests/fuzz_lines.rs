//! Fuzz target 3: the stdio line framer (`lines::CappedLine`, driven by `read_capped` in
//! flowguard-upstream) and `lines::sniff_reply_id`. Never a panic; however the input arrives
//! (a reader hands out what it has, the framer consumes up to a line end), the lines are those
//! of splitting the input at `\n`; a line over the cap is skipped, keeping its ends; the id of
//! an oversized reply is sniffed whether it comes first or last. Corpus files named
//! `sniff-<id>-*` (or `sniff-none-*`) must have that id sniffed from their first long line.

mod fuzz_support;

use flowguard_protocol::lines::{sniff_reply_id, CappedLine, LineRead, ELISION, SNIFF};
use proptest::prelude::*;

type Lines = Vec<(LineRead, Vec<u8>)>;

/// What a buffered reader and `read_capped` make of `input`, handed out in pieces of the given
/// sizes (cycled; what a line end leaves of a piece comes again, as from `fill_buf`).
fn framed(input: &[u8], sizes: &[usize], max: usize) -> Lines {
    let (mut out, mut buf, mut at, mut k) = (vec![], vec![], 0usize, 0);
    let mut line = CappedLine::new(max);
    loop {
        let size = sizes
            .get(k % sizes.len().max(1))
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        k += 1;
        let avail = &input[at..at.saturating_add(size).min(input.len())];
        if avail.is_empty() {
            match line.finish(&mut buf) {
                LineRead::Eof => return out,
                read => {
                    out.push((read, std::mem::take(&mut buf)));
                    return out;
                }
            }
        }
        let (used, done) = line.feed(&mut buf, avail);
        assert!(used >= 1 && used <= avail.len());
        at += used;
        if let Some(read) = done {
            assert_ne!(read, LineRead::Eof);
            out.push((read, std::mem::take(&mut buf)));
        }
    }
}

/// The same, by definition.
fn model(input: &[u8], max: usize) -> Lines {
    let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let last = lines.pop().expect("split yields one piece at least");
    if !last.is_empty() {
        lines.push(last);
    }
    let kept = |line: &[u8]| match line.len() {
        n if n <= max => (LineRead::Line, line.to_vec()),
        n if n <= 2 * SNIFF => (LineRead::TooLong, line.to_vec()),
        n => (
            LineRead::TooLong,
            [&line[..SNIFF], ELISION, &line[n - SNIFF..]].concat(),
        ),
    };
    lines.into_iter().map(kept).collect()
}

fn check(input: &[u8], sizes: &[usize], max: usize) {
    let got = framed(input, sizes, max);
    assert_eq!(got, model(input, max), "sizes {sizes:?}, max {max}");
    for (_, kept) in &got {
        let _ = sniff_reply_id(kept);
    }
}

#[test]
fn corpus_replays() {
    for (name, input) in fuzz_support::corpus("lines") {
        for max in [0, 1, 100, 600, 1024, 1025, 100_000] {
            for sizes in [&[usize::MAX][..], &[1], &[7, 64, 3], &[8192]] {
                let result = std::panic::catch_unwind(|| check(&input, sizes, max));
                assert!(result.is_ok(), "{name}, max {max}, sizes {sizes:?}");
            }
        }
        // `sniff-<id or none>-…`: what is sniffed from its first oversized line.
        if let Some(rest) = name.strip_prefix("sniff-") {
            let want = rest.split('-').next().and_then(|id| id.parse::<u64>().ok());
            let lines = framed(&input, &[4096], 1000);
            let (_, kept) = lines
                .iter()
                .find(|(r, _)| *r == LineRead::TooLong)
                .expect(&name);
            assert_eq!(sniff_reply_id(kept), want, "{name}");
        }
    }
}

/// An oversized reply, its id first or last, with a nested `"id"` before it as a decoy.
fn big_reply() -> impl Strategy<Value = (u64, Vec<u8>)> {
    (any::<u64>(), 600usize..5000, any::<bool>(), " {0,2}").prop_map(|(id, size, last, ws)| {
        let result = format!(r#"{{"decoy":{{"id":7}},"text":"{}"}}"#, "x".repeat(size));
        let text = if last {
            format!(r#"{{"result":{result},"jsonrpc":"2.0","id"{ws}:{ws}{id}{ws}}}"#)
        } else {
            format!(r#"{{"jsonrpc":"2.0",{ws}"id"{ws}:{ws}{id},"result":{result}}}"#)
        };
        (id, text.into_bytes())
    })
}

proptest! {
    #![proptest_config(fuzz_support::config())]

    #[test]
    fn any_input_in_any_pieces(
        input in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'x')], 0..3000),
        sizes in prop::collection::vec(1usize..700, 1..6),
        max in prop_oneof![0usize..40, 500usize..1100, Just(usize::MAX)],
    ) {
        check(&input, &sizes, max);
    }

    #[test]
    fn oversized_replies_are_failed_by_id(
        (id, reply) in big_reply(),
        sizes in prop::collection::vec(1usize..4096, 1..4),
        crlf in any::<bool>(),
    ) {
        let mut input = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n".to_vec();
        input.extend_from_slice(&reply);
        input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let got = framed(&input, &sizes, 500);
        prop_assert_eq!(got.len(), 2);
        prop_assert_eq!(got[1].0, LineRead::TooLong);
        prop_assert_eq!(sniff_reply_id(&got[1].1), Some(id));
        prop_assert_eq!(sniff_reply_id(&got[0].1), None);
    }

    #[test]
    fn sniffing_never_panics(kept in prop::collection::vec(
        prop_oneof![any::<u8>(), Just(b'"'), Just(b'{'), Just(b'}'), Just(b':'), Just(b'\\')], 0..1200)) {
        let _ = sniff_reply_id(&kept);
    }
}
