//! The operator web console, served by the admin listener under `/ui/`: log in (`[[operators]]`), see how
//! the bus is doing (overview), and work the dead-letter queue (inspect, replay, purge) — the generic pages.
//! A plugin adds its own pages ([`UiPages`], through [`crate::plugin::Hooks::ui`]) behind the same login,
//! drawn in the same layout ([`Viewer::page`]).
//!
//! Why server-rendered HTML and no script: the console must work from a commune's server with nothing but the
//! binary (no CDN, no network), and the less runs in the browser the less a hostile payload shown on a page
//! can do; the Content-Security-Policy allows no script at all ([`html::CSP`]).
//!
//! | path | what | file |
//! |---|---|---|
//! | `GET /ui/login`, `POST /ui/login`, `POST /ui/logout` | sessions | `login.rs`, `session.rs` |
//! | `GET /ui/overview` | broker state, routes, adapters, queues, errors | `overview.rs` |
//! | `GET /ui/dlq`, `GET /ui/dlq/show`, `GET /ui/dlq/confirm`, `POST /ui/dlq/act` | the parking lot | `dlq.rs` |
//! | `GET /ui/assets/app.css` | the stylesheet | `html.rs` |
//!
//! Every page but the login page and the stylesheet needs a session (otherwise a redirect to `/ui/login`);
//! every POST needs the session's CSRF token in its form (otherwise 403), checked here before any handler.
//! The admin API's bearer token is not a console login and a session cookie is not an API credential.

mod dlq;
pub mod html;
mod login;
mod overview;
pub mod pages;
pub mod password;
mod session;

pub use html::{Lang, NavLink, esc, url};
pub use pages::UiPages;

use crate::context::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use session::{LoginLimiter, Sessions};
use std::sync::Arc;
use std::time::Instant;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lt_session";
/// The language cookie's name (`vi` or `en`).
pub const LANG_COOKIE: &str = "lt_lang";
/// The login form's own CSRF cookie (before there is a session).
const LOGIN_COOKIE: &str = "lt_login";
/// Largest form body taken.
const MAX_FORM: usize = 64 * 1024;

#[derive(Clone)]
struct Ui {
    ctx: Arc<Context>,
    sessions: Arc<Sessions>,
    limiter: Arc<LoginLimiter>,
    /// Cookies carry `Secure` (the admin listener has TLS).
    secure: bool,
    nav: Arc<Vec<NavLink>>,
    rates: Arc<overview::Rates>,
}

/// Who is looking, in which language, at which page: what a console handler (the core's or a plugin's)
/// needs to draw a page. In every request's extensions behind the login.
#[derive(Clone)]
pub struct Viewer {
    /// The operator's `[[operators]] name`.
    pub name: String,
    /// The session's CSRF token, to put in every POST form ([`html::csrf_field`]).
    pub csrf: String,
    pub lang: Lang,
    nav: Arc<Vec<NavLink>>,
    path: String,
    /// The request's query without `lang`.
    query: String,
}

impl Viewer {
    /// `vi` or `en`, in the operator's language.
    pub fn t<'a>(&self, vi: &'a str, en: &'a str) -> &'a str {
        self.lang.t(vi, en)
    }

    /// A page in the console's layout (200).
    pub fn page(&self, title: &str, body: String) -> Response {
        self.page_with(StatusCode::OK, title, body, None)
    }

    /// A page with another status, or reloading itself every `refresh` seconds.
    pub fn page_with(
        &self,
        status: StatusCode,
        title: &str,
        body: String,
        refresh: Option<u32>,
    ) -> Response {
        html::Page {
            lang: self.lang,
            title,
            operator: Some((&self.name, &self.csrf)),
            nav: &self.nav,
            path: &self.path,
            query: &self.query,
            refresh,
            body,
        }
        .response(status)
    }
}

