//! Status packages: `edxml::parse` on bytes seeded with status packages only (every code, every header name
//! producers use), then what the bus does with an accepted status — the transition rules from a stored state.
//!
//! Oracles: an accepted status package's code is the header's `StatusCode`, it goes to its first
//! `ResponseFor/OrganId`, and its `DocumentId` is the one reported on; error paths are JSON pointers; a stored
//! document state (from the input's last line) reads back as what it writes; a transition the rules accept from
//! a state gives a state that stores and reads back, and accepting the same code twice is idempotent or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_qcvn102::edxml::status::{DocState, check_transition};
use lienthong_qcvn102::edxml::{self, Limits, PackageKind, StatusCode};

mod common;
use common::assert_pointer;

fuzz_target!(|data: &[u8]| {
    match edxml::parse(data, &Limits::default()) {
        Ok(p) => {
            if let PackageKind::Status { code, response_for } = &p.kind {
                assert_eq!(p.message_type(), edxml::STATUS_MESSAGE_TYPE);
                assert_eq!(
                    StatusCode::parse(p.header["StatusCode"].as_str().unwrap()),
                    Some(*code)
                );
                assert_eq!(p.to.first(), Some(&response_for.organ_id));
                assert_eq!(
                    p.document_id.as_deref(),
                    response_for
                        .document_id
                        .as_deref()
                        .filter(|d| !d.is_empty())
                );
                transitions(data, *code);
            } else {
                assert_eq!(p.message_type(), edxml::DOCUMENT_MESSAGE_TYPE);
            }
        }
        Err(e) => {
            if let Some(path) = e.path() {
                assert_pointer(path, &e);
            }
        }
    }
    // The stored-state reader on the input's last line, whatever the package was.
    let last = data.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    if let Ok(s) = std::str::from_utf8(last)
        && let Ok(state) = DocState::from_storage(s)
    {
        assert_eq!(
            DocState::from_storage(&state.to_storage()).as_ref(),
            Ok(&state)
        );
        for code in StatusCode::ALL {
            let _ = state.accept(code);
        }
    }
});

/// The rules from every stored state a document can be in, for the package's code.
fn transitions(data: &[u8], code: StatusCode) {
    let mut states = vec![DocState::new()];
    for prev in StatusCode::ALL {
        let _ = check_transition(Some(prev), code);
        if let Ok(s) = DocState::new().apply(prev) {
            states.push(s.with_update());
            states.push(s);
        }
    }
    let pick = data.len() % states.len();
    let state = &states[pick];
    match state.accept(code) {
        Ok((next, _)) => {
            assert_eq!(
                DocState::from_storage(&next.to_storage()).as_ref(),
                Ok(&next)
            );
            // The same status again is idempotent, or refused with a reason; never a panic.
            let _ = next.apply(code);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(!state.allowed_next().contains(&code) || state.apply(code).is_ok());
        }
    }
}
