//! Issue 12, "Evidence log": against the real RabbitMQ and state store, with `[evidence]` on. An untouched log
//! verifies (`lienthong audit verify`); changing one record's hash, deleting a record, swapping two and forging a
//! signature are each named by sequence number; an exported bundle verifies offline and fails after any one
//! byte changes; the admin API lists a message's records; a kill -9 mid-stream leaves a chain that verifies.

mod common;

use common::process::*;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn webhook(url: &str, key: &Path) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n\
         retry = {{ attempts = 3, backoff = [\"200ms\"] }}\n\
         \n[evidence]\nsigning_key = \"{}\"\n",
        key.display()
    )
}

/// A new signing key in `dir`, made by `lienthong keygen`; returns (key file, public key file).
fn keygen(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("evidence.pem");
    let out = Command::new(bin())
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    let public_file = dir.join("evidence.pub.pem");
    std::fs::write(&public_file, public).unwrap();
    (key, public_file)
}

/// Runs `lienthong <args>`; (exit code, stdout + stderr).
fn cli(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn verify(config: &Path) -> (Option<i32>, String) {
    cli(&["audit", "verify", "--config", config.to_str().unwrap()])
}

/// Asserts `audit verify` fails naming record `seq` and `what`.
fn assert_broken(config: &Path, seq: i64, what: &str) {
    let (code, out) = verify(config);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("record {seq}: {what}")),
        "expected record {seq}: {what}, got: {out}"
    );
}

