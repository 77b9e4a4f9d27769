//! Issue 2 contract, over HTTP, against the real RabbitMQ: delivery byte-for-byte, fan-out, routing by `to`,
//! idempotent resubmission, and every error code.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn webhook(id: &str, url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    )
}

fn route(id: &str, extra: &str, deliver: &[&str]) -> String {
    let d: Vec<String> = deliver.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "\n[[routes]]\nid = \"{id}\"\ntypes = [\"dossier.submitted\", \"dossier.status-changed\"]\n{extra}\ndeliver = [{}]\n",
        d.join(", ")
    )
}

#[tokio::test]
async fn valid_dossier_arrives_byte_for_byte_with_headers() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "bytes",
        &(webhook("stp", &rx.url())
            + &route("dossier-to-stp", &format!("from = [\"{H40}\"]"), &["stp"])),
    )
    .await;
    let id = new_id();
    // Odd spacing and key order in the payload: the receiver must get exactly these bytes.
    let payload_text = format!(
        "{{ \"TrangThaiHoSo\":2, \"MaHoSo\" : \"{STP}-261127-00001\", \"MaTTHC\":\"1.001757.000.00.00.H40\",\"TenTTHC\":\"Đăng ký khai sinh\",\"ChuHoSo\":\"Nguyễn Văn An\",\"TrichYeuHoSo\":\"Khai sinh\",\"NgayTiepNhan\":\"20261127090000\",\"NgayHenTra\":\"20261130170000\" }}"
    );
    let body = format!(
        "{{\"id\":\"{id}\",\"type\":\"dossier.submitted\",\"from\":\"{H40}\",\"to\":[\"{STP}\"],\"correlation_id\":\"corr-1\",\"payload\":{payload_text}}}"
    );
    let (status, answer) = post_raw(
        &bus.url("/v1/messages"),
        Some("H40"),
        "application/json",
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"id": id, "routes": ["dossier-to-stp"]}));

    let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
    let call = &calls[0];
    let text = std::str::from_utf8(&call.body).unwrap();
    assert!(
        text.ends_with(&format!("\"payload\":{payload_text}}}")),
        "payload bytes changed: {text}"
    );
    let v = call.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["type"], "dossier.submitted");
    assert_eq!(v["version"], 1);
    assert_eq!(v["from"], H40);
    assert_eq!(v["to"], json!([STP]));
    assert_eq!(v["correlation_id"], "corr-1");
    assert_eq!(v["attempt"], 1);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(call.header("idempotency-key").as_deref(), Some(id.as_str()));
    let tp = call.header("traceparent").expect("traceparent");
    assert_eq!(tp.len(), 55, "{tp}");
    bus.stop().await;
}

#[tokio::test]
async fn fans_out_to_two_adapters() {
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let bus = TestBus::start(
        "fanout",
        &(webhook("a", &a.url()) + &webhook("b", &b.url()) + &route("both", "", &["a", "b"])),
    )
    .await;
    let id = new_id();
    let (s, ans) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("X-1")))
        .await;
    assert_eq!(s, 202, "{ans}");
    for rx in [&a, &b] {
        let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
        assert_eq!(calls[0].json()["id"], id.as_str());
    }
    bus.stop().await;
}

#[tokio::test]
async fn a_route_matches_by_to_and_not_by_from() {
    let (stp, other) = (Receiver::start().await, Receiver::start().await);
    let bus = TestBus::start(
        "to",
        &(webhook("stp", &stp.url())
            + &webhook("h40-only", &other.url())
            + &route("by-to", &format!("to = [\"{STP}\"]"), &["stp"])
            + &route("by-from", &format!("from = [\"{H40}\"]"), &["h40-only"])),
    )
    .await;
    // Sent by Sở Y tế (not in by-from's `from`) to Sở Tư pháp (in by-to's `to`).
    let id = new_id();
    let (s, ans) = bus
        .post("SYT", &envelope(Some(&id), SYT, &[STP], dossier("X-2")))
        .await;
    assert_eq!(s, 202, "{ans}");
    assert_eq!(ans["routes"], json!(["by-to"]));
    stp.wait_calls(1, Duration::from_secs(20)).await;
    // Nothing reached the other adapter: its queue is empty and it had no call.
    let depth = bus
        .bus
        .context
        .broker
        .queue_depth(&bus.names().deliver_queue("h40-only"))
        .await;
    assert_eq!(depth, Some(0));
    assert!(other.calls().is_empty());
    bus.stop().await;
}

