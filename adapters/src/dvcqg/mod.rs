//! `dvcqg`: syncs dossiers and their progress to the National Public Service Portal (Cổng DVCQG,
//! dichvucong.gov.vn) through the VPCP integration adapter, and looks dossiers up there.
//!
//! # What it carries
//!
//! | Message type              | Payload (portal field names, integration guide)  | Portal service                        |
//! |---------------------------|--------------------------------------------------|---------------------------------------|
//! | `dossier.submitted`       | one dossier record (`MaHoSo`, `TrangThaiHoSo`…)  | `DongBoHoSoMC`                        |
//! | `dossier.status-changed`  | one progress row (`MaHoSo`, `NguoiXuLy`, `TrangThai`…) | `CapNhatTienDoHoSoMC` (batched) |
//!
//! The payload is sent as the sender wrote it, with four exceptions: a local status `TrangThaiNoiBo` is
//! replaced by the portal code from `status_map` (written to `TrangThaiHoSo` / `TrangThai`, overriding any value
//! there, because the table is the province's decision of what each local state means nationally; a differing
//! value is logged; `TrangThaiNoiBo` itself is never sent); codes and yes/no flags, JSON integers in the bus's
//! schemas, are written as the portal's strings (`"KenhThucHien": 2` → `"2"`); over-long `TrichYeuHoSo`
//! (1000 characters) and `NguoiXuLy` (50 characters) are cut or refused (`on_overflow`); nothing else is changed. Dates (every field whose name
//! starts with `Ngay` or `ThoiDiem`, at any depth) must already be `yyyyMMddHHmmss` or empty; anything else is
//! refused (permanent error naming the field), as is a status outside 1–10.
//!
//! # Protocol (the national public-service portal's integration guide, as OpenCPS speaks it)
//!
//! 1. Login: `POST {base_url}{auth_path}` with `{"username", "password"}` (and header `dstcode` when configured)
//!    → `{"session": "...", "error_code": 0}`. The session is fetched lazily, cached and shared by every
//!    delivery and lookup, and renewed after `session_max_age` even if the portal never complains.
//! 2. Services: `POST {base_url}{service_path}` with `{"session", "madonvi", "service", ...}` (header `dstcode`
//!    too). `error_code` `0`, `"0"` or `"00"` means success. Messages are read from `message` (or
//!    `error_message`, `msg`, `error`).
//!    - Dossier: `{"service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier]}`. When the portal answers
//!      that the dossier already exists (`error_code` 3 or -3 *and* a message saying so, "đã tồn
//!      tại" / "da ton tai" / "already exist", or no message at all), the same record is sent again with
//!      `"isUpdating": "True"`. So a redelivery of the same message is harmless. A 3/-3 whose message says
//!      something else is a refusal like any other.
//!    - Progress: `{"service": "CapNhatTienDoHoSoMC", "data": [row, ...]}` with at most `progress_batch_size`
//!      rows. Deliveries running at the same time (the runtime runs up to `prefetch` at once) are gathered into
//!      one call: the first row waits at most `progress_batch_linger` for others; each delivery gets its batch's
//!      answer. If a batch of several rows is refused permanently, its rows are re-sent one by one so only the bad
//!      row is dead-lettered. The portal has no idempotency key for progress rows: a redelivery after a crash
//!      can add the same row twice (harmless for display, as rows carry their own `ThoiDiemXuLy`).
//!    - Lookup (admin API): `{"service": "TraCuuHoSo", "mahoso": code}`; the portal's answer is returned as is.
//!
//! # Session expiry signal
//!
//! The portal documents no code for an expired session, so the adapter treats **any** of these answers to a
//! service call as "session refused": HTTP 401 or 403; a non-zero `error_code` listed in `session_error_codes`;
//! a non-zero `error_code` whose message mentions the session (`session`, `phiên làm việc` or `phiên đăng nhập`,
//! any case). It then logs in
//! again (one login at a time: concurrent deliveries wait for the same renewal, and callers that queued behind a
//! failed login get that failure instead of trying again) and retries the call once. If the fresh session is
//! refused too, the delivery fails as transient.
//!
//! # Error classes
//!
//! - Transient (retried per the route's policy): timeouts, connection errors, HTTP 408/429/5xx (with
//!   `Retry-After`), a login the portal refused or redirected (the message is not at fault), an answer that is
//!   not JSON, `error_code` listed in `transient_error_codes`.
//! - Transient too: a progress row the portal refuses because the dossier "does not exist" ("không tồn tại")
//!   while this bus has not delivered that dossier's `dossier.submitted` to this adapter (its delivery records
//!   joined with the dossier's messages, as the province's domain keeps them): the insert is still on its way
//!   (being retried, on another route or process), so the row waits for it. Once the insert was delivered,
//!   the same answer is permanent. With `order_by = "/payload/MaHoSo"` on the route the row never overtakes
//!   its insert in the first place (README, "Per-key order").
//! - Permanent (dead-lettered at once): any other non-zero `error_code` (reason carries the portal's message,
//!   `status` the code when numeric, `body_excerpt` the answer), other HTTP 4xx and 3xx, and payload problems
//!   found before calling the portal (unknown local status, bad date, refused overflow, missing `MaHoSo`, unknown
//!   message type). A code listed in neither list is permanent and also logged as a warning, so operators can
//!   classify it.
//!
//! # Credentials
//!
//! The user name and password (read at startup from `username_env` / `password_env` through the environment the
//! bus was given) and the session travel in request bodies, to `base_url` only: no redirect is followed (the
//! HTTP policy every HTTP adapter shares, `crate::http_client`), so a portal address that redirects elsewhere
//! gets a 3xx classified as above, never the account or the session. None of them is ever logged or put in an
//! error.

