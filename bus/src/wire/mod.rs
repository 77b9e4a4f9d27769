//! How a message copy is laid out on the broker: payload as the AMQP body, everything else in headers.
//!
//! This module is the only writer and reader of that layout, in both directions: a copy for an adapter
//! ([`AdapterCopy::to_envelope`] / [`AdapterCopy::from_envelope`], used by ingress, retry and the delivery
//! worker) and a dead letter ([`dead`]: marked by the worker, read into the parking lot, republished by a
//! replay). So the publishers and the consumers cannot drift apart. Header names are listed in ARCHITECTURE.md.
//!
//! The layout is versioned (`lt-layout`, [`LAYOUT_VERSION`]): a copy without the header is version 1 (a
//! header per fact), version 2 carries the facts in one JSON header (`meta.rs`, which says why), and a copy
//! from a newer layout is refused as malformed (dead-lettered with that reason) rather than misread. Ingress
//! writes new copies in the layout of [`crate::config::Config::copy_layout`] (`[bus] copy_layout`; unset: 2
//! on SQLite, 1 on PostgreSQL, where processes of a build that reads only layout 1 may share the queues); a
//! copy is re-written (retry, dead letter) in the layout it was read in, and parked rows keep their headers,
//! layout version included, so a replay republishes what was parked.

pub mod dead;
mod meta;
pub(crate) mod version;

use crate::broker::{Envelope, HeaderValue, Headers};
use crate::message::{ContentKind, Message, Meta};

pub const TYPE: &str = "lt-type";
pub const VERSION: &str = "lt-version";
pub const FROM: &str = "lt-from";
pub const TO: &str = "lt-to";
pub const CORRELATION_ID: &str = "lt-correlation-id";
pub const CREATED_AT: &str = "lt-created-at";
pub const ROUTE: &str = "lt-route";
pub const ADAPTER: &str = "lt-adapter";
pub const ATTEMPTS: &str = "lt-attempts";
pub const FIRST_ATTEMPT_AT: &str = "lt-first-attempt-at";
pub const LAST_ATTEMPT_AT: &str = "lt-last-attempt-at";
pub const LAST_ERROR: &str = "lt-last-error";
pub const LAST_STATUS: &str = "lt-last-status";
pub const BODY_EXCERPT: &str = "lt-body-excerpt";
pub const REASON: &str = "lt-reason";
pub const DEAD_LETTERED_AT: &str = "lt-dead-lettered-at";
pub const TRACEPARENT: &str = "traceparent";
/// On an ordered copy (`[[routes]] order_by`): its order key, and the partition queue it was published to.
pub const ORDER_KEY: &str = "lt-order-key";
pub const ORDER_PARTITION: &str = "lt-order-partition";
/// On an ordered dead letter: that its key was released (later messages of the key went on without it).
pub const ORDER_NOTE: &str = "lt-order-note";
/// The layout version of a copy (absent = 1).
pub const LAYOUT: &str = "lt-layout";
/// Layout 2: the copy's facts as one JSON object (see `meta.rs`).
pub const META: &str = "lt-meta";
pub use version::LAYOUT_VERSION;
/// On `<namespace>.rejected`: the error JSON of a refused AMQP ingress message.
pub const ERROR: &str = "x-lt-error";

/// One copy of a message for one adapter, with its delivery history.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterCopy {
    pub message: Message,
    pub route: String,
    pub adapter: String,
    /// Attempts already made (0 before the first).
    pub attempts: u32,
    pub first_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub body_excerpt: Option<String>,
    pub traceparent: String,
    /// Its order key and partition when its route keeps per-key order (`lt-order-key`,
    /// `lt-order-partition`); None for unordered copies.
    pub order: Option<(String, u16)>,
    /// The layout it is written in: 1 or 2 ([`LAYOUT_VERSION`] for a new copy, the layout it was read in for
    /// one read from the broker).
    pub layout: u8,
}

impl AdapterCopy {
    pub fn new(message: Message, route: &str, adapter: &str, traceparent: &str) -> Self {
        Self {
            message,
            route: route.into(),
            adapter: adapter.into(),
            attempts: 0,
            first_attempt_at: None,
            last_attempt_at: None,
            last_error: None,
            last_status: None,
            body_excerpt: None,
            traceparent: traceparent.into(),
            order: None,
            layout: LAYOUT_VERSION,
        }
    }

    /// The same copy with a fresh attempt budget and no delivery history (what a replay sends).
    pub fn without_history(self) -> Self {
        let AdapterCopy {
            message,
            route,
            adapter,
            traceparent,
            order,
            layout,
            ..
        } = self;
        Self {
            order,
            layout,
            ..Self::new(message, &route, &adapter, &traceparent)
        }
    }

    /// The same copy, to be written in `layout` (1 or 2; anything else is the newest).
    pub fn in_layout(mut self, layout: u8) -> Self {
        self.layout = if layout == 1 { 1 } else { LAYOUT_VERSION };
        self
    }

