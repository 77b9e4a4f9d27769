//! The dead-letter half of the broker layout: how the worker marks a copy it gives up on, how the recorder
//! reads a dead letter into a parking-lot row, and how a replay lays that row out again.
//!
//! A dead letter comes from the worker (a copy with `lt-reason` and `lt-dead-lettered-at`) or from RabbitMQ
//! itself when a copy hit the queue's delivery limit (`x-death-last-reason` = `delivery_limit`,
//! `x-delivery-count`); a malformed one (no readable copy) is still parked, with what could be read.

use super::*;
use crate::state::{DLQ_PARKED, DlqEntry};

/// Headers kept with a parked message to republish it: the message's own, not its delivery history.
const KEPT: [&str; 13] = [
    LAYOUT,
    TYPE,
    VERSION,
    FROM,
    TO,
    CORRELATION_ID,
    CREATED_AT,
    ROUTE,
    ADAPTER,
    TRACEPARENT,
    ORDER_KEY,
    ORDER_PARTITION,
    ORDER_NOTE,
];

impl AdapterCopy {
    /// The copy as a dead letter: its layout plus why (`permanent_error`, `retries_exhausted`) and when.
    pub fn to_dead_letter(&self, reason: &str, at: &str) -> Envelope {
        let mut env = self.to_envelope();
        env.headers
            .insert(REASON.into(), HeaderValue::Str(reason.into()));
        env.headers
            .insert(DEAD_LETTERED_AT.into(), HeaderValue::Str(at.into()));
        if let Some((key, _)) = &self.order {
            env.headers.insert(
                ORDER_NOTE.into(),
                HeaderValue::Str(format!(
                    "order key `{key}` released: later messages with this key were delivered without \
                     waiting for this one; a replay delivers it after them"
                )),
            );
        }
        env
    }
}

/// Reads a dead letter of `adapter` into a parking-lot row (state `parked`). Never fails: what cannot be
/// read is said in `last_error`, so nothing is dropped.
pub fn parked(env: &Envelope, adapter: &str, now: &str) -> DlqEntry {
    // A blank `lt-reason` must not hide RabbitMQ's own `x-death` reason from the operator.
    let given = |k: &str| env.header_str(k).filter(|r| !r.trim().is_empty());
    let reason = given(REASON)
        .or_else(|| given("x-death-last-reason"))
        .unwrap_or("unknown")
        .to_owned();
    let copy = AdapterCopy::from_envelope(env, adapter);
    let (id, route, kind, from, attempts) = match &copy {
        Ok(c) => (
            c.message.meta.id.clone(),
            c.route.clone(),
            c.message.meta.kind.clone(),
            c.message.meta.from.clone(),
            c.attempts,
        ),
        Err(_) => (
            env.message_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            String::new(),
            "unknown".into(),
            String::new(),
            0,
        ),
    };
    let last_error = match (&copy, reason.as_str()) {
        (Err(e), _) => Some(format!("malformed message: {e}")),
        (Ok(c), "delivery_limit") => Some(format!(
            "its consumer failed {} times without settling it (crash or timeout){}",
            env.header_int("x-delivery-count").unwrap_or_default(),
            c.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )),
        (Ok(c), _) => c.last_error.clone(),
    };
    let kept = serde_json::Value::Object(
        env.headers
            .iter()
            .filter(|(k, _)| KEPT.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    );
    DlqEntry {
        id,
        adapter: adapter.to_owned(),
        route,
        kind,
        from,
        reason,
        last_error,
        status: env.header_int(LAST_STATUS),
        body_excerpt: env.header_str(BODY_EXCERPT).map(str::to_owned),
        attempts,
        first_attempt_at: env.header_str(FIRST_ATTEMPT_AT).map(str::to_owned),
        last_attempt_at: env.header_str(LAST_ATTEMPT_AT).map(str::to_owned),
        dead_lettered_at: env
            .header_str(DEAD_LETTERED_AT)
            .map(str::to_owned)
            .unwrap_or_else(|| now.to_owned()),
        state: DLQ_PARKED.into(),
        content_type: env
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into()),
        headers: kept,
        payload: env.body.to_vec(),
    }
}