mod batch;
pub(crate) mod portal;
mod record;
mod schemas;
#[cfg(any(test, feature = "test-util"))]
pub mod standin;
#[cfg(test)]
mod tests;

use crate::http_client;
use crate::registry::{AdapterType, Context};
use async_trait::async_trait;
use lienthong_bus::adapter::{
    Built, Deliveries, Delivery, DeliveryError, ErrorClass, Lookup, Sink,
};
use lienthong_bus::config::{AdapterSpec, Config, HumanDuration, Problem, join};
use lienthong_bus::message::ContentKind;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use batch::Batcher;
use portal::{PortalClient, PortalCode};
use record::{Kind, Rules};

/// The two message types this adapter takes.
pub const MESSAGE_TYPES: &[&str] = &["dossier.submitted", "dossier.status-changed"];

/// `[[adapters]]` with `type = "dvcqg"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvcqgConfig {
    /// Base URL of the portal's integration adapter (OpenCPS calls it `adapter_url`), e.g.
    /// `https://lgsp.example.gov.vn/dvcqg`. Required. `auth_path` and `service_path` are appended as written.
    /// Redirects are not followed (see the module docs), so the account and the session go to this address only.
    pub base_url: String,
    /// Path of the login call. Default `"/auth"`.
    #[serde(default = "default_auth_path")]
    pub auth_path: String,
    /// Path of every service call (`DongBoHoSoMC`, `CapNhatTienDoHoSoMC`, `TraCuuHoSo`). Default `"/service"`.
    #[serde(default = "default_service_path")]
    pub service_path: String,
    /// Env var holding the portal account's user name. Required; read at startup, never logged.
    pub username_env: String,
    /// Env var holding the portal account's password. Required; read at startup, never logged nor put in errors.
    pub password_env: String,
    /// The province's unit code at the portal, sent as `madonvi` on every service call. Required.
    pub madonvi: String,
    /// Value of the `dstcode` header sent on every call, for LGSP/X-Road gateways that route by it
    /// (e.g. `VN:GOV:000.00.00.G22:vpcpdvcprovider`). Default: no header.
    #[serde(default)]
    pub dstcode: Option<String>,
    /// Time limit of one HTTP call to the portal, login included. Default `"15s"`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// `tls = { ca = "…", client_cert = "…", client_key = "…" }`: trust only this CA bundle for the portal's
    /// certificate, and present this client certificate (PEM files, relative to the config file's folder).
    /// Default: the public roots, no client certificate.
    #[serde(default)]
    pub tls: Option<http_client::ClientTls>,
    /// A cached session is renewed after this long even if the portal never says it expired. Default `"10m"`
    /// (the lifetime OpenCPS assumes).
    #[serde(default = "default_session_max_age")]
    pub session_max_age: HumanDuration,
    /// Most progress rows sent in one `CapNhatTienDoHoSoMC` call, 1–100. Default 10 (what provincial clients use).
    #[serde(default = "default_batch_size")]
    pub progress_batch_size: usize,
    /// How long the first progress row of a batch waits for others before the batch is sent. Default `"200ms"`.
    #[serde(default = "default_batch_linger")]
    pub progress_batch_linger: HumanDuration,
    /// Local workflow status (`TrangThaiNoiBo` in payloads) → portal status code 1–10 (the portal's dossier
    /// statuses: 1 new online, 2 received, 3 not received, 4 processing, 5 more papers requested, 6 financial
    /// obligation, 7 withdrawn, 8 stopped, 9 done, 10 result returned). E.g. `status_map = { "dang-xu-ly" = 4 }`.
    /// `lienthong check` lists every local status declared in the `dossier.*` schemas that has no entry here;
    /// at run time a missing one is a permanent error. Default: empty (payloads must carry portal codes).
    #[serde(default)]
    pub status_map: BTreeMap<String, i64>,
    /// What to do with a `TrichYeuHoSo` over 1000 characters or a `NguoiXuLy` over 50: `"truncate"` (cut it,
    /// ending with "…", count it in `lienthong_dvcqg_truncated_total{field}` and log a warning with the dossier
    /// code) or `"refuse"` (permanent error naming the field and its length). Default `"truncate"`.
    #[serde(default)]
    pub on_overflow: OnOverflow,
    /// Portal `error_code`s that mean "try again later" (retried per the route's policy). Integers or strings.
    /// Default `[-1]`: the generic system-error code of VPCP-style adapters (an assumption: the portal publishes no
    /// code table). Retrying a code that turns out to be permanent only delays its dead-lettering.
    #[serde(default = "default_transient_codes")]
    pub transient_error_codes: Vec<CodeValue>,
    /// Portal `error_code`s known to be refusals of the record itself (dead-lettered at once). Codes in neither list
    /// are permanent too, but are also logged as warnings. Default `[3, -3]` ("already exists", which on an insert
    /// triggers the update instead).
    #[serde(default = "default_permanent_codes")]
    pub permanent_error_codes: Vec<CodeValue>,
    /// Extra portal `error_code`s meaning "session expired or invalid" (see the module docs for the full rule:
    /// HTTP 401/403 and messages mentioning the session always count). Default: none.
    #[serde(default)]
    pub session_error_codes: Vec<CodeValue>,
}

