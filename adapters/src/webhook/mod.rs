//! `webhook`: delivers each message as one HTTP POST to a receiver an agency runs.
//!
//! Why: almost every agency system can expose an HTTP(S) endpoint, and "one POST per message" is a contract a
//! receiver can implement and test with `curl`.
//!
//! How: a JSON message is POSTed as its envelope (with `attempt`), an XML message as its package bytes, untouched,
//! with the envelope fields in `X-LT-*` headers. Every request carries `Idempotency-Key: <message id>` and
//! `X-LT-From: <sender>` (a crash between the receiver's 2xx and our ack redelivers the same message; the
//! receiver de-duplicates on the two together, since ids are chosen by senders and two agencies may use the
//! same one) and `traceparent`. One HTTP client per adapter (built by `crate::http_client`, the policy every HTTP adapter
//! shares) keeps a keep-alive pool shared by all its deliveries.
//!
//! The answer is classified for the runtime, which does the retrying: 2xx is delivered; timeouts, connection
//! errors, 408, 429 and 5xx are transient (`Retry-After` on 429/503 is passed on); every other status (4xx, and
//! 3xx since no redirect is followed, so the token never reaches another host) is permanent and dead-lettered at
//! once. Failures keep the status and the first KiB of the answer for the operator. The bearer token and the URL
//! never appear in errors or logs.

use crate::http_client::{self, ClientOptions};
use crate::registry::{AdapterType, Context};
use async_trait::async_trait;
use lienthong_bus::adapter::{Built, Delivery, DeliveryError, Sink};
use lienthong_bus::config::{HumanDuration, Problem, join};
use lienthong_bus::message::ContentKind;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{Response, Url};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `type = "webhook"`: POST every message to one URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Receiver URL, `http://` or `https://`. Required. Redirects are not followed (a 3xx is a permanent
    /// failure: fix the URL).
    pub url: String,
    /// Limit for one whole request (connect, send, answer). Exceeding it is a transient failure. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Extra static headers sent with every request, e.g. `headers = { "X-Api-Version" = "2" }`. Default none.
    /// Headers the adapter sets itself (`Content-Type`, `Authorization`, `Idempotency-Key`, `traceparent`,
    /// `X-LT-*`, `Host`, `Content-Length`) cannot be set here.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Env var holding a token sent as `Authorization: Bearer <token>` (surrounding blanks trimmed). Read at
    /// startup and must be set then; the token never appears in config or logs, and is never sent anywhere but
    /// `url` (redirects are not followed). Absent = no `Authorization` header.
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// `tls = { ca = "…", client_cert = "…", client_key = "…" }`: trust only this CA bundle for the receiver's
    /// certificate, and present this client certificate (PEM files, relative to the config file's folder).
    /// Default: the public roots, no client certificate.
    #[serde(default)]
    pub tls: Option<http_client::ClientTls>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}

/// Headers (lower-case) the adapter owns.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "authorization",
    "idempotency-key",
    "traceparent",
];

impl AdapterType for WebhookConfig {
    const NAME: &'static str = "webhook";

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        prepare(self, cx).err().unwrap_or_default()
    }

    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        let (url, headers) = prepare(&self, cx)?;
        let client = http_client::client(ClientOptions {
            timeout: self.timeout.get(),
            connect_timeout: self.timeout.get().min(Duration::from_secs(10)),
            headers,
            tls: self.tls.as_ref().map(|t| t.resolved(&cx.spec.base_dir)),
        })
        .map_err(|e| vec![Problem::new(cx.spec.path(), e)])?;
        Ok(Built {
            sink: Some(Arc::new(Webhook { client, url })),
            ..Built::default()
        })
    }
}

