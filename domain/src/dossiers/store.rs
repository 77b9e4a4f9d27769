//! Dossier tracking in the state database: one row per dossier with the latest facts (later facts win,
//! absent ones keep the old), and one event per message about it.
//!
//! Writes go through one task that takes everything waiting and writes it in one transaction (a lone message
//! is a batch of one), so tracking adds one commit per batch rather than per message; each caller is answered
//! after its rows are committed, so a dossier is visible as soon as its message is accepted.

use lienthong_bus::message::now_millis;
use lienthong_bus::state::{StateStore, rfc3339_from_millis, text};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

/// Most facts written in one transaction.
const MAX_BATCH: usize = 256;

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

type Reply = oneshot::Sender<Result<(), String>>;

/// The tracking tables of one namespace, and the task that writes them.
#[derive(Clone)]
pub struct DossierStore {
    state: StateStore,
    writes: mpsc::Sender<(DossierFacts, i64, Reply)>,
}

impl DossierStore {
    /// Starts the writer task on the current runtime.
    pub fn start(state: StateStore) -> Self {
        let (writes, rx) = mpsc::channel(4096);
        tokio::spawn(write_lane(state.clone(), rx));
        Self { state, writes }
    }

    /// Records what an accepted message says about a dossier; answers once it is committed.
    pub async fn record(&self, facts: DossierFacts) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let stopped = || "the dossier tracking writer has stopped".to_owned();
        self.writes
            .send((facts, now_millis(), tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The dossier `code`, with its events oldest first.
    pub async fn get(&self, code: &str) -> Result<Option<DossierView>, sqlx::Error> {
        let code = text(code);
        let code = code.as_str();
        let Some(r) = sqlx::query(
            "SELECT code, sender, status, local_status, received, due, finished, last_type, last_message_id,
                    updated_ms FROM lt_dossier WHERE ns = $1 AND code = $2",
        )
        .bind(self.state.namespace())
        .bind(code)
        .fetch_optional(self.state.pool())
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT message_id, kind, sender, status, note, at_ms FROM lt_dossier_event
             WHERE ns = $1 AND code = $2 ORDER BY at_ms, sender, message_id",
        )
        .bind(self.state.namespace())
        .bind(code)
        .fetch_all(self.state.pool())
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
}

async fn write_lane(state: StateStore, mut rx: mpsc::Receiver<(DossierFacts, i64, Reply)>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut ops, MAX_BATCH).await > 0 {
        let mut replies = Vec::with_capacity(ops.len());
        // Facts fold in arrival order per dossier; events are kept once per (code, sender, id).
        let mut dossiers: BTreeMap<String, (DossierFacts, i64)> = BTreeMap::new();
        let mut events: BTreeMap<(String, String, String), (DossierFacts, i64)> = BTreeMap::new();
        for (facts, at, reply) in ops.drain(..) {
            let key = (
                facts.code.clone(),
                facts.sender.clone(),
                facts.message_id.clone(),
            );
            events.entry(key).or_insert_with(|| (facts.clone(), at));
            match dossiers.get_mut(&facts.code) {
                Some((known, known_at)) => {
                    merge(known, facts);
                    *known_at = at;
                }
                None => {
                    dossiers.insert(facts.code.clone(), (facts, at));
                }
            }
            replies.push(reply);
        }
        let result = write(&state, &dossiers, &events)
            .await
            .map_err(|e| e.to_string());
        for r in replies {
            let _ = r.send(result.clone());
        }
    }
}

/// Applies `later` over `known` the way the upsert does: present fields replace, absent ones keep.
fn merge(known: &mut DossierFacts, later: DossierFacts) {
    known.sender = later.sender;
    known.kind = later.kind;
    known.message_id = later.message_id;
    known.status = later.status.or(known.status);
    known.local_status = later.local_status.or(known.local_status.take());
    known.received = later.received.or(known.received.take());
    known.due = later.due.or(known.due.take());
    known.finished = later.finished.or(known.finished.take());
    known.note = later.note.or(known.note.take());
}

/// One transaction: each dossier's upsert, then each new event. Rows in key order, so two processes on one
/// PostgreSQL take row locks in the same order.
async fn write(
    state: &StateStore,
    dossiers: &BTreeMap<String, (DossierFacts, i64)>,
    events: &BTreeMap<(String, String, String), (DossierFacts, i64)>,
) -> Result<(), sqlx::Error> {
    let ns = state.namespace();
    let mut tx = state.pool().begin().await?;
    for (f, at) in dossiers.values() {
        sqlx::query(
            "INSERT INTO lt_dossier (ns, code, sender, status, local_status, received, due, finished, last_type,
                                     last_message_id, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (ns, code) DO UPDATE SET
                sender = excluded.sender,
                status = COALESCE(excluded.status, lt_dossier.status),
                local_status = COALESCE(excluded.local_status, lt_dossier.local_status),
                received = COALESCE(excluded.received, lt_dossier.received),
                due = COALESCE(excluded.due, lt_dossier.due),
                finished = COALESCE(excluded.finished, lt_dossier.finished),
                last_type = excluded.last_type,
                last_message_id = excluded.last_message_id,
                updated_ms = excluded.updated_ms",
        )
        .bind(ns)
        .bind(text(&f.code))
        .bind(text(&f.sender))
        .bind(f.status)
        .bind(f.local_status.as_deref().map(text))
        .bind(f.received.as_deref().map(text))
        .bind(f.due.as_deref().map(text))
        .bind(f.finished.as_deref().map(text))
        .bind(text(&f.kind))
        .bind(text(&f.message_id))
        .bind(*at)
        .execute(&mut *tx)
        .await?;
    }
    for (f, at) in events.values() {
        sqlx::query(
            "INSERT INTO lt_dossier_event (ns, code, sender, message_id, kind, status, note, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (ns, code, sender, message_id) DO NOTHING",
        )
        .bind(ns)
        .bind(text(&f.code))
        .bind(text(&f.sender))
        .bind(text(&f.message_id))
        .bind(text(&f.kind))
        .bind(f.status)
        .bind(f.note.as_deref().map(text))
        .bind(*at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_dossier_facts_win_and_absent_ones_keep() {
        let mut known = DossierFacts {
            code: "H1".into(),
            status: Some(1),
            due: Some("20261201000000".into()),
            note: Some("first".into()),
            message_id: "m1".into(),
            ..Default::default()
        };
        merge(
            &mut known,
            DossierFacts {
                code: "H1".into(),
                status: Some(4),
                message_id: "m2".into(),
                ..Default::default()
            },
        );
        assert_eq!(known.status, Some(4));
        assert_eq!(known.due.as_deref(), Some("20261201000000"));
        assert_eq!(known.note.as_deref(), Some("first"));
        assert_eq!(known.message_id, "m2");
    }
}
