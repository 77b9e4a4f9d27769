//! The portal's HTTP API: login with a shared, lazily renewed session; service calls; what each answer means.

use super::DvcqgConfig;
use super::record::Record;
use crate::http_client::{self, ClientOptions};
use lienthong_bus::adapter::DeliveryError;
use serde_json::{Map, Value, json};
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A portal `error_code`, numeric when it parses as one (`"00"`, `"0"` and `0` are all `Num(0)`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortalCode {
    Num(i64),
    Text(String),
}

impl PortalCode {
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        t.parse::<i64>()
            .map(PortalCode::Num)
            .unwrap_or_else(|_| PortalCode::Text(t.to_owned()))
    }

    fn from_json(v: Option<&Value>) -> Option<Self> {
        match v? {
            Value::Number(n) => n.as_i64().map(PortalCode::Num),
            Value::String(s) => Some(Self::parse(s)),
            _ => None,
        }
    }

    pub fn is_success(&self) -> bool {
        *self == PortalCode::Num(0)
    }

    fn as_status(&self) -> Option<i64> {
        match self {
            PortalCode::Num(n) => Some(*n),
            PortalCode::Text(_) => None,
        }
    }
}

impl fmt::Display for PortalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortalCode::Num(n) => write!(f, "{n}"),
            // Quoted, and cut like the portal's other words: a code is short, a hostile one need not be.
            PortalCode::Text(s) => {
                write!(f, "{:?}", http_client::cut(s, http_client::MAX_QUOTED_CODE))
            }
        }
    }
}

/// One JSON answer of a service call.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: PortalCode,
    pub message: String,
    pub json: Value,
    pub raw: bytes::Bytes,
}

impl Answer {
    pub(crate) fn from_body(raw: bytes::Bytes) -> Option<Self> {
        let json: Value = serde_json::from_slice(&raw).ok()?;
        let obj = json.as_object()?;
        let code = PortalCode::from_json(obj.get("error_code"))?;
        let message = ["message", "error_message", "msg", "error"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        Some(Self {
            code,
            message,
            json,
            raw,
        })
    }

    /// The answer to an insert saying the dossier is already there (the portal's integration guide).
    /// Code 3/-3 and a message that says so (or none): a 3/-3 about something else is not taken for it.
    pub(crate) fn says_already_exists(&self) -> bool {
        let m = self.message.to_lowercase();
        let worded =
            m.contains("đã tồn tại") || m.contains("da ton tai") || m.contains("already exist");
        matches!(self.code, PortalCode::Num(3 | -3)) && (worded || m.trim().is_empty())
    }
}

/// What a service call came back with, before the error-code rules are applied.
enum Reply {
    Answer(Answer),
    /// HTTP 401/403.
    Unauthorized(u16, bytes::Bytes),
}

struct SessionState {
    current: Option<(String, Instant)>,
    /// The last failed login: callers that were already waiting when it failed get this instead of trying again.
    failed: Option<(Instant, DeliveryError)>,
}

/// Error-code lists from config.
pub(crate) struct Codes {
    transient: Vec<PortalCode>,
    permanent: Vec<PortalCode>,
    session: Vec<PortalCode>,
}

impl Codes {
    /// The lists a config without `*_error_codes` keys has.
    pub(crate) fn defaults() -> Self {
        let codes = |l: Vec<super::CodeValue>| l.iter().map(super::CodeValue::code).collect();
        Self {
            transient: codes(super::default_transient_codes()),
            permanent: codes(super::default_permanent_codes()),
            session: Vec::new(),
        }
    }

