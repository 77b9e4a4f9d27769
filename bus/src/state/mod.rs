//! Durable state: ingress idempotency, delivery de-duplication, the dead-letter parking lot, the audit
//! log of operator actions and the evidence log — one file per table family (`ingress.rs`, `delivered.rs`,
//! `dlq.rs`, `audit.rs`, `evidence.rs`).
//! A plugin keeps its own tables in the same database ([`TableSet`], [`StateStore::pool`]).
//!
//! # Why this exists
//!
//! The bus must never lose a message it has accepted, and must not multiply one either:
//!
//! * **Nothing accepted is lost.** A message that cannot be delivered is parked here ([`StateStore::park`])
//!   with its exact payload and the headers needed to republish it, *before* it is acknowledged on the
//!   broker. It stays until an operator replays or purges it; retention never touches parked rows.
//! * **Idempotency across restarts and processes.** An agency that retries a submission with the same
//!   client id gets the same 202 answer ([`StateStore::ingress_lookup`]), even after a restart or when a
//!   different bus process (sharing one PostgreSQL) handles the retry. An adapter that succeeded once for
//!   a message id does not deliver it again on a broker redelivery ([`StateStore::was_delivered`]).
//! * **Bounded retention.** Idempotency and delivery records are only useful for as long as duplicates can
//!   plausibly arrive; [`StateStore::prune`] deletes older ones so the store does not grow forever.
//!
//! # The window that remains
//!
//! Delivery and [`StateStore::mark_delivered`] are not atomic: a crash after the receiver accepted a
//! message but before the mark is committed causes one repeated delivery after restart. Receivers get the
//! message id as `Idempotency-Key` to absorb exactly that. Likewise an ingress retry that arrives after
//! `prune` removed its record is accepted again.
//!
//! # Backends
//!
//! One [`StateStore`] runs on SQLite (embedded default: `sqlite:///abs/path/lienthong-state.db?mode=rwc`
//! or `sqlite://relative.db`; WAL, `synchronous=NORMAL` (survives process crashes; see schema.rs), `busy_timeout`, the file is created when missing)
//! or on PostgreSQL (`postgres://…`, for several bus processes sharing one broker; a `search_path` given
//! with `options=-c search_path=…` is honoured). Both go through sqlx's `Any` driver with the same SQL, except
//! the per-message rows on a SQLite file, which the lanes write and read on connections of their own
//! (`batch/native.rs`: measured several times cheaper per message); times are stored as epoch milliseconds
//! and shown as RFC 3339. Tables are listed in `schema.rs`.

mod audit;
mod batch;
mod delivered;
mod dlq;
mod evidence;
mod group;
mod ingress;
mod schema;
mod url;

pub use audit::AuditEntry;
pub use dlq::{DLQ_PARKED, DLQ_PURGED, DLQ_REPLAYED, DlqEntry};
pub use evidence::{EvidenceRecord, EvidenceSetup};
pub use group::{GroupConn, GroupError, GroupItem, GroupWriter, SqlRow, SqlValue};
pub use schema::{Backend, Moved, TableSet, rename_copy};

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use crate::message::Accepted;
pub use batch::Claim;
pub use batch::sql;

use crate::config::redact_url;
use schema::InitError;
use url::{scrub, sqlite_create_if_missing};

