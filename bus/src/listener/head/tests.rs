use super::*;

/// Feeds `reads` one after another as the socket would deliver them; returns the bytes handed on, the
/// refusal if there was one, and the phase at the end.
fn run(reads: &[&[u8]]) -> (Vec<u8>, Option<ApiError>, Phase) {
    let mut reader = Reader::new();
    let mut unread = Vec::new();
    let mut out = Vec::new();
    for read in reads {
        unread.extend_from_slice(read);
        while !unread.is_empty() {
            match reader.step(&unread) {
                Step::Pass(n) => {
                    assert!(n > 0, "a pass hands something on");
                    out.extend(unread.drain(..n));
                }
                Step::More => break,
                Step::Refuse(e) => return (out, Some(e), reader.phase()),
            }
        }
    }
    (out, None, reader.phase())
}

/// The same, one byte a read.
fn trickled(input: &[u8]) -> (Vec<u8>, Option<ApiError>, Phase) {
    let reads: Vec<&[u8]> = input.chunks(1).collect();
    run(&reads)
}

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bus\r\n\r\n";
const POST: &[u8] = b"POST /v1/messages HTTP/1.1\r\nHost: bus\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] =
    b"POST /v1/messages HTTP/1.1\r\nHost: bus\r\nTransfer-Encoding: Chunked\r\n\r\n\
    5;name=value\r\nhello\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";

#[test]
fn well_formed_requests_pass_whole_and_in_order_however_they_are_split() {
    let all = [b"\r\n".as_slice(), GET, POST, CHUNKED, GET].concat();
    for (out, refused, phase) in [run(&[&all]), trickled(&all)] {
        assert_eq!(refused, None);
        assert_eq!(out, all);
        assert_eq!(phase, Phase::Head);
    }
}

#[test]
fn a_head_is_handed_on_only_once_it_is_whole() {
    let (out, refused, phase) = run(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]);
    assert!(out.is_empty() && refused.is_none());
    assert_eq!(phase, Phase::Head);
    let (out, _, phase) = run(&[b"POST / HTTP/1.1\r\nContent-Length: 9\r\n", b"\r\nabc"]);
    assert_eq!(out, b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc");
    assert_eq!(phase, Phase::Body);
}

fn refused(input: &[u8]) -> ApiError {
    let (_, whole, _) = run(&[input]);
    let (_, bytewise, _) = trickled(input);
    assert_eq!(
        whole, bytewise,
        "the verdict does not depend on how bytes arrive"
    );
    whole.unwrap_or_else(|| panic!("not refused: {}", String::from_utf8_lossy(input)))
}

#[test]
fn both_transfer_encoding_and_content_length_is_refused_in_either_order() {
    for head in [
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: CHUNKED\r\n\r\n",
    ] {
        let e = refused(head.as_bytes());
        assert_eq!(e.code, code::BAD_REQUEST, "{head:?}");
        assert!(
            e.message.contains("Transfer-Encoding and Content-Length"),
            "{e}"
        );
    }
    // Behind a good request on the same connection: that one passes, the ambiguous one does not.
    let bad =
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (out, e, _) = run(&[&[POST, bad].concat()]);
    assert_eq!(out, POST);
    assert_eq!(e.unwrap().code, code::BAD_REQUEST);
}