/// A parked message laid out again for its adapter's work queue: its kept headers (layout included), a fresh
/// attempt budget, the same id and payload.
pub fn replay(e: &DlqEntry) -> Envelope {
    let mut headers = Headers::new();
    if let serde_json::Value::Object(m) = &e.headers {
        for (k, v) in m {
            if let Some(v) = HeaderValue::from_json(v) {
                headers.insert(k.clone(), v);
            }
        }
    }
    headers.insert(ATTEMPTS.into(), HeaderValue::Int(0));
    // The note is about the parked copy; the replayed one holds its key again.
    headers.remove(ORDER_NOTE);
    Envelope {
        message_id: Some(e.id.clone()),
        content_type: Some(e.content_type.clone()),
        user_id: None,
        headers,
        body: bytes::Bytes::from(e.payload.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy() -> AdapterCopy {
        let mut c = AdapterCopy::new(
            Message {
                meta: Meta {
                    id: "id-1".into(),
                    kind: "dossier.submitted".into(),
                    version: 1,
                    from: "000.00.00.H40".into(),
                    to: vec!["000.00.12.H40".into()],
                    correlation_id: None,
                    created_at: "2026-01-01T00:00:00Z".into(),
                },
                content: ContentKind::Json,
                payload: bytes::Bytes::from_static(b"{\"a\":1}"),
            },
            "r",
            "stp",
            "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        );
        c.attempts = 4;
        c.last_error = Some("HTTP 400".into());
        c
    }

    #[test]
    fn a_dead_letter_parks_and_replays_as_the_same_message_with_a_fresh_budget() {
        let c = copy();
        let dead = c.to_dead_letter("permanent_error", "2026-01-02T00:00:00.000Z");
        let entry = parked(&dead, "stp", "later");
        assert_eq!(
            (
                entry.id.as_str(),
                entry.from.as_str(),
                entry.reason.as_str()
            ),
            ("id-1", "000.00.00.H40", "permanent_error")
        );
        assert_eq!(entry.attempts, 4);
        assert_eq!(entry.dead_lettered_at, "2026-01-02T00:00:00.000Z");
        assert_eq!(entry.headers[LAYOUT], LAYOUT_VERSION);
        let again = AdapterCopy::from_envelope(&replay(&entry), "stp").unwrap();
        assert_eq!(again.message, c.message);
        assert_eq!(again.attempts, 0);
        assert_eq!(again.last_error, None);
    }

    #[test]
    fn an_ordered_dead_letter_says_it_released_its_key_and_replays_into_its_partition() {
        let c = copy().ordered("HS-1".into(), 3);
        let entry = parked(&c.to_dead_letter("retries_exhausted", "now"), "stp", "now");
        let note = entry.headers[ORDER_NOTE].as_str().unwrap();
        assert!(note.contains("`HS-1` released"), "{note}");
        let env = replay(&entry);
        assert_eq!(env.header_str(ORDER_NOTE), None);
        let again = AdapterCopy::from_envelope(&env, "stp").unwrap();
        assert_eq!(again.order, Some(("HS-1".into(), 3)));
        assert_eq!(
            copy().to_dead_letter("x", "now").header_str(ORDER_NOTE),
            None
        );
    }

    #[test]
    fn a_blank_reason_header_does_not_hide_the_real_reason() {
        let mut env = copy().to_envelope();
        env.headers
            .insert(REASON.into(), HeaderValue::Str(" ".into()));
        assert_eq!(parked(&env, "stp", "now").reason, "unknown");
        env.headers.insert(
            "x-death-last-reason".into(),
            HeaderValue::Str("delivery_limit".into()),
        );
        assert_eq!(parked(&env, "stp", "now").reason, "delivery_limit");
    }

    #[test]
    fn a_malformed_dead_letter_is_still_parked_with_why() {
        let env = Envelope {
            message_id: Some("m".into()),
            content_type: None,
            user_id: None,
            headers: Headers::new(),
            body: bytes::Bytes::from_static(b"x"),
        };
        let entry = parked(&env, "stp", "now");
        assert_eq!(entry.id, "m");
        assert!(entry.last_error.unwrap().starts_with("malformed message"));
        assert_eq!(entry.payload, b"x");
    }
}
