//! Tables, created at connect with `CREATE TABLE IF NOT EXISTS`.
//!
//! Times are BIGINT epoch milliseconds (UTC); JSON values are TEXT; bodies are BLOB (SQLite) / BYTEA
//! (PostgreSQL). The only other per-backend difference is the audit log's auto-increment key.
//!
//! `lt_meta` holds `schema_version`; a database written by a newer build is refused rather than misread, and
//! an older one is upgraded in place under the same lock (version 1 → 2: rows scoped by namespace, message
//! ids by sender).

use sqlx::{AnyConnection, Connection, Executor, Row};

pub use super::url::Backend;

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// PostgreSQL advisory lock key that serialises schema creation between processes starting at once
/// ("LienThon" in ASCII). Concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on `pg_type`'s
/// unique index.
const PG_SCHEMA_LOCK: i64 = 0x4C69_656E_5468_6F6E;

fn ddl(backend: Backend) -> Vec<String> {
    let (blob, audit_key) = match backend {
        Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Backend::Postgres => ("BYTEA", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    };
    // Every row belongs to one bus namespace (`ns` = `bus.namespace`), so two buses sharing one database never
    // see each other's rows; and everything that names a message names its sender too, because message ids are
    // chosen by agencies and two agencies may choose the same one.
    vec![
        "CREATE TABLE IF NOT EXISTS lt_meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )"
        .into(),
        // Ingress idempotency: (sender, client id) -> a digest of what was sent and, once every copy is
        // confirmed, the 202 answer as JSON (NULL while the first submission is still being published).
        "CREATE TABLE IF NOT EXISTS lt_ingress (
            ns TEXT NOT NULL,
            sender TEXT NOT NULL,
            client_id TEXT NOT NULL,
            digest TEXT,
            accepted TEXT,
            created_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, sender, client_id)
        )"
        .into(),
        "CREATE INDEX IF NOT EXISTS lt_ingress_created ON lt_ingress (created_ms)".into(),
        // Successful deliveries, for de-duplication.
        "CREATE TABLE IF NOT EXISTS lt_delivered (
            ns TEXT NOT NULL,
            adapter TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            delivered_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, adapter, sender, message_id)
        )"
        .into(),
        "CREATE INDEX IF NOT EXISTS lt_delivered_at ON lt_delivered (delivered_ms)".into(),
        "CREATE INDEX IF NOT EXISTS lt_delivered_message ON lt_delivered (ns, sender, message_id)"
            .into(),
        // The dead-letter parking lot, one row per (adapter, sender, message id).
        format!(
            "CREATE TABLE IF NOT EXISTS lt_dlq (
            ns TEXT NOT NULL,
            adapter TEXT NOT NULL,
            message_id TEXT NOT NULL,
            route TEXT NOT NULL,
            kind TEXT NOT NULL,
            sender TEXT NOT NULL,
            reason TEXT NOT NULL,
            last_error TEXT,
            peer_status BIGINT,
            body_excerpt TEXT,
            attempts BIGINT NOT NULL,
            first_attempt_ms BIGINT,
            last_attempt_ms BIGINT,
            dead_lettered_ms BIGINT NOT NULL,
            state TEXT NOT NULL,
            content_type TEXT NOT NULL,
            headers TEXT NOT NULL,
            payload {blob} NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, adapter, sender, message_id)
        )"
        ),
        "CREATE INDEX IF NOT EXISTS lt_dlq_state_at ON lt_dlq (ns, state, dead_lettered_ms)".into(),
        "CREATE INDEX IF NOT EXISTS lt_dlq_message ON lt_dlq (ns, message_id)".into(),
        // Operator actions.
        format!(
            "CREATE TABLE IF NOT EXISTS lt_audit (
            seq {audit_key},
            ns TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            adapter TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            detail TEXT NOT NULL
        )"
        ),
    ]
}

