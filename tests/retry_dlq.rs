//! Issue 3: broker-side retries with the configured spacing, the dead-letter parking lot, and governed
//! replay that delivers exactly once — against the real RabbitMQ.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn config(url: &str, retry: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\nretry = {retry}\n"
    )
}

#[tokio::test]
async fn a_failing_receiver_gets_the_message_after_n_plus_1_attempts_with_the_configured_spacing() {
    let rx = Receiver::scripted(&[503, 503, 503], 200).await;
    let bus = TestBus::start(
        "spacing",
        &config(
            &rx.url(),
            "{ attempts = 5, backoff = [\"1s\", \"2s\", \"3s\"] }",
        ),
    )
    .await;
    let id = new_id();
    let (s, a) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("R-1")))
        .await;
    assert_eq!(s, 202, "{a}");
    let calls = rx.wait_calls(4, Duration::from_secs(30)).await;
    let attempts: Vec<_> = calls
        .iter()
        .map(|c| c.json()["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3, 4]);
    for c in &calls {
        assert_eq!(c.header("idempotency-key").as_deref(), Some(id.as_str()));
    }
    let want = [1.0, 2.0, 3.0];
    for (i, w) in want.iter().enumerate() {
        let gap = calls[i + 1].at.duration_since(calls[i].at).as_secs_f64();
        assert!(
            gap >= w * 0.95 && gap <= w + 1.5,
            "gap {i} was {gap:.2}s, configured {w}s"
        );
    }
    // Delivered: nothing parked, nothing left queued.
    assert_eq!(bus.admin_json("/v1/dlq").await, Some(serde_json::json!([])));
    bus.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = Receiver::scripted(&[429], 200).await;
    let bus = TestBus::start(
        "retryafter",
        &config(&rx.url(), "{ attempts = 2, backoff = [\"1s\", \"3s\"] }"),
    )
    .await;
    // The receiver sends no Retry-After here, so the first tier applies; a 429 is retried, not parked.
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("R-2")),
        )
        .await;
    assert_eq!(s, 202);
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    let gap = calls[1].at.duration_since(calls[0].at).as_secs_f64();
    assert!(gap >= 0.95, "gap {gap}");
    bus.stop().await;
}

fn lienthong(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_400_is_parked_with_its_reason_and_replay_delivers_it_exactly_once() {
    let rx = Receiver::scripted(&[], 400).await;
    let bus = TestBus::start(
        "dlq",
        &config(&rx.url(), "{ attempts = 5, backoff = [\"1s\"] }"),
    )
    .await;
    let id = new_id();
    let (s, _) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("D-1")))
        .await;
    assert_eq!(s, 202);
    let cfg = bus.dir.path().join("bus.toml");

    // Parked at once (no retries for a permanent error), visible in the CLI's JSON listing.
    let entry = wait_for("the message in the DLQ", Duration::from_secs(20), || {
        let cfg = cfg.clone();
        async move {
            let (code, out, _) = lienthong(&["dlq", "list", "--json"], &cfg);
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            (code == 0 && v.as_array().is_some_and(|a| !a.is_empty())).then(|| v[0].clone())
        }
    })
    .await;
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["type"], "dossier.submitted");
    assert_eq!(entry["route"], "r");
    assert_eq!(entry["adapter"], "stp");
    assert_eq!(entry["reason"], "permanent_error");
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["status"], 400);
    assert!(
        entry["last_error"].as_str().unwrap().contains("400"),
        "{entry}"
    );
    assert!(
        entry["body_excerpt"]
            .as_str()
            .unwrap()
            .contains("receiver says hello"),
        "{entry}"
    );
    assert!(entry["dead_lettered_at"].as_str().is_some());
    assert_eq!(rx.calls().len(), 1);

    let (code, out, err) = lienthong(&["dlq", "show", "--id", &id], &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("MaHoSo"), "show includes the payload: {out}");

    // The receiver is fixed; replay from the CLI (same id, fresh attempt budget).
    rx.set_then(200);
    let (code, out, err) = lienthong(&["dlq", "replay", "--id", &id], &cfg);
    assert_eq!(code, 0, "{out}{err}");
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    assert_eq!(calls[1].json()["id"], id.as_str());
    assert_eq!(calls[1].json()["attempt"], 1);
    // A second replay finds nothing to do: the entry is no longer parked.
    let (code, _, _) = lienthong(&["dlq", "replay", "--id", &id], &cfg);
    assert_ne!(code, 0);
    let (_, out, _) = lienthong(&["dlq", "list", "--json"], &cfg);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
    // The replay is in the audit log with who did it.
    let audit: serde_json::Value = reqwest::get(bus.admin("/v1/audit"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "replay");
    assert_eq!(audit[0]["id"], id.as_str());
    assert!(!audit[0]["actor"].as_str().unwrap().is_empty());
    // Exactly once: give any stray duplicate a chance to show up behind a later message, then count.
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("D-2")),
        )
        .await;
    assert_eq!(s, 202);
    let calls = rx.wait_calls(3, Duration::from_secs(20)).await;
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.json()["id"] == id.as_str())
            .count(),
        2,
        "one failed call, one success"
    );
    bus.stop().await;
}

#[tokio::test]
async fn exhausted_retries_are_parked_and_purge_is_audited() {
    let rx = Receiver::scripted(&[], 500).await;
    let bus = TestBus::start(
        "exhaust",
        &config(&rx.url(), "{ attempts = 2, backoff = [\"1s\"] }"),
    )
    .await;
    let id = new_id();
    let (s, _) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("D-3")))
        .await;
    assert_eq!(s, 202);
    let entry = bus.first_parked(Duration::from_secs(30)).await;
    assert_eq!(entry["reason"], "retries_exhausted");
    assert_eq!(entry["attempts"], 3);
    assert_eq!(entry["status"], 500);
    assert!(
        entry["first_attempt_at"].as_str() < entry["last_attempt_at"].as_str(),
        "{entry}"
    );
    assert_eq!(rx.calls().len(), 3);
    let r = reqwest::Client::new()
        .post(bus.admin(&format!("/v1/dlq/{id}/purge")))
        .header("x-actor", "ops-on-call")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let audit: serde_json::Value = reqwest::get(bus.admin("/v1/audit"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "purge");
    assert_eq!(audit[0]["actor"], "ops-on-call");
    assert_eq!(bus.admin_json("/v1/dlq").await, Some(serde_json::json!([])));
    bus.stop().await;
}
