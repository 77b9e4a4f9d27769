//! Delivery de-duplication: (adapter, sender, id) delivered successfully, and when.
use super::{StateError, StateStore, batch, now_ms, rfc3339_from_millis};
use sqlx::Row;

impl StateStore {
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

    /// Adapters that have delivered message `id` of `sender`, with when.
    pub async fn deliveries_of(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Vec<(String, String)>, StateError> {
        Ok(sqlx::query(
            "SELECT adapter, delivered_ms FROM lt_delivered
             WHERE ns = $1 AND sender = $2 AND message_id = $3 ORDER BY adapter",
        )
        .bind(&*self.ns)
        .bind(sender)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                r.try_get("adapter")?,
                rfc3339_from_millis(r.try_get("delivered_ms")?),
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}
