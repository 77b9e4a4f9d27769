//! What travels through the broker: a message's metadata plus its payload bytes, untouched.
//!
//! The payload is kept as the exact bytes the sender posted (the JSON `payload` value, or a whole XML
//! document) so a receiver gets them byte-for-byte and the bus never re-encodes a 20 MB document. The metadata
//! rides in AMQP properties and headers (see [`crate::broker::headers`]).

use bytes::Bytes;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// How the payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContentKind {
    /// The payload is the JSON value of the envelope's `payload`.
    Json,
    /// The payload is a whole XML document (e.g. a document package with attachments).
    Xml,
}

impl ContentKind {
    pub fn mime(self) -> &'static str {
        match self {
            ContentKind::Json => "application/json",
            ContentKind::Xml => "application/xml",
        }
    }
    /// What a client's media type (`Content-Type` over HTTP, `content_type` over AMQP) says the body is: its
    /// essence, case-insensitive, with parameters such as `charset` ignored (`text/xml` is XML too).
    pub fn of_media_type(ct: &str) -> Option<Self> {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(ContentKind::Json)
        } else if essence.eq_ignore_ascii_case("application/xml")
            || essence.eq_ignore_ascii_case("text/xml")
        {
            Some(ContentKind::Xml)
        } else {
            None
        }
    }
    pub fn from_mime(s: &str) -> Option<Self> {
        match s {
            "application/json" => Some(ContentKind::Json),
            "application/xml" => Some(ContentKind::Xml),
            _ => None,
        }
    }
}

/// What the bus answers once every copy is confirmed by the broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub id: String,
    pub routes: Vec<String>,
}

/// Envelope fields every message has, whatever its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// Message id: the client's, or one the bus assigned (UUID v7). Stable across retries and replays.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// Sender agency code (authenticated).
    pub from: String,
    /// Addressed agency codes.
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// When the bus accepted the message, RFC 3339 UTC.
    pub created_at: String,
}

/// A message as it is published to and consumed from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub meta: Meta,
    pub content: ContentKind,
    pub payload: Bytes,
}

impl Message {
    /// The envelope JSON a receiver gets: the metadata, `attempt` when given, and the payload bytes verbatim.
    /// Only meaningful for JSON messages; XML messages are delivered as their package.
    pub fn envelope_json(&self, attempt: Option<u32>) -> Vec<u8> {
        #[derive(Serialize)]
        struct Head<'a> {
            #[serde(flatten)]
            meta: &'a Meta,
            #[serde(skip_serializing_if = "Option::is_none")]
            attempt: Option<u32>,
        }
        let mut out = serde_json::to_vec(&Head {
            meta: &self.meta,
            attempt,
        })
        .expect("metadata serializes");
        out.pop(); // the closing brace
        out.reserve(self.payload.len() + 16);
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(&self.payload);
        out.push(b'}');
        out
    }
}

/// Now as RFC 3339 UTC with milliseconds, e.g. `2026-11-27T20:48:36.123Z`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A fresh W3C `traceparent` (version 00, random trace and span ids, sampled).
///
/// The ids come from a per-thread generator (`fastrand`, seeded when a thread first asks), not from the OS for
/// each message: a trace id must be unique, not secret, and asking the kernel twice per message cost two
/// `getrandom` system calls on every message that arrived without a `traceparent` (BENCHMARKS.md, "a tenth
/// look"). Neither id is ever all zeros, which the W3C format forbids.
pub fn new_traceparent() -> String {
    let trace = fastrand::u128(1..);
    let span = fastrand::u64(1..);
    format!("00-{trace:032x}-{span:016x}-01")
}

/// The trace id of a `traceparent` (its 32 hex digits), as logs carry it; empty for a malformed one.
pub fn trace_id(traceparent: &str) -> &str {
    match traceparent.get(3..35) {
        Some(id) if is_traceparent(traceparent) => id,
        _ => "",
    }
}

/// True for a syntactically valid W3C `traceparent`.
pub fn is_traceparent(s: &str) -> bool {
    let parts: Vec<_> = s.split('-').collect();
    parts.len() == 4
        && parts[0].len() == 2
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_type_is_read_by_its_essence_alike_on_every_ingress() {
        for (ct, kind) in [
            ("application/json", Some(ContentKind::Json)),
            ("application/json; charset=utf-8", Some(ContentKind::Json)),
            ("Application/JSON ;charset=UTF-8", Some(ContentKind::Json)),
            ("application/xml", Some(ContentKind::Xml)),
            ("text/xml; charset=utf-8", Some(ContentKind::Xml)),
            ("text/plain", None),
            ("application/jsonx", None),
            ("", None),
        ] {
            assert_eq!(ContentKind::of_media_type(ct), kind, "{ct}");
        }
    }

    #[test]
    fn envelope_keeps_payload_bytes_verbatim() {
        let m = Message {
            meta: Meta {
                id: "a".into(),
                kind: "dossier.submitted".into(),
                version: 1,
                from: "000.00.00.H40".into(),
                to: vec!["000.00.12.H40".into()],
                correlation_id: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            content: ContentKind::Json,
            payload: Bytes::from_static(b"{ \"RecordNo\" :\"X\",  \"n\":1.50 }"),
        };
        let out = m.envelope_json(Some(2));
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with(",\"payload\":{ \"RecordNo\" :\"X\",  \"n\":1.50 }}"),
            "{s}"
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["type"], "dossier.submitted");
        assert!(v.get("correlation_id").is_none());
    }

    #[test]
    fn traceparents_are_well_formed() {
        assert!(is_traceparent(&new_traceparent()));
        assert!(!is_traceparent("00-xyz"));
        // Fresh ids each time, from every thread.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(new_traceparent()));
        }
        let other = std::thread::spawn(new_traceparent).join().unwrap();
        assert!(seen.insert(other));
    }
}
