//! Ingress: from "an agency's system sent these bytes" to "every copy is confirmed by the broker".
//!
//! All transports (HTTP, AMQP, the file-in and pull sources) come through [`Ingress::submit`], so they share
//! one order of checks: parse → the caller is the sender → known type/version → schema → access rights
//! (`[[rights]]`, [`crate::rights`]) → route and order keys → idempotency
//! → publish one copy per adapter with confirms → remember the answer. Each failure has its own error code
//! (see [`crate::error::code`]) and is counted in `lienthong_ingress_refused_total{code}`; nothing is dropped
//! silently, and a message refused before the idempotency claim does not take its id.

pub mod amqp;
pub mod http;
pub mod identity;
mod proof;
mod route;

use proof::BodyProof;
use route::route;

use crate::adapter::{Accepted, Caller, Submission, Submit};
use crate::context::Context;
use crate::error::{ApiError, code};
use crate::http_api::{NoBearer, bearer_token};
use crate::live::Snapshot;
use crate::message::{ContentKind, Message, Meta, new_traceparent, now_rfc3339, trace_id};
use crate::meters::Counters;
use crate::plugin::{Format, Observer, Plugin, Prepared, Schemas};
use crate::state::Claim;
use crate::wire::AdapterCopy;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

pub struct Ingress {
    ctx: Arc<Context>,
    /// The domain's rule for party codes.
    plugin: Arc<dyn Plugin>,
    /// Formats other than the JSON envelope (by content kind).
    formats: Vec<Arc<dyn Format>>,
    observers: Vec<Arc<dyn Observer>>,
    /// The broker layout new copies are written in (resolved once from the config: see `Config::copy_layout`).
    layout: u8,
    /// `lienthong_ingress_accepted_total` by type, `lienthong_route_messages_total{outcome="accepted"}` by route.
    accepted_by_type: Counters,
    accepted_by_route: Counters,
}

impl Ingress {
    /// Credentials, rights, schemas and routes are read from the snapshot in force
    /// ([`crate::live::Live::current`], taken once per message). `plugin` judges party codes; `hooks` are what
    /// it plugged in (formats, observers).
    pub fn new(ctx: Arc<Context>, plugin: Arc<dyn Plugin>, hooks: &crate::plugin::Hooks) -> Self {
        Self {
            layout: ctx.config.copy_layout(),
            accepted_by_type: Counters::new("lienthong_ingress_accepted_total", "type"),
            accepted_by_route: Counters::new("lienthong_route_messages_total", "route")
                .with("outcome", "accepted"),
            ctx,
            plugin,
            formats: hooks.formats.clone(),
            observers: hooks.observers.clone(),
        }
    }

