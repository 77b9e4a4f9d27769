//! `lienthong check` reads the TLS files as `run` does: each missing, unparsable or mismatched file, each bad
//! fingerprint and an unmeetable `require_mtls` is named at its key path; a certificate expiring within 30
//! days is a warning that does not fail the check.

mod common;

use common::pki;
use common::*;
use std::path::Path;
use std::process::Command;

fn config(schemas: &Path, tls: &str, agency_extra: &str) -> String {
    format!(
        r#"
[bus]
broker_url = "amqp://guest:guest@127.0.0.1:5672/%2f"
schemas_dir = "{}"
{tls}
[[agencies]]
code = "000.00.00.H40"
token_env = "LT_TLS_CHECK_TOKEN"
{agency_extra}

[[adapters]]
id = "inbox"
type = "webhook"
url = "http://127.0.0.1:9101/inbox"

[[routes]]
id = "all"
types = ["dossier.submitted"]
deliver = ["inbox"]
"#,
        schemas.display()
    )
}

fn check(dir: &Path, text: &str) -> (Option<i32>, String, String) {
    let file = dir.join("bus.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env("LT_TLS_CHECK_TOKEN", "x")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_tls_files_pass_and_a_certificate_expiring_soon_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::ca("Check CA");
    std::fs::write(d.join("ca.pem"), &ca.pem).unwrap();
    pki::server(&ca, d, "soon", 10);
    pki::server(&ca, d, "later", 365);
    pki::crl(&ca, &[99], &d.join("crl.der"), true);
    // Relative paths: resolved against the config's folder.
    let tls = "[http.tls]\ncert = \"soon.pem\"\nkey = \"soon.key\"\nclient_ca = \"ca.pem\"\ncrl = [\"crl.der\"]\n\n[admin.tls]\ncert = \"later.pem\"\nkey = \"later.key\"\n";
    let (code, out, err) = check(
        d,
        &config(&repo().join("schemas"), tls, "require_mtls = true"),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("warning: http.tls.cert:"), "{out}");
    assert!(
        out.contains("expires on") && (out.contains("in 9 days") || out.contains("in 10 days")),
        "{out}"
    );
    assert!(!out.contains("admin.tls"), "{out}");
}

#[test]
fn an_adapters_certificate_expiring_soon_is_a_warning_even_beside_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::ca("Adapter CA");
    std::fs::write(d.join("ca.pem"), &ca.pem).unwrap();
    pki::server(&ca, d, "client", 10);
    let text = config(&repo().join("schemas"), "", "").replace(
        "url = \"http://127.0.0.1:9101/inbox\"",
        "url = \"http://127.0.0.1:9101/inbox\"\ntls = { ca = \"ca.pem\", client_cert = \"client.pem\", client_key = \"client.key\" }",
    );
    let (code, out, err) = check(d, &text);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning: adapters[0].tls.client_cert:")
                && l.contains("expires on")),
        "{out}"
    );
    // A problem elsewhere in the file does not hide it.
    let broken = text.replace("[[routes]]", "[[routes]]\nfrom_typo = 1");
    let (code, out, err) = check(d, &broken);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("from_typo"), "{err}");
    assert!(
        out.contains("warning: adapters[0].tls.client_cert:"),
        "{out}"
    );
}

#[test]
fn bad_tls_files_and_identity_settings_are_named_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::ca("Check CA");
    pki::server(&ca, d, "server", 365);
    pki::server(&ca, d, "other", 365);
    std::fs::write(d.join("junk.crl"), "no list here").unwrap();
    let tls = "[http.tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\ncrl = [\"junk.crl\"]\n\n[admin.tls]\ncert = \"server.pem\"\nkey = \"other.key\"\n";
    let (code, out, err) = check(
        d,
        &config(
            &repo().join("schemas"),
            tls,
            "cert_fingerprints = [\"12:34\"]\nrequire_mtls = true",
        ),
    );
    assert_eq!(code, Some(1), "{out}{err}");
    for (key, what) in [
        ("http.tls.cert", "missing.pem"),
        ("http.tls.crl", "need `client_ca`"),
        ("admin.tls.key", "does not belong to the certificate"),
        (
            "agencies[0].cert_fingerprints[0]",
            "not a SHA-256 fingerprint",
        ),
        ("agencies[0].require_mtls", "needs `[http.tls] client_ca`"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(key) && l.contains(what)),
            "no `{key}`: `{what}` in:\n{err}"
        );
    }
}
