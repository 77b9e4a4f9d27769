//! Issue 12, "The admin API holds personal data": with `admin.token_env` set, every admin route the OpenAPI
//! document lists (the core's and the province's) answers 401 without the token, except the probes; `/metrics`
//! is open only with `admin.open_metrics`; `check` refuses an unguarded admin listener off loopback.

mod common;

use common::*;
use std::process::Command;

/// A bus on the embedded broker (serving routes needs no RabbitMQ) with `admin` keys added to `[admin]`.
async fn bus_with_admin(test: &str, admin: &str) -> TestBus {
    let a = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    let edit = |head: String| {
        assert!(head.contains(a), "head() changed");
        head.replacen(a, &format!("{a}{admin}\n"), 1)
    };
    TestBus::start_custom(
        test,
        "memory://",
        &edit,
        "",
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await
}

/// (METHOD, concrete path) of every admin operation in docs/openapi.json, path parameters filled in.
fn admin_operations() -> Vec<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            if !tags.iter().any(|t| t == "admin") {
                continue;
            }
            let mut concrete = String::new();
            let mut in_param = false;
            for c in path.chars() {
                match c {
                    '{' => in_param = true,
                    '}' => {
                        in_param = false;
                        concrete.push_str("x1");
                    }
                    _ if in_param => {}
                    _ => concrete.push(c),
                }
            }
            out.push((method.to_uppercase(), concrete));
        }
    }
    assert!(out.len() > 10, "{out:?}");
    out
}

async fn send(
    bus: &TestBus,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), bus.admin(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test]
async fn every_admin_route_but_the_probes_needs_the_admin_token() {
    let bus = bus_with_admin("adminguard", "token_env = \"ADMIN\"").await;
    let ops = admin_operations();
    for (method, path) in &ops {
        let open = path == "/healthz" || path == "/readyz";
        for token in [None, Some("tok-STP"), Some("tok-ADMIN-not")] {
            let (status, body) = send(&bus, method, path, token).await;
            if open {
                assert_eq!(status, 200, "{method} {path} is a probe: {body}");
            } else {
                assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
                assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
            }
        }
        // With the token the guard lets the request through to its handler (whatever it then answers).
        let (status, body) = send(&bus, method, path, Some("tok-ADMIN")).await;
        assert_ne!(status, 401, "{method} {path} with the admin token: {body}");
    }
    // An unknown path is still 404, not a hint that a token would help.
    let (status, _) = send(&bus, "GET", "/v1/nothing-here", None).await;
    assert_eq!(status, 404);
    bus.stop().await;
}

#[tokio::test]
async fn metrics_is_open_only_with_open_metrics() {
    let guarded = bus_with_admin("metricsguard", "token_env = \"ADMIN\"").await;
    assert_eq!(send(&guarded, "GET", "/metrics", None).await.0, 401);
    assert_eq!(
        send(&guarded, "GET", "/metrics", Some("tok-ADMIN")).await.0,
        200
    );
    guarded.stop().await;
    let open = bus_with_admin("metricsopen", "token_env = \"ADMIN\"\nopen_metrics = true").await;
    assert_eq!(send(&open, "GET", "/metrics", None).await.0, 200);
    assert_eq!(send(&open, "GET", "/v1/dlq", None).await.0, 401);
    open.stop().await;
}

#[tokio::test]
async fn without_a_token_env_the_admin_api_stays_open_as_before() {
    let bus = bus_with_admin("adminopen", "").await;
    assert_eq!(send(&bus, "GET", "/v1/dlq", None).await.0, 200);
    assert_eq!(send(&bus, "GET", "/metrics", None).await.0, 200);
    bus.stop().await;
}

/// `lienthong check` on the test head with `[admin]` edited; returns (exit code, stderr + stdout).
fn check_admin(admin: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let text = head("check-admin", "memory://", &state).replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[admin]\n{admin}\n"),
    );
    let file = dir.path().join("bus.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env("H40", "tok-H40")
        .env("STP", "tok-STP")
        .env("SYT", "tok-SYT")
        .env("ADMIN", "tok-ADMIN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_refuses_an_unguarded_admin_listener_off_loopback() {
    let (code, out) = check_admin("listen = \"0.0.0.0:9090\"");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("admin.listen"), "{out}");
    assert!(out.contains("admin.token_env"), "{out}");
    for ok in [
        "listen = \"0.0.0.0:9090\"\ntoken_env = \"ADMIN\"",
        "listen = \"127.0.0.1:9090\"",
        "listen = \"localhost:9090\"",
    ] {
        let (code, out) = check_admin(ok);
        assert_eq!(code, Some(0), "{ok}: {out}");
    }
}
