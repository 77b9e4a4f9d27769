//! One `lt_dossier` row as a [`Dossier`]: the columns to select and how they are read back.
//!
//! Why a file of its own: the writer (`store`, which folds each message into the row as it stands), the reader
//! of one dossier (`read`) and the search (`query`) all read the same row; they share this mapping rather than
//! each other.

use super::rules::Dossier;
use lienthong_bus::state::{GroupError, SqlRow};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The `lt_dossier` columns [`dossier_from_row`] reads, in a SELECT list.
pub(super) const COLUMNS: &str = "code, receiving_agency, handler, agency, status, local_status, procedure_code, \
     procedure_name, received, received_key, due, finished, finished_status, finished_due, events, first_seen_ms, \
     sender, last_type, last_message_id, updated_ms";

/// A row a dossier is read from: sqlx's (the readers) or the state store's plugin row (the writer, which runs
/// on whichever connection the write lane lends it).
pub(super) trait Columns {
    type Error;
    fn text(&self, column: &str) -> Result<String, Self::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, Self::Error>;
    fn int(&self, column: &str) -> Result<i64, Self::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, Self::Error>;
}

impl Columns for AnyRow {
    type Error = sqlx::Error;
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
}

impl Columns for SqlRow {
    type Error = GroupError;
    fn text(&self, column: &str) -> Result<String, GroupError> {
        SqlRow::text(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, GroupError> {
        SqlRow::opt_text(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, GroupError> {
        SqlRow::int(self, column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, GroupError> {
        SqlRow::opt_int(self, column)
    }
}

pub(super) fn dossier_from_row<R: Columns>(r: &R) -> Result<Dossier, R::Error> {
    Ok(Dossier {
        code: r.text("code")?,
        receiving_agency: r.text("receiving_agency")?,
        handler: r.opt_text("handler")?,
        agency: r.text("agency")?,
        status: r.opt_int("status")?,
        local_status: r.opt_text("local_status")?,
        procedure_code: r.opt_text("procedure_code")?,
        procedure: r.opt_text("procedure_name")?,
        received: r.opt_text("received")?,
        received_key: r.text("received_key")?,
        due: r.opt_text("due")?,
        finished: r.opt_text("finished")?,
        finished_status: r.opt_int("finished_status")?,
        finished_due: r.opt_text("finished_due")?,
        events: r.int("events")?,
        first_seen_ms: r.int("first_seen_ms")?,
        sender: r.text("sender")?,
        last_type: r.text("last_type")?,
        last_message_id: r.text("last_message_id")?,
        updated_ms: r.int("updated_ms")?,
    })
}
