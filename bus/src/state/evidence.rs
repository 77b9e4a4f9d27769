//! The evidence log's tables (`lt_evidence`, `lt_evidence_head`, `lt_evidence_tip`; a table set of their own,
//! `evidence_schema_version`), its append inside a group commit, and its reads: the whole chain for
//! `audit verify`, one message's records for the admin API and `audit export`.
//!
//! One chain per namespace, whichever process writes: an append first takes the lock of the namespace's tip
//! row (`UPDATE lt_evidence_tip SET seq = seq`: a row lock on PostgreSQL, the write lock on SQLite), so the
//! group commits of several bus processes sharing one PostgreSQL append one after another. The append is the
//! last thing a batch does before it commits, so the tip is held only for the few statements it takes.

use super::sql::{Marks, values};
use super::{Backend, StateError, StateStore, TableSet, rfc3339_from_millis, text};
use crate::evidence::bundle::{Bundle, FORMAT, Proven};
use crate::evidence::chain::{self, Head, Stored, Verifier};
use crate::evidence::{Event, Signer, sha256_hex};
use futures::TryStreamExt;
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
pub(super) async fn append(
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

/// One record as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvidenceRecord {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub from: String,
    pub id: String,
    /// The record's content (JSON, as hashed).
    pub content: serde_json::Value,
    pub prev: String,
    pub hash: String,
}

/// What the bus keeps evidence with: the key, and whether accepted bodies are kept too.
#[derive(Debug)]
pub struct EvidenceSetup {
    pub signer: Signer,
    pub store_payloads: bool,
}

impl StateStore {
    /// Keeps evidence from now on (the runtime calls this with `[evidence]`), signed by `signer`.
    pub fn with_evidence(mut self, setup: Arc<EvidenceSetup>) -> Self {
        self.evidence = Some(setup);
        self
    }

    /// Whether evidence is kept.
    pub fn evidence_on(&self) -> bool {
        self.evidence.is_some()
    }

    /// Whether accepted bodies go into the evidence log (`store_payloads`).
    pub fn evidence_keeps_payloads(&self) -> bool {
        self.evidence.as_ref().is_some_and(|e| e.store_payloads)
    }

    /// Appends `event` to the evidence log in the next group commit; answers once it is committed. Without
    /// `[evidence]`, does nothing.
    pub async fn record(&self, mut event: Event) -> Result<(), StateError> {
        let Some(setup) = &self.evidence else {
            return Ok(());
        };
        if !setup.store_payloads {
            event.payload = None;
        }
        let setup = setup.clone();
        let at = super::now_ms();
        self.lanes
            .write(|reply| super::batch::Write::Evidence {
                event,
                at,
                setup,
                reply,
            })
            .await
    }

