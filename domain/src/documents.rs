//! Where an edXML document stands at each receiving agency: its status flow (`DocState`, stored per
//! (document, organ)), changed only by compare-and-set so two statuses arriving at once cannot both apply; and
//! every status accepted, with whether it was checked against what the bus saw or taken as reported (the bus
//! saw nothing before it), so the document view can say which is which.

use lienthong_bus::state::{StateStore, rfc3339_from_millis};
use sqlx::Row;

/// One status accepted about a document at one agency (`lt_document_event`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEvent {
    pub organ: String,
    pub code: String,
    /// `"checked"` or `"taken as reported"` (`edxml::status::Judgement`).
    pub judged: String,
    pub message_id: String,
    /// When the bus accepted it (RFC 3339).
    pub at: String,
}

/// The `lt_document_status` and `lt_document_event` tables of one namespace.
#[derive(Clone)]
pub struct DocumentStore {
    state: StateStore,
}

impl DocumentStore {
    pub fn new(state: StateStore) -> Self {
        Self { state }
    }

    /// The last status recorded for (document, reporting organ).
    pub async fn status(
        &self,
        document_id: &str,
        organ: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT status FROM lt_document_status WHERE ns = $3 AND document_id = $1 AND organ = $2",
        )
        .bind(document_id)
        .bind(organ)
        .bind(self.state.namespace())
        .fetch_optional(self.state.pool())
        .await?;
        row.map(|r| r.try_get("status")).transpose()
    }

    /// Every receiving agency's stored state of one document (`DocState` storage form), by organ, with the time
    /// it last changed (RFC 3339).
    pub async fn statuses(
        &self,
        document_id: &str,
    ) -> Result<Vec<(String, String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT organ, status, updated_ms FROM lt_document_status WHERE ns = $2 AND document_id = $1
             ORDER BY organ",
        )
        .bind(document_id)
        .bind(self.state.namespace())
        .fetch_all(self.state.pool())
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

    /// Records that status `code` (message `message_id`) was accepted at `organ`, judged `judged`. Recording the
    /// same message again (a resubmission) keeps the first record.
    pub async fn record_status(
        &self,
        document_id: &str,
        organ: &str,
        message_id: &str,
        code: &str,
        judged: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO lt_document_event (ns, document_id, organ, message_id, code, judged, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ns, document_id, organ, message_id) DO NOTHING",
        )
        .bind(self.state.namespace())
        .bind(document_id)
        .bind(organ)
        .bind(message_id)
        .bind(code)
        .bind(judged)
        .bind(lienthong_bus::message::now_millis())
        .execute(self.state.pool())
        .await?;
        Ok(())
    }

    /// Every status accepted about `document_id`, by organ, in the order they were accepted.
    pub async fn status_events(&self, document_id: &str) -> Result<Vec<StatusEvent>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT organ, code, judged, message_id, at_ms FROM lt_document_event
             WHERE ns = $2 AND document_id = $1 ORDER BY organ, at_ms, message_id",
        )
        .bind(document_id)
        .bind(self.state.namespace())
        .fetch_all(self.state.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusEvent {
                    organ: r.try_get("organ")?,
                    code: r.try_get("code")?,
                    judged: r.try_get("judged")?,
                    message_id: r.try_get("message_id")?,
                    at: rfc3339_from_millis(r.try_get("at_ms")?),
                })
            })
            .collect()
    }

    /// Compare-and-set the status: succeeds only if the current value is `expected_prev` (`None` = no
    /// row yet). Returns `false` when someone else got there first.
    pub async fn set_status(
        &self,
        document_id: &str,
        organ: &str,
        expected_prev: Option<&str>,
        status: &str,
    ) -> Result<bool, sqlx::Error> {
        let done =
            match expected_prev {
                None => sqlx::query(
                    "INSERT INTO lt_document_status (document_id, organ, status, updated_ms, ns)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ns, document_id, organ) DO NOTHING",
                )
                .bind(document_id)
                .bind(organ)
                .bind(status)
                .bind(lienthong_bus::message::now_millis())
                .bind(self.state.namespace())
                .execute(self.state.pool())
                .await?,
                Some(prev) => {
                    sqlx::query(
                        "UPDATE lt_document_status SET status = $1, updated_ms = $2
                     WHERE ns = $6 AND document_id = $3 AND organ = $4 AND status = $5",
                    )
                    .bind(status)
                    .bind(lienthong_bus::message::now_millis())
                    .bind(document_id)
                    .bind(organ)
                    .bind(prev)
                    .bind(self.state.namespace())
                    .execute(self.state.pool())
                    .await?
                }
            };
        Ok(done.rows_affected() == 1)
    }
}
