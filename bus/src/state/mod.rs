//! Durable state: ingress idempotency, delivery de-duplication, the dead-letter parking lot, the audit
//! log of operator actions and edXML document status.
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
//! with `options=-c search_path=…` is honoured). Both go through sqlx's `Any` driver with the same SQL;
//! times are stored as epoch milliseconds and shown as RFC 3339. Tables are listed in `schema.rs`.

mod batch;
mod dossier;
pub use dossier::{DossierEvent, DossierFacts, DossierView};
mod schema;
mod url;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use crate::adapter::Accepted;
pub use batch::Claim;

use batch::text;
use schema::InitError;
use url::{Backend, redact_url, scrub, sqlite_create_if_missing};

/// DLQ entry states.
pub const DLQ_PARKED: &str = "parked";
pub const DLQ_REPLAYED: &str = "replayed";
pub const DLQ_PURGED: &str = "purged";
const DLQ_STATES: [&str; 3] = [DLQ_PARKED, DLQ_REPLAYED, DLQ_PURGED];

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
    /// A database error shared by every operation of one group commit (see batch.rs).
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

/// One parked (or formerly parked) message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DlqEntry {
    /// Message id.
    pub id: String,
    pub adapter: String,
    pub route: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: String,
    /// e.g. "permanent_error", "retries_exhausted", "delivery_limit".
    pub reason: String,
    /// e.g. "HTTP 400 from receiver".
    pub last_error: Option<String>,
    /// Peer status code.
    pub status: Option<i64>,
    pub body_excerpt: Option<String>,
    pub attempts: u32,
    /// RFC 3339. Stored with millisecond precision and returned in UTC (`…T10:00:00.123Z`).
    pub first_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub dead_lettered_at: String,
    /// "parked" | "replayed" | "purged".
    pub state: String,
    /// "application/json" | "application/xml".
    pub content_type: String,
    /// Object: the AMQP headers needed to republish (strings/ints).
    pub headers: serde_json::Value,
    /// The message payload bytes, exact. Empty in [`StateStore::dlq_list`] results.
    #[serde(skip)]
    pub payload: Vec<u8>,
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub adapter: String,
    /// The sender of the message acted on (empty for entries from before ids were scoped by sender).
    pub from: String,
    pub id: String,
    pub detail: String,
}