#[tokio::test]
async fn the_same_id_is_accepted_once_and_delivered_once() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "idem",
        &(webhook("stp", &rx.url()) + &route("r", "", &["stp"])),
    )
    .await;
    let id = new_id();
    let env = envelope(Some(&id), H40, &[STP], dossier("X-3"));
    let (s1, a1) = bus.post("H40", &env).await;
    let (s2, a2) = bus.post("H40", &env).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a1, a2);
    rx.wait_calls(1, Duration::from_secs(20)).await;
    // A second, different message sent afterwards arrives; the duplicate never does.
    let (s3, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("X-4")),
        )
        .await;
    assert_eq!(s3, 202);
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    let ids: Vec<_> = calls
        .iter()
        .map(|c| c.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{ids:?}");
    bus.stop().await;
}

#[tokio::test]
async fn idempotency_survives_a_restart() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "idem-restart",
        &(webhook("stp", &rx.url()) + &route("r", "", &["stp"])),
    )
    .await;
    let id = new_id();
    let env = envelope(Some(&id), H40, &[STP], dossier("X-9"));
    let (s1, a1) = bus.post("H40", &env).await;
    assert_eq!(s1, 202, "{a1}");
    rx.wait_calls(1, Duration::from_secs(20)).await;
    let bus = bus.restart().await;
    let (s2, a2) = bus.post("H40", &env).await;
    assert_eq!(
        (s2, &a2),
        (202, &a1),
        "the answer after a restart is the first one"
    );
    // A later message arrives; the resubmission never does.
    let (s3, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("X-10")),
        )
        .await;
    assert_eq!(s3, 202);
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.json()["id"] == id.as_str())
            .count(),
        1
    );
    bus.stop().await;
}

#[tokio::test]
async fn an_operator_can_see_where_a_dossier_is_and_whether_it_is_on_time() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "track",
        &(webhook("stp", &rx.url()) + &route("r", "", &["stp"])),
    )
    .await;
    let submitted = dossier("T-1");
    let code = submitted["MaHoSo"].as_str().unwrap().to_owned();
    let (s, a) = bus
        .post("H40", &envelope(Some(&new_id()), H40, &[STP], submitted))
        .await;
    assert_eq!(s, 202, "{a}");
    let mut progress = envelope(
        Some(&new_id()),
        STP,
        &[H40],
        json!({
            "MaHoSo": code,
            "NguoiXuLy": "Trần Thị Bình",
            "ThoiDiemXuLy": "20261127100000",
            "NoiDungXuLy": "Chuyển phòng Hộ tịch xử lý",
            "TrangThai": 4
        }),
    );
    progress["type"] = json!("dossier.status-changed");
    let (s, a) = bus.post("STP", &progress).await;
    assert_eq!(s, 202, "{a}");
    rx.wait_calls(2, Duration::from_secs(20)).await;
    let url = bus.admin(&format!("/v1/dossiers/{code}"));
    let v: serde_json::Value = wait_for(
        "both deliveries recorded",
        Duration::from_secs(20),
        || async {
            let v: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            let all = v["messages"]
                .as_array()?
                .iter()
                .all(|m| m["delivered"].as_array().is_some_and(|d| !d.is_empty()));
            all.then_some(v)
        },
    )
    .await;
    assert_eq!(v["status"], 4);
    assert_eq!(v["status_name"], "processing");
    assert_eq!(v["due"], "20261130170000");
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    assert_eq!(v["events"][1]["note"], "Chuyển phòng Hộ tịch xử lý");
    assert_eq!(v["messages"][0]["delivered"][0]["adapter"], "stp");
    // The appointment date is in the past relative to today: the bus says so.
    assert!(
        v["timing"]["state"].as_str().unwrap().starts_with("open"),
        "{v}"
    );
    let missing = reqwest::get(bus.admin("/v1/dossiers/none")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    bus.stop().await;
}

