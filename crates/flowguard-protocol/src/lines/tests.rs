use super::*;

/// Frames `input` fed in pieces of the given sizes (cycled), as a buffered reader would.
fn frame(input: &[u8], pieces: &[usize], max: usize) -> Vec<(LineRead, Vec<u8>)> {
    let (mut out, mut buf, mut at, mut k) = (vec![], vec![], 0usize, 0);
    let mut line = CappedLine::new(max);
    loop {
        let size = pieces[k % pieces.len()].max(1);
        k += 1;
        let avail = &input[at..at.saturating_add(size).min(input.len())];
        if avail.is_empty() {
            let read = line.finish(&mut buf);
            if read != LineRead::Eof {
                out.push((read, std::mem::take(&mut buf)));
            }
            return out;
        }
        let (used, done) = line.feed(&mut buf, avail);
        at += used;
        if let Some(read) = done {
            out.push((read, std::mem::take(&mut buf)));
        }
    }
}

#[test]
fn long_lines_keep_both_ends_whatever_the_pieces() {
    let long = format!(
        "{{\"result\":\"{}\",\"jsonrpc\":\"2.0\",\"id\":17}}",
        "x".repeat(5000)
    );
    let input = format!("short\n{long}\nnext\r\nlast");
    let whole = frame(input.as_bytes(), &[usize::MAX], 100);
    for pieces in [&[1][..], &[7, 64], &[99, 1, 3000], &[100], &[101]] {
        assert_eq!(frame(input.as_bytes(), pieces, 100), whole, "{pieces:?}");
    }
    assert_eq!(whole.len(), 4);
    assert_eq!(whole[0], (LineRead::Line, b"short".to_vec()));
    let (read, kept) = &whole[1];
    assert_eq!(*read, LineRead::TooLong);
    assert_eq!(kept.len(), 2 * SNIFF + ELISION.len());
    assert!(kept.starts_with(b"{\"result\":\"xxx"));
    assert!(kept.ends_with(b"\"id\":17}"));
    assert_eq!(sniff_reply_id(kept), Some(17));
    assert_eq!(whole[2], (LineRead::Line, b"next\r".to_vec()));
    assert_eq!(whole[3], (LineRead::Line, b"last".to_vec()));
}

#[test]
fn a_line_just_over_the_cap_is_kept_whole_and_one_at_the_cap_is_a_line() {
    let input = format!("{}\n{}\n", "a".repeat(100), "b".repeat(101));
    let out = frame(input.as_bytes(), &[30], 100);
    assert_eq!(out[0], (LineRead::Line, vec![b'a'; 100]));
    assert_eq!(out[1], (LineRead::TooLong, vec![b'b'; 101]));
    assert_eq!(frame(b"", &[5], 100), vec![]);
    assert_eq!(frame(b"\n", &[5], 100), vec![(LineRead::Line, vec![])]);
}

#[test]
fn reply_ids_are_sniffed_from_either_end_but_not_from_requests() {
    let id = |s: &str| sniff_reply_id(s.as_bytes());
    assert_eq!(
        id(r#"{"jsonrpc":"2.0","id": 42,"result":{"content":"xxxx"#),
        Some(42)
    );
    assert_eq!(
        id(r#"  {"jsonrpc" : "2.0" , "id" : 7 , "error":{"#),
        Some(7)
    );
    assert_eq!(
        id(r#"{"result":{"id":3,"content":[{"id":4}]},"id":5}"#),
        Some(5)
    );
    assert_eq!(
        id(r#"{"result":{"id":3,"text":"x … y"},"jsonrpc":"2.0","id":99} "#),
        Some(99)
    );
    assert_eq!(id(r#"{"jsonrpc":"2.0","method":"x","id":5}"#), None);
    assert_eq!(
        id(r#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage""#),
        None
    );
    assert_eq!(id(r#"{"jsonrpc":"2.0","id":"abc","result":{}}"#), None);
    assert_eq!(id(r#"{"jsonrpc":"2.0","id":12"#), None); // cut short: 12 may be 123
    assert_eq!(id(r#"{"result":{"x":{"id":5}}}"#), None);
    assert_eq!(id(r#"{"result":"a\"id\":5}"#), None);
    assert_eq!(id("\u{feff}{\"id\":8,\"result\":1}"), Some(8));
    assert_eq!(id(r#"{"id":99999999999999999999999,"result":1}"#), None);
    assert_eq!(id(""), None);
}
