//! The audit log of operator actions (replays, purges), with who did them.
use super::{StateError, StateStore, now_ms, rfc3339_from_millis};
use sqlx::Row;

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

impl StateStore {
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
}