async fn sql(db: &Path, statements: &[&str]) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for s in statements {
        conn.execute(*s).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_log_verifies_and_every_tampering_is_named() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    // The first attempt fails (a `retried` record), then the receiver takes everything.
    let rx = Receiver::scripted(&[503], 200).await;
    let bus = TestBus::start("evidence", &webhook(&rx.url(), &key)).await;
    let ids: Vec<String> = (0..6).map(|_| new_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        let (s, a) = bus
            .post(
                "H40",
                &envelope(Some(id), H40, &[STP], dossier(&format!("EV-{i}"))),
            )
            .await;
        assert_eq!(s, 202, "{a}");
    }
    // Refused after authentication: a schema violation.
    let bad_id = new_id();
    let mut bad = envelope(Some(&bad_id), H40, &[STP], dossier("EV-BAD"));
    bad["payload"]["TrangThaiHoSo"] = serde_json::json!("not a number");
    let (s, _) = bus.post("H40", &bad).await;
    assert_eq!(s, 422);
    // The same id from another sender, for the admin API's ambiguity.
    let (s, a) = bus
        .post(
            "STP",
            &envelope(Some(&ids[0]), STP, &[SYT], dossier("EV-STP")),
        )
        .await;
    assert_eq!(s, 202, "{a}");
    rx.wait_calls(8, Duration::from_secs(30)).await;
    let kinds = |v: &serde_json::Value| -> Vec<String> {
        v["records"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["kind"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Every message has its accepted and delivered records (the delivered one right after the webhook call).
    let first = wait_for(
        "the evidence of the first message",
        Duration::from_secs(20),
        || async {
            let v = bus
                .admin_json(&format!("/v1/evidence/{}?from={H40}", ids[0]))
                .await?;
            kinds(&v).contains(&"delivered".to_string()).then_some(v)
        },
    )
    .await;
    let k = kinds(&first);
    assert_eq!(k[0], "accepted", "{first}");
    assert!(k.contains(&"retried".to_string()), "{first}");
    let content = &first["records"][0]["content"];
    assert_eq!(content["from"], H40);
    assert_eq!(content["data"]["type"], "dossier.submitted");
    assert_eq!(content["data"]["to"], serde_json::json!([STP]));
    assert_eq!(content["data"]["routes"], serde_json::json!(["r"]));
    assert_eq!(content["data"]["body_sha256"].as_str().unwrap().len(), 64);
    let r = reqwest::get(bus.admin(&format!("/v1/evidence/{}", ids[0])))
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // The refused message is found by the id it claimed, refused with its code.
    let refused = bus
        .admin_json(&format!("/v1/evidence/{bad_id}"))
        .await
        .expect("the refusal's record, by the id the message claimed");
    assert_eq!(kinds(&refused), ["refused"], "{refused}");
    assert_eq!(refused["records"][0]["content"]["from"], H40, "{refused}");
    assert_eq!(
        refused["records"][0]["content"]["data"]["code"], "schema_violation",
        "{refused}"
    );
    let r = reqwest::get(bus.admin("/v1/evidence/never-sent"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    for id in &ids[1..] {
        wait_for(
            "every delivery's record",
            Duration::from_secs(20),
            || async {
                let v = bus.admin_json(&format!("/v1/evidence/{id}")).await?;
                kinds(&v).contains(&"delivered".to_string()).then_some(())
            },
        )
        .await;
    }
    let config = bus.dir.path().join("bus.toml");
    let db = bus.dir.path().join("state.db");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    let (code, out) = cli(&[
        "audit",
        "export",
        "--config",
        config.to_str().unwrap(),
        "--id",
        &ids[1],
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(&[
        "audit",
        "export",
        "--config",
        config.to_str().unwrap(),
        "--id",
        &ids[0],
        "--out",
        dir.path().join("x.json").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "an id of two senders needs --from: {out}");
    assert!(out.contains("--from"), "{out}");
    let _files = bus.stop_keeping_files().await;

    let (code, out) = verify(&config);
    assert_eq!(code, Some(0), "{out}");
    let records: i64 = out.split(' ').next().unwrap().parse().unwrap();
    assert!(records >= 6 * 2 + 3, "{out}");
    assert!(
        out.contains(" records, chain intact, ") && out.contains(" signatures valid"),
        "{out}"
    );

    // The bundle, offline: valid with its own key and with the given one; any one byte changed fails.
    let b = bundle.to_str().unwrap();
    let p = public.to_str().unwrap();
    assert_eq!(cli(&["audit", "verify-bundle", b]).0, Some(0));
    let (code, out) = cli(&["audit", "verify-bundle", b, "--public-key", p]);
    assert_eq!(code, Some(0), "{out}");
    let bytes = std::fs::read(&bundle).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_public) = keygen(&other);
    let (code, out) = cli(&[
        "audit",
        "verify-bundle",
        b,
        "--public-key",
        other_public.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "another key: {out}");
    for at in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        assert!(
            lienthong_bus::evidence::bundle::verify(&changed, None).is_err(),
            "byte {at} changed and the bundle still verifies: {}",
            String::from_utf8_lossy(&changed[at.saturating_sub(80)..(at + 40).min(changed.len())])
        );
    }
    let mut changed = bytes.clone();
    let at = bytes.len() / 2;
    changed[at] ^= 0x01;
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, &changed).unwrap();
    let (code, out) = cli(&["audit", "verify-bundle", tampered.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");

    // Tampering with the store, each undone before the next.
    sql(&db, &["CREATE TABLE saved AS SELECT * FROM lt_evidence"]).await;
    let restore = [
        "DELETE FROM lt_evidence",
        "INSERT INTO lt_evidence SELECT * FROM saved",
    ];
    sql(
        &db,
        &["UPDATE lt_evidence SET hash = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff' WHERE seq = 3"],
    )
    .await;
    assert_broken(&config, 3, "hash mismatch");
    sql(&db, &restore).await;
    assert_eq!(verify(&config).0, Some(0));

    sql(&db, &["DELETE FROM lt_evidence WHERE seq = 4"]).await;
    assert_broken(&config, 4, "missing record");
    sql(&db, &restore).await;

    sql(
        &db,
        &[
            "UPDATE lt_evidence SET seq = -5 WHERE seq = 5",
            "UPDATE lt_evidence SET seq = 5 WHERE seq = 6",
            "UPDATE lt_evidence SET seq = 6 WHERE seq = -5",
        ],
    )
    .await;
    let (code, out) = verify(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("record 5: "), "swapped 5 and 6: {out}");
    sql(&db, &restore).await;

    // The columns lookups go by, relabelled beside the hashed content: a message's records hidden from
    // `GET /v1/evidence/{id}` and `audit export` must not pass for an intact log.
    for edit in [
        "UPDATE lt_evidence SET message_id = 'zzz' WHERE seq = 2",
        "UPDATE lt_evidence SET sender = '000.00.13.H40' WHERE seq = 2",
        "UPDATE lt_evidence SET kind = 'accepted' WHERE seq = 2 AND kind <> 'accepted'",
        "UPDATE lt_evidence SET kind = 'refused' WHERE seq = 2 AND kind = 'accepted'",
        "UPDATE lt_evidence SET at_ms = at_ms + 1000 WHERE seq = 2",
    ] {
        sql(&db, &[edit]).await;
        let (code, out) = verify(&config);
        if code == Some(0) {
            // The guarded edit did not apply to this record's kind; the other one of the pair did.
            sql(&db, &restore).await;
            continue;
        }
        assert!(out.contains("record 2: column mismatch"), "{edit}: {out}");
        sql(&db, &restore).await;
    }
    // A stored body that is not the one the record names, or a body where the record names none.
    for (kind, what) in [
        ("accepted", "payload mismatch: the stored body is not"),
        ("delivered", "payload mismatch: a body is stored"),
    ] {
        let edit = format!(
            "UPDATE lt_evidence SET payload = X'41' WHERE seq = (SELECT MIN(seq) FROM lt_evidence WHERE kind = '{kind}')"
        );
        sql(&db, &[edit.as_str()]).await;
        let (code, out) = verify(&config);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(what), "{kind}: {out}");
        sql(&db, &restore).await;
    }
    assert_eq!(verify(&config).0, Some(0));

    sql(
        &db,
        &[
            "CREATE TABLE saved_heads AS SELECT * FROM lt_evidence_head",
            "UPDATE lt_evidence_head SET signature = (SELECT signature FROM lt_evidence_head ORDER BY seq LIMIT 1)
             WHERE seq = (SELECT seq FROM lt_evidence_head ORDER BY seq DESC LIMIT 1)",
        ],
    )
    .await;
    let (code, out) = verify(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("bad signature"), "{out}");
    sql(
        &db,
        &[
            "DELETE FROM lt_evidence_head",
            "INSERT INTO lt_evidence_head SELECT * FROM saved_heads",
            "DROP TABLE saved_heads",
        ],
    )
    .await;
    assert_eq!(verify(&config).0, Some(0));

    // The tip removed (or moved back) while signed heads name later records.
    sql(
        &db,
        &[
            "CREATE TABLE saved_tip AS SELECT * FROM lt_evidence_tip",
            "DELETE FROM lt_evidence_tip",
        ],
    )
    .await;
    assert_broken(&config, 1, "missing record");
    sql(
        &db,
        &[
            "INSERT INTO lt_evidence_tip SELECT * FROM saved_tip",
            "DROP TABLE saved_tip",
            "DROP TABLE saved",
        ],
    )
    .await;
    assert_eq!(verify(&config).0, Some(0));
}

/// The queues and exchanges of `ns` with the one adapter and its retry tier.
fn ns_topology(ns: &str) -> lienthong_bus::broker::Topology {
    lienthong_bus::broker::topology::build(
        &lienthong_bus::broker::topology::Names::new(ns),
        &["stp".into()],
        &[Duration::from_millis(200)].into_iter().collect(),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_stream_leaves_a_chain_that_verifies() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path());
    let ns = namespace("evkill");
    let pg = PgSchema::create("evkill").await;
    let (file, http, admin) = write_config(dir.path(), &ns, &pg.url, &webhook(&rx.url(), &key));
    let mut bus = BusProcess::spawn(&file, http, admin).await;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ids: Vec<String> = (0..400).map(|_| new_id()).collect();
    let load = load(vec![bus.url()], ids, "EVKILL", accepted.clone());
    wait_for(
        "some accepted messages",
        Duration::from_secs(30),
        || async { (accepted.lock().unwrap().len() >= 50).then_some(()) },
    )
    .await;
    bus.kill9();
    load.abort();
    let count = || pg.count("SELECT count(*) FROM lt_evidence");
    assert!(count().await > 0);
    let (code, out) = verify(&file);
    assert_eq!(code, Some(0), "after kill -9: {out}");
    // The chain goes on from where it stopped.
    let mut bus = BusProcess::spawn(&file, http, admin).await;
    let before = count().await;
    let (s, a) = post_raw(
        &bus.url(),
        Some("H40"),
        "application/json",
        envelope(Some(&new_id()), H40, &[STP], dossier("EVKILL-after"))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 202, "{a}");
    wait_for("the new record", Duration::from_secs(20), || async {
        (count().await > before).then_some(())
    })
    .await;
    bus.terminate(Duration::from_secs(15)).await;
    let (code, out) = verify(&file);
    assert_eq!(code, Some(0), "after a restart: {out}");
    delete_topology(&ns_topology(&ns)).await;
    pg.drop_now().await;
}

#[test]
fn check_names_a_signing_key_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    std::fs::write(dir.path().join("not-a-key.pem"), "hello").unwrap();
    for (key, expected) in [
        ("missing.pem", "cannot read"),
        ("not-a-key.pem", "not a PEM (PKCS#8) Ed25519 private key"),
    ] {
        let file = dir.path().join("bus.toml");
        let text = head("check-evidence", "memory://", &state)
            + &format!("\n[evidence]\nsigning_key = \"{key}\"\n");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(bin())
            .args(["check", "--config"])
            .arg(&file)
            .env("H40", "a")
            .env("STP", "b")
            .env("SYT", "c")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("evidence.signing_key") && text.contains(expected),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_keep_one_chain() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path());
    let ns = namespace("evtwo");
    let pg = PgSchema::create("evtwo").await;
    let body = webhook(&rx.url(), &key);
    let a = write_config(dir.path(), &ns, &pg.url, &body);
    let b = write_config(dir.path(), &ns, &pg.url, &body);
    let mut bus_a = BusProcess::spawn(&a.0, a.1, a.2).await;
    let mut bus_b = BusProcess::spawn(&b.0, b.1, b.2).await;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ids: Vec<String> = (0..300).map(|_| new_id()).collect();
    load(
        vec![bus_a.url(), bus_b.url()],
        ids,
        "EVTWO",
        accepted.clone(),
    )
    .await
    .unwrap();
    assert_eq!(accepted.lock().unwrap().len(), 300);
    rx.wait_calls(300, Duration::from_secs(60)).await;
    // Every accepted and every delivered record is in the one chain.
    wait_for("600 records", Duration::from_secs(30), || async {
        (pg.count("SELECT count(*) FROM lt_evidence").await >= 600).then_some(())
    })
    .await;
    bus_a.terminate(Duration::from_secs(15)).await;
    bus_b.terminate(Duration::from_secs(15)).await;
    let (code, out) = verify(&a.0);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("600 records, chain intact"), "{out}");
    delete_topology(&ns_topology(&ns)).await;
    pg.drop_now().await;
}
