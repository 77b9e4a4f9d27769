//! The adapters' `tls` table against a real TLS receiver (the bus's own listener with `[http.tls]
//! client_ca`): with `ca` the private CA is trusted and with `client_cert`/`client_key` the certificate is
//! presented and verified; without them the call fails and says why.

#[path = "../../../tests/common/pki.rs"]
#[allow(dead_code)]
mod pki;

use crate::testing::{build, check};
use axum::Extension;
use lienthong_bus::adapter::{Delivery, ErrorClass};
use lienthong_bus::config::{Config, ListenerLimits};
use lienthong_bus::message::{ContentKind, Message, Meta};
use lienthong_bus::tls::ClientCert;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A TLS receiver whose client certificates must chain to `ca.pem` in `dir`; sends each caller's
/// certificate fingerprint (or "none").
async fn tls_receiver(dir: &Path) -> (String, mpsc::UnboundedReceiver<String>, CancellationToken) {
    let text = format!(
        "[http.tls]\ncert = \"{0}/server.pem\"\nkey = \"{0}/server.key\"\nclient_ca = \"{0}/ca.pem\"\n",
        dir.display()
    );
    let config = Config::parse(&dir.join("receiver.toml"), &text).unwrap();
    let server =
        lienthong_bus::tls::server_config(config.http.tls.as_ref().unwrap(), "http", &config)
            .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |cert: Option<Extension<ClientCert>>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(cert.map_or("none".into(), |Extension(c)| c.0.sha256.clone()));
            "ok"
        }
    });
    let tcp = lienthong_bus::listener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let stop = CancellationToken::new();
    let limits = ListenerLimits {
        section: "http",
        header_read_timeout: Duration::from_secs(5),
        body_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_connections: 16,
    };
    tokio::spawn(lienthong_bus::listener::serve_tls(
        tcp,
        app,
        limits,
        Some(server),
        stop.clone(),
    ));
    (format!("https://127.0.0.1:{}/inbox", addr.port()), rx, stop)
}

fn delivery() -> Delivery {
    Delivery {
        message: Message {
            meta: Meta {
                id: "tls-1".into(),
                kind: "dossier.submitted".into(),
                version: 1,
                from: "000.00.00.H40".into(),
                to: vec!["000.00.12.H40".into()],
                correlation_id: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            content: ContentKind::Json,
            payload: bytes::Bytes::from_static(b"{}"),
        },
        route: "r".into(),
        adapter: "w".into(),
        attempt: 1,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    }
}

fn webhook(dir: &Path, url: &str, tls: &str) -> Config {
    let text = format!(
        "[[adapters]]\nid = \"w\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n{tls}\n"
    );
    Config::parse(&dir.join("bus.toml"), &text).unwrap()
}

#[tokio::test]
async fn a_webhook_trusts_the_private_ca_and_presents_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::ca("Receiver CA");
    std::fs::write(d.join("ca.pem"), &ca.pem).unwrap();
    pki::server(&ca, d, "server", 365);
    let me = pki::issue(&ca, pki::Leaf::client("province", vec![], 7), d);
    let (url, mut seen, stop) = tls_receiver(d).await;

    // Relative paths, resolved against the config's folder.
    let config = webhook(
        d,
        &url,
        "tls = { ca = \"ca.pem\", client_cert = \"province.pem\", client_key = \"province.key\" }",
    );
    assert_eq!(check(&config.adapters[0], &config), vec![]);
    let sink = build(&config.adapters[0], &config).unwrap().sink.unwrap();
    sink.deliver(&delivery()).await.unwrap();
    let fp = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fp,
        me.fingerprint(),
        "the receiver saw the province's certificate"
    );

    // The CA alone: the receiver sees no certificate (its CA asks, but does not require one).
    let config = webhook(d, &url, "tls = { ca = \"ca.pem\" }");
    let sink = build(&config.adapters[0], &config).unwrap().sink.unwrap();
    sink.deliver(&delivery()).await.unwrap();
    assert_eq!(seen.recv().await.unwrap(), "none");

    // Without `ca` the private CA is not trusted: a transient failure that says why.
    let config = webhook(d, &url, "");
    let sink = build(&config.adapters[0], &config).unwrap().sink.unwrap();
    let e = sink.deliver(&delivery()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e:?}");
    assert!(
        e.reason.to_lowercase().contains("certificate"),
        "{}",
        e.reason
    );
    stop.cancel();
}

#[test]
fn bad_tls_files_are_named_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::ca("Some CA");
    pki::issue(&ca, pki::Leaf::client("a", vec![], 1), d);
    pki::issue(&ca, pki::Leaf::client("b", vec![], 2), d);
    for (tls, key, what) in [
        (
            "tls = { ca = \"missing.pem\" }",
            "adapters[0].tls.ca",
            "cannot read",
        ),
        (
            "tls = { client_cert = \"a.pem\" }",
            "adapters[0].tls.client_key",
            "needed with",
        ),
        (
            "tls = { client_cert = \"a.pem\", client_key = \"b.key\" }",
            "adapters[0].tls.client_key",
            "does not belong",
        ),
        ("tls = { cert = \"a.pem\" }", "adapters[0]", "unknown field"),
    ] {
        let config = webhook(d, "https://127.0.0.1:9/x", tls);
        let problems = check(&config.adapters[0], &config);
        assert!(
            problems
                .iter()
                .any(|p| p.path.starts_with(key) && p.message.contains(what)),
            "{tls}: {problems:?}"
        );
        assert!(build(&config.adapters[0], &config).is_err(), "{tls}");
    }
}