/// Version 1 tables (no namespace, message ids not scoped by sender) and how their rows move into version 2:
/// (table, its v1 indexes, the column list of the copy, the SELECT list over the old rows). `{ns}` is the
/// namespace of the bus that upgrades, which is given every old row: version 1 had no namespaces, so the rows
/// were that deployment's.
const V1_TABLES: [Moved; 4] = [
    (
        "lt_ingress",
        &["lt_ingress_created"],
        "ns, sender, client_id, digest, accepted, created_ms",
        "{ns}, sender, client_id, NULL, accepted, created_ms",
    ),
    (
        "lt_delivered",
        &["lt_delivered_at"],
        "ns, adapter, sender, message_id, delivered_ms",
        // v1 did not know the sender of a delivered id; '' never matches a real sender, so at worst a message
        // in flight across the upgrade is delivered once more, with the same Idempotency-Key.
        "{ns}, adapter, '', message_id, delivered_ms",
    ),
    (
        "lt_dlq",
        &["lt_dlq_state_at", "lt_dlq_message"],
        "ns, adapter, message_id, route, kind, sender, reason, last_error, peer_status, body_excerpt, attempts, \
         first_attempt_ms, last_attempt_ms, dead_lettered_ms, state, content_type, headers, payload, updated_ms",
        "{ns}, adapter, message_id, route, kind, sender, reason, last_error, peer_status, body_excerpt, attempts, \
         first_attempt_ms, last_attempt_ms, dead_lettered_ms, state, content_type, headers, payload, updated_ms",
    ),
    (
        "lt_audit",
        &[],
        "ns, at_ms, actor, action, adapter, sender, message_id, detail",
        "{ns}, at_ms, actor, action, adapter, '', message_id, detail",
    ),
];

/// One table moved to a new layout by [`rename_copy`]: its name, its indexes (dropped first, so the new ones
/// can take their names), the columns written, and the SELECT list over the old rows, in which `{ns}` stands
/// for the upgrading bus's namespace as an SQL string.
pub type Moved = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

/// Statements that move `tables` to a new layout: each old table renamed aside, `create` run, the rows copied
/// with the upgrading bus's namespace, the old tables dropped.
pub fn rename_copy(tables: &[Moved], create: Vec<String>, namespace: &str) -> Vec<String> {
    let ns = format!("'{}'", namespace.replace('\'', "''"));
    let mut out = Vec::new();
    for (table, indexes, _, _) in tables {
        for index in *indexes {
            out.push(format!("DROP INDEX IF EXISTS {index}"));
        }
        out.push(format!("ALTER TABLE {table} RENAME TO {table}_old"));
    }
    out.extend(create);
    for (table, _, columns, select) in tables {
        let select = select.replace("{ns}", &ns);
        out.push(format!(
            "INSERT INTO {table} ({columns}) SELECT {select} FROM {table}_old"
        ));
        out.push(format!("DROP TABLE {table}_old"));
    }
    out
}

/// A family of tables with its own version in `lt_meta`: the core's, or a plugin's.
#[derive(Clone, Copy)]
pub struct TableSet {
    /// Its key in `lt_meta` (the core's is `schema_version`).
    pub name: &'static str,
    /// The version this build writes and understands.
    pub version: i64,
    /// `CREATE … IF NOT EXISTS` statements of this version.
    pub create: fn(Backend) -> Vec<String>,
    /// Statements that bring the set from an older version (the second argument) to this one, given the
    /// upgrading bus's namespace.
    pub upgrade: fn(Backend, i64, &str) -> Vec<String>,
}

/// The core's tables.
pub(crate) const CORE: TableSet = TableSet {
    name: "schema_version",
    version: SCHEMA_VERSION,
    create: ddl,
    upgrade: core_upgrade,
};

fn core_upgrade(backend: Backend, _from: i64, namespace: &str) -> Vec<String> {
    tracing::warn!(
        namespace,
        "Upgrading the state database from schema version 1 to 2; its rows are given this bus's namespace"
    );
    rename_copy(&V1_TABLES, ddl(backend), namespace)
}

/// Why schema preparation failed.
pub(crate) enum InitError {
    Sql(sqlx::Error),
    TooNew(i64),
}

impl From<sqlx::Error> for InitError {
    fn from(e: sqlx::Error) -> Self {
        InitError::Sql(e)
    }
}

