//! The dead-letter parking lot: one row per (adapter, sender, message id), with the exact payload and the
//! headers needed to republish it; kept until an operator replays or purges it.
use super::{
    StateError, StateStore, now_ms, opt_time_field, rfc3339_from_millis, text, time_field,
};
use sqlx::Row;
use sqlx::any::AnyRow;

pub const DLQ_PARKED: &str = "parked";
pub const DLQ_REPLAYED: &str = "replayed";
pub const DLQ_PURGED: &str = "purged";
const DLQ_STATES: [&str; 3] = [DLQ_PARKED, DLQ_REPLAYED, DLQ_PURGED];

/// One parked (or formerly parked) message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DlqEntry {
    /// Message id.
    pub id: String,
    pub adapter: String,
    pub route: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: String,
    /// e.g. "permanent_error", "retries_exhausted", "delivery_limit".
    pub reason: String,
    /// e.g. "HTTP 400 from receiver".
    pub last_error: Option<String>,
    /// Peer status code.
    pub status: Option<i64>,
    pub body_excerpt: Option<String>,
    pub attempts: u32,
    /// RFC 3339. Stored with millisecond precision and returned in UTC (`…T10:00:00.123Z`).
    pub first_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub dead_lettered_at: String,
    /// "parked" | "replayed" | "purged".
    pub state: String,
    /// "application/json" | "application/xml".
    pub content_type: String,
    /// Object: the AMQP headers needed to republish (strings/ints).
    pub headers: serde_json::Value,
    /// The message payload bytes, exact. Empty in [`StateStore::dlq_list`] results.
    #[serde(skip)]
    pub payload: Vec<u8>,
}

impl DlqEntry {
    /// The entry as JSON with its payload: as text when it is UTF-8 (`payload`), else base64
    /// (`payload_base64`). What `GET /v1/dlq/{id}` and `lienthong dlq show` print.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            match std::str::from_utf8(&self.payload) {
                Ok(t) => m.insert("payload".into(), serde_json::Value::String(t.into())),
                Err(_) => {
                    use base64::Engine;
                    m.insert(
                        "payload_base64".into(),
                        serde_json::Value::String(
                            base64::engine::general_purpose::STANDARD.encode(&self.payload),
                        ),
                    )
                }
            };
        }
        v
    }
}

fn check_dlq_state(state: &str) -> Result<(), StateError> {
    if DLQ_STATES.contains(&state) {
        Ok(())
    } else {
        Err(StateError::InvalidDlqState(state.to_string()))
    }
}

const DLQ_COLUMNS: &str = "adapter, message_id, route, kind, sender, reason, last_error, peer_status, \
     body_excerpt, attempts, first_attempt_ms, last_attempt_ms, dead_lettered_ms, state, content_type, headers";

fn dlq_from_row(row: &AnyRow, with_payload: bool) -> Result<DlqEntry, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        table: "lt_dlq",
        detail,
    };
    let attempts: i64 = row.try_get("attempts")?;
    let headers: String = row.try_get("headers")?;
    let first: Option<i64> = row.try_get("first_attempt_ms")?;
    let last: Option<i64> = row.try_get("last_attempt_ms")?;
    Ok(DlqEntry {
        id: row.try_get("message_id")?,
        adapter: row.try_get("adapter")?,
        route: row.try_get("route")?,
        kind: row.try_get("kind")?,
        from: row.try_get("sender")?,
        reason: row.try_get("reason")?,
        last_error: row.try_get("last_error")?,
        status: row.try_get("peer_status")?,
        body_excerpt: row.try_get("body_excerpt")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("attempts {attempts}")))?,
        first_attempt_at: first.map(rfc3339_from_millis),
        last_attempt_at: last.map(rfc3339_from_millis),
        dead_lettered_at: rfc3339_from_millis(row.try_get("dead_lettered_ms")?),
        state: row.try_get("state")?,
        content_type: row.try_get("content_type")?,
        headers: serde_json::from_str(&headers).map_err(|e| corrupt(format!("headers: {e}")))?,
        payload: if with_payload {
            row.try_get("payload")?
        } else {
            Vec::new()
        },
    })
}

