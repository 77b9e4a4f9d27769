//! Appending to the evidence log inside the write lane's transaction: the tables (a table set of their own,
//! `evidence_schema_version`), the signing setup, and the append itself.
//!
//! One chain per namespace, whichever process writes: an append first takes the lock of the namespace's tip
//! row (`UPDATE lt_evidence_tip SET seq = seq`: a row lock on PostgreSQL, the write lock on SQLite), so the
//! group commits of several bus processes sharing one PostgreSQL append one after another. The append is the
//! last thing a batch does before it commits, so the tip is held only for the few statements it takes.
//!
//! Apart from the reads (`mod.rs`) so the group commit (`state/batch/`) can call it without depending on the
//! store's evidence API, which itself sends to the group commit.

use crate::evidence::chain;
use crate::evidence::{Event, Signer};
use crate::state::sql::{Marks, values};
use crate::state::{Backend, StateError, TableSet, rfc3339_from_millis, text};
use sqlx::{AnyConnection, Row};
use std::sync::Arc;

/// The evidence tables.
pub(crate) const EVIDENCE: TableSet = TableSet {
    name: "evidence_schema_version",
    version: 1,
    create: ddl,
    upgrade: |_, _, _| Vec::new(),
};

fn ddl(backend: Backend) -> Vec<String> {
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    vec![
        // One record per event, chained by `prev` → `hash` (see evidence/chain.rs).
        format!(
            "CREATE TABLE IF NOT EXISTS lt_evidence (
            ns TEXT NOT NULL,
            seq BIGINT NOT NULL,
            at_ms BIGINT NOT NULL,
            kind TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            content TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL,
            payload {blob},
            PRIMARY KEY (ns, seq)
        )"
        ),
        "CREATE INDEX IF NOT EXISTS lt_evidence_message ON lt_evidence (ns, sender, message_id)"
            .into(),
        "CREATE INDEX IF NOT EXISTS lt_evidence_id ON lt_evidence (ns, message_id)".into(),
        // The signed heads: one per group commit, at its last record.
        "CREATE TABLE IF NOT EXISTS lt_evidence_head (
            ns TEXT NOT NULL,
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            signature TEXT NOT NULL,
            PRIMARY KEY (ns, seq)
        )"
        .into(),
        // The last record of each namespace's chain; its row lock serialises appends.
        "CREATE TABLE IF NOT EXISTS lt_evidence_tip (
            ns TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL
        )"
        .into(),
    ]
}

/// Most records in one INSERT (10 columns each).
const ROWS: usize = 100;

/// Appends `events` (each with its time) to namespace `ns`'s chain inside the caller's transaction, and
/// signs the new tip.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    marks: Marks,
    ns: &str,
    signer: &Signer,
    events: &[(Event, i64)],
) -> Result<(), StateError> {
    let m = |n| marks.at(n);
    sqlx::query(&format!(
        "INSERT INTO lt_evidence_tip (ns, seq, hash) VALUES ({}, 0, {}) ON CONFLICT (ns) DO NOTHING",
        m(1),
        m(2)
    ))
    .bind(ns)
    .bind(chain::GENESIS)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE lt_evidence_tip SET seq = seq WHERE ns = {}",
        m(1)
    ))
    .bind(ns)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT seq, hash FROM lt_evidence_tip WHERE ns = {}",
        m(1)
    ))
    .bind(ns)
    .fetch_one(&mut *conn)
    .await?;
    let mut seq: i64 = row.try_get("seq")?;
    let mut prev: String = row.try_get("hash")?;
    let mut rows = Vec::with_capacity(events.len());
    for (event, at) in events {
        seq += 1;
        let content = chain::content(ns, seq, &rfc3339_from_millis(*at), event);
        let hash = chain::record_hash(&prev, &content);
        rows.push((seq, *at, event, content, prev, hash.clone()));
        prev = hash;
    }
    for chunk in rows.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO lt_evidence (ns, seq, at_ms, kind, sender, message_id, content, prev, hash, payload)
             VALUES {}",
            values(marks, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for (seq, at, event, content, prev, hash) in chunk {
            q = q
                .bind(ns)
                .bind(*seq)
                .bind(*at)
                .bind(event.kind.as_str())
                .bind(text(&event.sender))
                .bind(text(&event.id))
                .bind(content.as_str())
                .bind(prev.as_str())
                .bind(hash.as_str())
                .bind(event.payload.as_ref().map(|p| p.to_vec()));
        }
        q.execute(&mut *conn).await?;
    }
    let at = events.last().map_or(0, |(_, at)| *at);
    sqlx::query(&format!(
        "UPDATE lt_evidence_tip SET seq = {}, hash = {} WHERE ns = {}",
        m(1),
        m(2),
        m(3)
    ))
    .bind(seq)
    .bind(prev.as_str())
    .bind(ns)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO lt_evidence_head (ns, seq, hash, at_ms, signature) VALUES ({}, {}, {}, {}, {})",
        m(1),
        m(2),
        m(3),
        m(4),
        m(5)
    ))
    .bind(ns)
    .bind(seq)
    .bind(prev.as_str())
    .bind(at)
    .bind(signer.sign_head(ns, seq, &prev, &rfc3339_from_millis(at)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the bus keeps evidence with: the key, and whether accepted bodies are kept too.
#[derive(Debug)]
pub struct EvidenceSetup {
    pub signer: Signer,
    pub store_payloads: bool,
}

impl EvidenceSetup {
    /// `[evidence]` made ready: the key loaded. None without `[evidence]`; a problem at
    /// `evidence.signing_key` when the key cannot be read (what `check` reports, and why `run` refuses to start).
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<Option<Arc<EvidenceSetup>>, crate::config::Problem> {
        let Some(e) = &config.evidence else {
            return Ok(None);
        };
        let signer = Signer::load(&config.resolve(&e.signing_key))
            .map_err(|m| crate::config::Problem::new("evidence.signing_key", m))?;
        Ok(Some(Arc::new(EvidenceSetup {
            signer,
            store_payloads: e.store_payloads,
        })))
    }
}
