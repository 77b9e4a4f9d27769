//! One `lt_dossier` row as a [`Dossier`]: the columns to select and how they are read back.
//!
//! Why a file of its own: the writer (`store`, which folds each message into the row as it stands), the reader
//! of one dossier (`read`) and the search (`query`) all read the same row; they share this mapping rather than
//! each other.

use super::rules::Dossier;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The `lt_dossier` columns [`dossier_from_row`] reads, in a SELECT list.
pub(super) const COLUMNS: &str = "code, receiving_agency, handler, agency, status, local_status, procedure_code, \
     procedure_name, received, received_key, due, finished, finished_status, finished_due, events, first_seen_ms, \
     sender, last_type, last_message_id, updated_ms";

pub(super) fn dossier_from_row(r: &AnyRow) -> Result<Dossier, sqlx::Error> {
    Ok(Dossier {
        code: r.try_get("code")?,
        receiving_agency: r.try_get("receiving_agency")?,
        handler: r.try_get("handler")?,
        agency: r.try_get("agency")?,
        status: r.try_get("status")?,
        local_status: r.try_get("local_status")?,
        procedure_code: r.try_get("procedure_code")?,
        procedure: r.try_get("procedure_name")?,
        received: r.try_get("received")?,
        received_key: r.try_get("received_key")?,
        due: r.try_get("due")?,
        finished: r.try_get("finished")?,
        finished_status: r.try_get("finished_status")?,
        finished_due: r.try_get("finished_due")?,
        events: r.try_get("events")?,
        first_seen_ms: r.try_get("first_seen_ms")?,
        sender: r.try_get("sender")?,
        last_type: r.try_get("last_type")?,
        last_message_id: r.try_get("last_message_id")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}