    /// Applies the error-code rules to an answer.
    pub(crate) fn judge(&self, what: &str, a: &Answer) -> Result<(), DeliveryError> {
        if a.code.is_success() {
            return Ok(());
        }
        let reason = if a.message.is_empty() {
            format!("portal error_code {} on {what}", a.code)
        } else {
            format!(
                "portal error_code {} on {what}: {}",
                a.code,
                http_client::quoted(&a.message)
            )
        };
        let err = if self.transient.contains(&a.code) {
            DeliveryError::transient(reason)
        } else {
            if !self.permanent.contains(&a.code) {
                tracing::warn!(
                    code = %a.code, service = what,
                    "portal error code is in neither transient_error_codes nor permanent_error_codes; \
                     treated as permanent"
                );
            }
            DeliveryError::permanent(reason)
        };
        let err = err.with_body(&a.raw);
        Err(match a.code.as_status() {
            Some(s) => err.with_status(s),
            None => err,
        })
    }
}

pub struct PortalClient {
    http: reqwest::Client,
    auth_url: String,
    service_url: String,
    username: String,
    password: String,
    madonvi: String,
    dstcode: Option<String>,
    timeout: Duration,
    session_max_age: Duration,
    session: Mutex<SessionState>,
    codes: Codes,
}

impl fmt::Debug for PortalClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalClient")
            .field("service_url", &self.service_url)
            .field("madonvi", &self.madonvi)
            .finish_non_exhaustive()
    }
}

impl PortalClient {
    pub fn new(cfg: &DvcqgConfig, username: String, password: String) -> Result<Self, String> {
        let http = http_client::client(
            ClientOptions::timeout(cfg.timeout.get()).with_tls(cfg.tls.clone()),
        )?;
        let base = cfg.base_url.trim_end_matches('/');
        let codes = |l: &[super::CodeValue]| l.iter().map(super::CodeValue::code).collect();
        Ok(Self {
            http,
            auth_url: format!("{base}{}", cfg.auth_path),
            service_url: format!("{base}{}", cfg.service_path),
            username,
            password,
            madonvi: cfg.madonvi.clone(),
            dstcode: cfg.dstcode.clone(),
            timeout: cfg.timeout.get(),
            session_max_age: cfg.session_max_age.get(),
            session: Mutex::new(SessionState {
                current: None,
                failed: None,
            }),
            codes: Codes {
                transient: codes(&cfg.transient_error_codes),
                permanent: codes(&cfg.permanent_error_codes),
                session: codes(&cfg.session_error_codes),
            },
        })
    }

    /// `DongBoHoSoMC`: insert, and update when the portal says the dossier already exists.
    pub async fn sync_dossier(&self, rec: &Record) -> Result<(), DeliveryError> {
        let insert = self.dossier_call(rec, "False").await?;
        if insert.says_already_exists() {
            tracing::debug!(dossier = %rec.ma_ho_so, code = %insert.code, "dossier already at the portal; updating");
            let update = self.dossier_call(rec, "True").await?;
            return self.judge("DongBoHoSoMC (update)", &update);
        }
        self.judge("DongBoHoSoMC", &insert)
    }

    async fn dossier_call(&self, rec: &Record, is_updating: &str) -> Result<Answer, DeliveryError> {
        let mut fields = Map::new();
        fields.insert("service".into(), json!("DongBoHoSoMC"));
        fields.insert("isUpdating".into(), json!(is_updating));
        fields.insert("data".into(), Value::Array(vec![rec.body.clone()]));
        self.call("DongBoHoSoMC", fields).await
    }

    /// `CapNhatTienDoHoSoMC` with these rows.
    pub async fn push_progress(&self, rows: Vec<Value>) -> Result<(), DeliveryError> {
        let mut fields = Map::new();
        fields.insert("service".into(), json!("CapNhatTienDoHoSoMC"));
        fields.insert("data".into(), Value::Array(rows));
        let answer = self.call("CapNhatTienDoHoSoMC", fields).await?;
        self.judge("CapNhatTienDoHoSoMC", &answer)
    }

    /// `TraCuuHoSo`: the portal's answer as is.
    pub async fn lookup(&self, ma_ho_so: &str) -> Result<Value, DeliveryError> {
        let mut fields = Map::new();
        fields.insert("service".into(), json!("TraCuuHoSo"));
        fields.insert("mahoso".into(), json!(ma_ho_so));
        let answer = self.call("TraCuuHoSo", fields).await?;
        self.judge("TraCuuHoSo", &answer)?;
        Ok(answer.json)
    }