/// The console's routes, for the admin router. `plugin` holds a plugin's pages.
pub fn router(ctx: Arc<Context>, plugin: Option<UiPages>) -> Router {
    let plugin = plugin.unwrap_or_default();
    let mut nav = vec![
        NavLink {
            path: "/ui/overview",
            vi: "Tổng quan",
            en: "Overview",
        },
        NavLink {
            path: "/ui/dlq",
            vi: "Hàng đợi lỗi",
            en: "Dead letters",
        },
    ];
    nav.extend(plugin.nav);
    let ui = Ui {
        secure: ctx.config.admin.tls.is_some(),
        ctx,
        sessions: Arc::default(),
        limiter: Arc::default(),
        nav: Arc::new(nav),
        rates: Arc::default(),
    };
    let protected = Router::new()
        .route("/ui/overview", get(overview::page))
        .route("/ui/dlq", get(dlq::list))
        .route("/ui/dlq/show", get(dlq::show))
        .route("/ui/dlq/confirm", get(dlq::confirm))
        .route("/ui/dlq/act", post(dlq::act))
        .route("/ui/logout", post(login::logout))
        .with_state(ui.clone())
        .merge(plugin.router)
        // Only on these routes: `layer` would also wrap the router's fallback, sending every unknown path
        // of the admin listener to the log-in page.
        .route_layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            require_session,
        ));
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/assets/app.css", get(css))
        .with_state(ui)
        .merge(protected)
}

async fn home() -> Response {
    redirect("/ui/overview")
}

async fn css() -> Response {
    let mut r = html::CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// 303 to `to`.
fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    html::secure_headers(r.headers_mut());
    r
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/ui`, `Secure` under TLS; `max_age` 0 deletes it.
fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The language asked for by `?lang=` (to be remembered), else the cookie's, else Vietnamese.
fn lang_of(headers: &HeaderMap, query: Option<&str>) -> (Lang, bool) {
    let asked = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="));
    let parse = |s: &str| match s {
        "en" => Some(Lang::En),
        "vi" => Some(Lang::Vi),
        _ => None,
    };
    if let Some(l) = asked.and_then(parse) {
        return (l, true);
    }
    (
        cookie(headers, LANG_COOKIE)
            .as_deref()
            .and_then(parse)
            .unwrap_or_default(),
        false,
    )
}

/// Equal strings, compared in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The fields of a URL-encoded form body, parsed the way axum's `Form` extractor parses one.
pub(crate) async fn form_fields(body: bytes::Bytes) -> Option<Vec<(String, String)>> {
    use axum::extract::FromRequest;
    let req = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .ok()?;
    axum::extract::Form::<Vec<(String, String)>>::from_request(req, &())
        .await
        .ok()
        .map(|f| f.0)
}

/// The field `name` of parsed form fields.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Behind the login: a live session, and on a POST its CSRF token in the form; the [`Viewer`] handed on.
async fn require_session(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    let (lang, remember) = lang_of(req.headers(), req.uri().query());
    let session =
        cookie(req.headers(), SESSION_COOKIE).and_then(|id| ui.sessions.get(&id, Instant::now()));
    let Some(session) = session else {
        return if req.method() == Method::GET {
            redirect("/ui/login")
        } else {
            login::refused(
                lang,
                StatusCode::FORBIDDEN,
                lang.t("Phiên đăng nhập đã hết hạn.", "Your session has expired."),
            )
        };
    };
    let req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return login::refused(
                lang,
                StatusCode::PAYLOAD_TOO_LARGE,
                lang.t("Biểu mẫu quá lớn.", "The form is too large."),
            );
        };
        let fields = form_fields(bytes.clone()).await.unwrap_or_default();
        let ok = field(&fields, "csrf").is_some_and(|t| same(t, &session.csrf));
        if !ok {
            return login::refused(
                lang,
                StatusCode::FORBIDDEN,
                lang.t(
                    "Biểu mẫu không hợp lệ (thiếu mã chống giả mạo). Hãy tải lại trang và thử lại.",
                    "The form is not valid (its anti-forgery token is missing or wrong). Reload the page and try again.",
                ),
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        req
    } else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let mut req = req;
    let path = req.uri().path().to_owned();
    let query = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect::<Vec<_>>()
        .join("&");
    req.extensions_mut().insert(Viewer {
        name: session.name,
        csrf: session.csrf,
        lang,
        nav: ui.nav.clone(),
        path,
        query,
    });
    let mut resp = next.run(req).await;
    if remember {
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LANG_COOKIE, lang.code(), ui.secure, Some(365 * 86400)),
        );
    }
    resp
}
