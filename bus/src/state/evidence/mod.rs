//! The evidence log's reads and its entrance: `record` (an event into the next group commit), the whole chain
//! for `audit verify`, one message's records for the admin API and `audit export`. The tables and the append
//! inside a group commit are `append.rs`.

pub(crate) mod append;

pub(crate) use append::EVIDENCE;
pub use append::EvidenceSetup;

use super::{StateError, StateStore, rfc3339_from_millis};
use crate::evidence::bundle::{Bundle, FORMAT, Proven};
use crate::evidence::chain::{self, Head, Stored, Verifier};
use crate::evidence::{Event, sha256_hex};
use futures::TryStreamExt;
use sqlx::Row;
use std::sync::Arc;

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
            "SELECT seq, prev, hash, content, kind, sender, message_id, at_ms, payload FROM lt_evidence
             WHERE ns = $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(&*self.ns)
        .bind(tip)
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let record = stored(&row)?;
            if let Some(what) = beside_the_chain(&row, &record.content)? {
                v.problem(record.seq, what);
            }
            v.feed(&record);
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

/// What is wrong with the columns stored beside a record's hashed content, which lookups and bundles go by:
/// a message's records are found by `sender` and `message_id`, so a row relabelled there would hide its
/// record from `GET /v1/evidence/{id}` and `audit export` while the chain still verifies; and a stored body
/// (`store_payloads`) must be the body whose SHA-256 the record names. `None` when they agree (or the content is
/// not JSON, which the chain check reports).
fn beside_the_chain(row: &sqlx::any::AnyRow, content: &str) -> Result<Option<String>, sqlx::Error> {
    let Ok(c) = serde_json::from_str::<serde_json::Value>(content) else {
        return Ok(None);
    };
    let said = |k: &str| c[k].as_str().map(super::text).unwrap_or_default();
    for (column, key) in [("kind", "kind"), ("sender", "from"), ("message_id", "id")] {
        let stored: String = row.try_get(column)?;
        if stored != said(key) {
            return Ok(Some(format!(
                "column mismatch: `{column}` is not the record's `{key}` (the row was edited beside its hashed content)"
            )));
        }
    }
    let at_ms: i64 = row.try_get("at_ms")?;
    if rfc3339_from_millis(at_ms) != said("at") {
        return Ok(Some(
            "column mismatch: `at_ms` is not the record's `at` (the row was edited beside its hashed content)"
                .into(),
        ));
    }
    let payload: Option<Vec<u8>> = row.try_get("payload")?;
    if let Some(body) = payload {
        match c["data"]["body_sha256"].as_str() {
            Some(named) if named == sha256_hex(&body) => {}
            Some(_) => {
                return Ok(Some(
                    "payload mismatch: the stored body is not the body whose SHA-256 the record names".into(),
                ));
            }
            None => {
                return Ok(Some(
                    "payload mismatch: a body is stored with a record that names none".into(),
                ));
            }
        }
    }
    Ok(None)
}

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        seq: row.try_get("seq")?,
        prev: row.try_get("prev")?,
        hash: row.try_get("hash")?,
        content: row.try_get("content")?,
    })
}
