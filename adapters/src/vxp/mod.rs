//! `vxp-pull`: pulls edXML documents addressed to a local agency from the national document axis (VXP/VDXP,
//! run by the Government Office; its API as this adapter uses it is described below) and hands them to the bus.
//!
//! # Axis API (as modelled here)
//!
//! The VNPT SDK's operations over plain JSON/HTTP. Every request carries the headers `systemId` and `secretKey`
//! (issued by the axis operator; the key is never logged, and goes to `base_url` only: no redirect is followed,
//! see `crate::http_client`), `from` (the local agency's QCVN 102 code, `agency`), `servicetype` (`eDoc` for
//! documents, `status` for status packages; each of `service_types` is pulled in turn, every call of that round
//! carrying it) and `messagetype` (`edoc` or `status`, the same choice in the SDK's lower-case spelling; an
//! assumption, as the SDK's documentation gives the header but not its values).
//!
//! - `GET {base_url}/getReceivedEdocList` → `{"status": "OK", "data": [{"docId": "...", "from": "<QCVN code>"}]}`:
//!   the documents waiting for us. `from` is optional; other fields are ignored. On failure the axis answers a
//!   non-2xx status or `{"status": "FAIL", "ErrorCode": ..., "ErrorDesc": ...}`.
//! - `GET {base_url}/getEdoc?docId=<id>` → the edXML package bytes (`Content-Type: application/xml`). A JSON
//!   answer is an error.
//! - `POST {base_url}/updateStatus` with `{"docId", "status": "done" | "fail", "reason"}` (`reason` only with
//!   `fail`) → `{"status": "OK"}`.
//!
//! # Pull and acknowledgement
//!
//! Every `poll_interval`: list → for each document: fetch → submit to the bus → mark. A document is marked
//! `done` only after [`Submit::submit`] returned `Ok`, which means the broker confirmed every copy; it is marked
//! `fail` (with the bus's error code, message and details as the reason) only when the bus refused it for good
//! (a 4xx error other than 409 `conflict`), or when the package is larger than the bus accepts
//! (`http.max_body_bytes`) or names no sender. Anything else — the list or the fetch failing, the bus answering
//! 5xx (broker down) or 409 (a status for the same document arrived at the same time), the mark call failing,
//! a crash or shutdown at any point — leaves the document pending at the axis, and the next poll (or the next
//! run) submits it again. The bus identifies an edXML package by what it is (sender and DocumentId; see
//! `bus/src/ingress/xml.rs`), so a document accepted twice — or listed again under another docId — is not
//! delivered twice; the `fallback_id` passed along (`vxp-<docId>`) only names the item. Documents are handled one at a
//! time, in the order listed.
//!
//! # Trust model
//!
//! The axis authenticates the sending systems (their own systemId/secret and the package's XML signature); this
//! adapter trusts the sender the axis states in the list item's `from`. When the list item has none (or not a
//! valid QCVN 102 code), the sender is read from the package itself (`MessageHeader/From/OrganId`), which the
//! axis has delivered to our inbox. The submission is made as [`Caller::Agency`] of that sender; the bus then
//! checks that the package's `From` is that sender (by any of its codes, when it is a configured agency), and
//! refuses it (4xx, so the document is marked `fail`, with the bus's reason) if not. The sender need not be a
//! configured agency: the axis carries documents from agencies all over the country, and the axis has
//! authenticated them.

pub(crate) mod axis;
pub(crate) mod pull;
#[cfg(test)]
mod tests;

use crate::http_client::{self, ClientOptions};
use crate::registry::{AdapterType, Context};
use async_trait::async_trait;
use lienthong_bus::adapter::{Built, CancellationToken, Source, Submit};
use lienthong_bus::config::{AdapterSpec, HumanDuration, Problem, join};
use lienthong_qcvn102::agency::AgencyCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `[[adapters]]` with `type = "vxp-pull"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VxpPullConfig {
    /// Base URL of the axis API (the VXP gateway the province was given), e.g. `https://vxp.example.gov.vn/api`.
    /// Required. `/getReceivedEdocList`, `/getEdoc` and `/updateStatus` are appended. Redirects are not
    /// followed (the call fails and the document stays pending), so the secret key goes to this address only.
    pub base_url: String,
    /// The `systemId` the axis operator issued to this system. Required; sent as header `systemId`.
    pub system_id: String,
    /// Env var holding the secret key issued with `system_id`. Required; sent as header `secretKey`, read at
    /// startup, never logged.
    pub secret_env: String,
    /// QCVN 102 code of the local agency whose inbox is pulled (the edXML `To`), e.g. `000.00.00.H40`. Required;
    /// sent as header `from`.
    pub agency: String,
    /// Wait between two polls of the axis (after one poll has finished). Default `"10s"`.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Time limit of one HTTP call to the axis (a package download included). Default `"60s"`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// What to pull, each in its own round per poll: `"eDoc"` (documents) and/or `"status"` (status packages
    /// about documents our agencies sent, which the bus routes back to the sender). Default `["eDoc"]`.
    #[serde(default = "default_service_types")]
    pub service_types: Vec<String>,
    /// `tls = { ca = "…", client_cert = "…", client_key = "…" }`: trust only this CA bundle for the axis's
    /// certificate, and present this client certificate (PEM files, relative to the config file's folder).
    /// Default: the public roots, no client certificate.
    #[serde(default)]
    pub tls: Option<http_client::ClientTls>,
}

