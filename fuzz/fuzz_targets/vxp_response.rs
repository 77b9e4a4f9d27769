//! The document axis adapter's reading of the axis's answers (`adapters/src/vxp/axis.rs`, `pull.rs`): the list
//! of pending documents, why a fetch answer is not a package, and the sender read from a fetched package's
//! header. Input: two bytes of HTTP status (big-endian, modulo 1000), then the body.
//!
//! Oracles: every message is bounded (it is logged and sent back to the axis with `fail`: the axis's own words
//! are quoted up to 300 characters); a list is only read from a 2xx `status: OK` answer, and every listed id is
//! non-empty and trimmed; the sender read from a package's header is the one the edXML parser reads, when both
//! read one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_adapters::fuzzing;
use lienthong_qcvn102::edxml::{self, Limits};

mod common;
use common::assert_bounded;

/// Longest message: the adapter's own words and at most 300 characters of the axis's.
const MAX_MESSAGE: usize = 420;

fuzz_target!(|data: &[u8]| {
    let [hi, lo, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]) % 1000;
    match fuzzing::vxp_list(status, body) {
        None => {}
        Some(Ok(items)) => {
            assert!((200..300).contains(&status));
            for i in &items {
                assert!(!i.doc_id.is_empty());
                assert_eq!(i.doc_id.trim(), i.doc_id);
            }
        }
        Some(Err(why)) => assert_bounded(&why, MAX_MESSAGE),
    }
    if let Some(why) = fuzzing::vxp_not_a_package(status, body) {
        assert_bounded(&why, MAX_MESSAGE);
    }
    if let Some(sender) = fuzzing::vxp_package_sender(body) {
        assert!(!sender.is_empty());
        assert_eq!(sender.trim(), sender);
        if let Ok(p) = edxml::parse(body, &Limits::default())
            && p.header.get("StatusCode").is_none()
        {
            assert_eq!(
                sender, p.from,
                "the axis and the parser disagree on the sender"
            );
        }
    }
});
