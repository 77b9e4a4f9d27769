//! Ingress: from "an agency's system sent these bytes" to "every copy is confirmed by the broker".
//!
//! All transports (HTTP, AMQP, the file-in and pull sources) come through [`Ingress::submit`], so they share
//! one order of checks: parse → the caller is the sender → known type/version → schema → idempotency → route
//! → publish one copy per adapter with confirms → remember the answer. Each failure has its own error code
//! (see [`crate::error::code`]); nothing is dropped silently.

pub mod amqp;
pub mod http;
pub(crate) mod xml;

use crate::adapter::{Accepted, Caller, Submission, Submit};
use crate::error::{ApiError, code};
use crate::message::{ContentKind, Message, Meta, new_traceparent, now_rfc3339};
use crate::runtime::Shared;
use crate::wire::Copy;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// The validated, routed message, ready to publish.
pub(crate) struct Prepared {
    pub message: Message,
    /// Client-chosen id (idempotency key) if any.
    pub client_id: Option<String>,
    /// What a `dossier.*` message says about its dossier, for tracking.
    pub dossier: Option<crate::state::DossierFacts>,
}

/// Picks the tracking facts out of a dossier payload (portal field names).
fn dossier_facts(kind: &str, payload: &serde_json::Value) -> Option<crate::state::DossierFacts> {
    if !kind.starts_with("dossier.") {
        return None;
    }
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let n = |k: &str| {
        payload.get(k).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(crate::state::DossierFacts {
        code: s("MaHoSo")?,
        status: n("TrangThaiHoSo").or_else(|| n("TrangThai")),
        local_status: s("TrangThaiNoiBo"),
        received: s("NgayTiepNhan"),
        due: s("NgayHenTra").or_else(|| s("NgayKetThucTheoQuyDinh")),
        finished: s("NgayKetThucXuLy").or_else(|| s("NgayTra")),
        note: s("NoiDungXuLy").map(|t| t.chars().take(200).collect()),
        ..Default::default()
    })
}

pub struct Ingress {
    shared: Arc<Shared>,
    /// bearer token → agency code
    tokens: HashMap<String, String>,
    /// RabbitMQ user → agency code
    amqp_users: HashMap<String, String>,
}

impl Ingress {
    /// `creds` comes from [`crate::check::credentials`], which refuses two agencies sharing a token or a
    /// RabbitMQ user (a map would silently keep the later one, and the earlier could be impersonated).
    pub fn new(shared: Arc<Shared>, creds: crate::check::Credentials) -> Self {
        Self {
            shared,
            tokens: creds.tokens,
            amqp_users: creds.amqp_users,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The agency a bearer token belongs to.
    pub fn agency_for_token(&self, token: &str) -> Option<&str> {
        self.tokens.get(token).map(String::as_str)
    }

    /// The agency a RabbitMQ user belongs to.
    pub fn agency_for_amqp_user(&self, user: &str) -> Option<&str> {
        self.amqp_users.get(user).map(String::as_str)
    }

    fn prepare_json(&self, sub: &Submission) -> Result<Prepared, ApiError> {
        let cfg = &self.shared.config;
        let env =
            crate::envelope::parse(&sub.body, cfg.http.max_json_depth).map_err(|e| match e {
                crate::envelope::EnvelopeError::InvalidJson(m) => {
                    ApiError::new(code::INVALID_JSON, m)
                }
                crate::envelope::EnvelopeError::DuplicateKey { path, message } => {
                    let e = ApiError::new(
                        code::INVALID_JSON,
                        "the same key appears twice in one JSON object",
                    );
                    if path.is_empty() {
                        e
                    } else {
                        e.at(path, message)
                    }
                }
                crate::envelope::EnvelopeError::InvalidEnvelope { path, message } => {
                    let e = ApiError::new(
                        code::INVALID_ENVELOPE,
                        format!("not a valid envelope: {message}"),
                    );
                    if path.is_empty() {
                        e
                    } else {
                        e.at(path, message)
                    }
                }
            })?;
        let Caller::Agency(caller) = &sub.caller;
        if &env.from != caller {
            return Err(ApiError::new(
                code::FORBIDDEN,
                format!(
                    "`from` is {} but the caller is authenticated as {caller}",
                    env.from
                ),
            )
            .at("/from", "must be the authenticated agency"));
        }
        let version = self.resolve_version(&env.kind, env.version)?;
        let payload: serde_json::Value = serde_json::from_str(env.payload.get())
            .map_err(|e| ApiError::new(code::INVALID_JSON, format!("payload: {e}")))?;
        if let Err(details) = self.shared.registry.validate(&env.kind, version, &payload) {
            let n = details.len();
            return Err(ApiError {
                code: code::SCHEMA_VIOLATION,
                message: format!("payload violates {} v{version}: {n} problem(s)", env.kind),
                details,
            });
        }
        let id = env
            .id
            .clone()
            .or_else(|| sub.fallback_id.clone())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        Ok(Prepared {
            dossier: dossier_facts(&env.kind, &payload),
            client_id: env.id.clone().or_else(|| sub.fallback_id.clone()),
            message: Message {
                meta: Meta {
                    id,
                    kind: env.kind.clone(),
                    version,
                    from: env.from.clone(),
                    to: env.to.clone(),
                    correlation_id: env.correlation_id.clone(),
                    created_at: now_rfc3339(),
                },
                content: ContentKind::Json,
                payload: sub.body.slice_ref(env.payload.get().as_bytes()),
            },
        })
    }

    /// The schema version to use: the one asked for, or the highest present.
    pub(crate) fn resolve_version(&self, kind: &str, asked: Option<u32>) -> Result<u32, ApiError> {
        let versions = self.shared.registry.versions(kind);
        if versions.is_empty() {
            return Err(ApiError::new(
                code::UNKNOWN_TYPE,
                format!("no schema for message type `{kind}`"),
            )
            .at(
                "/type",
                format!("known types: {}", self.shared.registry.types().join(", ")),
            ));
        }
        match asked {
            None => Ok(*versions.last().expect("non-empty")),
            Some(v) if versions.contains(&v) => Ok(v),
            Some(v) => {
                Err(
                    ApiError::new(code::UNKNOWN_TYPE, format!("`{kind}` has no version {v}")).at(
                        "/version",
                        format!(
                            "known versions: {}",
                            versions
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                )
            }
        }
    }

    /// Routes and publishes one prepared message; answers only after every copy is confirmed.
    pub(crate) async fn publish(
        &self,
        p: Prepared,
        traceparent: String,
    ) -> Result<Accepted, ApiError> {
        let shared = &self.shared;
        let Prepared {
            mut message,
            client_id,
            dossier,
        } = p;
        let meta = &message.meta;
        if let Some(id) = &client_id {
            match shared.state.ingress_lookup(&meta.from, id).await {
                Ok(Some(first)) => {
                    metrics::counter!("lienthong_ingress_duplicates_total").increment(1);
                    return Ok(first);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "State store unavailable for the idempotency check");
                    return Err(ApiError::new(
                        code::STATE_UNAVAILABLE,
                        "the state store is unavailable; retry later",
                    ));
                }
            }
        }
        let decision = shared.router.route(&meta.kind, &meta.from, &meta.to);
        if decision.targets.is_empty() {
            return Err(ApiError::new(
                code::NO_ROUTE,
                format!(
                    "no route carries `{}` from {} to [{}]",
                    meta.kind,
                    meta.from,
                    meta.to.join(", ")
                ),
            ));
        }
        let timeout = shared.config.bus.publish_timeout.get();
        let exchange = shared.names.deliver_exchange();
        let publishes = decision.targets.iter().map(|t| {
            let env = Copy::new(message.clone(), &t.route, &t.adapter, &traceparent).to_envelope();
            let exchange = exchange.clone();
            async move {
                shared
                    .broker
                    .publish(&exchange, &t.adapter, &env, timeout)
                    .await
            }
        });
        let confirmed = futures::future::join_all(publishes).await;
        // Every copy is settled by the broker, so the payload (a whole edXML package can be 27 MB) is released
        // now rather than after the state-store writes below: the delivery worker may already be receiving the
        // same message, and the two must not be held at once.
        message.payload = Bytes::new();
        let meta = &message.meta;
        for r in confirmed {
            if let Err(e) = r {
                tracing::warn!(id = %meta.id, error = %e, "Publish not confirmed; answering 503");
                metrics::counter!("lienthong_ingress_refused_total", "code" => code::BROKER_UNAVAILABLE)
                    .increment(1);
                return Err(ApiError::new(
                    code::BROKER_UNAVAILABLE,
                    format!("the broker did not confirm the message ({e}); retry with the same id"),
                ));
            }
        }
        let accepted = Accepted {
            id: meta.id.clone(),
            routes: decision.routes,
        };
        if let Some(id) = &client_id
            && let Err(e) = shared.state.ingress_record(&meta.from, id, &accepted).await
        {
            // The message is safely queued; a resubmission would be de-duplicated at delivery.
            tracing::error!(id = %id, error = %e, "Could not record the idempotency key");
        }
        if let Some(mut facts) = dossier {
            facts.sender = meta.from.clone();
            facts.kind = meta.kind.clone();
            facts.message_id = meta.id.clone();
            if let Err(e) = shared.state.dossier_record(&facts).await {
                tracing::warn!(dossier = %facts.code, error = %e, "Could not record dossier tracking");
            }
        }
        metrics::counter!("lienthong_ingress_accepted_total", "type" => meta.kind.clone())
            .increment(1);
        tracing::info!(id = %meta.id, r#type = %meta.kind, from = %meta.from, routes = ?accepted.routes, "Accepted");
        Ok(accepted)
    }
}

#[async_trait]
impl Submit for Ingress {
    async fn submit(&self, sub: Submission) -> Result<Accepted, ApiError> {
        let traceparent = sub
            .traceparent
            .clone()
            .filter(|t| crate::message::is_traceparent(t))
            .unwrap_or_else(new_traceparent);
        let prepared = match sub.content {
            ContentKind::Json => self.prepare_json(&sub),
            ContentKind::Xml => xml::prepare(self, &sub).await,
        };
        // The prepared message holds what it needs of the body; `publish` releases it once confirmed.
        drop(sub);
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                metrics::counter!("lienthong_ingress_refused_total", "code" => e.code).increment(1);
                return Err(e);
            }
        };
        self.publish(prepared, traceparent).await
    }
}

/// Convenience for transports: a submission of `body` by `agency`.
pub fn submission(agency: &str, content: ContentKind, body: Bytes) -> Submission {
    Submission {
        caller: Caller::Agency(agency.to_owned()),
        content,
        body,
        traceparent: None,
        fallback_id: None,
    }
}
