//! TLS on the listeners and client-certificate identity, against a running bus on the real RabbitMQ, with a
//! throwaway CA made by the test (`common::pki`): a certificate naming its agency by URI or by fingerprint
//! is that agency and its message is delivered; an unknown CA, an expired and a revoked certificate are
//! refused at the handshake (no handler sees them); certificate and token must agree; `require_mtls` refuses
//! the token alone; `from` must still be the certificate's agency.

mod common;

use common::pki::{self, Leaf, agency_uri};
use common::{H40, Receiver, STP, SYT, TestBus, envelope, new_id, wait_for};
use std::path::Path;
use std::time::Duration;

fn client(ca_pem: &str, identity: Option<&pki::Issued>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10));
    if let Some(i) = identity {
        b = b.identity(reqwest::Identity::from_pem(i.identity_pem().as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// POSTs `body` to `url`; Ok((status, JSON)) or Err(the transport error, as text).
async fn post(
    c: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let mut r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(format!("tok-{t}"));
    }
    let resp = r.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

struct Setup {
    ca: pki::Ca,
    h40: pki::Issued,
    stp: pki::Issued,
    by_fingerprint: pki::Issued,
    nobody: pki::Issued,
    expired: pki::Issued,
    revoked: pki::Issued,
    foreign: pki::Issued,
}

const REVOKED_SERIAL: u64 = 666;

fn make_pki(dir: &Path) -> Setup {
    let ca = pki::ca("Test Province CA");
    pki::server(&ca, dir, "server", 365);
    pki::crl(&ca, &[REVOKED_SERIAL], &dir.join("crl.pem"), false);
    let other = pki::ca("Somebody Else's CA");
    let issue = |name, sans, serial| pki::issue(&ca, Leaf::client(name, sans, serial), dir);
    Setup {
        h40: issue("h40", vec![agency_uri(H40)], 10),
        stp: issue("stp", vec![agency_uri(STP)], 11),
        by_fingerprint: issue(
            "syt-by-fingerprint",
            vec![rcgen::SanType::DnsName("syt.example".try_into().unwrap())],
            12,
        ),
        nobody: issue("nobody", vec![agency_uri("000.99.99.H40")], 13),
        expired: pki::issue(
            &ca,
            Leaf {
                not_before: -30,
                not_after: -1,
                ..Leaf::client("expired", vec![agency_uri(H40)], 14)
            },
            dir,
        ),
        revoked: issue("revoked", vec![agency_uri(H40)], REVOKED_SERIAL),
        foreign: pki::issue(
            &other,
            Leaf::client("foreign", vec![agency_uri(H40)], 15),
            dir,
        ),
        ca,
    }
}

fn write_ca(s: &Setup, dir: &Path) {
    std::fs::write(dir.join("ca.pem"), &s.ca.pem).unwrap();
}

#[tokio::test]
async fn client_certificates_identify_agencies_and_bad_ones_never_reach_a_handler() {
    let pki_dir = tempfile::tempdir().unwrap();
    let d = pki_dir.path();
    let s = make_pki(d);
    write_ca(&s, d);
    let tls = format!(
        "\n[http.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\ncrl = [\"{}\"]\n",
        d.join("server.pem").display(),
        d.join("server.key").display(),
        d.join("ca.pem").display(),
        d.join("crl.pem").display(),
    );
    let fp = s.by_fingerprint.fingerprint();
    let edit = move |head: String| {
        let listen = "[http]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"2s\"\n";
        head.replacen(
            "[http]\nlisten = \"127.0.0.1:0\"\n",
            &format!("{listen}{tls}"),
            1,
        )
        .replacen(
            "token_env = \"STP\"\n",
            "token_env = \"STP\"\nrequire_mtls = true\n",
            1,
        )
        .replacen(
            "token_env = \"SYT\"\n",
            // Written with colons and in capitals, as tools print fingerprints.
            &format!(
                "token_env = \"SYT\"\ncert_fingerprints = [\"{}\"]\n",
                fp.as_bytes()
                    .chunks(2)
                    .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            1,
        )
    };
    let rx = Receiver::start().await;
    let body = format!(
        "\n[[adapters]]\nid = \"inbox\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\n[[routes]]\nid = \"all\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"inbox\"]\n",
        rx.url()
    );
    let bus = TestBus::start_custom(
        "tls-identity",
        common::AMQP,
        &edit,
        &body,
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await;
    let url = format!("https://127.0.0.1:{}/v1/messages", bus.bus.http_addr.port());
    let msg =
        |from: &str, label: &str| envelope(Some(&new_id()), from, &[SYT], common::dossier(label));

    // A certificate naming H40 by URI, no token: H40's message, delivered.
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.h40)),
        &url,
        None,
        &msg(H40, "H40-CERT-1"),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{json}");
    rx.wait_calls(1, Duration::from_secs(20)).await;

    // The same certificate with H40's own token: fine. With SYT's token: 401, never a guess.
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.h40)),
        &url,
        Some("H40"),
        &msg(H40, "H40-CERT-2"),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{json}");
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.h40)),
        &url,
        Some("SYT"),
        &msg(H40, "H40-CERT-3"),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "{json}"
    );
    assert!(
        json["error"]["message"].as_str().unwrap().contains(H40),
        "{json}"
    );

    // A valid certificate of H40 posting from STP: 403.
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.h40)),
        &url,
        None,
        &msg(STP, "H40-AS-STP"),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{json}"
    );

    // STP has require_mtls: its token alone is refused; its certificate gets in.
    let (status, json) = post(
        &client(&s.ca.pem, None),
        &url,
        Some("STP"),
        &msg(STP, "STP-TOKEN"),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "{json}"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("require_mtls"),
        "{json}"
    );
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.stp)),
        &url,
        None,
        &msg(STP, "STP-CERT"),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{json}");

    // A certificate with no URI, listed by fingerprint for SYT: SYT.
    let (status, json) = post(
        &client(&s.ca.pem, Some(&s.by_fingerprint)),
        &url,
        None,
        &msg(SYT, "SYT-FP"),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{json}");

    // A valid certificate naming no configured agency: 401, whatever token comes with it.
    for token in [None, Some("H40")] {
        let (status, json) = post(
            &client(&s.ca.pem, Some(&s.nobody)),
            &url,
            token,
            &msg(H40, "NOBODY"),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{json}"
        );
    }

    // Agencies without require_mtls still come in over TLS with their token alone.
    let (status, json) = post(
        &client(&s.ca.pem, None),
        &url,
        Some("H40"),
        &msg(H40, "H40-TOKEN"),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{json}");

    // An unknown CA, an expired and a revoked certificate: refused at the handshake, so no answer at all.
    for (what, cert) in [
        ("foreign", &s.foreign),
        ("expired", &s.expired),
        ("revoked", &s.revoked),
    ] {
        let r = post(
            &client(&s.ca.pem, Some(cert)),
            &url,
            Some("H40"),
            &msg(H40, what),
        )
        .await;
        assert!(r.is_err(), "{what} certificate got an answer: {r:?}");
    }

    // Plain HTTP to the TLS port gets no HTTP answer.
    let r = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/messages",
            bus.bus.http_addr.port()
        ))
        .bearer_auth("tok-H40")
        .header("content-type", "application/json")
        .body(msg(H40, "PLAIN").to_string())
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status() != 202);

    // Exactly the accepted ones were delivered: H40 ×3, STP, SYT.
    wait_for("5 deliveries", Duration::from_secs(20), || async {
        (rx.calls().len() == 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let labels: Vec<String> = rx
        .calls()
        .iter()
        .map(|c| String::from_utf8_lossy(&c.body).into_owned())
        .collect();
    for l in [
        "H40-CERT-1",
        "H40-CERT-2",
        "STP-CERT",
        "SYT-FP",
        "H40-TOKEN",
    ] {
        assert!(labels.iter().any(|b| b.contains(l)), "{l} not delivered");
    }
    assert_eq!(labels.len(), 5, "something refused was delivered");

    // A client that opens a connection and never starts its handshake is closed by the header timeout.
    let started = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(bus.bus.http_addr)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await
    .expect("the silent connection was not closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));

    bus.stop().await;
}

#[tokio::test]
async fn the_admin_listener_takes_tls_and_requires_its_client_certificates() {
    let pki_dir = tempfile::tempdir().unwrap();
    let d = pki_dir.path();
    let s = make_pki(d);
    write_ca(&s, d);
    // A DER CRL this time.
    pki::crl(&s.ca, &[REVOKED_SERIAL], &d.join("crl.der"), true);
    let tls = format!(
        "\n[admin.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\ncrl = [\"{}\"]\n",
        d.join("server.pem").display(),
        d.join("server.key").display(),
        d.join("ca.pem").display(),
        d.join("crl.der").display(),
    );
    let edit = move |head: String| {
        head.replacen(
            "[admin]\nlisten = \"127.0.0.1:0\"\n",
            &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{tls}"),
            1,
        )
    };
    let bus = TestBus::start_custom(
        "tls-admin",
        common::AMQP,
        &edit,
        "",
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await;
    let url = format!("https://127.0.0.1:{}/healthz", bus.bus.admin_addr.port());
    let r = client(&s.ca.pem, Some(&s.h40))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for (what, c) in [
        ("no certificate", client(&s.ca.pem, None)),
        ("revoked", client(&s.ca.pem, Some(&s.revoked))),
        ("foreign", client(&s.ca.pem, Some(&s.foreign))),
    ] {
        let r = c.get(&url).send().await;
        assert!(r.is_err(), "{what}: {r:?}");
    }
    // The ingress listener, without [http.tls], still speaks plain HTTP.
    let (status, _) = bus.post("H40", &serde_json::json!({})).await;
    assert_eq!(status, 400);
    bus.stop().await;
}
