//! Ingress: from "an agency's system sent these bytes" to "every copy is confirmed by the broker".
//!
//! All transports (HTTP, AMQP, the file-in and pull sources) come through [`Ingress::submit`], so they share
//! one order of checks: parse → the caller is the sender → known type/version → schema → access rights
//! (`[[rights]]`, [`crate::rights`]) → idempotency → route
//! → publish one copy per adapter with confirms → remember the answer. Each failure has its own error code
//! (see [`crate::error::code`]); nothing is dropped silently.

pub mod amqp;
pub mod http;
pub mod identity;

use crate::adapter::{Accepted, Caller, Submission, Submit};
use crate::context::Context;
use crate::error::{ApiError, code};
use crate::message::{ContentKind, Message, Meta, new_traceparent, now_rfc3339};
use crate::plugin::{Format, Observer, Plugin, Prepared, Schemas};
use crate::router::Decision;
use crate::state::Claim;
use crate::wire::AdapterCopy;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Ingress {
    ctx: Arc<Context>,
    /// The domain's rule for party codes.
    plugin: Arc<dyn Plugin>,
    /// Formats other than the JSON envelope (by content kind).
    formats: Vec<Arc<dyn Format>>,
    observers: Vec<Arc<dyn Observer>>,
    /// bearer token → agency code
    tokens: HashMap<String, String>,
    /// RabbitMQ user → agency code
    amqp_users: HashMap<String, String>,
    /// Client certificate → agency code.
    certs: identity::CertIdentities,
    /// `[[rights]]`; None = every agency may send every type.
    rights: Option<crate::rights::Rights>,
}

impl Ingress {
    /// `creds` comes from [`crate::check::credentials`], which refuses two agencies sharing a token or a
    /// RabbitMQ user (a map would silently keep the later one, and the earlier could be impersonated).
    /// `plugin` judges party codes; `hooks` are what it plugged in (formats, observers).
    pub fn new(
        ctx: Arc<Context>,
        creds: crate::check::Credentials,
        plugin: Arc<dyn Plugin>,
        hooks: &crate::plugin::Hooks,
    ) -> Self {
        let certs = identity::CertIdentities::new(&ctx.config);
        let rights = crate::rights::Rights::new(&ctx.config);
        Self {
            ctx,
            plugin,
            formats: hooks.formats.clone(),
            observers: hooks.observers.clone(),
            tokens: creds.tokens,
            amqp_users: creds.amqp_users,
            certs,
            rights,
        }
    }

    pub fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The agency a bearer token belongs to.
    pub fn agency_for_token(&self, token: &str) -> Option<&str> {
        self.tokens.get(token).map(String::as_str)
    }

    /// The agency a verified client certificate identifies (401 `unauthenticated` when none).
    pub fn agency_for_certificate(&self, cert: &crate::tls::CertInfo) -> Result<String, ApiError> {
        self.certs.agency(self.plugin.as_ref(), cert)
    }

    /// Whether `agency` must present its client certificate (`require_mtls`: its bearer token is refused).
    pub fn requires_mtls(&self, agency: &str) -> bool {
        self.certs.requires_mtls(agency)
    }

    /// The agency a RabbitMQ user belongs to.
    pub fn agency_for_amqp_user(&self, user: &str) -> Option<&str> {
        self.amqp_users.get(user).map(String::as_str)
    }

    fn prepare_json(&self, sub: &Submission) -> Result<Prepared, ApiError> {
        let cfg = &self.ctx.config;
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
        // The sender may write any of its codes; anything else must at least be a code before it is judged.
        let from_is_caller = cfg.is_code_of(caller, &env.from);
        if !from_is_caller && let Err(e) = self.plugin.check_receiver(&env.from) {
            return Err(ApiError::new(
                code::INVALID_ENVELOPE,
                format!("not a valid envelope: {e}"),
            )
            .at("/from", e));
        }
        for (i, t) in env.to.iter().enumerate() {
            if let Err(e) = self.plugin.check_receiver(t) {
                return Err(ApiError::new(
                    code::INVALID_ENVELOPE,
                    format!("not a valid envelope: {e}"),
                )
                .at(format!("/to/{i}"), e));
            }
        }
        if !from_is_caller {
            return Err(forbidden_sender("`from`", &env.from, caller).at(
                "/from",
                "must be one of the authenticated agency's codes (`code`, `qd20_code`, `other_codes`)",
            ));
        }
        let registry = &self.ctx.registry;
        let version = resolve_version(registry, &env.kind, env.version)?;
        let payload: serde_json::Value = serde_json::from_str(env.payload.get())
            .map_err(|e| ApiError::new(code::INVALID_JSON, format!("payload: {e}")))?;
        validate(registry, "payload", &env.kind, version, &payload)?;
        let observed = self
            .observers
            .iter()
            .any(|o| o.wants(&env.kind))
            .then_some(payload);
        let id = env
            .id
            .clone()
            .or_else(|| sub.fallback_id.clone())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        Ok(Prepared {
            observed,
            client_id: env.id.clone().or_else(|| sub.fallback_id.clone()),
            message: Message {
                meta: Meta {
                    id,
                    kind: env.kind.clone(),
                    version,
                    // The sender as the bus names it, whichever of its codes it wrote.
                    from: caller.clone(),
                    to: env.to.clone(),
                    correlation_id: env.correlation_id.clone(),
                    created_at: now_rfc3339(),
                },
                content: ContentKind::Json,
                payload: sub.body.slice_ref(env.payload.get().as_bytes()),
            },
        })
    }

