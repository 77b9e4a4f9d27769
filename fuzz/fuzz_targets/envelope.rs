//! `envelope::parse` (and the nesting and duplicate-key pre-check) on arbitrary bytes: it must return, never
//! panic, and what it accepts must keep the envelope's promises. Party codes are not the parser's to judge (the
//! domain plugin checks them at ingress), so nothing is asserted about `from`/`to` beyond their shape.
//!
//! Oracles: an accepted envelope, written out again as JSON, parses to the same envelope; every error path is a
//! JSON pointer (RFC 6901: empty or `/`-led, `~` only as `~0`/`~1`); the pre-check never refuses a body `parse`
//! accepts at the same depth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_bus::envelope::{self, Envelope, EnvelopeError, MAX_ID_LEN};

mod common;
use common::{assert_bounded, is_pointer};

/// The envelope written out again: its fields as JSON values, the payload as its raw bytes.
fn reserialise(e: &Envelope<'_>) -> String {
    let mut obj = serde_json::Map::new();
    if let Some(id) = &e.id {
        obj.insert("id".into(), id.clone().into());
    }
    obj.insert("type".into(), e.kind.clone().into());
    if let Some(v) = e.version {
        obj.insert("version".into(), v.into());
    }
    obj.insert("from".into(), e.from.clone().into());
    if !e.to.is_empty() {
        // Only when there was one: an empty `[]` would add a level the original may not have had.
        obj.insert("to".into(), e.to.clone().into());
    }
    if let Some(c) = &e.correlation_id {
        obj.insert("correlation_id".into(), c.clone().into());
    }
    // `payload` last, spliced in as sent.
    let head = serde_json::Value::Object(obj).to_string();
    format!(
        "{},\"payload\":{}}}",
        &head[..head.len() - 1],
        e.payload.get()
    )
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the depth limit, so shallow limits are exercised too.
    let (depth, body) = match data.split_first() {
        Some((d, rest)) => (usize::from(*d % 80), rest),
        None => (64, data),
    };
    let pre = envelope::check_structure(body, depth);
    match envelope::parse(body, depth) {
        Ok(e) => {
            assert!(
                pre.is_ok(),
                "pre-check refused what parse accepted: {pre:?}"
            );
            if let Some(id) = &e.id {
                assert!(!id.is_empty() && id.len() <= MAX_ID_LEN);
                assert!(!id.chars().any(char::is_control));
            }
            assert!(!e.kind.is_empty() && e.kind.len() <= 100);
            assert_ne!(e.version, Some(0));
            if let Some(c) = &e.correlation_id {
                assert!(c.len() <= MAX_ID_LEN && !c.chars().any(char::is_control));
            }
            // Syntactically JSON, but not necessarily a `Value` (a number such as 1e999999 is out of
            // range): ingress parses it again and answers 400 `invalid_json` then.
            assert!(!e.payload.get().is_empty());
            let _ = serde_json::from_str::<serde_json::Value>(e.payload.get());
            // Round trip: the same envelope again (the re-serialised body is no deeper than the original).
            let again_text = reserialise(&e);
            let again = envelope::parse(again_text.as_bytes(), depth).unwrap_or_else(|err| {
                panic!("re-serialised envelope refused: {err:?}\n{again_text}")
            });
            assert_eq!(again.id, e.id);
            assert_eq!(again.kind, e.kind);
            assert_eq!(again.version, e.version);
            assert_eq!(again.from, e.from);
            assert_eq!(again.to, e.to);
            assert_eq!(again.correlation_id, e.correlation_id);
            assert_eq!(again.payload.get(), e.payload.get());
        }
        Err(EnvelopeError::InvalidEnvelope { path, message })
        | Err(EnvelopeError::DuplicateKey { path, message }) => {
            assert!(is_pointer(&path), "not a JSON pointer: {path:?}");
            assert_bounded(&message, 600);
        }
        Err(EnvelopeError::InvalidJson(message)) => {
            assert_bounded(&message, 600);
        }
    }
});