    /// Applies the error-code rules to an answer.
    fn judge(&self, what: &str, a: &Answer) -> Result<(), DeliveryError> {
        self.codes.judge(what, a)
    }

    fn is_session_signal(&self, a: &Answer) -> bool {
        if a.code.is_success() {
            return false;
        }
        self.codes.session.contains(&a.code) || mentions_session(&a.message)
    }

    /// One service call with the shared session; renews it once if the portal refuses it.
    async fn call(
        &self,
        service: &str,
        fields: Map<String, Value>,
    ) -> Result<Answer, DeliveryError> {
        let session = self.session(None).await?;
        match self.post_service(service, &session, &fields).await? {
            Reply::Answer(a) if !self.is_session_signal(&a) => return Ok(a),
            Reply::Answer(a) => {
                tracing::info!(service, code = %a.code, "portal refused the session; logging in again");
            }
            Reply::Unauthorized(status, _) => {
                tracing::info!(
                    service,
                    status,
                    "portal refused the session; logging in again"
                );
            }
        }
        let session = self.session(Some(&session)).await?;
        match self.post_service(service, &session, &fields).await? {
            Reply::Answer(a) if !self.is_session_signal(&a) => Ok(a),
            Reply::Answer(a) => Err(DeliveryError::transient(format!(
                "portal refused a freshly issued session on {service}: error_code {}: {}",
                a.code,
                http_client::quoted(&a.message)
            ))
            .with_body(&a.raw)),
            Reply::Unauthorized(status, body) => Err(DeliveryError::transient(format!(
                "portal refused a freshly issued session on {service}: HTTP {status}"
            ))
            .with_status(status.into())
            .with_body(&body)),
        }
    }

