//! Broker copy layouts (`[bus] copy_layout`, ARCHITECTURE.md "Message layout") against the real RabbitMQ:
//! each layout delivers, retries, parks and replays in its own layout, and a bus writing layout 2 still
//! delivers a layout-1 copy that a build before layout 2 left on the adapter's queue.

mod common;

use common::*;
use lienthong_bus::broker::{Envelope, HeaderValue, Headers};
use std::sync::Arc;
use std::time::Duration;

fn adapters(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n\
         retry = {{ attempts = 3, backoff = [\"1s\"] }}\n"
    )
}

async fn start(layout: u8, url: &str) -> TestBus {
    TestBus::start_custom(
        &format!("layout{layout}"),
        AMQP,
        &|h| h.replacen("[bus]\n", &format!("[bus]\ncopy_layout = {layout}\n"), 1),
        &adapters(url),
        Arc::new(lienthong_adapters::Factory),
    )
    .await
}

/// A 503 (retried), then a 400 (parked), then a replay that is delivered: the copy keeps its layout through
/// the retry queue, the dead-letter queue and the parking lot.
async fn retried_parked_and_replayed_in(layout: u8) {
    let rx = Receiver::scripted(&[503], 400).await;
    let bus = start(layout, &rx.url()).await;
    let id = new_id();
    let (s, body) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("D-1")))
        .await;
    assert_eq!(s, 202, "{body}");

    let entry = bus.first_parked(Duration::from_secs(30)).await;
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["reason"], "permanent_error", "{entry}");
    assert_eq!(entry["attempts"], 2, "{entry}");
    assert_eq!(entry["status"], 400, "{entry}");
    assert_eq!(entry["from"], H40);
    let headers = &entry["headers"];
    assert_eq!(headers["lt-layout"], i64::from(layout), "{entry}");
    if layout == 2 {
        let meta: serde_json::Value =
            serde_json::from_str(headers["lt-meta"].as_str().expect("lt-meta")).unwrap();
        assert_eq!(meta["from"], H40);
        assert_eq!(meta["to"], serde_json::json!([STP]));
        assert!(headers.get("lt-from").is_none(), "{headers}");
    } else {
        assert_eq!(headers["lt-from"], H40);
        assert!(headers.get("lt-meta").is_none(), "{headers}");
    }
    let calls = rx.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].json()["attempt"], 2);
    assert_eq!(calls[1].json()["from"], H40);
    assert_eq!(
        calls[1].header("idempotency-key").as_deref(),
        Some(id.as_str())
    );

    rx.set_then(200);
    let replayed = reqwest::Client::new()
        .post(bus.admin(&format!("/v1/dlq/{id}/replay?adapter=stp&from={H40}")))
        .bearer_auth(env("ADMIN").unwrap())
        .header("X-Actor", "copy-layout test")
        .send()
        .await
        .unwrap();
    let status = replayed.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        replayed.text().await.unwrap()
    );
    let calls = rx.wait_calls(3, Duration::from_secs(20)).await;
    let last = calls[2].json();
    assert_eq!(last["id"], id.as_str());
    assert_eq!(last["attempt"], 1, "a replay starts a fresh attempt budget");
    assert_eq!(last["payload"], dossier("D-1"));
    assert_eq!(last["to"], serde_json::json!([STP]));
    bus.stop().await;
}

#[tokio::test]
async fn layout_1_is_retried_parked_and_replayed_in_layout_1() {
    retried_parked_and_replayed_in(1).await;
}

#[tokio::test]
async fn layout_2_is_retried_parked_and_replayed_in_layout_2() {
    retried_parked_and_replayed_in(2).await;
}

/// What a build before layout 2 put on an adapter's queue: a header per fact, no `lt-layout`.
fn layout_1_copy(id: &str, payload: &serde_json::Value) -> Envelope {
    let mut h = Headers::new();
    for (k, v) in [
        ("lt-type", "dossier.submitted"),
        ("lt-from", H40),
        ("lt-to", STP),
        ("lt-created-at", "2026-11-29T08:00:00.000Z"),
        ("lt-route", "r"),
        ("lt-adapter", "stp"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ] {
        h.insert(k.into(), HeaderValue::Str(v.into()));
    }
    h.insert("lt-version".into(), HeaderValue::Int(1));
    h.insert("lt-attempts".into(), HeaderValue::Int(0));
    Envelope {
        message_id: Some(id.into()),
        content_type: Some("application/json".into()),
        user_id: None,
        headers: h,
        body: serde_json::to_vec(payload).unwrap().into(),
    }
}

#[tokio::test]
async fn a_layout_1_copy_left_by_an_older_build_is_delivered_by_a_layout_2_bus() {
    let rx = Receiver::start().await;
    let bus = start(2, &rx.url()).await;
    let id = new_id();
    let payload = dossier("D-old");
    let names = bus.names();
    bus.bus
        .context
        .broker
        .publish(
            &names.deliver_exchange(),
            "stp",
            &layout_1_copy(&id, &payload),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("D-new")),
        )
        .await;
    assert_eq!(s, 202);
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    let old = calls
        .iter()
        .find(|c| c.json()["id"] == id.as_str())
        .expect("the layout-1 copy was delivered");
    assert_eq!(old.json()["payload"], payload);
    assert_eq!(old.json()["created_at"], "2026-11-29T08:00:00.000Z");
    assert_eq!(old.json()["from"], H40);
    assert_eq!(old.json()["to"], serde_json::json!([STP]));
    assert_eq!(
        old.header("traceparent").as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    bus.stop().await;
}
