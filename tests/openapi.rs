//! `docs/openapi.json` lists exactly the routes the ingress and admin routers register (read from the
//! router code, method and path), and the admin API serves that very file at `GET /v1/openapi`, each listener
//! at `GET /openapi.json`.

mod common;

use common::*;
use std::collections::BTreeSet;

/// The files whose `Router` builders make the ingress and admin APIs of the shipped bus.
const ROUTERS: &[&str] = &[
    "bus/src/ingress/http.rs",
    "bus/src/admin/mod.rs",
    "domain/src/admin/mod.rs",
];

fn document() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap())
        .unwrap()
}

/// (METHOD, path) of every `.route("path", method(…))` in `text`, chained methods included.
fn registered(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(".route(\"") {
        let rest = &text[i + ".route(\"".len()..];
        let path = &rest[..rest.find('"').unwrap()];
        // The handler expression runs to the `.route(` or `.with_state(` that ends this one.
        let after = &rest[path.len() + 1..];
        let end = after
            .find(".route(")
            .or_else(|| after.find(".with_state("))
            .unwrap_or(after.len());
        for method in ["get", "post", "put", "delete", "patch"] {
            if after[..end].contains(&format!("{method}(")) {
                out.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_document_lists_exactly_the_registered_routes() {
    let mut code = BTreeSet::new();
    for f in ROUTERS {
        code.extend(registered(
            &std::fs::read_to_string(repo().join(f)).unwrap(),
        ));
    }
    assert!(
        code.contains(&("POST".into(), "/v1/messages".into())),
        "{code:?}"
    );
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let missing: Vec<_> = code.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "registered but not documented: {missing:?}; documented but not registered: {extra:?}"
    );
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn the_admin_api_serves_the_file() {
    // The broker plays no part in serving a file: the embedded one will do.
    let bus = TestBus::start_with("openapi", "memory://", "").await;
    let served = reqwest::get(bus.admin("/v1/openapi")).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: serde_json::Value = served.json().await.unwrap();
    assert_eq!(served, document());
    // And at /openapi.json on each listener: the ingress one without credentials.
    for url in [bus.admin("/openapi.json"), bus.url("/openapi.json")] {
        let served = reqwest::get(&url).await.unwrap();
        assert_eq!(served.status(), 200, "{url}");
        let served: serde_json::Value = served.json().await.unwrap();
        assert_eq!(served, document(), "{url}");
    }
    bus.stop().await;
}
