//! `vxp-pull`: pulls edXML documents addressed to a local agency from the national document axis (VXP/VDXP,
//! run by the Government Office; its API as this adapter uses it is described below) and hands them to the bus.
//!
//! # Axis API (as modelled here)
//!
//! The VNPT SDK's operations over plain JSON/HTTP. Every request carries the headers `systemId` and `secretKey`
//! (issued by the axis operator; the key is never logged), `from` (the local agency's QCVN 102 code, `agency`),
//! `servicetype` (`eDoc` for documents, `status` for status packages; each of `service_types` is pulled in turn,
//! every call of that round carrying it) and `messagetype` (`edoc` or `status`, the same choice in the SDK's
//! lower-case spelling; an assumption, as the SDK's documentation gives the header but not its values).
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
//! checks that the caller is a known agency and matches the package's `From`, and refuses it (4xx, so the
//! document is marked `fail`) if not.

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use bytes::Bytes;
use lienthong_bus::adapter::{Built, Caller, CancellationToken, Source, Submission, Submit};
use lienthong_bus::config::{AdapterSpec, Config, HumanDuration, Problem, join};
use lienthong_bus::error::ApiError;
use lienthong_bus::message::ContentKind;
use lienthong_qcvn102::agency::AgencyCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// `[[adapters]]` with `type = "vxp-pull"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VxpPullConfig {
    /// Base URL of the axis API (the VXP gateway the province was given), e.g. `https://vxp.example.gov.vn/api`.
    /// Required. `/getReceivedEdocList`, `/getEdoc` and `/updateStatus` are appended.
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

/// Longest `reason` sent with `fail`.
const MAX_REASON_CHARS: usize = 1000;

/// Checks a `vxp-pull` adapter's keys; every problem with its key path.
pub fn check(spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
    let _ = config;
    let cfg: VxpPullConfig = match spec.parse_options() {
        Ok(c) => c,
        Err(p) => return vec![p],
    };
    let mut problems = check_config(spec, &cfg);
    if let Err(p) = read_secret(spec, &cfg) {
        problems.push(p);
    }
    problems
}

