//! Per-key order (`[[routes]] order_by`): which key a message has, which partition queue that key lives in,
//! and which adapters have partition queues at all.
//!
//! Why partitions: RabbitMQ keeps a queue's order, and a queue declared with `x-single-active-consumer` has
//! exactly one consumer across every bus process at a time. Hashing each key to one of N such queues per
//! adapter gives one place — one process, one consumer — that sees every message of a key in the order it was
//! accepted; that consumer ([`crate::runtime`]'s ordered worker) keeps the order per key while different keys
//! are delivered in parallel. The hash must be the same in every process and every build: FNV-1a, written
//! here, not the standard library's hasher (whose algorithm is not promised).

use crate::config::{Config, Problem, RouteConfig};
use crate::message::{ContentKind, Message};
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether `p` is a JSON pointer (RFC 6901) the bus can order by: starts with `/`, names a field of the
/// envelope, and every `~` is `~0` or `~1`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!(
            "`{p}` is not a JSON pointer into the envelope: it must start with `/` (e.g. \"/payload/case_id\")"
        ));
    };
    let bytes = p.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "`{p}` is not a valid JSON pointer: `~` at byte {i} must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)"
            ));
        }
    }
    let first = unescape(rest.split('/').next().unwrap_or_default());
    match first.as_str() {
        "id" | "type" | "version" | "from" | "correlation_id" => {
            if rest.contains('/') {
                return Err(format!(
                    "`{p}`: `/{first}` is a single value, nothing is under it"
                ));
            }
        }
        "to" => {
            let under: Vec<&str> = rest.split('/').skip(1).collect();
            if under.len() != 1 || under[0].parse::<usize>().is_err() {
                return Err(format!(
                    "`{p}`: under `/to` name one receiver by its position (`/to/0`)"
                ));
            }
        }
        "payload" => {
            if rest == "payload" {
                return Err(format!(
                    "`{p}`: order by a field of the payload (`/payload/case_id`), not the whole payload"
                ));
            }
        }
        other => {
            return Err(format!(
                "`{p}`: the envelope has no field `{other}` (it has id, type, version, from, to, \
                 correlation_id, payload)"
            ));
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

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

/// The adapters an ordered route can deliver to: its `deliver` ids, and for `@to` the inbox of every agency
/// its `to` admits (every agency's, without `to`).
fn adapters_of<'a>(config: &'a Config, r: &'a RouteConfig) -> Vec<&'a str> {
    let mut out = Vec::new();
    for d in &r.deliver {
        if d == crate::router::TO_RECEIVERS {
            for a in &config.agencies {
                let admitted =
                    r.to.as_ref()
                        .is_none_or(|to| a.codes().any(|c| to.iter().any(|t| t == c)));
                if let (true, Some(inbox)) = (admitted, &a.inbox) {
                    out.push(inbox.as_str());
                }
            }
        } else {
            out.push(d.as_str());
        }
    }
    out
}

/// Every adapter some ordered route reaches, with its partition count; and a problem for each ordered route
/// whose `order_partitions` disagrees with an earlier one's at a shared adapter.
pub fn ordered_adapters(config: &Config) -> (BTreeMap<String, u16>, Vec<Problem>) {
    let mut out: BTreeMap<String, (u16, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in config.routes.iter().filter(|r| r.order_by.is_some()) {
        for a in adapters_of(config, r) {
            match out.get(a) {
                Some((n, first)) if *n != r.partitions() => problems.push(Problem::new(
                    format!("routes[{}].order_partitions", r.index),
                    format!(
                        "adapter `{a}` already has {n} order partitions from routes[{first}]; every ordered \
                         route reaching one adapter must give the same number (this one: {})",
                        r.partitions()
                    ),
                )),
                Some(_) => {}
                None => {
                    out.insert(a.to_owned(), (r.partitions(), r.index));
                }
            }
        }
    }
    (
        out.into_iter().map(|(a, (n, _))| (a, n)).collect(),
        problems,
    )
}

/// RabbitMQ closes a consumer whose delivery stays unacknowledged longer than its `consumer_timeout`
/// (default 30 minutes); an ordered route holds a failing message unacknowledged through its retries.
pub const BROKER_CONSUMER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Warnings for ordered routes whose retries can hold one delivery longer than RabbitMQ's default
/// `consumer_timeout`.
pub fn warnings(config: &Config) -> Vec<Problem> {
    config
        .routes
        .iter()
        .filter(|r| r.order_by.is_some())
        .filter_map(|r| {
            let total: std::time::Duration = (1..=r.retry.attempts)
                .filter_map(|n| r.retry.delay_before_retry(n))
                .sum();
            (total >= BROKER_CONSUMER_TIMEOUT).then(|| {
                Problem::new(
                    format!("routes[{}].retry", r.index),
                    format!(
                        "this ordered route can hold a failing message unacknowledged for {} of retries; \
                         RabbitMQ closes a consumer whose delivery stays unacknowledged beyond its \
                         consumer_timeout (default 30 min), which hands the held messages back and restarts \
                         their retries: keep the backoff's total under it or raise consumer_timeout",
                        humantime::format_duration(total)
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