    /// The cached session, or a new one. With `stale`, the caller saw that session refused: a different cached
    /// session (someone else renewed meanwhile) is returned as is, otherwise a new login is made. One login at a
    /// time; callers queued behind a failed login get its error.
    async fn session(&self, stale: Option<&str>) -> Result<String, DeliveryError> {
        let asked = Instant::now();
        let mut state = self.session.lock().await;
        if let Some((at, err)) = &state.failed
            && *at >= asked
        {
            return Err(err.clone());
        }
        if let Some((token, since)) = &state.current
            && since.elapsed() < self.session_max_age
            && stale != Some(token.as_str())
        {
            return Ok(token.clone());
        }
        state.current = None;
        match self.login().await {
            Ok(token) => {
                state.current = Some((token.clone(), Instant::now()));
                state.failed = None;
                Ok(token)
            }
            Err(e) => {
                state.failed = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    async fn login(&self) -> Result<String, DeliveryError> {
        let body = json!({ "username": self.username, "password": self.password });
        let (status, headers, raw) = self.post(&self.auth_url, &body, "login").await?;
        if !status.is_success() {
            let mut err = http_error("login", status.as_u16(), &headers, &raw);
            // A refused login is not the message's fault: keep it retryable.
            err.class = lienthong_bus::adapter::ErrorClass::Transient;
            err.reason = if status.is_redirection() {
                format!(
                    "portal answered the login with HTTP {}{}",
                    status.as_u16(),
                    http_client::redirect_note(status)
                )
            } else {
                format!(
                    "portal refused the login (HTTP {}); check the account in username_env/password_env",
                    status.as_u16()
                )
            };
            return Err(err);
        }
        let answer = Answer::from_body(raw.clone()).ok_or_else(|| {
            DeliveryError::transient("portal login answer is not JSON with an error_code")
                .with_body(&raw)
        })?;
        let token = answer
            .json
            .get("session")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !answer.code.is_success() || token.is_empty() {
            let mut err = DeliveryError::transient(format!(
                "portal refused the login: error_code {}: {}",
                answer.code,
                http_client::quoted(&answer.message)
            ))
            .with_body(&raw);
            if let Some(s) = answer.code.as_status() {
                err = err.with_status(s);
            }
            return Err(err);
        }
        tracing::info!("logged in to the portal");
        Ok(token.to_owned())
    }

    async fn post_service(
        &self,
        service: &str,
        session: &str,
        fields: &Map<String, Value>,
    ) -> Result<Reply, DeliveryError> {
        let mut body = Map::with_capacity(fields.len() + 2);
        body.insert("session".into(), json!(session));
        body.insert("madonvi".into(), json!(self.madonvi));
        body.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (status, headers, raw) = self
            .post(&self.service_url, &Value::Object(body), service)
            .await?;
        let code = status.as_u16();
        if code == 401 || code == 403 {
            return Ok(Reply::Unauthorized(code, raw));
        }
        if !status.is_success() {
            return Err(http_error(service, code, &headers, &raw));
        }
        Answer::from_body(raw.clone())
            .map(Reply::Answer)
            .ok_or_else(|| {
                DeliveryError::transient(format!(
                    "portal answer to {service} is not JSON with an error_code (HTTP {code})"
                ))
                .with_status(code.into())
                .with_body(&raw)
            })
    }

    async fn post(
        &self,
        url: &str,
        body: &Value,
        what: &str,
    ) -> Result<
        (
            reqwest::StatusCode,
            reqwest::header::HeaderMap,
            bytes::Bytes,
        ),
        DeliveryError,
    > {
        let mut req = self.http.post(url).json(body);
        if let Some(d) = &self.dstcode {
            req = req.header("dstcode", d);
        }
        let send_err = |e: reqwest::Error| {
            if e.is_timeout() {
                DeliveryError::transient(format!(
                    "portal did not answer {what} within {}",
                    humantime::format_duration(self.timeout)
                ))
            } else {
                DeliveryError::transient(format!(
                    "cannot reach the portal for {what}: {}",
                    http_client::error_chain(&e)
                ))
            }
        };
        let resp = req.send().await.map_err(send_err)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await.map_err(send_err)?;
        Ok((status, headers, raw))
    }
}

/// True when a portal message talks about the login session ("session", "phiên làm việc", "phiên đăng nhập";
/// not a bare "phiên", which also starts "phiên bản", version).
pub(crate) fn mentions_session(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "session",
        "phiên làm việc",
        "phiên đăng nhập",
        "phien lam viec",
        "phien dang nhap",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// A non-2xx answer (other than 401/403 on a service call).
pub(crate) fn http_error(
    what: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    raw: &[u8],
) -> DeliveryError {
    let note = reqwest::StatusCode::from_u16(status).map_or("", http_client::redirect_note);
    let reason = format!("HTTP {status} from the portal on {what}{note}");
    let err = if status == 408 || status == 429 || status >= 500 {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        DeliveryError::transient(reason).with_retry_after(retry_after)
    } else {
        DeliveryError::permanent(reason)
    };
    err.with_status(status.into()).with_body(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value) -> Answer {
        Answer::from_body(bytes::Bytes::from(serde_json::to_vec(&body).unwrap())).unwrap()
    }

    /// An oracle of `fuzz/fuzz_targets/dvcqg_response.rs`; before this fix the portal's message and a text `error_code` were quoted
    /// whole into the reason, which becomes the message's `lt-last-error` header (an AMQP header must fit in one
    /// frame) and the parking lot's `last_error`.
    #[test]
    fn reasons_quoting_the_portal_are_bounded() {
        let long = "lỗi ".repeat(50_000);
        for body in [
            json!({"error_code": -1, "message": long}),
            json!({"error_code": long, "message": "m"}),
        ] {
            let e = Codes::defaults()
                .judge("DongBoHoSoMC", &answer(body))
                .unwrap_err();
            assert!(
                e.reason.chars().count() <= 420,
                "{} characters",
                e.reason.chars().count()
            );
            assert!(
                e.reason.starts_with("portal error_code "),
                "{:.80}",
                e.reason
            );
        }
        let e = Codes::defaults()
            .judge(
                "DongBoHoSoMC",
                &answer(json!({"error_code": "-1", "message": "Hệ thống bận"})),
            )
            .unwrap_err();
        assert_eq!(
            e.reason,
            "portal error_code -1 on DongBoHoSoMC: Hệ thống bận"
        );
        assert_eq!(e.class, lienthong_bus::adapter::ErrorClass::Transient);
    }
}
