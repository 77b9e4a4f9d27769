//! Per-key order (`[[routes]] order_by`): which key a message has, which partition queue that key lives in,
//! and which adapters have partition queues at all.
//!
//! Why partitions: RabbitMQ keeps a queue's order, and a queue declared with `x-single-active-consumer` has
//! exactly one consumer across every bus process at a time. Hashing each key to one of N such queues per
//! adapter gives one place — one process, one consumer — that sees every message of a key in the order it was
//! accepted; that consumer ([`crate::runtime`]'s ordered worker) keeps the order per key while different keys
//! are delivered in parallel. The hash must be the same in every process and every build: FNV-1a, written
//! here, not the standard library's hasher (whose algorithm is not promised).

use crate::config::order::unescape;
use crate::message::{ContentKind, Message};
use serde_json::Value;

// What the config alone decides (pointers checked, which adapters are ordered, consumer-timeout warnings)
// lives in `config/order.rs`, below this module; re-exported here, where callers look for it.
pub use crate::config::order::{
    BROKER_CONSUMER_TIMEOUT, check_pointer, ordered_adapters, warnings,
};

/// A key value as the bus keeps it: a string as itself, a number as its JSON text; anything else has no key.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The order key of `message` at `pointer` (checked by [`check_pointer`]), or None when the message has no
/// string or number there. `payload_key` answers `/payload/…` pointers for messages that are not JSON (the
/// domain's format), given the pointer below `/payload`.
pub fn key_of(
    message: &Message,
    pointer: &str,
    payload_key: &dyn Fn(&Message, &str) -> Option<String>,
) -> Option<String> {
    let rest = pointer.strip_prefix('/')?;
    let (first, under) = match rest.split_once('/') {
        Some((f, u)) => (unescape(f), Some(u)),
        None => (unescape(rest), None),
    };
    let m = &message.meta;
    match (first.as_str(), under) {
        ("id", None) => Some(m.id.clone()),
        ("type", None) => Some(m.kind.clone()),
        ("version", None) => Some(m.version.to_string()),
        ("from", None) => Some(m.from.clone()),
        ("correlation_id", None) => m.correlation_id.clone(),
        ("to", Some(i)) => i.parse::<usize>().ok().and_then(|i| m.to.get(i).cloned()),
        ("payload", Some(u)) => {
            let below = &pointer["/payload".len()..];
            debug_assert!(below.ends_with(u));
            match message.content {
                ContentKind::Json => {
                    let v: Value = serde_json::from_slice(&message.payload).ok()?;
                    v.pointer(below).and_then(key_text)
                }
                _ => payload_key(message, below),
            }
        }
        _ => None,
    }
}

/// The partition (0..`partitions`) of a key: FNV-1a 64 of its UTF-8 bytes, modulo the count.
pub fn partition(key: &str, partitions: u16) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::message::Meta;

    fn msg(content: ContentKind, payload: &'static [u8]) -> Message {
        Message {
            meta: Meta {
                id: "id-1".into(),
                kind: "case.updated".into(),
                version: 2,
                from: "A".into(),
                to: vec!["B".into(), "C".into()],
                correlation_id: Some("doc-7".into()),
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            content,
            payload: bytes::Bytes::from_static(payload),
        }
    }

    fn none(_: &Message, _: &str) -> Option<String> {
        None
    }

    #[test]
    fn pointers_must_name_a_field_of_the_envelope() {
        for ok in [
            "/payload/case_id",
            "/payload/a~1b/0",
            "/payload/x~0y",
            "/correlation_id",
            "/from",
            "/to/1",
            "/id",
        ] {
            assert_eq!(check_pointer(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("payload/case_id", "must start with `/`"),
            ("", "must start with `/`"),
            ("/payload/a~2", "`~` at byte 10"),
            ("/payload/a~", "`~` at byte 10"),
            ("/payload", "not the whole payload"),
            ("/case_id", "no field `case_id`"),
            ("/to", "`/to/0`"),
            ("/to/x", "`/to/0`"),
            ("/from/0", "single value"),
        ] {
            let e = check_pointer(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_come_from_the_envelope_and_the_payload() {
        let m = msg(
            ContentKind::Json,
            br#"{"case_id":"C-0001","n":42,"o":{"a/b":"x"},"nul":null,"arr":[1]}"#,
        );
        let k = |p: &str| key_of(&m, p, &none);
        assert_eq!(k("/payload/case_id").as_deref(), Some("C-0001"));
        assert_eq!(k("/payload/n").as_deref(), Some("42"));
        assert_eq!(k("/payload/o/a~1b").as_deref(), Some("x"));
        assert_eq!(k("/correlation_id").as_deref(), Some("doc-7"));
        assert_eq!(k("/to/1").as_deref(), Some("C"));
        assert_eq!(k("/from").as_deref(), Some("A"));
        // Missing, null, object, array: no key (ingress refuses the message).
        for p in [
            "/payload/Missing",
            "/payload/nul",
            "/payload/o",
            "/payload/arr",
            "/to/5",
        ] {
            assert_eq!(k(p), None, "{p}");
        }
    }

    #[test]
    fn a_non_json_payload_asks_the_format() {
        let m = msg(ContentKind::Xml, b"<x/>");
        let hook = |_: &Message, below: &str| Some(format!("asked {below}"));
        assert_eq!(
            key_of(&m, "/payload/Subject", &hook).as_deref(),
            Some("asked /Subject")
        );
        assert_eq!(key_of(&m, "/payload/Subject", &none), None);
        assert_eq!(
            key_of(&m, "/correlation_id", &none).as_deref(),
            Some("doc-7")
        );
    }

    #[test]
    fn check_warns_when_an_ordered_route_can_hold_a_message_past_the_consumer_timeout() {
        let config = |retry: &str| {
            Config::parse(
                std::path::Path::new("/etc/lt/bus.toml"),
                &format!(
                    "[[adapters]]\nid = \"a\"\ntype = \"webhook\"\n[[routes]]\nid = \"r\"\ntypes = [\"t\"]\n\
                     deliver = [\"a\"]\norder_by = \"/payload/k\"\n{retry}"
                ),
            )
            .unwrap()
        };
        // The default backoff (1s, 10s, 1m, 10m, 1h) holds a failing message for over an hour.
        let w = warnings(&config(""));
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "routes[0].retry");
        assert!(
            w[0].message.contains("consumer_timeout"),
            "{}",
            w[0].message
        );
        assert!(
            warnings(&config(
                "retry = { attempts = 8, backoff = [\"5s\", \"1m\"] }\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: every process and every build must agree.
        assert_eq!(partition("", 16), (0xcbf2_9ce4_8422_2325u64 % 16) as u16);
        assert_eq!(partition("a", 1), 0);
        let mut seen = [0u32; 16];
        for i in 0..1600 {
            seen[partition(&format!("C-{i:04}"), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }
}