async fn expect_error(status: u16, answer: &serde_json::Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn every_error_code_is_answered() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "errors",
        &(webhook("stp", &rx.url()) + &route("r", &format!("to = [\"{STP}\"]"), &["stp"])),
    )
    .await;
    let url = bus.url("/v1/messages");
    let good = envelope(None, H40, &[STP], dossier("X-5"));

    let (s, a) = post_raw(
        &url,
        Some("H40"),
        "application/json",
        b"{\"type\": ".to_vec(),
    )
    .await;
    expect_error(s, &a, 400, "invalid_json").await;
    let (s, a) = post_raw(
        &url,
        Some("H40"),
        "application/json",
        b"{\"a\":\"\xff\"}".to_vec(),
    )
    .await;
    expect_error(s, &a, 400, "invalid_json").await;
    let mut extra = good.clone();
    extra["surprise"] = json!(1);
    let (s, a) = bus.post("H40", &extra).await;
    expect_error(s, &a, 400, "invalid_envelope").await;
    let (s, a) = bus
        .post("H40", &json!({"type": "dossier.submitted", "from": H40}))
        .await;
    expect_error(s, &a, 400, "invalid_envelope").await;

    let (s, a) = post_raw(
        &url,
        None,
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    expect_error(s, &a, 401, "unauthenticated").await;
    let (s, a) = post_raw(
        &url,
        Some("NOBODY"),
        "application/json",
        good.to_string().into_bytes(),
    )
    .await;
    expect_error(s, &a, 401, "unauthenticated").await;

    let (s, a) = bus.post("STP", &good).await; // STP's token, H40's `from`
    expect_error(s, &a, 403, "forbidden").await;

    let big = vec![b' '; 10 * 1024 * 1024 + 1];
    let (s, a) = post_raw(&url, Some("H40"), "application/json", big).await;
    expect_error(s, &a, 413, "payload_too_large").await;

    let (s, a) = post_raw(
        &url,
        Some("H40"),
        "text/plain",
        good.to_string().into_bytes(),
    )
    .await;
    expect_error(s, &a, 415, "unsupported_media_type").await;

    let mut unknown = good.clone();
    unknown["type"] = json!("dossier.teleported");
    let (s, a) = bus.post("H40", &unknown).await;
    expect_error(s, &a, 422, "unknown_type").await;
    let mut bad_version = good.clone();
    bad_version["version"] = json!(99);
    let (s, a) = bus.post("H40", &bad_version).await;
    expect_error(s, &a, 422, "unknown_type").await;

    let mut bad = dossier("X-6");
    bad["NgayHenTra"] = json!("20261399000000");
    bad["TrangThaiHoSo"] = json!(12);
    bad.as_object_mut().unwrap().remove("ChuHoSo");
    let (s, a) = bus.post("H40", &envelope(None, H40, &[STP], bad)).await;
    expect_error(s, &a, 422, "schema_violation").await;
    let paths: Vec<&str> = a["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/payload/NgayHenTra"), "{paths:?}");
    assert!(paths.contains(&"/payload/TrangThaiHoSo"), "{paths:?}");
    assert!(
        paths.contains(&"/payload/ChuHoSo"),
        "missing ChuHoSo is reported where it should be: {paths:?}"
    );

    let (s, a) = bus
        .post("H40", &envelope(None, H40, &[SYT], dossier("X-7")))
        .await;
    expect_error(s, &a, 422, "no_route").await;

    // None of the refused requests reached the receiver.
    assert_eq!(
        bus.bus
            .context
            .broker
            .queue_depth(&bus.names().deliver_queue("stp"))
            .await,
        Some(0)
    );
    assert!(rx.calls().is_empty());
    bus.stop().await;
}

#[tokio::test]
async fn broker_unavailable_is_503_never_202() {
    // Nothing listens on port 1: the bus can never connect, so it must never say 202.
    let bus = TestBus::start_with(
        "down",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        &(webhook("stp", "http://127.0.0.1:9/none") + &route("r", "", &["stp"])),
    )
    .await;
    let (s, a) = bus
        .post("H40", &envelope(None, H40, &[STP], dossier("X-8")))
        .await;
    expect_error(s, &a, 503, "broker_unavailable").await;
    let ready = reqwest::get(bus.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    bus.stop().await;
}

#[tokio::test]
async fn readyz_reports_ready_when_connected() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "ready",
        &(webhook("stp", &rx.url()) + &route("r", "", &["stp"])),
    )
    .await;
    let r = reqwest::get(bus.admin("/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        reqwest::get(bus.admin("/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    bus.stop().await;
}

#[tokio::test]
async fn metrics_show_what_the_operator_guide_lists() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "metrics",
        &(webhook("stp", &rx.url()) + &route("r", "", &["stp"])),
    )
    .await;
    let (status, answer) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("metrics")),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    rx.wait_calls(1, Duration::from_secs(20)).await;
    // The success is recorded after the receiver answered; wait for the counter rather than guess.
    let text = wait_for(
        "the delivery to show in /metrics",
        Duration::from_secs(10),
        || async {
            let text = reqwest::get(bus.admin("/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("lienthong_delivered_total").then_some(text)
        },
    )
    .await;
    for series in [
        // Other tests of this binary share the process-wide recorder, so only presence is asserted.
        "lienthong_broker_connected",
        "lienthong_ingress_accepted_total{type=\"dossier.submitted\"}",
        "lienthong_delivery_seconds",
        "lienthong_state_batch_ops",
        "lienthong_state_batch_seconds",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from /metrics:\n{text}"
        );
    }
    bus.stop().await;
}
