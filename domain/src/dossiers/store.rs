//! Dossier tracking in the state database: one row per dossier with its facts folded by [`super::rules`], and
//! one event per message about it (each counted once, however often it is resubmitted).
//!
//! Writes go through one task that takes everything waiting and writes it in one transaction (a lone message
//! is a batch of one), so tracking adds one commit per batch rather than per message; each caller is answered
//! after its rows are committed, so a dossier is visible as soon as its message is accepted. The fold needs
//! the dossier as it stands, so each dossier row is read under a lock (PostgreSQL `FOR UPDATE`; SQLite holds
//! its one write lock from the first statement), rows in code order so two bus processes never deadlock.

use super::row::{COLUMNS, dossier_from_row};
use super::rules::{self, Dossier, DueChange};
use lienthong_bus::message::now_millis;
use lienthong_bus::state::{Backend, StateStore, text};
use serde::{Deserialize, Serialize};
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
    /// `MaTTHC`.
    pub procedure_code: Option<String>,
    /// `TenTTHC`.
    pub procedure: Option<String>,
    /// `NgayTiepNhan`.
    pub received: Option<String>,
    /// The appointment date, `NgayHenTra` (only that field: a step's deadline is not the dossier's).
    pub due: Option<String>,
    /// `NgayKetThucXuLy`, else `NgayTra`.
    pub finished: Option<String>,
    /// This step's own deadline, `NgayKetThucTheoQuyDinh`.
    pub step_deadline: Option<String>,
    /// When this step happened: `ThoiDiemXuLy`, else the date that goes with the status reported
    /// (`NgayNopHoSo` for 1, `NgayTiepNhan` for 2, `NgayTuChoi` for 3, `NgayKetThucXuLy` for 9, `NgayTra`
    /// for 10).
    pub step_at: Option<String>,
    pub note: Option<String>,
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

    pub(super) fn state(&self) -> &StateStore {
        &self.state
    }
}

async fn write_lane(state: StateStore, mut rx: mpsc::Receiver<(DossierFacts, i64, Reply)>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut ops, MAX_BATCH).await > 0 {
        let mut replies = Vec::with_capacity(ops.len());
        // Per dossier, in arrival order; dossiers in code order.
        let mut dossiers: BTreeMap<String, Vec<(DossierFacts, i64)>> = BTreeMap::new();
        for (facts, at, reply) in ops.drain(..) {
            dossiers
                .entry(facts.code.clone())
                .or_default()
                .push((facts, at));
            replies.push(reply);
        }
        let result = write(&state, &dossiers).await.map_err(|e| e.to_string());
        for r in replies {
            let _ = r.send(result.clone());
        }
    }
}

/// One transaction: each dossier read under its lock, each new message folded in and kept as an event, the
/// dossier written back.
async fn write(
    state: &StateStore,
    dossiers: &BTreeMap<String, Vec<(DossierFacts, i64)>>,
) -> Result<(), sqlx::Error> {
    let ns = state.namespace();
    let lock = match state.dialect() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let mut tx = state.pool().begin().await?;
    for (code, facts) in dossiers {
        let Some((first, first_at)) = facts.first() else {
            continue;
        };
        let code = text(code);
        // A new dossier starts as the first message found it; an existing one is left as it is.
        let new = Dossier::new(first, *first_at);
        sqlx::query(
            "INSERT INTO lt_dossier (ns, code, receiving_agency, agency, received_key, events, first_seen_ms,
                                     sender, last_type, last_message_id, updated_ms)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10) ON CONFLICT (ns, code) DO NOTHING",
        )
        .bind(ns)
        .bind(&code)
        .bind(text(&new.receiving_agency))
        .bind(text(&new.agency))
        .bind(&new.received_key)
        .bind(new.first_seen_ms)
        .bind(text(&new.sender))
        .bind(text(&new.last_type))
        .bind(text(&new.last_message_id))
        .bind(new.updated_ms)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lt_dossier WHERE ns = $1 AND code = $2{lock}"
        ))
        .bind(ns)
        .bind(&code)
        .fetch_one(&mut *tx)
        .await?;
        let mut d = dossier_from_row(&row)?;
        for (f, at) in facts {
            let (sender, id) = (text(&f.sender), text(&f.message_id));
            let known = sqlx::query(
                "SELECT 1 AS one FROM lt_dossier_event WHERE ns = $1 AND code = $2 AND sender = $3
                 AND message_id = $4",
            )
            .bind(ns)
            .bind(&code)
            .bind(&sender)
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
            if known.is_some() {
                continue; // a resubmission: counted once, its facts already applied
            }
            let due = rules::apply(&mut d, f, *at);
            sqlx::query(
                "INSERT INTO lt_dossier_event (ns, code, sender, message_id, kind, status, note, at_ms, seq, due,
                                               due_applied, step_deadline, step_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(ns)
            .bind(&code)
            .bind(&sender)
            .bind(&id)
            .bind(text(&f.kind))
            .bind(f.status)
            .bind(f.note.as_deref().map(text))
            .bind(*at)
            .bind(d.events)
            .bind(f.due.as_deref())
            .bind(match due {
                DueChange::None => None,
                DueChange::Applied => Some(1i64),
                DueChange::Ignored => Some(0i64),
            })
            .bind(f.step_deadline.as_deref())
            .bind(
                f.step_at
                    .clone()
                    .unwrap_or_else(|| rules::vn14_from_millis(*at)),
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE lt_dossier SET receiving_agency = $3, handler = $4, agency = $5, status = $6,
                local_status = $7, procedure_code = $8, procedure_name = $9, received = $10, received_key = $11,
                due = $12, finished = $13, finished_status = $14, finished_due = $15, events = $16,
                sender = $17, last_type = $18, last_message_id = $19, updated_ms = $20
             WHERE ns = $1 AND code = $2",
        )
        .bind(ns)
        .bind(&code)
        .bind(text(&d.receiving_agency))
        .bind(d.handler.as_deref().map(text))
        .bind(text(&d.agency))
        .bind(d.status)
        .bind(d.local_status.as_deref().map(text))
        .bind(d.procedure_code.as_deref().map(text))
        .bind(d.procedure.as_deref().map(text))
        .bind(d.received.as_deref())
        .bind(&d.received_key)
        .bind(d.due.as_deref())
        .bind(d.finished.as_deref())
        .bind(d.finished_status)
        .bind(d.finished_due.as_deref())
        .bind(d.events)
        .bind(text(&d.sender))
        .bind(text(&d.last_type))
        .bind(text(&d.last_message_id))
        .bind(d.updated_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
