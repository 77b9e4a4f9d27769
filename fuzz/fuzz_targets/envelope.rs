//! `envelope::parse` (and the nesting and duplicate-key pre-check) on arbitrary bytes: it must return, never panic, and what
//! it accepts must keep the envelope's promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_bus::envelope::{self, EnvelopeError, MAX_ID_LEN};
use lienthong_qcvn102::agency;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the depth limit, so shallow limits are exercised too.
    let (depth, body) = match data.split_first() {
        Some((d, rest)) => (usize::from(*d % 80), rest),
        None => (64, data),
    };
    let _ = envelope::check_structure(body, depth);
    match envelope::parse(body, depth) {
        Ok(e) => {
            assert!(agency::is_valid(&e.from));
            assert!(e.to.iter().all(|t| agency::is_valid(t)));
            if let Some(id) = &e.id {
                assert!(!id.is_empty() && id.len() <= MAX_ID_LEN);
                assert!(!id.chars().any(char::is_control));
            }
            assert_ne!(e.version, Some(0));
            // Syntactically JSON, but not necessarily a `Value` (a number such as 1e999999 is out of
            // range): ingress parses it again and answers 400 `invalid_json` then.
            assert!(!e.payload.get().is_empty());
            let _ = serde_json::from_str::<serde_json::Value>(e.payload.get());
        }
        Err(EnvelopeError::InvalidEnvelope { path, .. }) => {
            assert!(path.is_empty() || path.starts_with('/'));
        }
        Err(EnvelopeError::DuplicateKey { path, .. }) => {
            assert!(path.is_empty() || path.starts_with('/'));
        }
        Err(EnvelopeError::InvalidJson(_)) => {}
    }
});
