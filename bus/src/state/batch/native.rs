//! The lanes' own SQLite connections: the per-message rows written and read without sqlx.
//!
//! # Why this exists
//!
//! With the lanes' SQLite work answered at once (a temporary switch, never shipped), path 2 of the benchmark
//! ran at about 0.85× the relay; through sqlx it ran at about 0.56× (BENCHMARKS.md, "Issue 16, an eighth
//! look"). Little of that gap was SQLite's own work (about 3 % of the process's CPU in `perf`); most was the
//! way to it: every statement a command sent to sqlx's worker thread and an answer sent back, each bound
//! value converted twice (`Any`, then SQLite), statements found in sqlx's cache by comparing SQL texts of
//! hundreds of placeholders, and memory allocated on tokio's threads freed on the worker's.
//!
//! So on a SQLite file each lane has a thread of its own holding a plain connection to the same file: the
//! lane hands it a whole batch as one job and gets the answers back in one hop. Statements are one row each,
//! prepared once and kept prepared. Writes take the write lock at `BEGIN` (`IMMEDIATE`), so a batch waits in
//! SQLite's busy handler for another writer (the sqlx pool's: dead-letter rows, retention, a plugin's
//! tables) instead of failing half-way. The guarantees of the module above are unchanged: a caller is
//! answered after its row is committed.
//!
//! PostgreSQL, in-memory SQLite, and everything outside the lanes keep going through sqlx.

use super::Standing;
use crate::state::StateError;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One lane's SQLite connection, on a thread of its own. The thread ends when this is dropped.
pub(super) struct Native {
    jobs: mpsc::Sender<Job>,
}

impl Native {
    /// Opens `path` (which must exist: the schema is created through sqlx first) with the pragmas of every
    /// connection of the store (schema.rs), on a thread named `thread`.
    pub(super) fn open(path: &Path, thread: &str) -> Result<Native, String> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;",
        )
        .map_err(|e| e.to_string())?;
        conn.set_prepared_statement_cache_capacity(16);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Native { jobs })
    }

    /// Runs `f` on the connection's thread and answers what it returns.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| super::stopped())?;
        rx.await.map_err(|_| super::stopped())?
    }
}

fn db(e: rusqlite::Error) -> StateError {
    StateError::Batch(e.to_string())
}

/// The core's rows of one write batch (see write.rs): claims, idempotency records, delivered marks.
#[derive(Default)]
pub(super) struct Core {
    /// The first record of a key wins, as with ON CONFLICT DO NOTHING.
    pub ingress: BTreeMap<(String, String), (String, String, i64)>,
    /// Claims: the first digest of a key wins; each asker is answered from the row that stands.
    pub claims: BTreeMap<(String, String), (String, i64)>,
    pub delivered: BTreeMap<(String, String, String), i64>,
}

impl Core {
    pub fn is_empty(&self) -> bool {
        self.ingress.is_empty() && self.claims.is_empty() && self.delivered.is_empty()
    }
}

/// Writes `core` in one transaction, in the order and with the answers of the sqlx path (write.rs): claims
/// first, then records, then the claims that found a row already there are read back, then delivered marks.
pub(super) fn write_core(
    conn: &mut Connection,
    ns: &str,
    core: &Core,
) -> Result<Standing, StateError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let mut standing = Standing::new();
    {
        let mut unsure: Vec<&(String, String)> = Vec::new();
        let mut claim = tx
            .prepare_cached(
                "INSERT INTO lt_ingress (ns, sender, client_id, digest, accepted, created_ms)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (ns, sender, client_id) DO NOTHING",
            )
            .map_err(db)?;
        for (key, (digest, at)) in &core.claims {
            if claim
                .execute(params![ns, key.0, key.1, digest, at])
                .map_err(db)?
                == 1
            {
                standing.insert(key.clone(), (Some(digest.clone()), None));
            } else {
                unsure.push(key);
            }
        }
        let mut record = tx
            .prepare_cached(
                "INSERT INTO lt_ingress (ns, sender, client_id, digest, accepted, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (ns, sender, client_id) DO UPDATE
                 SET accepted = COALESCE(lt_ingress.accepted, excluded.accepted)",
            )
            .map_err(db)?;
        for ((sender, id), (digest, accepted, at)) in &core.ingress {
            record
                .execute(params![ns, sender, id, digest, accepted, at])
                .map_err(db)?;
        }
        let mut read = tx
            .prepare_cached(
                "SELECT digest, accepted FROM lt_ingress WHERE ns = ?1 AND sender = ?2 AND client_id = ?3",
            )
            .map_err(db)?;
        for key in unsure {
            let row = read
                .query_row(params![ns, key.0, key.1], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                    ))
                })
                .optional()
                .map_err(db)?;
            if let Some((digest, accepted)) = row {
                let accepted = accepted
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|e| StateError::Corrupt {
                        table: "lt_ingress",
                        detail: e.to_string(),
                    })?;
                standing.insert(key.clone(), (digest, accepted));
            }
        }
        let mut mark = tx
            .prepare_cached(
                "INSERT INTO lt_delivered (ns, adapter, sender, message_id, delivered_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (ns, adapter, sender, message_id) DO NOTHING",
            )
            .map_err(db)?;
        for ((adapter, sender, id), at) in &core.delivered {
            mark.execute(params![ns, adapter, sender, id, at])
                .map_err(db)?;
        }
    }
    tx.commit().map_err(db)?;
    Ok(standing)
}

/// The recorded answers (JSON) of `ids` of `sender`, for those that have one.
pub(super) fn answers(
    conn: &mut Connection,
    ns: &str,
    sender: &str,
    ids: &[String],
) -> Result<HashMap<String, String>, StateError> {
    let mut q = conn
        .prepare_cached(
            "SELECT accepted FROM lt_ingress
             WHERE ns = ?1 AND sender = ?2 AND client_id = ?3 AND accepted IS NOT NULL",
        )
        .map_err(db)?;
    let mut found = HashMap::new();
    for id in ids {
        if let Some(json) = q
            .query_row(params![ns, sender, id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db)?
        {
            found.insert(id.clone(), json);
        }
    }
    Ok(found)
}

/// Which of `ids` of `sender` `adapter` has delivered.
pub(super) fn delivered(
    conn: &mut Connection,
    ns: &str,
    adapter: &str,
    sender: &str,
    ids: &[String],
) -> Result<HashSet<String>, StateError> {
    let mut q = conn
        .prepare_cached(
            "SELECT 1 FROM lt_delivered WHERE ns = ?1 AND adapter = ?2 AND sender = ?3 AND message_id = ?4",
        )
        .map_err(db)?;
    let mut found = HashSet::new();
    for id in ids {
        if q.exists(params![ns, adapter, sender, id]).map_err(db)? {
            found.insert(id.clone());
        }
    }
    Ok(found)
}