/// How long `connect` waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong. No variant's `Display` or `Debug` contains a password from the URL: URLs are shown
/// redacted and connection errors are kept as scrubbed text rather than as a source chain.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("unsupported state database URL {url}: expected sqlite:… or postgres://…")]
    UnsupportedUrl { url: String },
    #[error("cannot connect to state database {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot prepare state database schema at {url}: {message}")]
    Schema { url: String, message: String },
    #[error(
        "state database {url} has schema version {found}; this build understands up to {supported}"
    )]
    IncompatibleSchema {
        url: String,
        found: i64,
        supported: i64,
    },
    #[error("state database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A database error shared by every operation of one group commit (see batch/).
    #[error("state database error: {0}")]
    Batch(String),
    #[error("invalid {field} {value:?}: expected an RFC 3339 time")]
    InvalidTime { field: &'static str, value: String },
    #[error("invalid dead-letter state {0:?}: expected parked, replayed or purged")]
    InvalidDlqState(String),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

/// The durable state store. Cheap to clone (a shared pool); `Send + Sync`.
#[derive(Clone)]
pub struct StateStore {
    pool: AnyPool,
    backend: Backend,
    /// The bus namespace every row read or written belongs to (`bus.namespace`).
    ns: std::sync::Arc<str>,
    /// Group commit for the per-message operations (see batch/).
    lanes: batch::Lanes,
    /// `[evidence]`: the key the evidence log is signed with; None = no evidence kept.
    evidence: Option<std::sync::Arc<EvidenceSetup>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-27T20:48:36.123Z`.
pub fn rfc3339_from_millis(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Epoch milliseconds of an RFC 3339 time (any offset; sub-millisecond digits are truncated).
pub fn millis_from_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

pub(crate) fn now_ms() -> i64 {
    crate::message::now_millis()
}

pub(crate) fn time_field(field: &'static str, value: &str) -> Result<i64, StateError> {
    millis_from_rfc3339(value).ok_or_else(|| StateError::InvalidTime {
        field,
        value: value.to_string(),
    })
}

pub(crate) fn opt_time_field(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<i64>, StateError> {
    value.map(|v| time_field(field, v)).transpose()
}

/// The database file a SQLite URL names, when it is a file on disk (not an in-memory database).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    // In memory: other connections would see another database. Read-only: the lanes' connections write.
    if url.contains(":memory:")
        || query
            .split('&')
            .any(|kv| kv == "mode=memory" || kv == "mode=ro")
    {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename().to_path_buf();
    path.is_file().then_some(path)
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl StateStore {
    /// Connect, create missing tables, and check the schema version.
    ///
    /// The first connection is opened directly (not through the pool, which would retry a refused
    /// connection until its timeout and then report only "timed out"), so an unreachable database fails
    /// within [`CONNECT_TIMEOUT`] with the real reason.
    ///
    /// Every row this store reads or writes is scoped by `namespace` (`bus.namespace`), so buses of several
    /// namespaces can share one database without seeing each other's rows.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StateError> {
        Self::connect_with(url, namespace, &[]).await
    }

    /// [`StateStore::connect`], also creating (or upgrading) a plugin's `tables` under the same lock.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        tables: &[TableSet],
    ) -> Result<Self, StateError> {
        install_drivers();
        let backend = Backend::from_url(url)?;
        let shown = redact_url(url);
        let effective = match backend {
            Backend::Sqlite => sqlite_create_if_missing(url),
            Backend::Postgres => url.to_string(),
        };
        let connect_error = |message: String| StateError::Connect {
            url: shown.clone(),
            message: scrub(&message, url),
        };
        let options =
            AnyConnectOptions::from_str(&effective).map_err(|e| connect_error(e.to_string()))?;

        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
            .await
            .map_err(|_| connect_error(format!("timed out after {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| connect_error(e.to_string()))?;
        let mut sets = vec![schema::CORE, evidence::EVIDENCE];
        sets.extend_from_slice(tables);
        let init = schema::init(&mut conn, backend, namespace, &sets).await;
        let _ = conn.close().await;
        match init {
            Ok(()) => {}
            Err(InitError::TooNew(found)) => {
                return Err(StateError::IncompatibleSchema {
                    url: shown,
                    found,
                    supported: schema::SCHEMA_VERSION,
                });
            }
            Err(InitError::Sql(e)) => {
                return Err(StateError::Schema {
                    url: shown.clone(),
                    message: scrub(&e.to_string(), url),
                });
            }
        }

        let pool_options = match backend {
            // A local file cannot drop a connection, so no ping before each use.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move { schema::sqlite_connection_pragmas(conn).await })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        tracing::info!(backend = backend.name(), url = %shown, "state store connected");
        let marks = match backend {
            Backend::Sqlite => batch::Marks::Anonymous,
            Backend::Postgres => batch::Marks::Numbered,
        };
        let ns: std::sync::Arc<str> = namespace.into();
        let file = match backend {
            Backend::Sqlite => sqlite_file(&effective),
            Backend::Postgres => None,
        };
        let lanes = batch::Lanes::start(pool.clone(), marks, ns.clone(), file.as_deref())
            .map_err(|e| connect_error(format!("the state lanes' own connection: {e}")))?;
        Ok(StateStore {
            pool,
            backend,
            ns,
            lanes,
            evidence: None,
        })
    }

    /// Whether the per-message rows go through connections of the lanes' own (a SQLite file: batch/native.rs)
    /// rather than through sqlx.
    pub fn lanes_own_connections(&self) -> bool {
        self.lanes.own_connections()
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Which database this is, for a plugin writing its own SQL.
    pub fn dialect(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for a plugin's own tables (every row it writes must carry [`Self::namespace`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Writes `item` with `writer` in the next group commit of the write lane (see group.rs); answers once it
    /// is committed. For a plugin's per-message rows: they share the core's commit instead of contending
    /// with it for the database.
    pub async fn group_write(
        &self,
        writer: std::sync::Arc<dyn GroupWriter>,
        item: GroupItem,
    ) -> Result<(), StateError> {
        self.lanes.plugin(writer, item).await
    }

    /// The namespace (`bus.namespace`) every row of this store belongs to.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Close the pool's connections (waits for checked-out ones to come back). Clones share the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- retention ----------------------------------------------------------------------------------

    /// Delete ingress idempotency records and delivery records older than `older_than`, and DLQ rows
    /// that left the parking lot (replayed or purged) longer ago than that. Parked rows, the audit log
    /// and document statuses are never touched. Returns the number of rows deleted.
    pub async fn prune(&self, older_than: Duration) -> Result<u64, StateError> {
        let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(age);
        let mut deleted = 0;
        for sql in [
            "DELETE FROM lt_ingress WHERE ns = $2 AND created_ms < $1",
            "DELETE FROM lt_delivered WHERE ns = $2 AND delivered_ms < $1",
            "DELETE FROM lt_dlq WHERE ns = $2 AND state <> 'parked' AND updated_ms < $1",
        ] {
            deleted += sqlx::query(sql)
                .bind(cutoff)
                .bind(&*self.ns)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }
}

/// Text as every backend can store it: PostgreSQL's TEXT cannot hold NUL, which JSON allows (`\u0000`) in any
/// string an agency sends; it is kept as U+2400 (␀, the symbol for NUL) so the rest of the row is kept.
pub fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{2400}")
    } else {
        s.to_owned()
    }
}

impl From<StateError> for crate::error::ApiError {
    /// The state store failed: the caller may retry later (503 `state_unavailable`).
    fn from(e: StateError) -> Self {
        crate::error::ApiError::new(crate::error::code::STATE_UNAVAILABLE, e.to_string())
    }
}