/// Per-connection SQLite settings (the pool applies them to every new connection).
pub(crate) async fn sqlite_connection_pragmas(conn: &mut AnyConnection) -> sqlx::Result<()> {
    // NORMAL in WAL mode: a commit survives the bus process dying (kill -9, panic) because it is in the WAL
    // before the call returns; only an OS crash or power loss can forget the last commits (no fsync per
    // commit). Messages themselves live in RabbitMQ, so what such a loss costs is at most a repeated delivery
    // carrying the same Idempotency-Key. FULL measured ~550 msg/s end to end on this hardware (an fsync per
    // idempotency and delivery record); see BENCHMARKS.md.
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 30000").await?;
    // The write lane's savepoints (one per plugin group) keep their statement journals in memory instead of
    // a temporary file opened and closed per batch; 32 MiB of page cache per connection instead of 2 MiB
    // keeps the hot index pages out of read(2). Both measured under load (BENCHMARKS.md, "Issue 16").
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    conn.execute("PRAGMA cache_size = -32768").await?;
    Ok(())
}

/// Create what is missing, upgrade an older layout, and check the version. Idempotent; safe when several
/// processes start at once. `namespace` is given the rows of a version-1 database (see [`upgrade_from_v1`]).
pub(crate) async fn init(
    conn: &mut AnyConnection,
    backend: Backend,
    namespace: &str,
    sets: &[TableSet],
) -> Result<(), InitError> {
    match backend {
        Backend::Sqlite => {
            sqlite_connection_pragmas(conn).await?;
            set_wal(conn).await?;
            // IMMEDIATE takes the write lock before reading the version, so a concurrent starter waits
            // (busy_timeout) and then sees what this one did.
            conn.execute("BEGIN IMMEDIATE").await?;
            let done = prepare(conn, backend, namespace, sets).await;
            match done {
                Ok(()) => {
                    conn.execute("COMMIT").await?;
                }
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        Backend::Postgres => {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_SCHEMA_LOCK)
                .execute(&mut *tx)
                .await?;
            prepare(&mut tx, backend, namespace, sets).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Inside the schema lock: for each table set read its version, then create, upgrade or refuse.
async fn prepare(
    conn: &mut AnyConnection,
    backend: Backend,
    namespace: &str,
    sets: &[TableSet],
) -> Result<(), InitError> {
    conn.execute("CREATE TABLE IF NOT EXISTS lt_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .await?;
    let core_found = version_of(conn, CORE.name).await?;
    for set in sets {
        let mut found = version_of(conn, set.name).await?;
        // A version-1 database held every table under the core's version.
        if found.is_none() && set.name != CORE.name && core_found == Some(1) {
            found = Some(1);
        }
        let statements = match found {
            Some(v) if v > set.version => return Err(InitError::TooNew(v)),
            Some(v) if v < set.version => {
                let mut s = (set.upgrade)(backend, v, namespace);
                s.push(format!(
                    "INSERT INTO lt_meta (name, value) VALUES ('{}', '{}')
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    set.name, set.version
                ));
                s
            }
            Some(_) => (set.create)(backend),
            None => {
                let mut s = (set.create)(backend);
                s.push(format!(
                    "INSERT INTO lt_meta (name, value) VALUES ('{}', '{}')
                     ON CONFLICT (name) DO NOTHING",
                    set.name, set.version
                ));
                s
            }
        };
        for stmt in statements {
            conn.execute(stmt.as_str()).await?;
        }
    }
    Ok(())
}

async fn version_of(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, InitError> {
    let found: Option<String> = sqlx::query("SELECT value FROM lt_meta WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get("value"))
        .transpose()?;
    Ok(found.map(|v| v.trim().parse::<i64>().unwrap_or(i64::MAX)))
}

/// Switch the database file to WAL. This needs an exclusive lock that `busy_timeout` does not wait for,
/// so a starter racing another one retries briefly. The mode is persistent in the file.
async fn set_wal(conn: &mut AnyConnection) -> sqlx::Result<()> {
    let mut delay = std::time::Duration::from_millis(10);
    let mut tries = 0;
    loop {
        match sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&mut *conn)
            .await
        {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e)) if is_busy(e.as_ref()) && tries < 50 => {
                tries += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    // SQLITE_BUSY (5) and SQLITE_LOCKED (6), including their extended codes.
    e.code()
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