fn default_service_types() -> Vec<String> {
    vec!["eDoc".into()]
}

/// The axis service types this source knows.
const SERVICE_TYPES: &[&str] = &["eDoc", "status"];

fn default_poll_interval() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_timeout() -> HumanDuration {
    HumanDuration::secs(60)
}

impl AdapterType for VxpPullConfig {
    const NAME: &'static str = "vxp-pull";

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        let mut problems = check_config(cx.spec, self);
        problems.extend(cx.secret("secret_env", &self.secret_env).err());
        problems
    }

    /// Builds the source.
    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        let mut problems = check_config(cx.spec, &self);
        let secret = cx
            .secret("secret_env", &self.secret_env)
            .map_err(|p| problems.push(p))
            .unwrap_or_default();
        if !problems.is_empty() {
            return Err(problems);
        }
        let cfg = VxpPullConfig {
            tls: self.tls.as_ref().map(|t| t.resolved(&cx.spec.base_dir)),
            ..self
        };
        let source = VxpPull::new(&cfg, secret, cx.config.http.max_body_bytes)
            .map_err(|e| vec![Problem::new(cx.spec.path(), e)])?
            .with_qd20_map(
                // Every other code of an agency (`qd20_code`, `other_codes`) → its code: the axis may name a
                // sender by any of them.
                cx.config
                    .agencies
                    .iter()
                    .flat_map(|a| {
                        a.codes()
                            .filter(move |c| *c != a.code)
                            .map(move |c| (c.to_owned(), a.code.clone()))
                    })
                    .collect(),
            );
        Ok(Built {
            source: Some(Box::new(source)),
            ..Built::default()
        })
    }
}

fn check_config(spec: &AdapterSpec, cfg: &VxpPullConfig) -> Vec<Problem> {
    let at = |k: &str| join(&spec.path(), k);
    let mut problems = Vec::new();
    problems.extend(http_client::http_url(at("base_url"), &cfg.base_url).err());
    if let Some(tls) = &cfg.tls {
        problems.extend(tls.problems(&spec.base_dir, &at("tls")));
    }
    if cfg.system_id.trim().is_empty() {
        problems.push(Problem::new(at("system_id"), "must not be empty"));
    }
    if let Err(e) = AgencyCode::parse(&cfg.agency) {
        problems.push(Problem::new(at("agency"), e.to_string()));
    }
    if cfg.poll_interval.get().is_zero() {
        problems.push(Problem::new(at("poll_interval"), "must be more than 0"));
    }
    if cfg.timeout.get().is_zero() {
        problems.push(Problem::new(at("timeout"), "must be more than 0"));
    }
    if cfg.service_types.is_empty() {
        problems.push(Problem::new(
            at("service_types"),
            "must name at least one of \"eDoc\", \"status\"",
        ));
    }
    for (i, t) in cfg.service_types.iter().enumerate() {
        if !SERVICE_TYPES.contains(&t.as_str()) {
            problems.push(Problem::new(
                format!("{}[{i}]", at("service_types")),
                format!("unknown service type `{t}`; known: \"eDoc\", \"status\""),
            ));
        }
    }
    problems
}

/// What one poll did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    pub listed: usize,
    pub done: usize,
    pub failed: usize,
    /// Left pending at the axis, to be tried again.
    pub left: usize,
}

/// The `vxp-pull` source.
pub struct VxpPull {
    http: reqwest::Client,
    base: String,
    system_id: String,
    secret: String,
    agency: String,
    poll_interval: Duration,
    max_bytes: usize,
    service_types: Vec<String>,
    /// An agency's other codes → its QCVN 102 code, from `[[agencies]] qd20_code` and `other_codes`: the axis
    /// may name senders any of these ways.
    qd20: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for VxpPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VxpPull")
            .field("base", &self.base)
            .field("system_id", &self.system_id)
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

impl VxpPull {
    /// Builds from a checked config, the secret key read from `secret_env`, and the largest package the bus
    /// accepts.
    pub fn new(cfg: &VxpPullConfig, secret: String, max_bytes: usize) -> Result<Self, String> {
        let http = http_client::client(
            ClientOptions::timeout(cfg.timeout.get()).with_tls(cfg.tls.clone()),
        )?;
        Ok(Self {
            http,
            base: cfg.base_url.trim_end_matches('/').to_owned(),
            system_id: cfg.system_id.clone(),
            secret,
            agency: cfg.agency.clone(),
            poll_interval: cfg.poll_interval.get(),
            max_bytes,
            service_types: cfg.service_types.clone(),
            qd20: Default::default(),
        })
    }

    /// Senders the axis names by another code (QĐ 20/2020, a tax code) are mapped to QCVN 102 through this
    /// table.
    pub fn with_qd20_map(mut self, map: std::collections::HashMap<String, String>) -> Self {
        self.qd20 = map;
        self
    }
}

#[async_trait]
impl Source for VxpPull {
    async fn run(
        self: Box<Self>,
        ingress: Arc<dyn Submit>,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        tracing::info!(base = %self.base, agency = %self.agency, "pulling documents from the axis");
        loop {
            // Stopping mid-poll is safe: nothing is marked before the bus accepted it.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.poll_once(ingress.as_ref()) => {}
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }
}