/// The durable state store. Cheap to clone (a shared pool); `Send + Sync`.
#[derive(Clone)]
pub struct StateStore {
    pool: AnyPool,
    backend: Backend,
    /// The bus namespace every row read or written belongs to (`bus.namespace`).
    ns: std::sync::Arc<str>,
    /// Group commit for the per-message operations (see batch.rs).
    lanes: batch::Lanes,
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

fn time_field(field: &'static str, value: &str) -> Result<i64, StateError> {
    millis_from_rfc3339(value).ok_or_else(|| StateError::InvalidTime {
        field,
        value: value.to_string(),
    })
}

fn opt_time_field(field: &'static str, value: Option<&str>) -> Result<Option<i64>, StateError> {
    value.map(|v| time_field(field, v)).transpose()
}

fn check_dlq_state(state: &str) -> Result<(), StateError> {
    if DLQ_STATES.contains(&state) {
        Ok(())
    } else {
        Err(StateError::InvalidDlqState(state.to_string()))
    }
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

const DLQ_COLUMNS: &str = "adapter, message_id, route, kind, sender, reason, last_error, peer_status, \
     body_excerpt, attempts, first_attempt_ms, last_attempt_ms, dead_lettered_ms, state, content_type, headers";

fn dlq_from_row(row: &AnyRow, with_payload: bool) -> Result<DlqEntry, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        table: "lt_dlq",
        detail,
    };
    let attempts: i64 = row.try_get("attempts")?;
    let headers: String = row.try_get("headers")?;
    let first: Option<i64> = row.try_get("first_attempt_ms")?;
    let last: Option<i64> = row.try_get("last_attempt_ms")?;
    Ok(DlqEntry {
        id: row.try_get("message_id")?,
        adapter: row.try_get("adapter")?,
        route: row.try_get("route")?,
        kind: row.try_get("kind")?,
        from: row.try_get("sender")?,
        reason: row.try_get("reason")?,
        last_error: row.try_get("last_error")?,
        status: row.try_get("peer_status")?,
        body_excerpt: row.try_get("body_excerpt")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("attempts {attempts}")))?,
        first_attempt_at: first.map(rfc3339_from_millis),
        last_attempt_at: last.map(rfc3339_from_millis),
        dead_lettered_at: rfc3339_from_millis(row.try_get("dead_lettered_ms")?),
        state: row.try_get("state")?,
        content_type: row.try_get("content_type")?,
        headers: serde_json::from_str(&headers).map_err(|e| corrupt(format!("headers: {e}")))?,
        payload: if with_payload {
            row.try_get("payload")?
        } else {
            Vec::new()
        },
    })
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
        let init = schema::init(&mut conn, backend, namespace).await;
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
        let lanes = batch::Lanes::start(pool.clone(), marks, ns.clone());
        Ok(StateStore {
            pool,
            backend,
            ns,
            lanes,
        })
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Close the pool's connections (waits for checked-out ones to come back). Clones share the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- HTTP ingress idempotency -------------------------------------------------------------------

    /// The answer recorded for this (sender, client id), if any (none while its first submission is still
    /// being published).
    pub async fn ingress_lookup(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Option<Accepted>, StateError> {
        self.lanes
            .read(|reply| batch::Read::Ingress {
                sender: sender.to_owned(),
                id: id.to_owned(),
                reply,
            })
            .await
    }

    /// Claim (sender, client id) for a submission whose content has digest `digest`, before publishing it.
    /// The first claim of a key fixes its digest; see [`Claim`] for what a later one learns. Claims of one
    /// key made at the same moment are serialised by the database: exactly one of two different bodies wins.
    pub async fn ingress_claim(
        &self,
        sender: &str,
        id: &str,
        digest: &str,
    ) -> Result<Claim, StateError> {
        self.lanes
            .claim(batch::ClaimAsk {
                sender: sender.to_owned(),
                id: id.to_owned(),
                digest: digest.to_owned(),
                at: now_ms(),
            })
            .await
    }

    /// Record the answer for this (sender, client id). The first writer wins: a later record for the same
    /// key is ignored, so look up again to learn the answer that stands.
    pub async fn ingress_record(
        &self,
        sender: &str,
        id: &str,
        digest: &str,
        accepted: &Accepted,
    ) -> Result<(), StateError> {
        let json = serde_json::to_string(accepted).map_err(|source| StateError::Encode {
            what: "accepted answer",
            source,
        })?;
        self.lanes
            .write(|reply| batch::Write::Ingress {
                sender: sender.to_owned(),
                id: id.to_owned(),
                digest: digest.to_owned(),
                accepted: json,
                at: now_ms(),
                reply,
            })
            .await
    }

    // ---- delivery de-duplication --------------------------------------------------------------------

    /// Whether `adapter` has already delivered message `id` of `sender` successfully.
    pub async fn was_delivered(
        &self,
        adapter: &str,
        sender: &str,
        id: &str,
    ) -> Result<bool, StateError> {
        self.lanes
            .read(|reply| batch::Read::Delivered {
                adapter: adapter.to_owned(),
                sender: sender.to_owned(),
                id: id.to_owned(),
                reply,
            })
            .await
    }

    /// Remember a successful delivery. Idempotent (the first time is kept).
    pub async fn mark_delivered(
        &self,
        adapter: &str,
        sender: &str,
        id: &str,
    ) -> Result<(), StateError> {
        self.lanes
            .write(|reply| batch::Write::Delivered {
                adapter: adapter.to_owned(),
                sender: sender.to_owned(),
                id: id.to_owned(),
                at: now_ms(),
                reply,
            })
            .await
    }

    // ---- dead-letter parking lot --------------------------------------------------------------------

    /// Park a message: insert, or update the existing (adapter, sender, id) row with everything in `entry`.
    /// The row's state always becomes "parked" (`entry.state` is not consulted), so a replayed message
    /// that fails again is parked again with its new reason, attempts and times.
    pub async fn park(&self, entry: &DlqEntry) -> Result<(), StateError> {
        let first = opt_time_field("first_attempt_at", entry.first_attempt_at.as_deref())?;
        let last = opt_time_field("last_attempt_at", entry.last_attempt_at.as_deref())?;
        let dead = time_field("dead_lettered_at", &entry.dead_lettered_at)?;
        let headers =
            serde_json::to_string(&entry.headers).map_err(|source| StateError::Encode {
                what: "DLQ headers",
                source,
            })?;
        sqlx::query(
            "INSERT INTO lt_dlq (adapter, message_id, route, kind, sender, reason, last_error, peer_status,
                 body_excerpt, attempts, first_attempt_ms, last_attempt_ms, dead_lettered_ms, state,
                 content_type, headers, payload, updated_ms, ns)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'parked', $14, $15, $16, $17, $18)
             ON CONFLICT (ns, adapter, sender, message_id) DO UPDATE SET
                 route = excluded.route, kind = excluded.kind,
                 reason = excluded.reason, last_error = excluded.last_error,
                 peer_status = excluded.peer_status, body_excerpt = excluded.body_excerpt,
                 attempts = excluded.attempts, first_attempt_ms = excluded.first_attempt_ms,
                 last_attempt_ms = excluded.last_attempt_ms, dead_lettered_ms = excluded.dead_lettered_ms,
                 state = 'parked', content_type = excluded.content_type, headers = excluded.headers,
                 payload = excluded.payload, updated_ms = excluded.updated_ms",
        )
        .bind(&entry.adapter)
        .bind(&entry.id)
        .bind(text(&entry.route))
        .bind(text(&entry.kind))
        .bind(&entry.from)
        .bind(text(&entry.reason))
        .bind(entry.last_error.as_deref().map(text))
        .bind(entry.status)
        .bind(entry.body_excerpt.as_deref().map(text))
        .bind(i64::from(entry.attempts))
        .bind(first)
        .bind(last)
        .bind(dead)
        .bind(&entry.content_type)
        .bind(headers)
        .bind(entry.payload.as_slice())
        .bind(now_ms())
        .bind(&*self.ns)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Parked entries (optionally of one adapter), oldest `dead_lettered_at` first.
    ///
    /// `payload` is left **empty** in these results to keep listing cheap; use [`StateStore::dlq_get`]
    /// for the bytes.
    pub async fn dlq_list(&self, adapter: Option<&str>) -> Result<Vec<DlqEntry>, StateError> {
        let sql = format!(
            "SELECT {DLQ_COLUMNS} FROM lt_dlq
             WHERE ns = $1 AND state = 'parked' AND ($2 IS NULL OR adapter = $2)
             ORDER BY dead_lettered_ms, adapter, sender, message_id"
        );
        self.dlq_query(&sql, None, adapter, None, false).await
    }

    /// Parked entries for message `id` (one per adapter and sender; optionally only `adapter`'s, only
    /// `sender`'s), with payload. Ids are chosen by agencies, so the same id may name messages of several
    /// senders: give `sender` to mean one of them.
    pub async fn dlq_get(
        &self,
        id: &str,
        adapter: Option<&str>,
        sender: Option<&str>,
    ) -> Result<Vec<DlqEntry>, StateError> {
        let sql = format!(
            "SELECT {DLQ_COLUMNS}, payload FROM lt_dlq
             WHERE ns = $1 AND state = 'parked' AND ($2 IS NULL OR adapter = $2)
                 AND ($3 IS NULL OR sender = $3) AND message_id = $4
             ORDER BY adapter, sender"
        );
        self.dlq_query(&sql, Some(id), adapter, Some(sender), true)
            .await
    }

    async fn dlq_query(
        &self,
        sql: &str,
        id: Option<&str>,
        adapter: Option<&str>,
        sender: Option<Option<&str>>,
        with_payload: bool,
    ) -> Result<Vec<DlqEntry>, StateError> {
        let mut query = sqlx::query(sql).bind(&*self.ns).bind(adapter);
        if let Some(sender) = sender {
            query = query.bind(sender);
        }
        if let Some(id) = id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| dlq_from_row(row, with_payload))
            .collect()
    }

    /// Compare-and-set the state of one entry (e.g. parked→replayed, parked→purged). Returns whether
    /// this call changed it: of two operators replaying at once exactly one gets `true`.
    pub async fn dlq_set_state(
        &self,
        adapter: &str,
        sender: &str,
        id: &str,
        from_state: &str,
        to_state: &str,
    ) -> Result<bool, StateError> {
        check_dlq_state(from_state)?;
        check_dlq_state(to_state)?;
        let done = sqlx::query(
            "UPDATE lt_dlq SET state = $1, updated_ms = $2
             WHERE ns = $6 AND adapter = $3 AND sender = $7 AND message_id = $4 AND state = $5",
        )
        .bind(to_state)
        .bind(now_ms())
        .bind(adapter)
        .bind(id)
        .bind(from_state)
        .bind(&*self.ns)
        .bind(sender)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- audit log ----------------------------------------------------------------------------------

    /// Append an operator action.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        adapter: &str,
        sender: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO lt_audit (ns, at_ms, actor, action, adapter, sender, message_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&*self.ns)
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(adapter)
        .bind(sender)
        .bind(id)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The `limit` most recent actions, newest first (by insertion order, not by clock).
    pub async fn audit_list(&self, limit: u32) -> Result<Vec<AuditEntry>, StateError> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, adapter, sender, message_id, detail FROM lt_audit
             WHERE ns = $2 ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .bind(&*self.ns)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: rfc3339_from_millis(row.try_get("at_ms")?),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    adapter: row.try_get("adapter")?,
                    from: row.try_get("sender")?,
                    id: row.try_get("message_id")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    // ---- edXML document status ----------------------------------------------------------------------

    /// The last status recorded for (document, reporting organ).
    pub async fn document_status(
        &self,
        document_id: &str,
        organ: &str,
    ) -> Result<Option<String>, StateError> {
        let row = sqlx::query(
            "SELECT status FROM lt_document_status WHERE ns = $3 AND document_id = $1 AND organ = $2",
        )
        .bind(document_id)
        .bind(organ)
        .bind(&*self.ns)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("status")).transpose()?)
    }

    /// Every receiving agency's stored state of one document (`DocState` storage form), by organ, with the time
    /// it last changed (RFC 3339).
    pub async fn document_statuses(
        &self,
        document_id: &str,
    ) -> Result<Vec<(String, String, String)>, StateError> {
        let rows = sqlx::query(
            "SELECT organ, status, updated_ms FROM lt_document_status WHERE ns = $2 AND document_id = $1
             ORDER BY organ",
        )
        .bind(document_id)
        .bind(&*self.ns)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("organ")?,
                    r.try_get("status")?,
                    rfc3339_from_millis(r.try_get("updated_ms")?),
                ))
            })
            .collect()
    }

    /// Compare-and-set the status: succeeds only if the current value is `expected_prev` (`None` = no
    /// row yet). Returns `false` when someone else got there first.
    pub async fn set_document_status(
        &self,
        document_id: &str,
        organ: &str,
        expected_prev: Option<&str>,
        status: &str,
    ) -> Result<bool, StateError> {
        let done =
            match expected_prev {
                None => sqlx::query(
                    "INSERT INTO lt_document_status (document_id, organ, status, updated_ms, ns)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ns, document_id, organ) DO NOTHING",
                )
                .bind(document_id)
                .bind(organ)
                .bind(status)
                .bind(now_ms())
                .bind(&*self.ns)
                .execute(&self.pool)
                .await?,
                Some(prev) => {
                    sqlx::query(
                        "UPDATE lt_document_status SET status = $1, updated_ms = $2
                     WHERE ns = $6 AND document_id = $3 AND organ = $4 AND status = $5",
                    )
                    .bind(status)
                    .bind(now_ms())
                    .bind(document_id)
                    .bind(organ)
                    .bind(prev)
                    .bind(&*self.ns)
                    .execute(&self.pool)
                    .await?
                }
            };
        Ok(done.rows_affected() == 1)
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
