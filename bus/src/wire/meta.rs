//! Layout 2: a copy's facts in one JSON header, `lt-meta`, instead of a header each.
//!
//! # Why this exists
//!
//! Every AMQP header is a field-table entry that the client encodes on publish and decodes on delivery, each
//! with its own allocations, and that RabbitMQ parses on the way through. Measured on a relay between two
//! quorum queues (BENCHMARKS.md, "a fifth look"): a second hop carrying layout 1's nine headers ran at about
//! 0.85–0.91× the bare relay at 1 KB, the same facts as one JSON header of 260 bytes at 1.07× — so a copy's
//! facts travel as one header.
//!
//! What stays a header of its own: `lt-layout` (read first, so that a build that only knows layout 1 says
//! "written in broker layout 2" instead of "missing header"), and on ordered copies `lt-order-key` and
//! `lt-order-partition` (the ordered consumer chains by key, and a replay picks the partition, before the copy
//! is read). Dead-letter marks (`lt-reason`, `lt-dead-lettered-at`, `lt-order-note`) are added as headers in
//! both layouts: they are rare, and operators read them in the management UI.
//!
//! Fields of `lt-meta` (absent when empty): `type`, `version`, `from`, `to` (an array), `correlation_id`,
//! `created_at`, `route`, `adapter`, `traceparent`, `attempts`, `first_attempt_at`, `last_attempt_at`,
//! `last_error`, `last_status`, `body_excerpt`. Unknown fields are ignored, so a later build may add some.

use super::{AdapterCopy, META, saturating_u32};
use crate::broker::{Envelope, HeaderValue, Headers};
use crate::message::{ContentKind, Message, Meta};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Serialize, Deserialize)]
struct Facts<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    version: i64,
    #[serde(borrow)]
    from: Cow<'a, str>,
    #[serde(borrow)]
    to: Vec<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    route: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    adapter: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    traceparent: Option<Cow<'a, str>>,
    #[serde(default)]
    attempts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    first_attempt_at: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    last_attempt_at: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    last_error: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_status: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    body_excerpt: Option<Cow<'a, str>>,
}

fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

/// Writes `c`'s facts into `h` as one `lt-meta` header.
pub(super) fn write(c: &AdapterCopy, h: &mut Headers) {
    let m = &c.message.meta;
    let facts = Facts {
        kind: Cow::Borrowed(&m.kind),
        version: i64::from(m.version),
        from: Cow::Borrowed(&m.from),
        to: m.to.iter().map(|t| Cow::Borrowed(t.as_str())).collect(),
        correlation_id: borrowed(&m.correlation_id),
        created_at: Cow::Borrowed(&m.created_at),
        route: Cow::Borrowed(&c.route),
        adapter: Some(Cow::Borrowed(&c.adapter)),
        traceparent: Some(Cow::Borrowed(&c.traceparent)),
        attempts: i64::from(c.attempts),
        first_attempt_at: borrowed(&c.first_attempt_at),
        last_attempt_at: borrowed(&c.last_attempt_at),
        last_error: borrowed(&c.last_error),
        last_status: c.last_status,
        body_excerpt: borrowed(&c.body_excerpt),
    };
    // Strings and integers only: serializing cannot fail.
    let json = serde_json::to_string(&facts).unwrap_or_default();
    h.insert(META.into(), HeaderValue::Str(json));
}

/// Reads a layout-2 copy; `id` and `content` are its properties, already read.
pub(super) fn read(
    e: &Envelope,
    routing_key: &str,
    id: String,
    content: ContentKind,
) -> Result<AdapterCopy, String> {
    let json = e
        .header_str(META)
        .ok_or_else(|| format!("missing header `{META}`"))?;
    let f: Facts = serde_json::from_str(json).map_err(|err| format!("header `{META}`: {err}"))?;
    let own = |s: Option<Cow<str>>| s.map(Cow::into_owned);
    Ok(AdapterCopy {
        message: Message {
            meta: Meta {
                id,
                kind: f.kind.into_owned(),
                version: saturating_u32(f.version).max(1),
                from: f.from.into_owned(),
                to: f
                    .to
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .map(Cow::into_owned)
                    .collect(),
                correlation_id: own(f.correlation_id),
                created_at: f.created_at.into_owned(),
            },
            content,
            payload: e.body.clone(),
        },
        route: f.route.into_owned(),
        adapter: own(f.adapter).unwrap_or_else(|| routing_key.to_owned()),
        attempts: saturating_u32(f.attempts),
        first_attempt_at: own(f.first_attempt_at),
        last_attempt_at: own(f.last_attempt_at),
        last_error: own(f.last_error),
        last_status: f.last_status,
        body_excerpt: own(f.body_excerpt),
        traceparent: own(f.traceparent).unwrap_or_else(crate::message::new_traceparent),
        order: super::order_of(e),
        layout: 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Quotes, backslashes, control characters, commas and Vietnamese: what JSON must escape, and what
        // layout 1's comma-joined receivers could not carry.
        "[a-zA-Z0-9 .,:\"\\\\\n\t\u{0}ạđươỹ-]{0,24}"
    }

    fn copy() -> impl Strategy<Value = AdapterCopy> {
        (
            (
                text(),
                1u32..=u32::MAX,
                text(),
                proptest::collection::vec("[^\u{0}]{1,16}", 1..4),
            ),
            (proptest::option::of(text()), text(), text(), text()),
            (
                any::<u32>(),
                proptest::option::of(text()),
                proptest::option::of(any::<i64>()),
            ),
            proptest::option::of((text(), any::<u16>())),
        )
            .prop_map(
                |(
                    (kind, version, from, to),
                    (corr, route, adapter, tp),
                    (attempts, err, status),
                    order,
                )| {
                    let mut c = AdapterCopy::new(
                        Message {
                            meta: Meta {
                                id: "id".into(),
                                kind,
                                version,
                                from,
                                to,
                                correlation_id: corr,
                                created_at: "2026-01-01T00:00:00.000Z".into(),
                            },
                            content: ContentKind::Json,
                            payload: bytes::Bytes::from_static(b"{}"),
                        },
                        &route,
                        &adapter,
                        &tp,
                    );
                    c.attempts = attempts;
                    c.last_error = err;
                    c.last_status = status;
                    c.order = order;
                    c
                },
            )
    }

    proptest! {
        /// Whatever a copy holds comes back the same after layout 2 and an AMQP field-table encode and decode.
        #[test]
        fn layout_2_round_trips_any_copy_through_amqp_headers(c in copy()) {
            let mut env = c.to_envelope();
            env.headers = crate::fuzzing::amqp_round_trip(&env.headers);
            let back = AdapterCopy::from_envelope(&env, "rk").unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
