//! Logging in and out of the console.
//!
//! The login form has a CSRF token of its own before there is a session (a random value in a cookie and in
//! the form, which must match: a page elsewhere can post neither). A failed login is counted per client
//! address and per name; past the limit the answer is 429 without looking at the password.

use super::html::{self, Lang, esc};
use super::{
    LOGIN_COOKIE, SESSION_COOKIE, Ui, cookie, field, form_fields, lang_of, redirect, same, session,
    set_cookie,
};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

/// A page without the operator's navigation, saying `why` (a refused form, an expired session).
pub(super) fn refused(lang: Lang, status: StatusCode, why: &str) -> Response {
    html::Page {
        lang,
        title: lang.t("Không thực hiện được", "Not done"),
        operator: None,
        nav: &[],
        path: "/ui/login",
        query: "",
        refresh: None,
        body: format!(
            "<p class=\"error\" id=\"refusal\">{}</p><p><a href=\"/ui/login\">{}</a></p>",
            esc(why),
            lang.t("Đăng nhập", "Log in")
        ),
    }
    .response(status)
}

fn login_page(
    ui: &Ui,
    lang: Lang,
    status: StatusCode,
    message: Option<&str>,
    cookie: Option<String>,
) -> Response {
    // The browser's token when it has one (a page loaded twice must not leave its form with a token its
    // cookie no longer matches), else a new one.
    let token = cookie
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::random_token);
    let mut body = String::new();
    if let Some(m) = message {
        body.push_str(&format!(
            "<p class=\"error\" id=\"login-error\">{}</p>",
            esc(m)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/ui/login\" class=\"login\" id=\"login\">{}\
         <label>{}<input name=\"name\" id=\"name\" autocomplete=\"username\" required></label>\
         <label>{}<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" id=\"login-submit\">{}</button></form>",
        html::csrf_field(&token),
        lang.t("Tên đăng nhập", "Name"),
        lang.t("Mật khẩu", "Password"),
        lang.t("Đăng nhập", "Log in"),
    ));
    let mut r = html::Page {
        lang,
        title: lang.t("Đăng nhập bảng điều khiển", "Console log-in"),
        operator: None,
        nav: &[],
        path: "/ui/login",
        query: "",
        refresh: None,
        body,
    }
    .response(status);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, ui.secure, None),
    );
    r
}

/// `GET /ui/login`.
pub(super) async fn form(State(ui): State<Ui>, req: Request) -> Response {
    let (lang, remember) = lang_of(req.headers(), req.uri().query());
    let mut r = login_page(
        &ui,
        lang,
        StatusCode::OK,
        None,
        cookie(req.headers(), LOGIN_COOKIE),
    );
    if remember {
        r.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(
                super::LANG_COOKIE,
                lang.code(),
                ui.secure,
                Some(365 * 86400),
            ),
        );
    }
    r
}

/// A hash to check a password against when the name is unknown, so an unknown name costs the same time as
/// a known one and names cannot be told apart by timing.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| super::password::hash("decoy").unwrap_or_default())
}

/// `POST /ui/login`: name, password, csrf.
pub(super) async fn submit(
    State(ui): State<Ui>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (lang, _) = lang_of(req.headers(), None);
    let expected = cookie(req.headers(), LOGIN_COOKIE);
    let Ok(body) = axum::body::to_bytes(req.into_body(), super::MAX_FORM).await else {
        return refused(lang, StatusCode::PAYLOAD_TOO_LARGE, "form too large");
    };
    let fields = form_fields(body).await.unwrap_or_default();
    let csrf_ok = match (expected.as_deref(), field(&fields, "csrf")) {
        (Some(e), Some(t)) => same(e, t),
        _ => false,
    };
    if !csrf_ok {
        return refused(
            lang,
            StatusCode::FORBIDDEN,
            lang.t(
                "Biểu mẫu đăng nhập không hợp lệ (thiếu mã chống giả mạo). Hãy tải lại trang.",
                "The log-in form is not valid (its anti-forgery token is missing or wrong). Reload the page.",
            ),
        );
    }
    let name = field(&fields, "name").unwrap_or_default().to_owned();
    let password = field(&fields, "password").unwrap_or_default().to_owned();
    let ip = peer.ip();
    if let Some(wait) = ui.limiter.blocked(ip, &name, Instant::now()) {
        tracing::warn!(client = %ip, operator = %name.chars().take(64).collect::<String>(), "Console log-in refused: too many failed attempts");
        let msg = match lang {
            Lang::Vi => format!("Đăng nhập sai quá nhiều lần. Hãy thử lại sau {wait} giây."),
            Lang::En => format!("Too many failed log-ins. Try again in {wait} seconds."),
        };
        let mut r = login_page(
            &ui,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&msg),
            expected,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let hash = ui
        .ctx
        .config
        .operators
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.password_hash.clone());
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| decoy().to_owned());
    let matches = tokio::task::spawn_blocking(move || super::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    if !(known && matches) {
        ui.limiter.failed(ip, &name, Instant::now());
        tracing::warn!(client = %ip, "Console log-in failed");
        return login_page(
            &ui,
            lang,
            StatusCode::UNAUTHORIZED,
            Some(lang.t(
                "Sai tên đăng nhập hoặc mật khẩu.",
                "Wrong name or password.",
            )),
            expected,
        );
    }
    ui.limiter.succeeded(&name);
    let id = ui.sessions.create(&name, Instant::now());
    tracing::info!(operator = %name, client = %ip, "Operator logged in to the console");
    let mut r = redirect("/ui/overview");
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, ui.secure, None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", ui.secure, Some(0)),
    );
    r
}

/// `POST /ui/logout` (behind the login, so its CSRF token is checked).
pub(super) async fn logout(State(ui): State<Ui>, req: Request) -> Response {
    if let Some(id) = cookie(req.headers(), SESSION_COOKIE) {
        ui.sessions.remove(&id);
    }
    let mut r = redirect("/ui/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", ui.secure, Some(0)),
    );
    r
}
