//! The dead-letter half of the broker layout: how the worker marks a copy it gives up on, how the recorder
//! reads a dead letter into a parking-lot row, and how a replay lays that row out again.
//!
//! A dead letter comes from the worker (a copy with `lt-reason` and `lt-dead-lettered-at`) or from RabbitMQ
//! itself when a copy hit the queue's delivery limit (`x-death-last-reason` = `delivery_limit`,
//! `x-delivery-count`); a malformed one (no readable copy) is still parked, with what could be read.

use super::*;
use crate::state::{DLQ_PARKED, DlqEntry};

/// Headers kept with a parked message to republish it: the message's own, not its delivery history.
const KEPT: [&str; 14] = [
    LAYOUT,
    META,
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
    // The delivery history: from the copy (layout 2 keeps it in `lt-meta`), else what headers there are.
    let history = |from_copy: fn(&AdapterCopy) -> Option<String>, k: &str| match &copy {
        Ok(c) => from_copy(c),
        Err(_) => env.header_str(k).map(str::to_owned),
    };
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
        status: match &copy {
            Ok(c) => c.last_status,
            Err(_) => env.header_int(LAST_STATUS),
        },
        body_excerpt: history(|c| c.body_excerpt.clone(), BODY_EXCERPT),
        attempts,
        first_attempt_at: history(|c| c.first_attempt_at.clone(), FIRST_ATTEMPT_AT),
        last_attempt_at: history(|c| c.last_attempt_at.clone(), LAST_ATTEMPT_AT),
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

/// A parked message laid out again for its adapter's work queue, in the layout it was parked in: the same
/// message, id and payload with a fresh attempt budget and no delivery history. A parked row that is not a
/// readable copy is republished with its kept headers as they are (the worker then parks it again, saying
/// why).
pub fn replay(e: &DlqEntry) -> Envelope {
    let mut headers = Headers::new();
    if let serde_json::Value::Object(m) = &e.headers {
        for (k, v) in m {
            if let Some(v) = HeaderValue::from_json(v) {
                headers.insert(k.clone(), v);
            }
        }
    }
    // The note is about the parked copy; the replayed one holds its key again.
    headers.remove(ORDER_NOTE);
    let kept = Envelope {
        message_id: Some(e.id.clone()),
        content_type: Some(e.content_type.clone()),
        user_id: None,
        headers,
        body: bytes::Bytes::from(e.payload.clone()),
    };
    match AdapterCopy::from_envelope(&kept, &e.adapter) {
        Ok(copy) => copy.without_history().to_envelope(),
        Err(_) => {
            let mut env = kept;
            env.headers.insert(ATTEMPTS.into(), HeaderValue::Int(0));
            env
        }
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
        for layout in [1, 2] {
            let mut c = copy().in_layout(layout);
            c.last_status = Some(400);
            c.first_attempt_at = Some("2026-01-01T00:00:01.000Z".into());
            c.body_excerpt = Some("bad".into());
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
            assert_eq!(entry.attempts, 4, "layout {layout}");
            assert_eq!(entry.last_error.as_deref(), Some("HTTP 400"));
            assert_eq!(entry.status, Some(400));
            assert_eq!(entry.body_excerpt.as_deref(), Some("bad"));
            assert_eq!(
                entry.first_attempt_at.as_deref(),
                Some("2026-01-01T00:00:01.000Z")
            );
            assert_eq!(entry.dead_lettered_at, "2026-01-02T00:00:00.000Z");
            assert_eq!(entry.headers[LAYOUT], layout);
            let replayed = replay(&entry);
            assert_eq!(replayed.header_int(LAYOUT), Some(i64::from(layout)));
            let again = AdapterCopy::from_envelope(&replayed, "stp").unwrap();
            assert_eq!(again.message, c.message);
            assert_eq!(again.layout, layout);
            assert_eq!(
                (again.attempts, again.last_error, again.last_status),
                (0, None, None),
                "layout {layout}"
            );
            assert_eq!((again.first_attempt_at, again.body_excerpt), (None, None));
        }
    }

    #[test]
    fn an_ordered_dead_letter_says_it_released_its_key_and_replays_into_its_partition() {
        for layout in [1, 2] {
            let c = copy().in_layout(layout).ordered("HS-1".into(), 3);
            let entry = parked(&c.to_dead_letter("retries_exhausted", "now"), "stp", "now");
            let note = entry.headers[ORDER_NOTE].as_str().unwrap();
            assert!(note.contains("`HS-1` released"), "{note}");
            let env = replay(&entry);
            assert_eq!(env.header_str(ORDER_NOTE), None);
            // What dlq.rs and the ordered consumer read before the copy itself.
            assert_eq!(env.header_str(ORDER_KEY), Some("HS-1"));
            assert_eq!(env.header_int(ORDER_PARTITION), Some(3));
            let again = AdapterCopy::from_envelope(&env, "stp").unwrap();
            assert_eq!(again.order, Some(("HS-1".into(), 3)));
            assert_eq!(
                copy().to_dead_letter("x", "now").header_str(ORDER_NOTE),
                None
            );
        }
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