/// `on_overflow`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOverflow {
    #[default]
    Truncate,
    Refuse,
}

/// A portal error code as written in config: an integer or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CodeValue {
    Int(i64),
    Str(String),
}

impl CodeValue {
    fn code(&self) -> PortalCode {
        match self {
            CodeValue::Int(i) => PortalCode::Num(*i),
            CodeValue::Str(s) => PortalCode::parse(s),
        }
    }
}

fn default_auth_path() -> String {
    "/auth".into()
}
fn default_service_path() -> String {
    "/service".into()
}
fn default_timeout() -> HumanDuration {
    HumanDuration::secs(15)
}
fn default_session_max_age() -> HumanDuration {
    HumanDuration::secs(600)
}
fn default_batch_size() -> usize {
    10
}
fn default_batch_linger() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}
fn default_transient_codes() -> Vec<CodeValue> {
    vec![CodeValue::Int(-1)]
}
fn default_permanent_codes() -> Vec<CodeValue> {
    vec![CodeValue::Int(3), CodeValue::Int(-3)]
}

/// Largest `progress_batch_size` accepted.
const MAX_BATCH: usize = 100;

impl AdapterType for DvcqgConfig {
    const NAME: &'static str = "dvcqg";

    /// Also lists the local statuses the `dossier.*` schemas declare that `status_map` lacks, and routes that
    /// would send this adapter other message types.
    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        let mut problems = check_config(cx.spec, self);
        problems.extend(self.credentials(cx).err().unwrap_or_default());
        problems.extend(check_schemas(cx.spec, self, cx.config));
        problems.extend(check_routes(cx.spec, cx.config));
        problems
    }

    /// Builds the sink and the `TraCuuHoSo` lookup.
    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        let problems = check_config(cx.spec, &self);
        let credentials = self.credentials(cx);
        let (username, password) = match credentials {
            Ok(c) if problems.is_empty() => c,
            Ok(_) => return Err(problems),
            Err(more) => return Err(problems.into_iter().chain(more).collect()),
        };
        let cfg = DvcqgConfig {
            tls: self.tls.as_ref().map(|t| t.resolved(&cx.spec.base_dir)),
            ..self
        };
        let adapter = Dvcqg::new(&cfg, username, password)
            .map_err(|e| vec![Problem::new(cx.spec.path(), e)])?;
        let adapter = Arc::new(adapter);
        Ok(Built {
            sink: Some(adapter.clone()),
            lookup: Some(adapter),
            ..Built::default()
        })
    }
}

