//! Issue 12: secrets (agency and admin tokens, an adapter's token, the database and broker passwords, the
//! evidence signing key) never appear in logs, error messages, metrics, the admin API or `check` output. One full run of the
//! real binary, logging at debug, exercising ingress, the admin API, `check`, the CLI and failures; then every
//! byte it wrote and every answer it gave is searched for each configured secret value.

mod common;

use common::process::*;
use common::*;
use std::process::Command;
use std::time::Duration;

const ADMIN_SECRET: &str = "adm-5f0c9e2a7b41d3e8-secret";
const WEBHOOK_SECRET: &str = "hook-8d1e44a09c7b-secret";
const DB_PASSWORD: &str = "pw-3b9f61c2e7d0-secret";
const BROKER_PASSWORD: &str = "amqp-7c2d90e1f4-secret";

/// `url` with `password` set on its user.
fn with_password(url: &str, password: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

/// What one answer showed: status line, headers and body.
async fn seen(r: reqwest::Response) -> String {
    let mut out = format!("{}\n", r.status());
    for (k, v) in r.headers() {
        out.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    out + &r.text().await.unwrap_or_default()
}

fn run_cli(args: &[&str], config: &std::path::Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "debug")
        .env("H40", "tok-H40")
        .env("STP", "tok-STP")
        .env("SYT", "tok-SYT")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    format!(
        "{:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_secret_appears_in_any_log_or_output() {
    let rx = Receiver::scripted(&[], 500).await;
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("secrets");
    let pg = PgSchema::create("secrets").await;
    let state_url = with_password(&pg.url, DB_PASSWORD);
    let body = format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\
         auth_token_env = \"LT_HOOK\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n\
         retry = {{ attempts = 2, backoff = [\"200ms\"] }}\n",
        rx.url()
    );
    let key = dir.path().join("evidence.pem");
    lienthong_bus::evidence::keygen(&key).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(key_body.len() > 40, "{key_pem}");
    let body = format!(
        "{body}\n[evidence]\nsigning_key = \"{}\"\nstore_payloads = true\n",
        key.display()
    );
    let (file, http, admin) = write_config(dir.path(), &ns, &state_url, &body);
    // A first broker node that is down, with a password of its own: its failure is logged.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("[admin]\n", "[admin]\ntoken_env = \"LT_ADMIN\"\n", 1)
        .replacen(
            &format!("broker_url = \"{AMQP}\""),
            &format!(
                "broker_url = [\"amqp://guest:{BROKER_PASSWORD}@127.0.0.1:1/%2f\", \"{AMQP}\"]"
            ),
            1,
        );
    assert!(text.contains(BROKER_PASSWORD));
    std::fs::write(&file, &text).unwrap();
    let env = [("LT_ADMIN", ADMIN_SECRET), ("LT_HOOK", WEBHOOK_SECRET)];
    let mut bus = BusProcess::spawn_with(&file, http, admin, "debug", &env).await;
    let mut outputs = Vec::new();
    let client = reqwest::Client::new();
    let admin_url = |p: &str| format!("http://127.0.0.1:{admin}{p}");

    // Ingress: accepted, wrong token, the admin token on ingress, a body that is refused.
    let id = new_id();
    let ok = envelope(Some(&id), H40, &[STP], dossier("SECRET-1")).to_string();
    for token in ["tok-H40", "tok-H40-wrong", ADMIN_SECRET] {
        let r = client
            .post(bus.url())
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(ok.clone())
            .send()
            .await
            .unwrap();
        outputs.push(seen(r).await);
    }
    let r = client
        .post(bus.url())
        .bearer_auth("tok-H40")
        .header("content-type", "application/json")
        .body("{\"type\": 1}")
        .send()
        .await
        .unwrap();
    outputs.push(seen(r).await);

    // The failing receiver parks the message (it was sent the webhook's token: that is its job).
    wait_for("the parked message", Duration::from_secs(30), || async {
        let r = client
            .get(admin_url("/v1/dlq"))
            .bearer_auth(ADMIN_SECRET)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (!v.as_array()?.is_empty()).then_some(())
    })
    .await;

    // The admin API, with, without and with a wrong token.
    for path in [
        "/v1/dlq",
        &format!("/v1/dlq/{id}"),
        "/v1/audit",
        "/v1/topology",
        "/metrics",
        "/readyz",
        "/v1/openapi",
        &format!("/v1/evidence/{id}"),
    ] {
        for token in [Some(ADMIN_SECRET), None, Some("tok-H40")] {
            let mut req = client.get(admin_url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            outputs.push(seen(req.send().await.unwrap()).await);
        }
    }
    let r = client
        .post(admin_url(&format!("/v1/dlq/{id}/replay")))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    outputs.push(seen(r).await);

    // `check`, fine and with an agency token equal to the admin token; the CLI on the store.
    outputs.push(run_cli(&["check"], &file, &env));
    outputs.push(run_cli(
        &["check"],
        &file,
        &[("LT_ADMIN", ADMIN_SECRET), ("SYT", ADMIN_SECRET)],
    ));
    outputs.push(run_cli(&["dlq", "list"], &file, &env));
    outputs.push(run_cli(&["audit", "verify"], &file, &env));
    let bundle = dir.path().join("bundle.json");
    outputs.push(run_cli(
        &[
            "audit",
            "export",
            "--id",
            &id,
            "--out",
            bundle.to_str().unwrap(),
        ],
        &file,
        &env,
    ));
    outputs.push(std::fs::read_to_string(&bundle).unwrap_or_default());
    // A store that cannot be reached: the error names it without its password.
    let down = dir.path().join("down.toml");
    let down_url = with_password(
        &pg.url.replacen("127.0.0.1:5432", "127.0.0.1:1", 1),
        DB_PASSWORD,
    );
    std::fs::write(&down, text.replace(&state_url, &down_url)).unwrap();
    assert!(
        std::fs::read_to_string(&down)
            .unwrap()
            .contains(DB_PASSWORD)
    );
    outputs.push(run_cli(&["dlq", "list"], &down, &env));

    bus.terminate(Duration::from_secs(15)).await;
    outputs.push(std::fs::read_to_string(BusProcess::log_file(&file, http)).unwrap());
    outputs.push(std::fs::read_to_string(file.with_extension(format!("{http}.out"))).unwrap());
    let all = outputs.join("\n");
    assert!(
        all.contains("unauthenticated") && all.len() > 10_000,
        "the run did not produce what it should have: {all}"
    );
    assert!(all.contains("chain intact"), "{all}");
    for secret in [
        key_body.as_str(),
        ADMIN_SECRET,
        WEBHOOK_SECRET,
        DB_PASSWORD,
        BROKER_PASSWORD,
        "tok-H40",
        "tok-STP",
        "tok-SYT",
    ] {
        if let Some(at) = all.find(secret) {
            let from = all[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!(
                "secret `{secret}` appears in the output:\n…{}…",
                &all[from..(at + secret.len() + 200).min(all.len())]
            );
        }
    }
    let topo = lienthong_bus::broker::topology::build(
        &lienthong_bus::broker::topology::Names::new(&ns),
        &["stp".into()],
        &[Duration::from_millis(200)].into_iter().collect(),
        1,
    );
    delete_topology(&topo).await;
    pg.drop_now().await;
}