#[test]
fn a_bad_content_length_is_refused_with_what_was_given() {
    for value in [
        "abc",
        "-1",
        "+5",
        "",
        "1,1",
        "5 5",
        "0x10",
        "99999999999999999999",
    ] {
        let head = format!("POST / HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
        let e = refused(head.as_bytes());
        assert_eq!(e.code, code::BAD_REQUEST, "{value:?}");
        assert!(e.message.contains("Content-Length"), "{e}");
    }
    let twice = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    assert!(refused(twice).message.contains("more than once"));
}

#[test]
fn transfer_encodings_other_than_chunked_are_refused() {
    for head in [
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(refused(head.as_bytes()).code, code::BAD_REQUEST, "{head:?}");
    }
}

#[test]
fn oversized_heads_are_431() {
    let big = format!(
        "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(MAX_HEAD_BYTES)
    );
    assert_eq!(refused(big.as_bytes()).code, code::HEADERS_TOO_LARGE);
    // Refused as soon as the limit is passed, without waiting for the end of the head.
    let (_, e, _) = run(&[&big.as_bytes()[..MAX_HEAD_BYTES + 10]]);
    assert_eq!(e.unwrap().code, code::HEADERS_TOO_LARGE);
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        (0..=MAX_HEADERS)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect::<String>()
    );
    assert_eq!(refused(many.as_bytes()).code, code::HEADERS_TOO_LARGE);
}

#[test]
fn malformed_heads_are_400() {
    for head in [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET http://[::1 HTTP/1.1\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "\rGET / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(refused(head.as_bytes()).code, code::BAD_REQUEST, "{head:?}");
    }
}

#[test]
fn a_body_is_never_read_as_a_head() {
    let inner = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
    let mut req = format!(
        "POST /v1/messages HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        inner.len()
    )
    .into_bytes();
    req.extend_from_slice(inner);
    req.extend_from_slice(GET);
    let (out, e, phase) = trickled(&req);
    assert_eq!((out, e, phase), (req, None, Phase::Head));
}

#[test]
fn broken_chunk_framing_is_passed_through_for_the_http_layer_to_refuse() {
    let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let (out, e, phase) = run(&[req]);
    assert_eq!(
        (out.as_slice(), e, phase),
        (req.as_slice(), None, Phase::Body)
    );
}

#[test]
fn body_bytes_ahead_counts_what_needs_no_look() {
    let mut r = Reader::new();
    let head = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(r.body_bytes_ahead(), 0);
    assert_eq!(r.step(head), Step::Pass(head.len()));
    assert_eq!(r.body_bytes_ahead(), 10);
    assert_eq!(r.step(b"12345"), Step::Pass(5));
    assert_eq!(r.body_bytes_ahead(), 5);
    assert_eq!(r.step(b"12345GET"), Step::Pass(5));
    assert_eq!((r.body_bytes_ahead(), r.phase()), (0, Phase::Head));
}

proptest::proptest! {
    /// Whatever arrives, split however: no panic, and the same bytes handed on with the same verdict.
    #[test]
    fn any_input_split_anyhow_gets_the_same_verdict(
        input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..600, 0..8),
    ) {
        let mut at: Vec<usize> = cuts.into_iter().filter(|&c| c <= input.len()).collect();
        at.sort_unstable();
        let mut reads = Vec::new();
        let mut from = 0;
        for c in at.into_iter().chain([input.len()]) {
            reads.push(&input[from..c]);
            from = c;
        }
        let (out_whole, e_whole, _) = run(&[&input]);
        let (out_split, e_split, _) = run(&reads);
        proptest::prop_assert_eq!(e_whole.map(|e| e.code), e_split.map(|e| e.code));
        proptest::prop_assert_eq!(out_whole, out_split);
    }

    /// Valid requests mixed with random bodies: every head passes, the stream passes whole.
    #[test]
    fn requests_with_any_bodies_pass_whole(
        bodies in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..4),
        chunked in proptest::prelude::any::<bool>(),
    ) {
        let mut all = Vec::new();
        for b in &bodies {
            if chunked {
                all.extend_from_slice(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
                for part in b.chunks(7) {
                    all.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    all.extend_from_slice(part);
                    all.extend_from_slice(b"\r\n");
                }
                all.extend_from_slice(b"0\r\n\r\n");
            } else {
                all.extend_from_slice(format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes());
                all.extend_from_slice(b);
            }
        }
        let (out, e, phase) = trickled(&all);
        proptest::prop_assert!(e.is_none());
        proptest::prop_assert_eq!(phase, Phase::Head);
        proptest::prop_assert_eq!(out, all);
    }
}
