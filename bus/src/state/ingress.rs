//! Ingress idempotency: (sender, client id) → the digest of what was sent and the first `202`.
use super::{Accepted, StateError, StateStore, batch, now_ms};
pub use batch::Claim;
use sqlx::Row;

impl StateStore {
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

    /// When (sender, client id) was first claimed, in milliseconds since the epoch; none if it never was.
    /// Read only when a claim finds a submission of the same content still being published (rare).
    pub async fn ingress_claimed_at(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Option<i64>, StateError> {
        let row = sqlx::query(
            "SELECT created_ms FROM lt_ingress WHERE ns = $1 AND sender = $2 AND client_id = $3",
        )
        .bind(&*self.ns)
        .bind(sender)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("created_ms")?),
            None => None,
        })
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
}