    /// Checks the whole chain of this namespace with `key`: every link, every signed head. The tip is read
    /// first and the chain up to it, so a bus appending meanwhile does not make the check see half a batch.
    pub async fn evidence_verify(
        &self,
        key: ed25519_dalek::VerifyingKey,
    ) -> Result<Result<chain::Intact, chain::Broken>, StateError> {
        // Read before the tip: a head seen here was committed with a tip at least as far, so a head beyond
        // the tip read next means the tip was moved back (or removed).
        let highest_head: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM lt_evidence_head WHERE ns = $1")
                .bind(&*self.ns)
                .fetch_one(&self.pool)
                .await?
                .try_get("seq")?;
        let tip: i64 = sqlx::query("SELECT seq FROM lt_evidence_tip WHERE ns = $1")
            .bind(&*self.ns)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("seq"))
            .transpose()?
            .unwrap_or(0);
        let heads = self
            .evidence_heads(None)
            .await?
            .into_iter()
            .filter(|h| h.seq <= tip)
            .collect();
        let mut v = Verifier::new(&self.ns, key, heads);
        let mut rows = sqlx::query(
            "SELECT seq, prev, hash, content FROM lt_evidence WHERE ns = $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(&*self.ns)
        .bind(tip)
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            v.feed(&stored(&row)?);
        }
        drop(rows);
        let verdict = v.finish(tip);
        if verdict.is_ok() && highest_head > tip {
            return Ok(Err(chain::Broken {
                seq: tip + 1,
                what: format!(
                    "missing record (a signed head names record {highest_head}, the log's tip is record {tip})"
                ),
            }));
        }
        Ok(verdict)
    }

    /// The signed heads, in order; with `from`, only those at or after record `from`.
    async fn evidence_heads(&self, from: Option<i64>) -> Result<Vec<Head>, StateError> {
        let rows = sqlx::query(
            "SELECT seq, hash, at_ms, signature FROM lt_evidence_head
             WHERE ns = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(&*self.ns)
        .bind(from.unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Head {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    at: rfc3339_from_millis(r.try_get("at_ms")?),
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    /// The records of message `id`, of sender `from` when given, in order (each names its sender, so a
    /// caller can refuse an id several senders used).
    pub async fn evidence_of(
        &self,
        id: &str,
        from: Option<&str>,
    ) -> Result<Vec<EvidenceRecord>, StateError> {
        const COLUMNS: &str =
            "SELECT seq, at_ms, kind, sender, message_id, content, prev, hash FROM lt_evidence";
        let rows = match from {
            Some(from) => {
                sqlx::query(&format!(
                    "{COLUMNS} WHERE ns = $1 AND message_id = $2 AND sender = $3 ORDER BY seq"
                ))
                .bind(&*self.ns)
                .bind(id)
                .bind(from)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "{COLUMNS} WHERE ns = $1 AND message_id = $2 ORDER BY seq"
                ))
                .bind(&*self.ns)
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                let content: String = r.try_get("content")?;
                Ok(EvidenceRecord {
                    seq: r.try_get("seq")?,
                    at: rfc3339_from_millis(r.try_get("at_ms")?),
                    kind: r.try_get("kind")?,
                    from: r.try_get("sender")?,
                    id: r.try_get("message_id")?,
                    content: serde_json::from_str(&content)
                        .unwrap_or(serde_json::Value::String(content)),
                    prev: r.try_get("prev")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    /// The bundle of message `id` of sender `from`: its records, each with the digests up to its signed
    /// head, and `public_key` (PEM). None when the log holds no record of it.
    pub async fn evidence_bundle(
        &self,
        from: &str,
        id: &str,
        public_key: &str,
    ) -> Result<Option<Bundle>, StateError> {
        let rows = sqlx::query(
            "SELECT seq, prev, hash, content, payload FROM lt_evidence
             WHERE ns = $1 AND sender = $2 AND message_id = $3 ORDER BY seq",
        )
        .bind(&*self.ns)
        .bind(from)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let first = rows[0].try_get::<i64, _>("seq")?;
        let heads = self.evidence_heads(Some(first)).await?;
        let mut records = Vec::new();
        for row in &rows {
            let s = stored(row)?;
            let payload: Option<Vec<u8>> = row.try_get("payload")?;
            let Some(head) = heads.iter().find(|h| h.seq >= s.seq).cloned() else {
                return Err(StateError::Corrupt {
                    table: "lt_evidence_head",
                    detail: format!("no signed head covers record {}", s.seq),
                });
            };
            let following = sqlx::query(
                "SELECT content FROM lt_evidence WHERE ns = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
            )
            .bind(&*self.ns)
            .bind(s.seq)
            .bind(head.seq)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(sha256_hex(r.try_get::<String, _>("content")?.as_bytes())))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            records.push(Proven {
                seq: s.seq,
                prev: s.prev,
                hash: s.hash,
                content: s.content,
                payload: payload.map(|p| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(p)
                }),
                following,
                head,
            });
        }
        Ok(Some(Bundle {
            format: FORMAT.into(),
            namespace: self.ns.to_string(),
            from: from.into(),
            id: id.into(),
            public_key: public_key.into(),
            records,
        }))
    }
}

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        seq: row.try_get("seq")?,
        prev: row.try_get("prev")?,
        hash: row.try_get("hash")?,
        content: row.try_get("content")?,
    })
}
