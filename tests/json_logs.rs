//! Issue 14, "JSON logs carry the trace id": the real binary with `LIENTHONG_LOG_FORMAT=json` logs a message's
//! acceptance and its delivery as JSON lines carrying the trace id of the `traceparent` it came with, the same
//! trace id the receiver got.

mod common;

use common::process::*;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn json_log_lines_of_a_message_carry_its_trace_id() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("json-logs");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let body = format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n",
        rx.url()
    );
    let (cfg, http, admin) = write_config(dir.path(), &ns, &state, &body);
    let mut bus = BusProcess::spawn_with(
        &cfg,
        http,
        admin,
        "info",
        &[("LIENTHONG_LOG_FORMAT", "json")],
    )
    .await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let id = new_id();
    let env = envelope(Some(&id), H40, &[STP], dossier("json-logs"));
    let resp = reqwest::Client::new()
        .post(bus.url())
        .bearer_auth("tok-H40")
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(env.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let calls = rx.wait_calls(1, Duration::from_secs(30)).await;
    assert!(calls[0].header("traceparent").unwrap().contains(trace));

    // The delivery is logged after the receiver answered: wait for both lines rather than for a time.
    let log = BusProcess::log_file(&cfg, http);
    let lines: Vec<serde_json::Value> = wait_for(
        "the Accepted and Delivered lines",
        Duration::from_secs(30),
        || {
            let log = log.clone();
            let id = id.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let ours: Vec<serde_json::Value> = text
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
                    })
                    .filter(|v| v["fields"]["id"] == id.as_str())
                    .collect();
                let has = |m: &str| ours.iter().any(|v| v["fields"]["message"] == m);
                (has("Accepted") && has("Delivered")).then_some(ours)
            }
        },
    )
    .await;
    for line in &lines {
        assert_eq!(line["fields"]["trace_id"], trace, "{line}");
    }
    bus.terminate(Duration::from_secs(10)).await;
}
