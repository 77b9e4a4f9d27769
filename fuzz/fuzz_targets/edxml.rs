//! `edxml::parse` on arbitrary bytes, with the default limits and with tight ones: it must return, never
//! panic. Seeds include document and status packages, so both header shapes are reached.
//!
//! Oracles: an error's path is a JSON pointer (ingress answers with it as one); an accepted package has a
//! sender, a receiver, a kind that matches its header, and attachments whose decoded length is what
//! `decode_attachment` writes; the same bytes give the same result under the default limits twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_qcvn102::edxml::{self, Limits, Package, PackageKind};

mod common;
use common::{assert_bounded, assert_pointer};

fn check(data: &[u8], limits: &Limits) -> Option<Package> {
    match edxml::parse(data, limits) {
        Ok(p) => {
            assert!(!p.from.is_empty());
            assert!(!p.to.is_empty(), "a package without a receiver: {p:?}");
            assert!(p.attachments.len() <= limits.max_attachments);
            match &p.kind {
                PackageKind::Document => assert!(p.header.get("StatusCode").is_none()),
                PackageKind::Status { code, response_for } => {
                    assert_eq!(
                        p.header["StatusCode"].as_str().map(str::trim),
                        Some(code.as_str())
                    );
                    assert_eq!(p.to[0], response_for.organ_id);
                }
            }
            for a in &p.attachments {
                assert!(a.decoded_len <= a.encoded_len / 4 * 3 + 3);
            }
            Some(p)
        }
        Err(e) => {
            if let Some(path) = e.path() {
                assert_pointer(path, &e);
            }
            assert_bounded(&e.to_string(), 2000);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let default = Limits::default();
    let first = check(data, &default);
    if let Some(p) = &first {
        if let Some(a) = p.attachments.first() {
            let mut out = Vec::new();
            let n = edxml::decode_attachment(data, &default, &a.content_id, &mut out)
                .expect("an attachment of an accepted package decodes");
            assert_eq!(n as usize, a.decoded_len);
            assert_eq!(out.len(), a.decoded_len);
        }
        assert_eq!(edxml::parse(data, &default).ok().as_ref(), Some(p));
    }
    let tight = Limits {
        max_depth: 8,
        max_bytes: 4096,
        max_attachments: 2,
        max_header_elements: 32,
    };
    let _ = check(data, &tight);
});