    /// The same copy, ordered by `key` in partition `partition`.
    pub fn ordered(mut self, key: String, partition: u16) -> Self {
        self.order = Some((key, partition));
        self
    }

    pub fn to_envelope(&self) -> Envelope {
        let mut h = Headers::new();
        if self.layout == 1 {
            self.write_v1(&mut h);
        } else {
            h.insert(LAYOUT.into(), HeaderValue::Int(i64::from(LAYOUT_VERSION)));
            meta::write(self, &mut h);
        }
        if let Some((key, partition)) = &self.order {
            h.insert(ORDER_KEY.into(), HeaderValue::Str(key.clone()));
            h.insert(
                ORDER_PARTITION.into(),
                HeaderValue::Int(i64::from(*partition)),
            );
        }
        Envelope {
            message_id: Some(self.message.meta.id.clone()),
            content_type: Some(self.message.content.mime().into()),
            user_id: None,
            headers: h,
            body: self.message.payload.clone(),
        }
    }

    /// Layout 1: a header per fact.
    fn write_v1(&self, h: &mut Headers) {
        let m = &self.message.meta;
        let mut s = |k: &str, v: &str| {
            h.insert(k.into(), HeaderValue::Str(v.into()));
        };
        s(TYPE, &m.kind);
        s(FROM, &m.from);
        s(TO, &m.to.join(","));
        s(CREATED_AT, &m.created_at);
        s(ROUTE, &self.route);
        s(ADAPTER, &self.adapter);
        s(TRACEPARENT, &self.traceparent);
        if let Some(c) = &m.correlation_id {
            s(CORRELATION_ID, c);
        }
        for (k, v) in [
            (FIRST_ATTEMPT_AT, &self.first_attempt_at),
            (LAST_ATTEMPT_AT, &self.last_attempt_at),
            (LAST_ERROR, &self.last_error),
            (BODY_EXCERPT, &self.body_excerpt),
        ] {
            if let Some(v) = v {
                s(k, v);
            }
        }
        h.insert(LAYOUT.into(), HeaderValue::Int(1));
        h.insert(VERSION.into(), HeaderValue::Int(m.version as i64));
        h.insert(ATTEMPTS.into(), HeaderValue::Int(self.attempts as i64));
        if let Some(st) = self.last_status {
            h.insert(LAST_STATUS.into(), HeaderValue::Int(st));
        }
    }

    /// Reads a copy back; `routing_key` is the adapter when the header is missing.
    pub fn from_envelope(e: &Envelope, routing_key: &str) -> Result<AdapterCopy, String> {
        let layout = e.header_int(LAYOUT).unwrap_or(1);
        if layout > i64::from(LAYOUT_VERSION) {
            return Err(format!(
                "written in broker layout {layout}; this build reads up to {LAYOUT_VERSION}"
            ));
        }
        let id = e
            .message_id
            .clone()
            .ok_or_else(|| "missing message_id property".to_string())?;
        let content = e
            .content_type
            .as_deref()
            .and_then(ContentKind::from_mime)
            .ok_or_else(|| "missing or unknown content_type".to_string())?;
        if layout == 2 {
            return meta::read(e, routing_key, id, content);
        }
        let need = |k: &str| {
            e.header_str(k)
                .map(str::to_owned)
                .ok_or_else(|| format!("missing header `{k}`"))
        };
        let opt = |k: &str| e.header_str(k).map(str::to_owned);
        let to = need(TO)?;
        Ok(AdapterCopy {
            message: Message {
                meta: Meta {
                    id,
                    kind: need(TYPE)?,
                    version: e
                        .header_int(VERSION)
                        .map_or(1, |v| saturating_u32(v).max(1)),
                    from: need(FROM)?,
                    to: to
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    correlation_id: opt(CORRELATION_ID),
                    created_at: need(CREATED_AT)?,
                },
                content,
                payload: e.body.clone(),
            },
            route: need(ROUTE)?,
            adapter: opt(ADAPTER).unwrap_or_else(|| routing_key.to_owned()),
            attempts: e.header_int(ATTEMPTS).map_or(0, saturating_u32),
            first_attempt_at: opt(FIRST_ATTEMPT_AT),
            last_attempt_at: opt(LAST_ATTEMPT_AT),
            last_error: opt(LAST_ERROR),
            last_status: e.header_int(LAST_STATUS),
            body_excerpt: opt(BODY_EXCERPT),
            traceparent: opt(TRACEPARENT).unwrap_or_else(crate::message::new_traceparent),
            order: order_of(e),
            layout: 1,
        })
    }
}

/// An ordered copy's key and partition (headers of their own in every layout).
fn order_of(e: &Envelope) -> Option<(String, u16)> {
    e.header_str(ORDER_KEY).map(|k| {
        let p = e.header_int(ORDER_PARTITION).unwrap_or(0);
        (k.to_owned(), u16::try_from(p.max(0)).unwrap_or(u16::MAX))
    })
}

