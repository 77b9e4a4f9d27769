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
//! On a SQLite file the core's rows go through the lanes' own connection (batch/native.rs): the plugins'
//! savepoints then share one sqlx transaction of their own, committed just before the core's rows of the same
//! batch. A crash between the two commits can leave a message's plugin rows without its idempotency record or
//! delivered mark, and the message is then handled again: a writer must count a message once (by sender and
//! id), as the domain's dossier tracking does.

use async_trait::async_trait;
use std::any::Any;

/// One item a plugin asks to have written (it downcasts its own items back in [`GroupWriter::write`]).
pub type GroupItem = Box<dyn Any + Send>;

/// Writes a plugin's items inside the core's write transaction.
#[async_trait]
pub trait GroupWriter: Send + Sync + 'static {
    /// Writes `items` (in the order they were handed in) on `conn`, which is inside the batch's transaction
    /// (PostgreSQL: take row locks in a fixed order, e.g. sorted by key, so two processes never deadlock;
    /// every row carries `ns`, the store's namespace).
    async fn write(
        &self,
        conn: &mut sqlx::AnyConnection,
        ns: &str,
        items: Vec<GroupItem>,
    ) -> Result<(), sqlx::Error>;
}