/// Builds the source.
pub fn build(spec: &AdapterSpec, config: &Config) -> Result<Built, Vec<Problem>> {
    let cfg: VxpPullConfig = spec.parse_options().map_err(|p| vec![p])?;
    let mut problems = check_config(spec, &cfg);
    let secret = read_secret(spec, &cfg)
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    if !problems.is_empty() {
        return Err(problems);
    }
    let source = VxpPull::new(&cfg, secret, config.http.max_body_bytes)
        .map_err(|e| vec![Problem::new(spec.path(), e)])?
        .with_qd20_map(
            // Every other code of an agency (`qd20_code`, `other_codes`) → its code: the axis may name a
            // sender by any of them.
            config
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

fn check_config(spec: &AdapterSpec, cfg: &VxpPullConfig) -> Vec<Problem> {
    let at = |k: &str| join(&spec.path(), k);
    let mut problems = Vec::new();
    match reqwest::Url::parse(&cfg.base_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(_) => problems.push(Problem::new(
            at("base_url"),
            "must be an http:// or https:// URL",
        )),
        Err(e) => problems.push(Problem::new(at("base_url"), format!("not a URL: {e}"))),
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

fn read_secret(spec: &AdapterSpec, cfg: &VxpPullConfig) -> Result<String, Problem> {
    crate::secret_from_env(spec, "secret_env", &cfg.secret_env)
}

/// One pending document as listed by the axis.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    doc_id: String,
    from: Option<String>,
    /// The `servicetype` it was listed under; fetch and mark carry the same.
    service: String,
}

/// Why a package could not be fetched.
enum FetchError {
    /// Try again next poll.
    Retry(String),
    /// Larger than the bus accepts: will never get in.
    TooLarge(usize),
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
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout.get())
            .connect_timeout(cfg.timeout.get())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
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

    fn request(&self, method: reqwest::Method, op: &str, service: &str) -> reqwest::RequestBuilder {
        self.headers(
            self.http.request(method, format!("{}/{op}", self.base)),
            service,
        )
    }

    fn headers(&self, rb: reqwest::RequestBuilder, service: &str) -> reqwest::RequestBuilder {
        rb.header("systemId", &self.system_id)
            .header("secretKey", &self.secret)
            .header("from", &self.agency)
            .header("servicetype", service)
            .header("messagetype", service.to_lowercase())
    }

    /// One round: list, then fetch, submit and mark each document in turn.
    pub async fn poll_once(&self, ingress: &dyn Submit) -> PollStats {
        let mut stats = PollStats::default();
        let mut listed = Vec::new();
        for service in &self.service_types {
            match self.list(service).await {
                Ok(l) => listed.extend(l),
                Err(e) => {
                    tracing::warn!(servicetype = %service, error = %e, "cannot list pending items at the axis; will try again");
                }
            }
        }
        stats.listed = listed.len();
        for item in listed {
            match self.take(&item, ingress).await {
                Outcome::Done => stats.done += 1,
                Outcome::Failed => stats.failed += 1,
                Outcome::Left => stats.left += 1,
            }
        }
        if stats.listed > 0 {
            tracing::info!(
                listed = stats.listed,
                done = stats.done,
                failed = stats.failed,
                left = stats.left,
                "pulled documents from the axis"
            );
        }
        stats
    }

    async fn take(&self, item: &Listed, ingress: &dyn Submit) -> Outcome {
        let doc = item.doc_id.as_str();
        let svc = item.service.as_str();
        let body = match self.fetch(doc, svc).await {
            Ok(b) => b,
            Err(FetchError::TooLarge(n)) => {
                let reason = format!(
                    "package is larger than the bus accepts ({n} bytes read, limit {} bytes)",
                    self.max_bytes
                );
                return self.mark_failed(doc, svc, &reason).await;
            }
            Err(FetchError::Retry(e)) => {
                tracing::warn!(doc_id = doc, error = %e, "cannot fetch document; left pending");
                return Outcome::Left;
            }
        };
        let agency_code = |f: &str| {
            let code = self.qd20.get(f).map(String::as_str).unwrap_or(f);
            AgencyCode::parse(code).is_ok().then(|| code.to_owned())
        };
        let sender = item
            .from
            .as_deref()
            .and_then(agency_code)
            .or_else(|| package_sender(&body).as_deref().and_then(agency_code));
        let Some(sender) = sender else {
            let reason = "sender unknown: neither the list item's `from` nor the package's \
                          MessageHeader/From/OrganId is a QCVN 102 agency code or another code of a \
                          configured agency";
            return self.mark_failed(doc, svc, reason).await;
        };
        let submission = Submission {
            caller: Caller::Agency(sender),
            content: ContentKind::Xml,
            body,
            traceparent: None,
            // Documents keep the id they always had; other service types get their own, so that ids listed
            // under two service types can never be taken for one another.
            fallback_id: Some(match svc {
                "eDoc" => format!("vxp-{doc}"),
                other => format!("vxp-{}-{doc}", other.to_lowercase()),
            }),
        };
        match ingress.submit(submission).await {
            Ok(accepted) => {
                tracing::debug!(doc_id = doc, id = %accepted.id, "document accepted by the bus");
                match self.mark(doc, svc, "done", None).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => {
                        tracing::warn!(
                            doc_id = doc, id = %accepted.id, error = %e,
                            "accepted by the bus but not marked done at the axis; it will be offered again \
                             and resubmitted with the same id"
                        );
                        Outcome::Left
                    }
                }
            }
            Err(e) if !e.retry_later() => self.mark_failed(doc, svc, &refusal(&e)).await,
            Err(e) => {
                tracing::warn!(doc_id = doc, code = e.code, error = %e.message, "bus unavailable; left pending");
                Outcome::Left
            }
        }
    }

    async fn mark_failed(&self, doc: &str, svc: &str, reason: &str) -> Outcome {
        tracing::warn!(
            doc_id = doc,
            reason,
            "document refused; marking it failed at the axis"
        );
        match self.mark(doc, svc, "fail", Some(reason)).await {
            Ok(()) => Outcome::Failed,
            Err(e) => {
                tracing::warn!(doc_id = doc, error = %e, "cannot mark document failed; left pending");
                Outcome::Left
            }
        }
    }

    async fn list(&self, service: &str) -> Result<Vec<Listed>, String> {
        let resp = self
            .request(reqwest::Method::GET, "getReceivedEdocList", service)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        let raw = resp.bytes().await.map_err(|e| describe(&e))?;
        let v = axis_json(status, &raw)?;
        let data = match v.get("data") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(Vec::new()),
            Some(other) => return Err(format!("`data` is not a list: {other}")),
        };
        let mut out = Vec::with_capacity(data.len());
        for item in data {
            let doc_id = match item.get("docId") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    tracing::warn!(item = %item, "listed item without a docId; skipped");
                    continue;
                }
            };
            let from = item
                .get("from")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_owned());
            out.push(Listed {
                doc_id,
                from,
                service: service.to_owned(),
            });
        }
        Ok(out)
    }

    async fn fetch(&self, doc: &str, service: &str) -> Result<Bytes, FetchError> {
        let mut url = reqwest::Url::parse(&format!("{}/getEdoc", self.base))
            .map_err(|e| FetchError::Retry(e.to_string()))?;
        url.query_pairs_mut().append_pair("docId", doc);
        let mut resp = self
            .headers(self.http.get(url), service)
            .send()
            .await
            .map_err(|e| FetchError::Retry(describe(&e)))?;
        let status = resp.status();
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        if !status.is_success() || is_json {
            let raw = resp.bytes().await.unwrap_or_default();
            let why = match axis_json(status, &raw) {
                Err(e) => e,
                Ok(_) => format!("HTTP {status} with a JSON answer instead of a package"),
            };
            return Err(FetchError::Retry(why));
        }
        if let Some(len) = resp.content_length()
            && len as usize > self.max_bytes
        {
            return Err(FetchError::TooLarge(len as usize));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Retry(describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > self.max_bytes {
                return Err(FetchError::TooLarge(body.len()));
            }
        }
        if body.is_empty() {
            return Err(FetchError::Retry("empty package".into()));
        }
        Ok(Bytes::from(body))
    }

    async fn mark(
        &self,
        doc: &str,
        service: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), String> {
        let mut body = json!({ "docId": doc, "status": status });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        let resp = self
            .request(reqwest::Method::POST, "updateStatus", service)
            .json(&body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let st = resp.status();
        let raw = resp.bytes().await.map_err(|e| describe(&e))?;
        axis_json(st, &raw).map(|_| ())
    }
}

enum Outcome {
    Done,
    Failed,
    Left,
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

/// The reason sent with `fail`: the bus's code, message and details, cut to a sane length.
fn refusal(e: &ApiError) -> String {
    let mut s = format!("bus refused the document: {}: {}", e.code, e.message);
    for d in &e.details {
        s.push_str(&format!("; {}: {}", d.path, d.message));
    }
    if s.chars().count() > MAX_REASON_CHARS {
        s = s.chars().take(MAX_REASON_CHARS - 1).collect();
        s.push('…');
    }
    s
}

/// An axis JSON answer with `status: OK`, or why not.
fn axis_json(status: reqwest::StatusCode, raw: &[u8]) -> Result<Value, String> {
    let excerpt = lienthong_bus::adapter::excerpt(raw, 300);
    let v: Value =
        serde_json::from_slice(raw).map_err(|_| format!("HTTP {status}, not JSON: {excerpt}"))?;
    let ok = v
        .get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("ok"));
    if status.is_success() && ok {
        return Ok(v);
    }
    let code = v
        .get("ErrorCode")
        .map(|c| c.to_string())
        .unwrap_or_default();
    let desc = v
        .get("ErrorDesc")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(format!("HTTP {status}, axis error {code}: {desc}"))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// `MessageHeader/From/OrganId` of an edXML package (any namespace prefix), reading only the header.
fn package_sender(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let in_sender = |stack: &[String]| {
        stack.len() >= 3 && stack[stack.len() - 3..] == ["MessageHeader", "From", "OrganId"]
    };
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if name == "edXMLBody" || name == "AttachmentEncoded" {
                    return None;
                }
                stack.push(name);
            }
            Event::End(_) => {
                if in_sender(&stack) {
                    let v = value.trim();
                    return (!v.is_empty()).then(|| v.to_owned());
                }
                stack.pop();
            }
            Event::Text(t) if in_sender(&stack) => value.push_str(&t.xml10_content()),
            Event::Eof => return None,
            _ => {}
        }
    }
}
