//! Durable state: ingress idempotency, delivery de-duplication, the dead-letter parking lot and the audit log.
//! (temporary stub with the agreed API — the real store is being implemented)
#![allow(unused_variables, clippy::unused_async)]

pub use crate::adapter::Accepted;

#[derive(Debug, thiserror::Error)]
#[error("state store error: {0}")]
pub struct StateError(pub String);

#[derive(Clone)]
pub struct StateStore;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DlqEntry {
    pub id: String,
    pub adapter: String,
    pub route: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: String,
    pub reason: String,
    pub last_error: Option<String>,
    pub status: Option<i64>,
    pub body_excerpt: Option<String>,
    pub attempts: u32,
    pub first_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub dead_lettered_at: String,
    pub state: String,
    pub content_type: String,
    pub headers: serde_json::Value,
    #[serde(skip)]
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub adapter: String,
    pub id: String,
    pub detail: String,
}

impl StateStore {
    pub async fn connect(url: &str) -> Result<Self, StateError> {
        Ok(Self)
    }
    pub fn backend(&self) -> &'static str {
        "stub"
    }
    pub async fn ingress_lookup(
        &self,
        sender: &str,
        id: &str,
    ) -> Result<Option<Accepted>, StateError> {
        Ok(None)
    }
    pub async fn ingress_record(
        &self,
        sender: &str,
        id: &str,
        accepted: &Accepted,
    ) -> Result<(), StateError> {
        Ok(())
    }
    pub async fn was_delivered(&self, adapter: &str, id: &str) -> Result<bool, StateError> {
        Ok(false)
    }
    pub async fn mark_delivered(&self, adapter: &str, id: &str) -> Result<(), StateError> {
        Ok(())
    }
    pub async fn park(&self, entry: &DlqEntry) -> Result<(), StateError> {
        Ok(())
    }
    pub async fn dlq_list(&self, adapter: Option<&str>) -> Result<Vec<DlqEntry>, StateError> {
        Ok(vec![])
    }
    pub async fn dlq_get(
        &self,
        id: &str,
        adapter: Option<&str>,
    ) -> Result<Vec<DlqEntry>, StateError> {
        Ok(vec![])
    }
    pub async fn dlq_set_state(
        &self,
        adapter: &str,
        id: &str,
        from_state: &str,
        to_state: &str,
    ) -> Result<bool, StateError> {
        Ok(true)
    }
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        adapter: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        Ok(())
    }
    pub async fn audit_list(&self, limit: u32) -> Result<Vec<AuditEntry>, StateError> {
        Ok(vec![])
    }
    pub async fn document_status(
        &self,
        document_id: &str,
        organ: &str,
    ) -> Result<Option<String>, StateError> {
        Ok(None)
    }
    pub async fn set_document_status(
        &self,
        document_id: &str,
        organ: &str,
        expected_prev: Option<&str>,
        status: &str,
    ) -> Result<bool, StateError> {
        Ok(true)
    }
    pub async fn prune(&self, older_than: std::time::Duration) -> Result<u64, StateError> {
        Ok(0)
    }
}
