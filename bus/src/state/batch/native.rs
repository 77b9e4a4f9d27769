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
//! lane hands it a whole batch as one job and gets the answers back in one hop. The core's statements are one
//! row each, prepared once and kept prepared; plugins' writers (dossier tracking, feedback) run in the same
//! transaction, each in its savepoint, through [`GroupConn`], as they do on sqlx. Writes take the write lock
//! at `BEGIN` (`BEGIN IMMEDIATE`), so a batch waits in SQLite's busy handler for another writer (the sqlx
//! pool's: dead-letter rows, retention) instead of failing half-way. The guarantees of the module above are
//! unchanged: one commit per batch, and a caller is answered after its row is committed.
//!
//! PostgreSQL, in-memory SQLite, batches holding evidence records (appended through sqlx, with the rows they
//! record) and everything outside the lanes keep going through sqlx.

use super::Standing;
use crate::state::group::{GroupConn, GroupError, GroupItem, GroupWriter, SqlRow, SqlValue};
use crate::state::{Backend, StateError};
use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, mpsc};
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
        // The core's few statements and a plugin writer's, one text per chunk size.
        conn.set_prepared_statement_cache_capacity(128);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    // A job that panics (a plugin's writer, say) fails the callers of its batch (their reply
                    // is dropped), not the lane: what it left open is rolled back and the thread goes on.
                    let run = std::panic::AssertUnwindSafe(|| job(&mut conn));
                    if std::panic::catch_unwind(run).is_err() && !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
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

/// A plugin writer's items of one batch.
pub(super) type Group = (Arc<dyn GroupWriter>, Vec<GroupItem>);

/// Writes a batch in one transaction: the core's rows, then each plugin group in a savepoint of its own, one
/// commit — the promises of the sqlx path (write.rs). Answers the core's result and one per group (a group
/// whose savepoint was rolled back failed alone; when the core's rows or the commit fail, everything failed).
pub(super) fn write_all(
    conn: &mut Connection,
    ns: &str,
    core: &Core,
    groups: Vec<Group>,
) -> super::Outcome {
    let n = groups.len();
    let failed = |e: StateError| super::all_failed(e, n);
    // Begun and ended by hand rather than with rusqlite's `Transaction`, which would borrow the connection
    // that the plugins' writers are lent mutably (a `&mut Connection` may be lent across an await point).
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return failed(db(e));
    }
    let standing = match core_rows(conn, ns, core) {
        Ok(s) => s,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return failed(e);
        }
    };
    let mut results = Vec::with_capacity(n);
    for (writer, items) in groups {
        results.push(write_group(conn, ns, writer.as_ref(), items));
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => (Ok(standing), results),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            failed(db(e))
        }
    }
}

/// One plugin group inside a savepoint of the batch's transaction.
fn write_group(
    conn: &mut Connection,
    ns: &str,
    writer: &dyn GroupWriter,
    items: Vec<GroupItem>,
) -> Result<(), StateError> {
    conn.execute_batch("SAVEPOINT lt_plugin").map_err(db)?;
    // The writer only awaits `InLane`, whose calls finish at once: nothing here waits on tokio.
    let written = futures::executor::block_on(writer.write(&mut InLane { conn }, ns, items));
    match written {
        Ok(()) => conn.execute_batch("RELEASE lt_plugin").map_err(db),
        Err(e) => {
            conn.execute_batch("ROLLBACK TO lt_plugin; RELEASE lt_plugin")
                .map_err(db)?;
            Err(StateError::Batch(e.0))
        }
    }
}

/// The core's rows, in the order and with the answers of the sqlx path (write.rs): claims first, then records,
/// then the claims that found a row already there are read back, then delivered marks.
fn core_rows(tx: &Connection, ns: &str, core: &Core) -> Result<Standing, StateError> {
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
                standing.insert(key.clone(), (Some(digest.clone()), None, true));
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
                let accepted = super::accepted_from(accepted.as_deref())?;
                standing.insert(key.clone(), (digest, accepted, false));
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

/// [`GroupConn`] on a lane's own connection, inside its transaction.
struct InLane<'a> {
    conn: &'a mut Connection,
}

fn value(v: SqlValue) -> Value {
    match v {
        SqlValue::Int(Some(i)) => Value::Integer(i),
        SqlValue::Text(Some(t)) => Value::Text(t),
        SqlValue::Int(None) | SqlValue::Text(None) => Value::Null,
    }
}

/// Binds `params` in order: the n-th to `$n` where the statement is written with numbered placeholders
/// (SQLite numbers `$n` by first appearance, so `SET a = $5 … WHERE ns = $1` must be bound by name), else to
/// the n-th `?`.
fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    sql: &str,
    params: Vec<SqlValue>,
) -> rusqlite::Result<()> {
    let numbered = sql.contains('$');
    for (i, p) in params.into_iter().enumerate() {
        let at = if numbered {
            let name = format!("${}", i + 1);
            match stmt.parameter_index(&name)? {
                Some(at) => at,
                None => return Err(rusqlite::Error::InvalidParameterName(name)),
            }
        } else {
            i + 1
        };
        stmt.raw_bind_parameter(at, value(p))?;
    }
    Ok(())
}

fn group_error(e: rusqlite::Error) -> GroupError {
    GroupError(e.to_string())
}

#[async_trait]
impl GroupConn for InLane<'_> {
    fn dialect(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, GroupError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(group_error)?;
        bind(&mut stmt, sql, params).map_err(group_error)?;
        let changed = stmt.raw_execute().map_err(group_error)?;
        Ok(changed as u64)
    }

    async fn fetch(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, GroupError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(group_error)?;
        let names: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
        bind(&mut stmt, sql, params).map_err(group_error)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(group_error)? {
            let mut values = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                values.push(match row.get_ref(i).map_err(group_error)? {
                    ValueRef::Null => SqlValue::Text(None),
                    ValueRef::Integer(v) => SqlValue::Int(Some(v)),
                    ValueRef::Text(t) => {
                        SqlValue::Text(Some(String::from_utf8_lossy(t).into_owned()))
                    }
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(GroupError(format!(
                            "column `{}` holds neither an integer nor a text",
                            names[i]
                        )));
                    }
                });
            }
            out.push(SqlRow::new(names.clone(), values));
        }
        Ok(out)
    }
}
