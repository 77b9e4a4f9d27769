//! A plugin's writes in the core's group commit.
//!
//! # Why this exists
//!
//! On SQLite one process has one writer at a time. A plugin that kept its own writer task (say, one that
//! folds every accepted message into a tracking table) committed its own transactions beside the core's write
//! lane, and the two took turns at the file's write lock, the loser waiting in SQLite's busy handler. With
//! this hook the plugin's rows ride in the write lane's transaction: one commit for the core's rows and the
//! plugin's, however many messages the batch holds, and no lock to wait for.
//!
//! A plugin implements [`GroupWriter`] and hands each item to [`crate::state::StateStore::group_write`]; the
//! lane gives the writer every item of its batch at once, in arrival order, inside a savepoint taken after
//! the core's rows. A failing writer rolls back only its own rows and fails only its own callers: a plugin's
//! bug never refuses the core's idempotency claims or delivered marks.
//!
//! The writer runs its statements on a [`GroupConn`], not on a driver's connection: on PostgreSQL that is
//! the lane's sqlx transaction; on a SQLite file it is the lanes' own connection (batch/native.rs), where
//! sqlx's per-statement hand-offs cost path 2 of the benchmark about a seventh of its throughput for the
//! dossier-tracking rows alone. Values are typed ([`SqlValue`]) so a NULL binds as the column's type on
//! PostgreSQL.

use async_trait::async_trait;
use std::any::Any;
use std::sync::Arc;

/// One item a plugin asks to have written (it downcasts its own items back in [`GroupWriter::write`]).
pub type GroupItem = Box<dyn Any + Send>;

/// A value bound to a writer's statement, or read back: an integer or a text, either of which may be NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(Some(v))
    }
}

impl From<Option<i64>> for SqlValue {
    fn from(v: Option<i64>) -> Self {
        SqlValue::Int(v)
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(Some(v))
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for SqlValue {
    fn from(v: Option<String>) -> Self {
        SqlValue::Text(v)
    }
}

/// What went wrong running a writer's statement (the database's own message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GroupError(pub String);

impl From<sqlx::Error> for GroupError {
    fn from(e: sqlx::Error) -> Self {
        GroupError(e.to_string())
    }
}

/// One row a query returned, its values by the column names of its SELECT (or RETURNING) list.
#[derive(Debug, Clone)]
pub struct SqlRow {
    names: Arc<[String]>,
    values: Vec<SqlValue>,
}

impl SqlRow {
    pub(crate) fn new(names: Arc<[String]>, values: Vec<SqlValue>) -> Self {
        SqlRow { names, values }
    }

    fn get(&self, column: &str) -> Result<&SqlValue, GroupError> {
        self.names
            .iter()
            .position(|n| n == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| GroupError(format!("no column `{column}` in the row")))
    }

    fn wrong(column: &str, want: &str) -> GroupError {
        GroupError(format!("column `{column}` is not {want}"))
    }

    /// The text in `column`, or None for NULL.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>, GroupError> {
        match self.get(column)? {
            SqlValue::Text(t) => Ok(t.clone()),
            SqlValue::Int(None) => Ok(None),
            SqlValue::Int(Some(_)) => Err(Self::wrong(column, "a text")),
        }
    }

    /// The text in `column` (NULL is an error).
    pub fn text(&self, column: &str) -> Result<String, GroupError> {
        self.opt_text(column)?
            .ok_or_else(|| Self::wrong(column, "a text (it is NULL)"))
    }

    /// The integer in `column`, or None for NULL.
    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, GroupError> {
        match self.get(column)? {
            SqlValue::Int(i) => Ok(*i),
            SqlValue::Text(None) => Ok(None),
            SqlValue::Text(Some(_)) => Err(Self::wrong(column, "an integer")),
        }
    }

    /// The integer in `column` (NULL is an error).
    pub fn int(&self, column: &str) -> Result<i64, GroupError> {
        self.opt_int(column)?
            .ok_or_else(|| Self::wrong(column, "an integer (it is NULL)"))
    }
}

/// Where a writer runs its statements: inside the write lane's transaction (and the writer's savepoint).
#[async_trait]
pub trait GroupConn: Send {
    /// Which database: placeholders are `$1, $2, …` on PostgreSQL and `?` on SQLite (see [`super::sql`]).
    fn dialect(&self) -> super::Backend;

    /// Runs a statement with `params` bound in order; answers the rows it changed.
    async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, GroupError>;

    /// Runs a query with `params` bound in order; answers its rows.
    async fn fetch(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, GroupError>;
}

/// Writes a plugin's items inside the core's write transaction.
#[async_trait]
pub trait GroupWriter: Send + Sync + 'static {
    /// Writes `items` (in the order they were handed in) on `conn`, which is inside the batch's transaction
    /// (PostgreSQL: take row locks in a fixed order, e.g. sorted by key, so two processes never deadlock;
    /// every row carries `ns`, the store's namespace).
    async fn write(
        &self,
        conn: &mut dyn GroupConn,
        ns: &str,
        items: Vec<GroupItem>,
    ) -> Result<(), GroupError>;
}

/// [`GroupConn`] on a sqlx connection (PostgreSQL, or SQLite without the lanes' own connection).
pub(crate) struct SqlxConn<'a> {
    pub conn: &'a mut sqlx::AnyConnection,
    pub backend: super::Backend,
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: Vec<SqlValue>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for p in params {
        q = match p {
            SqlValue::Int(i) => q.bind(i),
            SqlValue::Text(t) => q.bind(t),
        };
    }
    q
}

#[async_trait]
impl GroupConn for SqlxConn<'_> {
    fn dialect(&self) -> super::Backend {
        self.backend
    }

    async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, GroupError> {
        Ok(bind(sqlx::query(sql), params)
            .execute(&mut *self.conn)
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<SqlRow>, GroupError> {
        use sqlx::{Column, Row};
        let rows = bind(sqlx::query(sql), params)
            .fetch_all(&mut *self.conn)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names: Arc<[String]> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        rows.iter()
            .map(|r| {
                let values = (0..names.len())
                    .map(|i| match r.try_get::<Option<i64>, _>(i) {
                        Ok(v) => Ok(SqlValue::Int(v)),
                        Err(_) => r.try_get::<Option<String>, _>(i).map(SqlValue::Text),
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                Ok(SqlRow::new(names.clone(), values))
            })
            .collect()
    }
}