/// A header integer as a `u32` count: negative is 0, too large is `u32::MAX` (never wrapped: a wrapped attempt
/// count would start a failing message's retries over, a wrapped version would read as 0).
fn saturating_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a one-receiver JSON message with `id`, `to` and `payload`.
    fn sample(to: &[&str], payload: &'static [u8]) -> AdapterCopy {
        AdapterCopy::new(
            Message {
                meta: Meta {
                    id: "id-1".into(),
                    kind: "dossier.submitted".into(),
                    version: 1,
                    from: "000.00.00.H40".into(),
                    to: to.iter().map(|t| t.to_string()).collect(),
                    correlation_id: None,
                    created_at: "2026-01-01T00:00:00Z".into(),
                },
                content: ContentKind::Json,
                payload: bytes::Bytes::from_static(payload),
            },
            "r",
            "a",
            "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        )
    }

    /// Found by `fuzz/fuzz_targets/amqp_headers.rs`: `lt-attempts` = 2^61 read back as 0 attempts.
    #[test]
    fn out_of_range_counters_saturate_instead_of_wrapping() {
        let mut e = sample(&["000.00.12.H40"], b"{}").in_layout(1).to_envelope();
        let read = |e: &Envelope| {
            let c = AdapterCopy::from_envelope(e, "a").unwrap();
            (c.message.meta.version, c.attempts)
        };
        for (header, want) in [
            (1i64 << 61, u32::MAX),
            ((1i64 << 32) + 5, u32::MAX),
            (i64::MAX, u32::MAX),
            (7, 7),
            (-3, 0),
        ] {
            e.headers.insert(ATTEMPTS.into(), HeaderValue::Int(header));
            e.headers.insert(VERSION.into(), HeaderValue::Int(header));
            assert_eq!(read(&e), (want.max(1), want), "header {header}");
        }
        e.headers
            .insert(VERSION.into(), HeaderValue::Str("4294967296".into()));
        assert_eq!(read(&e).0, u32::MAX);
        // Layout 2 saturates the same way.
        e.headers.insert(LAYOUT.into(), HeaderValue::Int(2));
        for (field, want) in [(1i64 << 61, u32::MAX), (-3, 0), (7, 7)] {
            let meta = format!(
                r#"{{"type":"k","version":{field},"from":"a","to":["b"],"created_at":"t","route":"r","attempts":{field}}}"#
            );
            e.headers.insert(META.into(), HeaderValue::Str(meta));
            assert_eq!(read(&e), (want.max(1), want), "field {field}");
        }
    }

    #[test]
    fn copies_round_trip_through_headers() {
        for layout in [1, 2] {
            round_trip(layout);
        }
    }

    fn round_trip(layout: u8) {
        let mut c = sample(&["000.00.12.H40", "000.00.13.H40"], b"{\"a\":1}");
        c.message.meta.version = 2;
        c.message.meta.correlation_id = Some("c".into());
        c.attempts = 3;
        c.last_status = Some(503);
        c.last_error = Some("HTTP 503 \"quoted\", đã nhận\n".into());
        let c = c.in_layout(layout);
        let back = AdapterCopy::from_envelope(&c.to_envelope(), "a").unwrap();
        assert_eq!(back, c);
        let c = c.ordered("C-0001".into(), 11);
        let back = AdapterCopy::from_envelope(&c.to_envelope(), "a").unwrap();
        assert_eq!(back, c);
        assert_eq!(back.layout, layout);
    }

    /// The point of layout 2: a copy's facts in one header (two more on ordered copies).
    #[test]
    fn a_layout_2_copy_carries_its_facts_in_one_header() {
        let c = sample(&["b"], b"{}");
        let names = |e: &Envelope| e.headers.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&c.to_envelope()), [LAYOUT, META]);
        let ordered = c.clone().ordered("K".into(), 1).to_envelope();
        assert_eq!(names(&ordered), [LAYOUT, META, ORDER_KEY, ORDER_PARTITION]);
        assert!(c.in_layout(1).to_envelope().headers.len() >= 9);
        // A copy that says layout 2 but whose facts do not parse is refused, naming the header.
        let mut env = sample(&[], b"").to_envelope();
        env.headers
            .insert(META.into(), HeaderValue::Str("{\"type\":1}".into()));
        let e = AdapterCopy::from_envelope(&env, "a").unwrap_err();
        assert!(e.starts_with("header `lt-meta`"), "{e}");
        env.headers.remove(META);
        let e = AdapterCopy::from_envelope(&env, "a").unwrap_err();
        assert_eq!(e, "missing header `lt-meta`");
    }

    #[test]
    fn a_copy_without_a_layout_is_version_1_and_a_newer_one_is_refused() {
        let c = sample(&["b"], b"{}").in_layout(1);
        let mut env = c.to_envelope();
        env.headers.remove(LAYOUT);
        assert_eq!(AdapterCopy::from_envelope(&env, "a").unwrap(), c);
        env.headers.insert(
            LAYOUT.into(),
            HeaderValue::Int(i64::from(LAYOUT_VERSION) + 1),
        );
        let e = AdapterCopy::from_envelope(&env, "a").unwrap_err();
        assert!(e.contains("layout 3"), "{e}");
    }
}
