//! The operator console over plain HTTP (no browser): log in through its form, keep the session cookie,
//! post forms with the page's CSRF token.

/// The password of every test operator.
pub const PASSWORD: &str = "mật-khẩu thử";

/// `[[operators]]` lines for operator `name` with [`PASSWORD`].
pub fn operators(names: &[&str]) -> String {
    let hash = lienthong_bus::ui::password::hash(PASSWORD).unwrap();
    names
        .iter()
        .map(|n| format!("\n[[operators]]\nname = \"{n}\"\npassword_hash = \"{hash}\"\n"))
        .collect()
}

/// A form body, URL-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                lienthong_bus::ui::url(k),
                lienthong_bus::ui::url(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of cookie `name` set by `resp`.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|r| r.split(';').next().unwrap_or("").to_owned())
        })
}

/// The whole `Set-Cookie` header of cookie `name`.
pub fn set_cookie_header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first `name="csrf"` hidden field in `html`.
pub fn csrf_in(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[i..].split('"').next()?.to_owned())
}

/// A client that follows no redirect, so tests see the 303s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One logged-in operator.
pub struct Console {
    pub admin: String,
    pub http: reqwest::Client,
    pub session: String,
}

/// What one login attempt answered.
pub struct Attempt {
    pub status: u16,
    pub retry_after: Option<String>,
    pub session: Option<String>,
    pub session_cookie: Option<String>,
    pub body: String,
}

/// Posts the login form (after getting it, for its CSRF token and cookie) as `name` with `password`.
pub async fn try_login(admin: &str, name: &str, password: &str) -> Attempt {
    let http = client();
    let page = http.get(format!("{admin}/ui/login")).send().await.unwrap();
    let cookie = set_cookie(&page, "lt_login").expect("the login form sets its CSRF cookie");
    let token = csrf_in(&page.text().await.unwrap()).expect("the login form has a CSRF field");
    let resp = http
        .post(format!("{admin}/ui/login"))
        .header("cookie", format!("lt_login={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", &token),
            ("name", name),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap();
    Attempt {
        status: resp.status().as_u16(),
        retry_after: resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        session: set_cookie(&resp, "lt_session"),
        session_cookie: set_cookie_header(&resp, "lt_session"),
        body: resp.text().await.unwrap_or_default(),
    }
}

impl Console {
    pub async fn login(admin: &str, name: &str) -> Console {
        let a = try_login(admin, name, PASSWORD).await;
        assert_eq!(a.status, 303, "log-in as {name}: {}", a.body);
        Console {
            admin: admin.to_owned(),
            http: client(),
            session: a.session.expect("a session cookie"),
        }
    }

    /// GET `path` with the session: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.admin))
            .header("cookie", format!("lt_session={}", self.session))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POST a form to `path` with the session: (status, body).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.admin))
            .header("cookie", format!("lt_session={}", self.session))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}
