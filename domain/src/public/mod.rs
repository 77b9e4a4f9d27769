//! The citizens' lookup, on its own listener (`[public] listen`):
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /public/` | a small page in Vietnamese with a lookup form; `?code=<MaHoSo>` shows the answer in the page |
//! | `GET /public/dossiers/{code}` | the answer as JSON |
//!
//! Why an allow-list: dossier messages carry the applicant's name, ID numbers, address, phone and e-mail, and
//! the notes of a step may name people too. The answer is built field by field from [`PublicDossier`], which
//! holds only the procedure's name, the status, the appointment date, the state and the steps (status,
//! agency name, date), so nothing else can leak into it whatever a payload carries.
//!
//! Why the same 404 for a malformed and an unknown code: so the answer does not tell a prober which codes
//! are well-formed. Lookups (also those that find nothing) are rate-limited per client ([`limit`]).

pub mod limit;
mod page;

use crate::admin::status_name_vi;
use crate::dossiers::rules::{Clock, State};
use crate::dossiers::{DossierStore, DossierView};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use lienthong_bus::error::{ApiError, code};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection silent this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the lookup reads.
#[derive(Clone)]
pub struct PublicState {
    pub dossiers: DossierStore,
    pub due_soon: Duration,
    pub agency_names: crate::names::AgencyNames,
    pub limiter: Arc<limit::Limiter>,
}

/// What a citizen may see of a dossier: nothing else is ever put in the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicDossier {
    pub code: String,
    /// The procedure's name (`TenTTHC`).
    pub procedure: Option<String>,
    pub status: Option<i64>,
    pub status_name: Option<&'static str>,
    /// The appointment date (`yyyyMMddHHmmss`, Vietnam time): the one in force, or for a finished dossier
    /// the one it was judged against.
    pub appointment_date: Option<String>,
    pub state: State,
    pub state_name: &'static str,
    pub steps: Vec<PublicStep>,
}

/// One step as a citizen sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicStep {
    pub status: i64,
    pub status_name: &'static str,
    /// The agency's configured name (its code when none is configured).
    pub agency: String,
    /// When it happened (`yyyyMMddHHmmss`, Vietnam time).
    pub date: String,
}

impl PublicDossier {
    /// The citizen's view of `v`, judged by `clock`; `name` gives agencies' configured names.
    pub fn of(v: &DossierView, clock: &Clock, name: &dyn Fn(&str) -> Option<String>) -> Self {
        let state = v.state(clock);
        PublicDossier {
            code: v.code.clone(),
            procedure: v.procedure.clone(),
            status: v.status,
            status_name: v.status.map(status_name_vi),
            appointment_date: if v.finished.is_some() {
                v.finished_due.clone()
            } else {
                v.due.clone()
            },
            state,
            state_name: state.name_vi(),
            steps: v
                .steps(clock)
                .into_iter()
                .map(|s| PublicStep {
                    status: s.status,
                    status_name: status_name_vi(s.status),
                    agency: name(&s.agency).unwrap_or(s.agency),
                    date: s.at,
                })
                .collect(),
        }
    }
}

/// Whether `code` looks like a dossier code (`<agency>-yyMMdd-nnnn…`, as the schemas define it).
fn well_formed(code: &str) -> bool {
    let mut parts = code.split('-');
    let (Some(agency), Some(day), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    code.len() <= 50
        && !agency.is_empty()
        && agency
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && day.len() == 6
        && day.bytes().all(|b| b.is_ascii_digit())
        && (4..=6).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// What a lookup found.
enum Found {
    Dossier(Box<PublicDossier>),
    /// Unknown or malformed: the same answer either way.
    Nothing,
    /// Too many lookups: retry after this many seconds.
    Limited(u64),
    Unavailable,
}

impl PublicState {
    async fn lookup(&self, peer: SocketAddr, code: &str) -> Found {
        if let Err(wait) = self.limiter.take(peer.ip(), Instant::now()) {
            return Found::Limited(wait);
        }
        if !well_formed(code) {
            return Found::Nothing;
        }
        match self.dossiers.get(code).await {
            Ok(Some(v)) => {
                let clock = Clock::now(self.due_soon);
                let name = |c: &str| self.agency_names.get(c);
                Found::Dossier(Box::new(PublicDossier::of(&v, &clock, &name)))
            }
            Ok(None) => Found::Nothing,
            Err(e) => {
                tracing::warn!(error = %e, "public dossier lookup failed");
                Found::Unavailable
            }
        }
    }
}

/// The public routes, with their request timeout and headers.
pub fn router(s: PublicState) -> Router {
    Router::new()
        .route("/public", get(|| async { Redirect::permanent("/public/") }))
        .route("/public/", get(page_handler))
        .route("/public/dossiers/{code}", get(json_handler))
        .with_state(s)
        .layer(axum::middleware::from_fn(guard))
}

/// Every answer: bounded in time, not cached, not framed, and loading nothing from elsewhere.
async fn guard(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request took too long\n").into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn limited(wait: u64, body: Response) -> Response {
    let mut r = body;
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `GET /public/dossiers/{code}`.
async fn json_handler(
    AxumState(s): AxumState<PublicState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    code: Result<Path<String>, PathRejection>,
) -> Response {
    // A code that is not even text (`%FF`) is malformed like any other: the same 404, after the limiter.
    let code = code.map(|Path(c)| c).unwrap_or_default();
    match s.lookup(peer, &code).await {
        Found::Dossier(d) => axum::Json(d).into_response(),
        Found::Nothing => ApiError::new(code::NOT_FOUND, page::NOT_FOUND).into_response(),
        Found::Limited(wait) => limited(
            wait,
            ApiError::new(
                code::RATE_LIMITED,
                format!("Quá nhiều lượt tra cứu; vui lòng thử lại sau {wait} giây."),
            )
            .into_response(),
        ),
        Found::Unavailable => {
            ApiError::new(code::STATE_UNAVAILABLE, page::UNAVAILABLE).into_response()
        }
    }
}

/// `GET /public/[?code=]`.
async fn page_handler(
    AxumState(s): AxumState<PublicState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Response {
    // A query that is not text (`?code=%FF`) asks for a malformed code: looked up as one (the same 404 page).
    let q = match query {
        Ok(Query(q)) => q,
        Err(_) => BTreeMap::from([("code".to_owned(), "\u{FFFD}".to_owned())]),
    };
    let Some(code) = q.get("code").map(|c| c.trim()).filter(|c| !c.is_empty()) else {
        return page::render("", None).into_response();
    };
    match s.lookup(peer, code).await {
        Found::Dossier(d) => page::render(code, Some(Ok(&d))).into_response(),
        Found::Nothing => (
            StatusCode::NOT_FOUND,
            page::render(code, Some(Err(page::NOT_FOUND))),
        )
            .into_response(),
        Found::Limited(wait) => limited(
            wait,
            page::render(
                code,
                Some(Err(&format!(
                    "Quá nhiều lượt tra cứu; vui lòng thử lại sau {wait} giây."
                ))),
            )
            .into_response(),
        ),
        Found::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            page::render(code, Some(Err(page::UNAVAILABLE))),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dossier_codes_are_recognised_by_shape() {
        assert!(well_formed("000.00.12.H40-261127-00001"));
        assert!(well_formed("H40-261127-0001"));
        for bad in [
            "",
            "none",
            "000.00.12.H40-261127",
            "000.00.12.H40-26112-00001",
            "000.00.12.H40-261127-001",
            "000.00.12.H40-261127-00001-1",
            "000/00-261127-00001",
            "-261127-00001",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