impl DvcqgConfig {
    /// The account's user name and password, or the problems with `username_env` and `password_env`.
    fn credentials(&self, cx: &Context<'_>) -> Result<(String, String), Vec<Problem>> {
        let username = cx.secret("username_env", &self.username_env);
        let password = cx.secret("password_env", &self.password_env);
        match (username, password) {
            (Ok(u), Ok(p)) => Ok((u, p)),
            (u, p) => Err(u.err().into_iter().chain(p.err()).collect()),
        }
    }
}

fn check_config(spec: &AdapterSpec, cfg: &DvcqgConfig) -> Vec<Problem> {
    let at = |k: &str| join(&spec.path(), k);
    let mut problems = Vec::new();
    problems.extend(http_client::http_url(at("base_url"), &cfg.base_url).err());
    if let Some(tls) = &cfg.tls {
        problems.extend(tls.problems(&spec.base_dir, &at("tls")));
    }
    for (k, v) in [
        ("auth_path", &cfg.auth_path),
        ("service_path", &cfg.service_path),
    ] {
        if !v.starts_with('/') {
            problems.push(Problem::new(at(k), "must start with '/'"));
        }
    }
    if cfg.madonvi.trim().is_empty() {
        problems.push(Problem::new(at("madonvi"), "must not be empty"));
    }
    if cfg.dstcode.as_deref().is_some_and(|d| d.trim().is_empty()) {
        problems.push(Problem::new(
            at("dstcode"),
            "must not be empty (leave it out to send no header)",
        ));
    }
    if cfg.timeout.get().is_zero() {
        problems.push(Problem::new(at("timeout"), "must be more than 0"));
    }
    if cfg.session_max_age.get().is_zero() {
        problems.push(Problem::new(at("session_max_age"), "must be more than 0"));
    }
    if !(1..=MAX_BATCH).contains(&cfg.progress_batch_size) {
        problems.push(Problem::new(
            at("progress_batch_size"),
            format!("must be between 1 and {MAX_BATCH}"),
        ));
    }
    for (key, code) in &cfg.status_map {
        let path = status_key_path(spec, key);
        if key.trim().is_empty() {
            problems.push(Problem::new(path.clone(), "local status must not be empty"));
        }
        if !(1..=10).contains(code) {
            problems.push(Problem::new(
                path,
                format!(
                    "portal status must be 1-10 (the portal's dossier status codes), not {code}"
                ),
            ));
        }
    }
    let transient: BTreeSet<_> = cfg
        .transient_error_codes
        .iter()
        .map(CodeValue::code)
        .collect();
    for (i, c) in cfg.permanent_error_codes.iter().enumerate() {
        if transient.contains(&c.code()) {
            problems.push(Problem::new(
                at(&format!("permanent_error_codes[{i}]")),
                format!("code {} is also in transient_error_codes", c.code()),
            ));
        }
    }
    for (list, key) in [
        (&cfg.transient_error_codes, "transient_error_codes"),
        (&cfg.permanent_error_codes, "permanent_error_codes"),
        (&cfg.session_error_codes, "session_error_codes"),
    ] {
        for (i, c) in list.iter().enumerate() {
            if c.code() == PortalCode::Num(0) {
                problems.push(Problem::new(
                    at(&format!("{key}[{i}]")),
                    "0 means success and cannot be listed",
                ));
            } else if c.code() == PortalCode::Text(String::new()) {
                problems.push(Problem::new(
                    at(&format!("{key}[{i}]")),
                    "must not be empty",
                ));
            }
        }
    }
    problems
}

/// `adapters[3].status_map.dang-xu-ly`, quoting keys that are not bare TOML keys.
fn status_key_path(spec: &AdapterSpec, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    format!("{}.status_map.{key}", spec.path())
}

/// Every local status declared in the `dossier.*` schemas that `status_map` lacks.
fn check_schemas(spec: &AdapterSpec, cfg: &DvcqgConfig, config: &Config) -> Vec<Problem> {
    schemas::declared_local_statuses(&config.schemas_dir(), MESSAGE_TYPES)
        .into_iter()
        .filter(|(status, _)| !cfg.status_map.contains_key(status))
        .map(|(status, files)| {
            Problem::new(
                status_key_path(spec, &status),
                format!(
                    "local status `{status}` (declared in {}) has no portal code; add it to status_map \
                     (1-10, the portal's dossier status codes)",
                    files.join(", ")
                ),
            )
        })
        .collect()
}

