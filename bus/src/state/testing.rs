//! Test databases for the state store and for plugins' own tables: an empty SQLite file or a PostgreSQL
//! schema of its own per test (`lt_test_<uuid>`, selected with `options=-c search_path=…`), dropped when done,
//! so tests run in parallel and repeat. PostgreSQL is `LIENTHONG_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); if it is not reachable the PostgreSQL tests fail, never skip.
//!
//! Compiled for the core's tests and, with the `test-util` feature, for other crates' tests.

use sqlx::{Connection, Executor};

use crate::config::redact_url;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn pg_admin_url() -> String {
    std::env::var("LIENTHONG_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Removes the test database when dropped (also when the test panics).
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, schema } = self {
            let admin_url = admin_url.clone();
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            // Drop runs inside the test's runtime, which cannot be blocked on; use a private one.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                    conn.execute(sql.as_str()).await?;
                    conn.close().await
                })
            })
            .join();
            if let Ok(Err(e)) = done {
                eprintln!("could not drop test schema {schema}: {e}");
            }
        }
    }
}

/// An empty database of the given kind: its URL, and what removes it.
pub struct Fresh {
    pub url: String,
    _cleanup: Cleanup,
}

pub async fn fresh(kind: Kind) -> Fresh {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("lienthong-state.db").display()
            );
            Fresh {
                url,
                _cleanup: Cleanup::Sqlite(dir),
            }
        }
        Kind::Postgres => {
            let admin_url = pg_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL must be running for these tests ({}): {e}",
                        redact_url(&admin_url)
                    )
                });
            let schema = format!("lt_test_{}", uuid::Uuid::new_v4().simple());
            conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                .await
                .expect("create test schema");
            conn.close().await.ok();
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
            Fresh {
                url,
                _cleanup: Cleanup::Postgres { admin_url, schema },
            }
        }
    }
}

/// Writes a version-1 database (the layout before namespaces and sender-scoped ids) with one row in each
/// table that matters: a 202 answer, a parked message, a document status and a tracked dossier.
pub async fn make_version_1_database(url: &str, kind: Kind) {
    {
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        let blob = match kind {
            Kind::Sqlite => "BLOB",
            Kind::Postgres => "BYTEA",
        };
        for stmt in [
            "CREATE TABLE lt_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)".to_string(),
            "INSERT INTO lt_meta (name, value) VALUES ('schema_version', '1')".into(),
            "CREATE TABLE lt_ingress (sender TEXT NOT NULL, client_id TEXT NOT NULL, accepted TEXT NOT NULL,
                created_ms BIGINT NOT NULL, PRIMARY KEY (sender, client_id))"
                .into(),
            "CREATE INDEX lt_ingress_created ON lt_ingress (created_ms)".into(),
            "CREATE TABLE lt_delivered (adapter TEXT NOT NULL, message_id TEXT NOT NULL,
                delivered_ms BIGINT NOT NULL, PRIMARY KEY (adapter, message_id))"
                .into(),
            "CREATE INDEX lt_delivered_at ON lt_delivered (delivered_ms)".into(),
            format!(
                "CREATE TABLE lt_dlq (adapter TEXT NOT NULL, message_id TEXT NOT NULL, route TEXT NOT NULL,
                kind TEXT NOT NULL, sender TEXT NOT NULL, reason TEXT NOT NULL, last_error TEXT,
                peer_status BIGINT, body_excerpt TEXT, attempts BIGINT NOT NULL, first_attempt_ms BIGINT,
                last_attempt_ms BIGINT, dead_lettered_ms BIGINT NOT NULL, state TEXT NOT NULL,
                content_type TEXT NOT NULL, headers TEXT NOT NULL, payload {blob} NOT NULL,
                updated_ms BIGINT NOT NULL, PRIMARY KEY (adapter, message_id))"
            ),
            "CREATE INDEX lt_dlq_state_at ON lt_dlq (state, dead_lettered_ms)".into(),
            "CREATE INDEX lt_dlq_message ON lt_dlq (message_id)".into(),
            "CREATE TABLE lt_audit (seq BIGINT, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,
                action TEXT NOT NULL, adapter TEXT NOT NULL, message_id TEXT NOT NULL, detail TEXT NOT NULL)"
                .into(),
            "CREATE TABLE lt_document_status (document_id TEXT NOT NULL, organ TEXT NOT NULL,
                status TEXT NOT NULL, updated_ms BIGINT NOT NULL, PRIMARY KEY (document_id, organ))"
                .into(),
            "CREATE TABLE lt_dossier (code TEXT PRIMARY KEY, sender TEXT NOT NULL, status BIGINT,
                local_status TEXT, received TEXT, due TEXT, finished TEXT, last_type TEXT NOT NULL,
                last_message_id TEXT NOT NULL, updated_ms BIGINT NOT NULL)"
                .into(),
            "CREATE TABLE lt_dossier_event (code TEXT NOT NULL, message_id TEXT NOT NULL, kind TEXT NOT NULL,
                sender TEXT NOT NULL, status BIGINT, note TEXT, at_ms BIGINT NOT NULL,
                PRIMARY KEY (code, message_id))"
                .into(),
            "INSERT INTO lt_ingress VALUES ('000.00.00.H40', 'c-1', '{\"id\":\"m-1\",\"routes\":[\"r\"]}', 1)"
                .into(),
            "INSERT INTO lt_document_status VALUES ('doc', 'org', '03', 1)".into(),
            "INSERT INTO lt_dossier VALUES ('H-1', 'x', 4, NULL, NULL, NULL, NULL, 't', 'm', 1)".into(),
            "INSERT INTO lt_dossier_event VALUES ('H-1', 'm', 't', 'x', 4, NULL, 1)".into(),
        ] {
            conn.execute(stmt.as_str()).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO lt_dlq VALUES ('tax', 'm-9', 'r', 'k', '000.00.01.H53', 'permanent_error', NULL, NULL,
             NULL, 1, NULL, NULL, 5, 'parked', 'application/json', '{}', $1, 5)",
        )
        .bind(b"old payload".as_slice())
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}
