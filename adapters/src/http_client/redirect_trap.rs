//! Test helpers for the redirect policy: a target that answers every request with a redirect to another origin
//! (another port on 127.0.0.1), and that other origin, which records everything that reaches it so a test can
//! assert that no credential ever did.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header::LOCATION};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// The other origin: records every request (method, path, headers and body, as text).
pub(crate) struct Trap {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    pub(crate) async fn start() -> Trap {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    let mut text = format!("{method} {uri}\n");
                    for (name, value) in &headers {
                        text.push_str(&format!(
                            "{name}: {}\n",
                            String::from_utf8_lossy(value.as_bytes())
                        ));
                    }
                    text.push('\n');
                    text.push_str(&String::from_utf8_lossy(&body));
                    log.lock().unwrap().push(text);
                    (StatusCode::OK, "{\"status\": \"OK\", \"error_code\": 0}")
                }
            },
        );
        Trap {
            url: serve(app).await,
            seen,
        }
    }

    /// Every request that reached the trap, rendered as text.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Panics, showing what arrived, if any request that reached the trap contains `secret` anywhere.
    pub(crate) fn assert_never_saw(&self, secret: &str) {
        let requests = self.requests();
        assert!(
            !requests.iter().any(|r| r.contains(secret)),
            "a credential reached another origin: {requests:#?}"
        );
    }
}

/// A target that answers every request with `status` and `Location: <to><the request's path and query>`;
/// returns its base URL.
pub(crate) async fn redirector(status: u16, to: &str) -> String {
    let to = to.to_owned();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let to = to.clone();
        async move { redirect(status, &to, &uri) }
    });
    serve(app).await
}

/// A redirect answer to `<to><uri's path and query>`.
pub(crate) fn redirect(status: u16, to: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut resp = StatusCode::from_u16(status).unwrap().into_response();
    resp.headers_mut()
        .insert(LOCATION, format!("{to}{path}").parse().unwrap());
    resp
}

/// Serves `app` on a free port of 127.0.0.1; returns its base URL.
pub(crate) async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The trap is not vacuous: a client that follows redirects (reqwest's default policy) carries a custom
/// credential header and a 307's body to the other origin, which is what the adapters' policy must prevent.
#[tokio::test]
async fn a_following_client_would_leak_to_the_trap() {
    let trap = Trap::start().await;
    let target = redirector(307, &trap.url).await;
    reqwest::Client::new()
        .post(format!("{target}/login"))
        .header("secretKey", "header-secret")
        .json(&serde_json::json!({ "password": "body-secret" }))
        .send()
        .await
        .unwrap();
    let seen = trap.requests().join("\n");
    assert!(
        seen.contains("header-secret") && seen.contains("body-secret"),
        "{seen}"
    );
}
