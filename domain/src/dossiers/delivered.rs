//! What the bus delivered about a dossier: whether a message of a given type about one `MaHoSo` was
//! delivered to an adapter — the dossier's events (`lt_dossier_event`) joined with the core's delivery
//! records (`lt_delivered`). The portal adapter asks it before taking the portal's "does not exist" for a
//! progress row as final: while the dossier's insert has not been delivered there, it is not.

use async_trait::async_trait;
use lienthong_bus::adapter::Deliveries;
use lienthong_bus::state::StateStore;
use sqlx::Row;

/// [`Deliveries`] over the dossier events of this bus's namespace.
pub struct Delivered {
    pub state: StateStore,
}

#[async_trait]
impl Deliveries for Delivered {
    async fn delivered_about(
        &self,
        adapter: &str,
        kind: &str,
        subject: &str,
    ) -> Result<bool, String> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM lt_dossier_event e JOIN lt_delivered d
               ON d.ns = e.ns AND d.sender = e.sender AND d.message_id = e.message_id
             WHERE e.ns = $1 AND e.code = $2 AND e.kind = $3 AND d.adapter = $4",
        )
        .bind(self.state.namespace())
        .bind(subject)
        .bind(kind)
        .bind(adapter)
        .fetch_one(self.state.pool())
        .await
        .map_err(|e| e.to_string())?;
        let n: i64 = row.try_get("n").map_err(|e| e.to_string())?;
        Ok(n > 0)
    }
}