impl StateStore {
    /// Park a message: insert, or update the existing (adapter, sender, id) row with everything in `entry`.
    /// The row's state always becomes "parked" (`entry.state` is not consulted), so a replayed message
    /// that fails again is parked again with its new reason, attempts and times.
    pub async fn park(&self, entry: &DlqEntry) -> Result<(), StateError> {
        let first = opt_time_field("first_attempt_at", entry.first_attempt_at.as_deref())?;
        let last = opt_time_field("last_attempt_at", entry.last_attempt_at.as_deref())?;
        let dead = time_field("dead_lettered_at", &entry.dead_lettered_at)?;
        let headers =
            serde_json::to_string(&entry.headers).map_err(|source| StateError::Encode {
                what: "DLQ headers",
                source,
            })?;
        sqlx::query(
            "INSERT INTO lt_dlq (adapter, message_id, route, kind, sender, reason, last_error, peer_status,
                 body_excerpt, attempts, first_attempt_ms, last_attempt_ms, dead_lettered_ms, state,
                 content_type, headers, payload, updated_ms, ns)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'parked', $14, $15, $16, $17, $18)
             ON CONFLICT (ns, adapter, sender, message_id) DO UPDATE SET
                 route = excluded.route, kind = excluded.kind,
                 reason = excluded.reason, last_error = excluded.last_error,
                 peer_status = excluded.peer_status, body_excerpt = excluded.body_excerpt,
                 attempts = excluded.attempts, first_attempt_ms = excluded.first_attempt_ms,
                 last_attempt_ms = excluded.last_attempt_ms, dead_lettered_ms = excluded.dead_lettered_ms,
                 state = 'parked', content_type = excluded.content_type, headers = excluded.headers,
                 payload = excluded.payload, updated_ms = excluded.updated_ms",
        )
        .bind(&entry.adapter)
        .bind(&entry.id)
        .bind(text(&entry.route))
        .bind(text(&entry.kind))
        .bind(&entry.from)
        .bind(text(&entry.reason))
        .bind(entry.last_error.as_deref().map(text))
        .bind(entry.status)
        .bind(entry.body_excerpt.as_deref().map(text))
        .bind(i64::from(entry.attempts))
        .bind(first)
        .bind(last)
        .bind(dead)
        .bind(&entry.content_type)
        .bind(headers)
        .bind(entry.payload.as_slice())
        .bind(now_ms())
        .bind(&*self.ns)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Parked entries (optionally of one adapter), oldest `dead_lettered_at` first.
    ///
    /// `payload` is left **empty** in these results to keep listing cheap; use [`StateStore::dlq_get`]
    /// for the bytes.
    pub async fn dlq_list(&self, adapter: Option<&str>) -> Result<Vec<DlqEntry>, StateError> {
        let sql = format!(
            "SELECT {DLQ_COLUMNS} FROM lt_dlq
             WHERE ns = $1 AND state = 'parked' AND ($2 IS NULL OR adapter = $2)
             ORDER BY dead_lettered_ms, adapter, sender, message_id"
        );
        self.dlq_query(&sql, None, adapter, None, false).await
    }

    /// Parked entries for message `id` (one per adapter and sender; optionally only `adapter`'s, only
    /// `sender`'s), with payload. Ids are chosen by agencies, so the same id may name messages of several
    /// senders: give `sender` to mean one of them.
    pub async fn dlq_get(
        &self,
        id: &str,
        adapter: Option<&str>,
        sender: Option<&str>,
    ) -> Result<Vec<DlqEntry>, StateError> {
        let sql = format!(
            "SELECT {DLQ_COLUMNS}, payload FROM lt_dlq
             WHERE ns = $1 AND state = 'parked' AND ($2 IS NULL OR adapter = $2)
                 AND ($3 IS NULL OR sender = $3) AND message_id = $4
             ORDER BY adapter, sender"
        );
        self.dlq_query(&sql, Some(id), adapter, Some(sender), true)
            .await
    }

    async fn dlq_query(
        &self,
        sql: &str,
        id: Option<&str>,
        adapter: Option<&str>,
        sender: Option<Option<&str>>,
        with_payload: bool,
    ) -> Result<Vec<DlqEntry>, StateError> {
        let mut query = sqlx::query(sql).bind(&*self.ns).bind(adapter);
        if let Some(sender) = sender {
            query = query.bind(sender);
        }
        if let Some(id) = id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| dlq_from_row(row, with_payload))
            .collect()
    }

    /// Compare-and-set the state of one entry (e.g. parked→replayed, parked→purged). Returns whether
    /// this call changed it: of two operators replaying at once exactly one gets `true`.
    pub async fn dlq_set_state(
        &self,
        adapter: &str,
        sender: &str,
        id: &str,
        from_state: &str,
        to_state: &str,
    ) -> Result<bool, StateError> {
        check_dlq_state(from_state)?;
        check_dlq_state(to_state)?;
        let done = sqlx::query(
            "UPDATE lt_dlq SET state = $1, updated_ms = $2
             WHERE ns = $6 AND adapter = $3 AND sender = $7 AND message_id = $4 AND state = $5",
        )
        .bind(to_state)
        .bind(now_ms())
        .bind(adapter)
        .bind(id)
        .bind(from_state)
        .bind(&*self.ns)
        .bind(sender)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
