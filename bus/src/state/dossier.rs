//! Dossier tracking: where a citizen's dossier is, and whether it is on time.
//!
//! Every accepted `dossier.*` message updates one row per dossier code (`MaHoSo`) with the latest facts the
//! portal cares about (status 1–10, appointment date `NgayHenTra`, finish date) and appends an event, so an
//! operator can answer "where is this dossier, and is it on time?" from `GET /v1/dossiers/{code}` without
//! asking every department. Dates stay in the portal's `yyyyMMddHHmmss` (Vietnam time) as sent.

use super::{StateError, StateStore, now_ms, rfc3339_from_millis};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What one message says about a dossier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DossierFacts {
    pub code: String,
    pub sender: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message_id: String,
    pub status: Option<i64>,
    pub local_status: Option<String>,
    pub received: Option<String>,
    pub due: Option<String>,
    pub finished: Option<String>,
    pub note: Option<String>,
}

/// One message about a dossier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierEvent {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sender: String,
    pub status: Option<i64>,
    pub note: Option<String>,
    pub at: String,
}

/// The latest known state of a dossier and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierView {
    pub code: String,
    pub sender: String,
    pub status: Option<i64>,
    pub local_status: Option<String>,
    pub received: Option<String>,
    pub due: Option<String>,
    pub finished: Option<String>,
    pub last_type: String,
    pub last_message_id: String,
    pub updated_at: String,
    pub events: Vec<DossierEvent>,
}

impl StateStore {
    /// Records what an accepted message says about a dossier (later facts win; absent ones keep the old).
    pub async fn dossier_record(&self, f: &DossierFacts) -> Result<(), StateError> {
        self.lanes
            .write(|reply| super::batch::Write::Dossier {
                facts: f.clone(),
                at: now_ms(),
                reply,
            })
            .await
    }

    /// The dossier `code`, with its events oldest first.
    pub async fn dossier_get(&self, code: &str) -> Result<Option<DossierView>, StateError> {
        let code = super::batch::text(code);
        let code = code.as_str();
        let Some(r) = sqlx::query(
            "SELECT code, sender, status, local_status, received, due, finished, last_type, last_message_id,
                    updated_ms FROM lt_dossier WHERE ns = $1 AND code = $2",
        )
        .bind(&*self.ns)
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT message_id, kind, sender, status, note, at_ms FROM lt_dossier_event
             WHERE ns = $1 AND code = $2 ORDER BY at_ms, sender, message_id",
        )
        .bind(&*self.ns)
        .bind(code)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|e| {
            Ok(DossierEvent {
                message_id: e.try_get("message_id")?,
                kind: e.try_get("kind")?,
                sender: e.try_get("sender")?,
                status: e.try_get("status")?,
                note: e.try_get("note")?,
                at: rfc3339_from_millis(e.try_get("at_ms")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(DossierView {
            code: r.try_get("code")?,
            sender: r.try_get("sender")?,
            status: r.try_get("status")?,
            local_status: r.try_get("local_status")?,
            received: r.try_get("received")?,
            due: r.try_get("due")?,
            finished: r.try_get("finished")?,
            last_type: r.try_get("last_type")?,
            last_message_id: r.try_get("last_message_id")?,
            updated_at: rfc3339_from_millis(r.try_get("updated_ms")?),
            events,
        }))
    }

    /// Adapters that have delivered message `id` of `sender`, with when.
    pub async fn deliveries_of(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Vec<(String, String)>, StateError> {
        Ok(sqlx::query(
            "SELECT adapter, delivered_ms FROM lt_delivered
             WHERE ns = $1 AND sender = $2 AND message_id = $3 ORDER BY adapter",
        )
        .bind(&*self.ns)
        .bind(sender)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                r.try_get("adapter")?,
                rfc3339_from_millis(r.try_get("delivered_ms")?),
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}