    /// Routes and publishes one prepared message; answers only after every copy is confirmed.
    pub(crate) async fn publish(
        &self,
        p: Prepared,
        traceparent: String,
    ) -> Result<Accepted, ApiError> {
        let ctx = &self.ctx;
        let Prepared {
            mut message,
            client_id,
            observed,
        } = p;
        let meta = &message.meta;
        // Access rights: after the sender is known (prepare checked it), before anything is looked up or routed.
        if let Some(rights) = &self.rights
            && let Err(e) = rights.check(meta)
        {
            metrics::counter!("lienthong_ingress_refused_total", "code" => e.code.as_str())
                .increment(1);
            return Err(e);
        }
        let digest = content_digest(&message);
        if let Some(id) = &client_id {
            match ctx.state.ingress_claim(&meta.from, id, &digest).await {
                Ok(Claim::Same(Some(first))) => {
                    metrics::counter!("lienthong_ingress_duplicates_total").increment(1);
                    return Ok(first);
                }
                Ok(Claim::Same(None)) => {}
                Ok(Claim::Different) => {
                    return Err(ApiError::new(
                        code::CONFLICT,
                        format!(
                            "id `{id}` was already used by {} for a different message; a resubmission must be \
                             byte for byte the same, and a new message needs a new id",
                            meta.from
                        ),
                    )
                    .at("/id", "already names a different message from this sender"));
                }
                Err(e) => {
                    tracing::error!(error = %e, "State store unavailable for the idempotency check");
                    return Err(ApiError::new(
                        code::STATE_UNAVAILABLE,
                        "the state store is unavailable; retry later",
                    ));
                }
            }
        }
        let decision = self.route(meta)?;
        let timeout = ctx.config.bus.publish_timeout.get();
        let exchange = ctx.names.deliver_exchange();
        let publishes = decision.targets.iter().map(|t| {
            let env =
                AdapterCopy::new(message.clone(), &t.route, &t.adapter, &traceparent).to_envelope();
            let exchange = exchange.clone();
            async move {
                ctx.broker
                    .publish(&exchange, &t.adapter, &env, timeout)
                    .await
            }
        });
        let confirmed = futures::future::join_all(publishes).await;
        // Every copy is settled by the broker, so the payload (a whole XML document can be 27 MB) is released
        // now rather than after the state-store writes below: the delivery worker may already be receiving the
        // same message, and the two must not be held at once.
        message.payload = Bytes::new();
        let meta = &message.meta;
        for r in confirmed {
            if let Err(e) = r {
                tracing::warn!(id = %meta.id, error = %e, "Publish not confirmed; answering 503");
                metrics::counter!("lienthong_ingress_refused_total", "code" => code::BROKER_UNAVAILABLE.as_str())
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
        // The idempotency record and the observers' writes (a plugin's tracking rows) go to the state store's
        // write lane side by side, so they usually share one group commit.
        let record = async {
            if let Some(id) = &client_id
                && let Err(e) = ctx
                    .state
                    .ingress_record(&meta.from, id, &digest, &accepted)
                    .await
            {
                // The message is safely queued; a resubmission would be de-duplicated at delivery.
                tracing::error!(id = %id, error = %e, "Could not record the idempotency key");
            }
        };
        let observe = async {
            if let Some(observed) = &observed {
                for o in self.observers.iter().filter(|o| o.wants(&meta.kind)) {
                    o.accepted(meta, observed).await;
                }
            }
        };
        futures::join!(record, observe);
        metrics::counter!("lienthong_ingress_accepted_total", "type" => meta.kind.clone())
            .increment(1);
        tracing::info!(id = %meta.id, r#type = %meta.kind, from = %meta.from, routes = ?accepted.routes, "Accepted");
        Ok(accepted)
    }
}

impl Ingress {
    /// Where a prepared message goes: every matching route and one target per adapter; `no_route` when none.
    fn route(&self, meta: &Meta) -> Result<Decision, ApiError> {
        let decision = self.ctx.router.route(&meta.kind, &meta.from, &meta.to);
        if !decision.unreachable.is_empty() {
            let mut e = ApiError::new(
                code::NO_ROUTE,
                format!(
                    "no inbox for {}: a route delivering to each receiver's inbox (`deliver = [\"@to\"]`) \
                     matched, and these receivers have no `[[agencies]] inbox`",
                    decision
                        .unreachable
                        .iter()
                        .map(|(route, to)| format!("{to} (route {route})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            for (_, to) in &decision.unreachable {
                if let Some(i) = meta.to.iter().position(|t| t == to) {
                    e = e.at(format!("/to/{i}"), format!("{to} has no inbox"));
                }
            }
            return Err(e);
        }
        if decision.targets.is_empty() || !decision.unserved.is_empty() {
            return Err(no_route(meta, &decision.unserved));
        }
        Ok(decision)
    }

    /// Parse, sender, type, schema (the JSON envelope, or the plugin's format for other content).
    async fn prepare(&self, sub: &Submission) -> Result<Prepared, ApiError> {
        match sub.content {
            ContentKind::Json => self.prepare_json(sub),
            other => match self.formats.iter().find(|f| f.content() == other) {
                Some(format) => {
                    let schemas = Schemas {
                        registry: &self.ctx.registry,
                        max_body_bytes: self.ctx.config.http.max_body_bytes,
                    };
                    format.prepare(sub, &schemas).await
                }
                None => Err(ApiError::new(
                    code::UNSUPPORTED_MEDIA_TYPE,
                    format!("this bus takes no {} messages", other.mime()),
                )),
            },
        }
    }

    /// What [`Submit::submit`] would answer, without publishing: the same checks in the same order (body
    /// size as the HTTP listener bounds it, then parse, sender, type, schema, the plugin's format and its
    /// checks, route), but no idempotency claim, no broker, no observers, no metrics. Answers the accepted
    /// routes and the adapters that would each get one copy. For `lienthong test`; a format that keeps
    /// state (a document-flow plugin) reads and writes the state store this ingress was built with, so
    /// build it on a scratch store (see [`crate::routetest`]).
    pub async fn dry_run(&self, sub: Submission) -> Result<(Accepted, Vec<String>), ApiError> {
        let max = self.ctx.config.http.max_body_bytes;
        if sub.body.len() > max {
            return Err(ApiError::new(
                code::PAYLOAD_TOO_LARGE,
                format!("the body is over http.max_body_bytes ({max} bytes)"),
            ));
        }
        let prepared = self.prepare(&sub).await?;
        let decision = self.route(&prepared.message.meta)?;
        let adapters = decision.targets.into_iter().map(|t| t.adapter).collect();
        Ok((
            Accepted {
                id: prepared.message.meta.id,
                routes: decision.routes,
            },
            adapters,
        ))
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
        let prepared = self.prepare(&sub).await;
        // The prepared message holds what it needs of the body; `publish` releases it once confirmed.
        drop(sub);
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                metrics::counter!("lienthong_ingress_refused_total", "code" => e.code.as_str())
                    .increment(1);
                return Err(e);
            }
        };
        self.publish(prepared, traceparent).await
    }
}

/// 403 for a sender code (`what`, e.g. "`from`") that is not one of the caller's codes.
pub fn forbidden_sender(what: &str, written: &str, caller: &str) -> ApiError {
    ApiError::new(
        code::FORBIDDEN,
        format!(
            "{what} is {written}, which is not a code of {caller}, the agency the caller is authenticated as"
        ),
    )
}

/// 422 `no_route`: nothing carries the message, or some addressee would get nothing. Every such addressee is
/// named, in the message and as a detail at `/to/<its position in the message's receivers>`; nothing is sent.
fn no_route(meta: &Meta, unserved: &[usize]) -> ApiError {
    let names: Vec<&str> = unserved.iter().map(|i| meta.to[*i].as_str()).collect();
    let message = if names.is_empty() {
        format!(
            "no route carries `{}` from {} to [{}]",
            meta.kind,
            meta.from,
            meta.to.join(", ")
        )
    } else {
        format!(
            "no route carries `{}` from {} to {} (of receivers [{}]); nothing was sent",
            meta.kind,
            meta.from,
            names.join(", "),
            meta.to.join(", ")
        )
    };
    let mut e = ApiError::new(code::NO_ROUTE, message);
    for (i, name) in unserved.iter().zip(&names) {
        e = e.at(
            format!("/to/{i}"),
            format!("no route serves receiver `{name}`"),
        );
    }
    e
}

/// What makes two submissions under one id the same message: everything that is delivered (type, version,
/// receivers, correlation id, format and the payload bytes), as a SHA-256 hex digest. Times and transport
/// details are left out, so a resubmission of the same message is recognised whichever channel brings it.
fn content_digest(m: &Message) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(m.meta.kind.as_bytes());
    field(&m.meta.version.to_be_bytes());
    for to in &m.meta.to {
        field(to.as_bytes());
    }
    field(
        m.meta
            .correlation_id
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    field(match m.content {
        ContentKind::Json => b"json",
        ContentKind::Xml => b"xml",
    });
    field(&m.payload);
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

pub(crate) use crate::schema::{resolve_version, validate};

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