    /// The plugin's OpenAPI document, if it has one.
    pub fn openapi(&self) -> Option<&'static str> {
        self.plugin.openapi()
    }

    pub fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The agency a bearer token belongs to, by the config in force.
    pub fn agency_for_token(&self, token: &str) -> Option<String> {
        self.ctx.live.current().access.tokens.get(token).cloned()
    }

    /// The agency a verified client certificate identifies (401 `unauthenticated` when none).
    pub fn agency_for_certificate(&self, cert: &crate::tls::CertInfo) -> Result<String, ApiError> {
        self.ctx
            .live
            .current()
            .access
            .certs
            .agency(self.plugin.as_ref(), cert)
    }

    /// Whether `agency` must present its client certificate (`require_mtls`: its bearer token is refused).
    pub fn requires_mtls(&self, agency: &str) -> bool {
        self.ctx.live.current().access.certs.requires_mtls(agency)
    }

    /// The calling agency, from its verified client certificate, its bearer token, or both (then they must
    /// agree). An agency with `require_mtls` is refused on its token alone. Every refusal is 401.
    pub(crate) fn caller(
        &self,
        headers: &axum::http::HeaderMap,
        cert: Option<&crate::tls::CertInfo>,
    ) -> Result<String, ApiError> {
        let unauthenticated = |m: String| ApiError::new(code::UNAUTHENTICATED, m);
        let by_cert = cert.map(|c| self.agency_for_certificate(c)).transpose()?;
        let by_token = match bearer_token(headers) {
            Ok(token) => Some(
                self.agency_for_token(token)
                    .ok_or_else(|| unauthenticated("unknown bearer token".into()))?,
            ),
            Err(NoBearer::Missing) if by_cert.is_some() => None,
            Err(e) => {
                return Err(unauthenticated(
                    match e {
                        NoBearer::Missing => {
                            "missing `Authorization: Bearer <token>` (or a client certificate)"
                        }
                        NoBearer::NotBearer => "Authorization must be `Bearer <token>`",
                    }
                    .into(),
                ));
            }
        };
        match (by_cert, by_token) {
            (Some(a), Some(b)) if a != b => Err(unauthenticated(format!(
                "the client certificate identifies agency {a} but the bearer token is agency {b}'s"
            ))),
            (Some(a), _) => Ok(a),
            (None, Some(b)) if self.requires_mtls(&b) => Err(unauthenticated(format!(
                "agency {b} must present its client certificate (require_mtls); its bearer token alone is refused"
            ))),
            (None, Some(b)) => Ok(b),
            (None, None) => Err(unauthenticated(
                "missing `Authorization: Bearer <token>` (or a client certificate)".into(),
            )),
        }
    }

    /// The agency a RabbitMQ user belongs to.
    pub fn agency_for_amqp_user(&self, user: &str) -> Option<String> {
        self.ctx.live.current().access.amqp_users.get(user).cloned()
    }

    fn prepare_json(&self, live: &Snapshot, sub: &Submission) -> Result<Prepared, ApiError> {
        let cfg = &live.config;
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
        let registry = &live.registry;
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

    /// The answer of the submission that claimed (`sender`, `id`) first and is still publishing, once it is
    /// recorded; none when the claim is older than a publish may take (`bus.publish_timeout` and a second
    /// more), or becomes so while waiting: that submission died or was refused, and this one goes ahead.
    async fn await_first(&self, sender: &str, id: &str) -> Result<Option<Accepted>, ApiError> {
        let state = &self.ctx.state;
        let unavailable = idempotency_unavailable;
        let window = self.ctx.config.bus.publish_timeout.get() + std::time::Duration::from_secs(1);
        let Some(claimed) = state
            .ingress_claimed_at(sender, id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let claimed =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(claimed.max(0) as u64);
        let until = claimed + window;
        let mut pause = std::time::Duration::from_millis(5);
        while std::time::SystemTime::now() < until {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
            if let Some(first) = state
                .ingress_lookup(sender, id)
                .await
                .map_err(unavailable)?
            {
                return Ok(Some(first));
            }
        }
        Ok(None)
    }

    /// Routes and publishes one prepared message; answers only after every copy is confirmed.
    pub(crate) async fn publish(
        &self,
        live: &Snapshot,
        p: Prepared,
        traceparent: String,
        proof: Option<BodyProof>,
    ) -> Result<Accepted, ApiError> {
        let ctx = &self.ctx;
        let Prepared {
            mut message,
            client_id,
            observed,
        } = p;
        let meta = &message.meta;
        // Access rights: after the sender is known (prepare checked it), before anything is looked up or routed.
        if let Some(rights) = &live.access.rights {
            rights.check(meta)?;
        }
        // Routes and order keys before the idempotency claim: a message refused for going nowhere or lacking its
        // key must not hold its id, so the corrected message can be sent under it.
        let decision = route(live, meta)?;
        let orders = self.order_keys(live, &message, &decision)?;
        let digest = content_digest(&message);
        if let Some(id) = &client_id {
            match ctx.state.ingress_claim(&meta.from, id, &digest).await {
                Ok(Claim::Same(Some(first))) => {
                    metrics::counter!("lienthong_ingress_duplicates_total").increment(1);
                    return Ok(first);
                }
                Ok(Claim::Won) => {}
                Ok(Claim::Same(None)) => {
                    // The same message, claimed by a submission still being published (here or by another
                    // process sharing the state store): wait for its answer rather than publish a second copy
                    // that two processes could deliver at once. A claim older than a publish can take is one
                    // whose submission died or failed: publish it again (delivery de-duplicates).
                    if let Some(first) = self.await_first(&meta.from, id).await? {
                        metrics::counter!("lienthong_ingress_duplicates_total").increment(1);
                        return Ok(first);
                    }
                }
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
                Err(e) => return Err(idempotency_unavailable(e)),
            }
        }
        let timeout = ctx.config.bus.publish_timeout.get();
        let publishes = decision.targets.iter().zip(orders).map(|(t, order)| {
            let copy = AdapterCopy::new(message.clone(), &t.route, &t.adapter, &traceparent)
                .in_layout(self.layout);
            // An ordered copy goes to its key's partition queue, an unordered one to the adapter's queue.
            let (exchange, key, env) = match order {
                Some((key, p)) => (
                    ctx.names.order_exchange(),
                    ctx.names.order_routing_key(&t.adapter, p),
                    copy.ordered(key, p).to_envelope(),
                ),
                None => (
                    ctx.names.deliver_exchange(),
                    t.adapter.clone(),
                    copy.to_envelope(),
                ),
            };
            async move { ctx.broker.publish(&exchange, &key, &env, timeout).await }
        });
        let confirmed = futures::future::join_all(publishes).await;
        // Every copy is settled by the broker, so the payload (a whole XML document can be 27 MB) is released
        // now rather than after the state-store writes below: the delivery worker may already be receiving the
        // same message, and the two must not be held at once.
        message.payload = Bytes::new();
        let meta = &message.meta;
        for r in confirmed {
            if let Err(e) = r {
                tracing::warn!(id = %meta.id, trace_id = %trace_id(&traceparent), error = %e, "Publish not confirmed; answering 503");
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
        // The idempotency record, the evidence record and the observers' writes (a plugin's tracking rows) go
        // to the state store's write lane side by side, so they usually share one group commit.
        let record = async {
            match &client_id {
                Some(id) => {
                    ctx.state
                        .ingress_record(&meta.from, id, &digest, &accepted)
                        .await
                }
                None => Ok(()),
            }
        };
        let evidence = async {
            match proof {
                Some(proof) => ctx.state.record(proof.accepted(meta, &accepted)).await,
                None => Ok(()),
            }
        };
        let observe = async {
            if let Some(observed) = &observed {
                for o in self.observers.iter().filter(|o| o.wants(&meta.kind)) {
                    o.accepted(meta, observed).await;
                }
            }
        };
        let (recorded, evidenced, ()) = tokio::join!(record, evidence, observe);
        if let Err(e) = recorded {
            // The message is safely queued; a resubmission would be de-duplicated at delivery.
            tracing::error!(id = %meta.id, trace_id = %trace_id(&traceparent), error = %e, "Could not record the idempotency key");
        }
        if let Err(e) = evidenced {
            metrics::counter!("lienthong_evidence_failures_total").increment(1);
            tracing::error!(id = %meta.id, trace_id = %trace_id(&traceparent), error = %e, "Accepted, but the evidence record could not be written");
        }
        self.accepted_by_type.get(&meta.kind).increment(1);
        for route in &accepted.routes {
            self.accepted_by_route.get(route).increment(1);
        }
        tracing::info!(id = %meta.id, trace_id = %trace_id(&traceparent), r#type = %meta.kind, from = %meta.from, routes = ?accepted.routes, "Accepted");
        Ok(accepted)
    }
}

impl Ingress {
    /// Parse, sender, type, schema (the JSON envelope, or the plugin's format for other content).
    async fn prepare(&self, live: &Snapshot, sub: &Submission) -> Result<Prepared, ApiError> {
        match sub.content {
            ContentKind::Json => self.prepare_json(live, sub),
            other => match self.formats.iter().find(|f| f.content() == other) {
                Some(format) => {
                    let schemas = Schemas {
                        registry: &live.registry,
                        max_body_bytes: self.ctx.config.http.max_body_bytes,
                        config: &live.config,
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
        let live = self.ctx.live.current();
        let prepared = self.prepare(&live, &sub).await?;
        let decision = route(&live, &prepared.message.meta)?;
        self.order_keys(&live, &prepared.message, &decision)?;
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
        // One config for the whole message, even if a reload lands meanwhile.
        let live = self.ctx.live.current();
        let prepared = self.prepare(&live, &sub).await;
        let proof = BodyProof::of(&self.ctx.state, &sub);
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                let e = counted(e);
                if let Some(proof) = &proof {
                    // Refused before it was read whole, the message is still named by the id it claims (if it
                    // has a readable one), so its refusal is found by that id in the evidence log.
                    let named = proof::claimed_id(&sub).map(|id| (proof.caller().to_owned(), id));
                    self.refused(proof.refused(named.as_ref(), &e)).await;
                }
                return Err(e);
            }
        };
        // The prepared message holds what it needs of the body; `publish` releases it once confirmed.
        drop(sub);
        let named = proof.as_ref().map(|_| {
            (
                prepared.message.meta.from.clone(),
                prepared.message.meta.id.clone(),
            )
        });
        let refusal = proof.clone();
        // Every refusal after preparing is counted here: rights, route, order key, id conflict, state or broker
        // unavailable.
        let answer = self
            .publish(&live, prepared, traceparent, proof)
            .await
            .map_err(counted);
        if let (Err(e), Some(proof)) = (&answer, refusal) {
            self.refused(proof.refused(named.as_ref(), e)).await;
        }
        answer
    }
}

/// Counts a refusal in `lienthong_ingress_refused_total{code}` and hands it back: the one place every
/// transport's own refusals (before the shared pipeline) and the pipeline's are counted.
pub(crate) fn counted(e: ApiError) -> ApiError {
    metrics::counter!("lienthong_ingress_refused_total", "code" => e.code.as_str()).increment(1);
    e
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

/// What makes two submissions under one id the same message: everything that is delivered (type, version,
/// receivers, correlation id, format and the payload bytes), as a SHA-256 hex digest. Times and transport
/// details are left out, so a resubmission of the same message is recognised whichever channel brings it.
/// The answer when the idempotency check cannot reach the state store (logged; the client retries).
fn idempotency_unavailable(e: crate::state::StateError) -> ApiError {
    tracing::error!(error = %e, "State store unavailable for the idempotency check");
    ApiError::new(
        code::STATE_UNAVAILABLE,
        "the state store is unavailable; retry later",
    )
}

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
    crate::hex::lower(&h.finalize())
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
