//! Tables, created at connect with `CREATE TABLE IF NOT EXISTS`.
//!
//! Times are BIGINT epoch milliseconds (UTC); JSON values are TEXT; bodies are BLOB (SQLite) / BYTEA
//! (PostgreSQL). The only other per-backend difference is the audit log's auto-increment key.
//!
//! `lt_meta` holds `schema_version`; a database written by a newer build is refused rather than misread.
//! Future changes add numbered steps here, applied under the same lock.

use sqlx::{AnyConnection, Connection, Executor, Row};

use super::url::Backend;

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// PostgreSQL advisory lock key that serialises schema creation between processes starting at once
/// ("LienThon" in ASCII). Concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on `pg_type`'s
/// unique index.
const PG_SCHEMA_LOCK: i64 = 0x4C69_656E_5468_6F6E;

fn ddl(backend: Backend) -> Vec<String> {
    let (blob, audit_key) = match backend {
        Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Backend::Postgres => ("BYTEA", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    };
    vec![
        "CREATE TABLE IF NOT EXISTS lt_meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )"
        .into(),
        // HTTP ingress idempotency: (sender, client id) -> the 202 answer, as JSON.
        "CREATE TABLE IF NOT EXISTS lt_ingress (
            sender TEXT NOT NULL,
            client_id TEXT NOT NULL,
            accepted TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            PRIMARY KEY (sender, client_id)
        )"
        .into(),
        "CREATE INDEX IF NOT EXISTS lt_ingress_created ON lt_ingress (created_ms)".into(),
        // Successful deliveries, for de-duplication.
        "CREATE TABLE IF NOT EXISTS lt_delivered (
            adapter TEXT NOT NULL,
            message_id TEXT NOT NULL,
            delivered_ms BIGINT NOT NULL,
            PRIMARY KEY (adapter, message_id)
        )"
        .into(),
        "CREATE INDEX IF NOT EXISTS lt_delivered_at ON lt_delivered (delivered_ms)".into(),
        // The dead-letter parking lot, one row per (adapter, message id).
        format!(
            "CREATE TABLE IF NOT EXISTS lt_dlq (
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
            PRIMARY KEY (adapter, message_id)
        )"
        ),
        "CREATE INDEX IF NOT EXISTS lt_dlq_state_at ON lt_dlq (state, dead_lettered_ms)".into(),
        "CREATE INDEX IF NOT EXISTS lt_dlq_message ON lt_dlq (message_id)".into(),
        // Operator actions.
        format!(
            "CREATE TABLE IF NOT EXISTS lt_audit (
            seq {audit_key},
            at_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            adapter TEXT NOT NULL,
            message_id TEXT NOT NULL,
            detail TEXT NOT NULL
        )"
        ),
        // Last edXML status per (document, reporting organ).
        "CREATE TABLE IF NOT EXISTS lt_document_status (
            document_id TEXT NOT NULL,
            organ TEXT NOT NULL,
            status TEXT NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (document_id, organ)
        )"
        .into(),
        // Where each dossier is and whether it is on time: the latest facts, and every message about it.
        "CREATE TABLE IF NOT EXISTS lt_dossier (
            code TEXT PRIMARY KEY,
            sender TEXT NOT NULL,
            status BIGINT,
            local_status TEXT,
            received TEXT,
            due TEXT,
            finished TEXT,
            last_type TEXT NOT NULL,
            last_message_id TEXT NOT NULL,
            updated_ms BIGINT NOT NULL
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS lt_dossier_event (
            code TEXT NOT NULL,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            sender TEXT NOT NULL,
            status BIGINT,
            note TEXT,
            at_ms BIGINT NOT NULL,
            PRIMARY KEY (code, message_id)
        )"
        .into(),
        format!(
            "INSERT INTO lt_meta (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
             ON CONFLICT (name) DO NOTHING"
        ),
    ]
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
    Ok(())
}

/// Create what is missing and check the version. Idempotent; safe when several processes start at once.
pub(crate) async fn init(conn: &mut AnyConnection, backend: Backend) -> Result<(), InitError> {
    match backend {
        Backend::Sqlite => {
            sqlite_connection_pragmas(conn).await?;
            set_wal(conn).await?;
            // Each statement commits on its own; every one is idempotent, and SQLite's write lock plus
            // busy_timeout serialise a concurrent starter.
            for stmt in ddl(backend) {
                conn.execute(stmt.as_str()).await?;
            }
        }
        Backend::Postgres => {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_SCHEMA_LOCK)
                .execute(&mut *tx)
                .await?;
            for stmt in ddl(backend) {
                (&mut *tx).execute(stmt.as_str()).await?;
            }
            tx.commit().await?;
        }
    }
    let row = sqlx::query("SELECT value FROM lt_meta WHERE name = 'schema_version'")
        .fetch_one(&mut *conn)
        .await?;
    let found: String = row.try_get("value")?;
    let found: i64 = found.trim().parse().unwrap_or(i64::MAX);
    if found > SCHEMA_VERSION {
        return Err(InitError::TooNew(found));
    }
    Ok(())
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