/// Routes that deliver other message types to this adapter would dead-letter every such message.
fn check_routes(spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for r in config
        .routes
        .iter()
        .filter(|r| r.deliver.iter().any(|d| d == &spec.id))
    {
        for (j, t) in r.types.iter().enumerate() {
            if !MESSAGE_TYPES.contains(&t.as_str()) {
                problems.push(Problem::new(
                    format!("routes[{}].types[{j}]", r.index),
                    format!(
                        "route delivers `{t}` to dvcqg adapter `{}`, which only takes {}",
                        spec.id,
                        MESSAGE_TYPES.join(" and ")
                    ),
                ));
            }
        }
    }
    problems
}

/// The built adapter: a [`Sink`] for dossiers and progress, and a [`Lookup`] on `TraCuuHoSo`.
pub struct Dvcqg {
    portal: Arc<PortalClient>,
    rules: Rules,
    batcher: Batcher,
    /// What the bus delivered (the domain's answer), to judge "does not exist" on a progress row.
    deliveries: std::sync::OnceLock<Arc<dyn Deliveries>>,
}

impl Dvcqg {
    /// Builds from a checked config and the credentials read from its env vars.
    pub fn new(cfg: &DvcqgConfig, username: String, password: String) -> Result<Self, String> {
        let portal = Arc::new(PortalClient::new(cfg, username, password)?);
        let batcher = Batcher::new(
            portal.clone(),
            cfg.progress_batch_size.clamp(1, MAX_BATCH),
            cfg.progress_batch_linger.get(),
        );
        Ok(Self {
            portal,
            rules: Rules {
                status_map: cfg.status_map.clone(),
                on_overflow: cfg.on_overflow,
            },
            batcher,
            deliveries: std::sync::OnceLock::new(),
        })
    }

    /// A permanent "does not exist" for a progress row is transient while the dossier's insert has not been
    /// delivered to the portal by this bus: it is on its way (a retry, another route, another process) and the
    /// row must wait for it, not be dead-lettered. Without the bus's delivery records, it stays permanent.
    async fn judge_missing_dossier(
        &self,
        adapter: &str,
        ma_ho_so: &str,
        mut err: DeliveryError,
    ) -> DeliveryError {
        if err.class != ErrorClass::Permanent || !says_missing(&err.reason) {
            return err;
        }
        let Some(d) = self.deliveries.get() else {
            return err;
        };
        match d
            .delivered_about(adapter, "dossier.submitted", ma_ho_so)
            .await
        {
            Ok(true) => err,
            Ok(false) => {
                err.class = ErrorClass::Transient;
                err.reason = format!(
                    "{} (dossier {ma_ho_so}'s insert has not been delivered to the portal yet; retrying)",
                    err.reason
                );
                err
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot tell whether the dossier's insert was delivered; retrying the row");
                err.class = ErrorClass::Transient;
                err
            }
        }
    }
}

/// Whether a portal error says the dossier does not exist ("không tồn tại", unaccented, or English).
fn says_missing(reason: &str) -> bool {
    let r = reason.to_lowercase();
    [
        "không tồn tại",
        "khong ton tai",
        "does not exist",
        "not exist",
    ]
    .iter()
    .any(|w| r.contains(w))
}

#[async_trait]
impl Sink for Dvcqg {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let msg = &delivery.message;
        let kind = Kind::from_type(&msg.meta.kind).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "dvcqg adapter does not take message type `{}` (only {})",
                msg.meta.kind,
                MESSAGE_TYPES.join(", ")
            ))
        })?;
        if msg.content != ContentKind::Json {
            return Err(DeliveryError::permanent(format!(
                "dvcqg adapter needs a JSON payload, got {}",
                msg.content.mime()
            )));
        }
        let rec = record::prepare(kind, &msg.payload, &self.rules)?;
        match kind {
            Kind::Dossier => self.portal.sync_dossier(&rec).await,
            Kind::Progress => {
                let code = rec.ma_ho_so.clone();
                match self.batcher.send(rec).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(self
                        .judge_missing_dossier(&delivery.adapter, &code, e)
                        .await),
                }
            }
        }
    }

    fn attach(&self, deliveries: Arc<dyn Deliveries>) {
        let _ = self.deliveries.set(deliveries);
    }
}

#[async_trait]
impl Lookup for Dvcqg {
    async fn lookup(&self, key: &str) -> Result<serde_json::Value, DeliveryError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(DeliveryError::permanent(
                "a dossier code (MaHoSo) is required",
            ));
        }
        self.portal.lookup(key).await
    }
}
