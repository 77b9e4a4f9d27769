//! What the evidence log learns from ingress: a submission's body proof, and the record of a refusal.

use super::Ingress;
use crate::adapter::{Accepted, Caller, Submission};
use crate::error::ApiError;
use crate::message::Meta;
use bytes::Bytes;

impl Ingress {
    /// Appends a refusal to the evidence log (a failure to is logged; the refusal stands either way).
    pub(super) async fn refused(&self, event: crate::evidence::Event) {
        if let Err(e) = self.ctx.state.record(event).await {
            metrics::counter!("lienthong_evidence_failures_total").increment(1);
            tracing::error!(error = %e, "The evidence record of a refusal could not be written");
        }
    }
}

/// What the evidence log keeps of a submission's body: its SHA-256 (of the exact bytes received), the bytes
/// themselves with `store_payloads`, and who sent it. Only made when `[evidence]` is on.
#[derive(Clone)]
pub(crate) struct BodyProof {
    caller: String,
    sha256: String,
    body: Option<Bytes>,
}

impl BodyProof {
    pub(super) fn of(state: &crate::state::StateStore, sub: &Submission) -> Option<Self> {
        if !state.evidence_on() {
            return None;
        }
        let Caller::Agency(caller) = &sub.caller;
        Some(Self {
            caller: caller.clone(),
            sha256: crate::evidence::sha256_hex(&sub.body),
            body: state.evidence_keeps_payloads().then(|| sub.body.clone()),
        })
    }

    pub(super) fn accepted(self, meta: &Meta, accepted: &Accepted) -> crate::evidence::Event {
        let mut event =
            crate::evidence::Event::new(crate::evidence::Kind::Accepted, &meta.from, &meta.id)
                .with("body_sha256", self.sha256)
                .with("type", meta.kind.clone())
                .with("version", meta.version)
                .with("to", meta.to.clone())
                .with("routes", accepted.routes.clone());
        event.payload = self.body;
        event
    }

    /// The authenticated agency that sent the submission.
    pub(super) fn caller(&self) -> &str {
        &self.caller
    }

    /// A refusal of this submission; `named` is (sender, id) once the message was read that far.
    pub(super) fn refused(
        &self,
        named: Option<&(String, String)>,
        e: &ApiError,
    ) -> crate::evidence::Event {
        let (sender, id) = named
            .map(|(s, i)| (s.as_str(), i.as_str()))
            .unwrap_or((self.caller.as_str(), ""));
        crate::evidence::Event::new(crate::evidence::Kind::Refused, sender, id)
            .with("body_sha256", self.sha256.clone())
            .with("code", e.code.as_str())
    }
}

/// The `id` a JSON envelope claims, read loosely from a body that was refused (so not necessarily a valid
/// envelope): only a top-level string that is a well-formed message id; anything else names nothing.
pub(super) fn claimed_id(sub: &Submission) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claimed<'a> {
        #[serde(borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    if sub.content != crate::message::ContentKind::Json {
        return None;
    }
    let claimed: Claimed<'_> = serde_json::from_slice(&sub.body).ok()?;
    claimed
        .id
        .filter(|id| crate::envelope::is_message_id(id))
        .map(|id| id.into_owned())
}