/// Validates the options; the URL and the headers sent with every request, or every problem with its key path.
fn prepare(cfg: &WebhookConfig, cx: &Context<'_>) -> Result<(Url, HeaderMap), Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(tls) = &cfg.tls {
        problems.extend(tls.problems(&cx.spec.base_dir, &cx.at("tls")));
    }
    let url = http_client::http_url(cx.at("url"), &cfg.url)
        .map_err(|p| problems.push(p))
        .ok();
    if cfg.timeout.get().is_zero() {
        problems.push(Problem::new(cx.at("timeout"), "must be more than 0"));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &cfg.headers {
        let path = join(&cx.at("headers"), name);
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Err(_), _) => problems.push(Problem::new(path, "not a valid HTTP header name")),
            (_, Err(_)) => problems.push(Problem::new(
                path,
                "value must be printable ASCII on one line",
            )),
            (Ok(n), _) if RESERVED.contains(&n.as_str()) || n.as_str().starts_with("x-lt-") => {
                problems.push(Problem::new(
                    path,
                    "is set by the adapter (use auth_token_env for Authorization)",
                ))
            }
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
        }
    }
    if let Some(var) = &cfg.auth_token_env {
        match bearer(cx, var) {
            Ok(v) => _ = headers.insert(AUTHORIZATION, v),
            Err(p) => problems.push(p),
        }
    }
    match url {
        Some(url) if problems.is_empty() => Ok((url, headers)),
        _ => Err(problems),
    }
}

/// `Bearer <token>` from the env var `var` (trimmed), marked sensitive so it is never logged.
fn bearer(cx: &Context<'_>, var: &str) -> Result<HeaderValue, Problem> {
    let token = cx.secret("auth_token_env", var)?;
    let token = token.trim();
    let at = || cx.at("auth_token_env");
    if token.is_empty() {
        return Err(Problem::new(
            at(),
            format!(
                "environment variable `{var}` is blank; it must hold the receiver's bearer token"
            ),
        ));
    }
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Problem::new(
            at(),
            format!("environment variable `{var}` holds characters not allowed in an HTTP header"),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

struct Webhook {
    client: reqwest::Client,
    url: Url,
}

#[async_trait]
impl Sink for Webhook {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        let m = &d.message;
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, m.content.mime())
            .header("idempotency-key", value(&m.meta.id)?)
            // Ids are chosen by senders: two agencies may use the same one for two messages, so a receiver
            // de-duplicates on (X-LT-From, Idempotency-Key), on JSON messages too.
            .header("x-lt-from", value(&m.meta.from)?);
        if !d.traceparent.is_empty() {
            req = req.header("traceparent", value(&d.traceparent)?);
        }
        let req = match m.content {
            ContentKind::Json => req.body(m.envelope_json(Some(d.attempt))),
            ContentKind::Xml => req
                .header("x-lt-message-id", value(&m.meta.id)?)
                .header("x-lt-type", value(&m.meta.kind)?)
                .header("x-lt-to", value(&m.meta.to.join(","))?)
                .header("x-lt-attempt", d.attempt)
                .body(m.payload.clone()),
        };
        let resp = req.send().await.map_err(request_error)?;
        classify(resp).await
    }
}

fn value(s: &str) -> Result<HeaderValue, DeliveryError> {
    HeaderValue::from_bytes(s.as_bytes())
        .map_err(|_| DeliveryError::permanent(format!("`{s}` cannot be sent in an HTTP header")))
}

/// A request that got no HTTP answer: always worth retrying.
fn request_error(e: reqwest::Error) -> DeliveryError {
    let what = if e.is_timeout() {
        "receiver did not answer in time"
    } else if e.is_connect() {
        "cannot connect to receiver"
    } else {
        "request to receiver failed"
    };
    let e = e.without_url();
    DeliveryError::transient(format!("{what}: {}", http_client::error_chain(&e)))
}

async fn classify(mut resp: Response) -> Result<(), DeliveryError> {
    let status = resp.status();
    let code = status.as_u16();
    if status.is_success() {
        // Read (a bounded part of) the answer so the connection can go back to the pool.
        read_prefix(&mut resp, 64 * 1024).await;
        return Ok(());
    }
    let retry_after = match code {
        429 | 503 => retry_after(resp.headers(), SystemTime::now()),
        _ => None,
    };
    let body = read_prefix(&mut resp, 1024).await;
    let reason = format!("HTTP {code} from receiver");
    let err = if code == 408 || code == 429 || status.is_server_error() {
        DeliveryError::transient(reason)
    } else {
        DeliveryError::permanent(reason)
    };
    Err(err
        .with_status(code.into())
        .with_body(&body)
        .with_retry_after(retry_after))
}

/// At least the first `max` bytes of the answer (fewer if it is shorter or breaks off).
async fn read_prefix(resp: &mut Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out
}

/// `Retry-After` as delay-seconds or an HTTP-date (a date in the past means "now").
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests;
