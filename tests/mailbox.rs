//! The pull mailbox (`type = "mailbox"`, `/v1/inbox`) against the real RabbitMQ: an agency lists, fetches,
//! acknowledges and refuses its messages with its own token; nobody reads another agency's mailbox; a fetched
//! message not acknowledged within its lease is offered again; and a bus killed -9 between a fetch and its ack
//! loses nothing, while an acknowledged message is never offered again.

mod common;

use common::process::{BusProcess, write_config};
use common::*;
use lienthong_bus::broker::topology;
use lienthong_qcvn102::edxml::{self, DocumentDescription};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const BOX: &str = "stp-box";

fn config(lease: &str) -> String {
    format!(
        r#"
[[adapters]]
id = "{BOX}"
type = "mailbox"
agency = "{STP}"
lease = "{lease}"

[[routes]]
id = "dossiers-to-stp"
types = ["dossier.submitted"]
to = ["{STP}"]
deliver = ["{BOX}"]

[[routes]]
id = "documents-to-stp"
types = ["document.edxml"]
to = ["{STP}"]
deliver = ["{BOX}"]
"#
    )
}

/// `base` + `/v1/inbox/<id>` (+ `suffix`), the id as one percent-encoded path segment.
fn inbox_url(base: &str, id: &str, suffix: &str) -> String {
    let mut url = reqwest::Url::parse(&format!("{base}/v1/inbox")).unwrap();
    url.path_segments_mut().unwrap().push(id);
    if !suffix.is_empty() {
        url.path_segments_mut().unwrap().push(suffix);
    }
    url.to_string()
}

/// A request as the agency whose token variable is `token` (None: no credentials).
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(format!("tok-{t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

async fn list(base: &str, token: &str) -> (u16, serde_json::Value) {
    let r = call(
        reqwest::Method::GET,
        &format!("{base}/v1/inbox"),
        Some(token),
        None,
    )
    .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until STP's listing holds exactly `ids` (in any order).
async fn wait_listed(base: &str, ids: &[&str]) -> serde_json::Value {
    let want: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    wait_for(
        &format!("the mailbox to list {want:?}"),
        Duration::from_secs(20),
        || async {
            let (s, v) = list(base, "STP").await;
            let got: BTreeSet<String> = v
                .as_array()?
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            (s == 200 && got == want).then_some(v)
        },
    )
    .await
}

async fn settle(
    base: &str,
    id: &str,
    what: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let r = call(
        reqwest::Method::POST,
        &inbox_url(base, id, what),
        Some("STP"),
        body,
    )
    .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn document() -> DocumentDescription {
    serde_json::from_value(json!({
        "from": {"organ_id": H40, "organ_name": "UBND tỉnh Nam Định", "email": "vanthu@namdinh.gov.vn"},
        "to": [{"organ_id": STP}],
        "code": {"number": "7", "notation": "UBND-VP"},
        "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
        "document_type": {"type": 1, "type_detail": 0, "type_name": "Công văn"},
        "subject": "V/v hộp thư của Sở Tư pháp",
        "content": "Đề nghị Sở Tư pháp lấy văn bản từ hộp thư.",
        "signer": {"competence": "TM. UBND", "position": "Chủ tịch", "full_name": "Nguyễn Văn A"},
        "due_date": "2026-11-30",
        "priority": 0,
        "business": {"doc_type": 0, "reason": "Văn bản mới",
                     "staff": {"department": "Văn phòng", "staff": "Trần Thị B", "mobile": "0912345678"}}
    }))
    .expect("a valid document description")
}

#[tokio::test]
async fn an_agency_fetches_acks_and_refuses_its_own_messages_and_no_one_elses() {
    let bus = TestBus::start("mailbox", &config("5m")).await;
    let base = bus.url("");
    for id in ["mb-a", "mb-b"] {
        let (s, v) = bus
            .post("H40", &envelope(Some(id), H40, &[STP], dossier(id)))
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let package = edxml::build(&document(), &[]).unwrap();
    let (s, v) = post_raw(
        &bus.url("/v1/messages"),
        Some("H40"),
        "application/xml",
        package.clone(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let doc_id = v["id"].as_str().unwrap().to_owned();

    let listed = wait_listed(&base, &["mb-a", "mb-b", &doc_id]).await;
    let a = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "mb-a")
        .unwrap();
    assert_eq!(a["type"], "dossier.submitted");
    assert_eq!(a["from"], H40);
    assert!(a["created_at"].as_str().unwrap().starts_with("20"), "{a}");
    assert!(a["size"].as_u64().unwrap() > 100, "{a}");

    // Only the agency itself, with its own credentials.
    let get = |url: String, token: Option<&'static str>| async move {
        let r = call(reqwest::Method::GET, &url, token, None).await;
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    let (s, v) = get(format!("{base}/v1/inbox"), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (s, v) = get(format!("{base}/v1/inbox?agency={H40}"), Some("STP")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (s, v) = get(format!("{base}/v1/inbox?agency={STP}"), Some("STP")).await;
    assert_eq!(s, 200, "{v}");
    for token in ["SYT", "H40"] {
        // Agencies without a mailbox: nothing of STP's can be listed, fetched or settled by them.
        let (s, v) = get(format!("{base}/v1/inbox"), Some(token)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{v}"
        );
        // A message waiting in another agency's mailbox is refused, not reported missing.
        let (s, v) = get(inbox_url(&base, "mb-a", ""), Some(token)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{v}"
        );
        for action in ["ack", "nack"] {
            let r = call(
                reqwest::Method::POST,
                &inbox_url(&base, "mb-a", action),
                Some(token),
                Some(serde_json::json!({"reason": "not mine"})),
            )
            .await;
            assert_eq!(r.status().as_u16(), 403, "{action}");
        }
        // An id no mailbox holds is simply not found.
        let (s, _) = get(inbox_url(&base, "mb-none", ""), Some(token)).await;
        assert_eq!(s, 404);
    }
    let (s, v) = get(format!("{base}/v1/inbox?limit=0"), Some("STP")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{v}"
    );

    // Fetch: the envelope JSON, leased (out of the listing).
    let r = call(
        reqwest::Method::GET,
        &inbox_url(&base, "mb-a", ""),
        Some("STP"),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("x-lt-lease-until"));
    let env: serde_json::Value = r.json().await.unwrap();
    assert_eq!(env["id"], "mb-a");
    assert_eq!(env["from"], H40);
    assert_eq!(env["payload"], dossier("mb-a"));
    wait_listed(&base, &["mb-b", &doc_id]).await;

    // An edXML package comes back as the very bytes that were sent.
    let r = call(
        reqwest::Method::GET,
        &inbox_url(&base, &doc_id, ""),
        Some("STP"),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/xml");
    assert_eq!(r.bytes().await.unwrap().as_ref(), package.as_slice());

    // Ack: removed, recorded; again: the same answer.
    for _ in 0..2 {
        let (s, v) = settle(&base, "mb-a", "ack", None).await;
        assert_eq!(
            (s, &v),
            (
                200,
                &json!({"id": "mb-a", "from": H40, "status": "delivered"})
            )
        );
    }
    let (s, v) = settle(&base, &doc_id, "ack", None).await;
    assert_eq!(s, 200, "{v}");
    // Nack: a reason is required; then dead-lettered with it, visible in the parking lot.
    let (s, v) = settle(&base, "mb-b", "nack", Some(json!({}))).await;
    assert_eq!(
        (s, v["error"]["details"][0]["path"].as_str()),
        (400, Some("/reason")),
        "{v}"
    );
    let (s, v) = settle(
        &base,
        "mb-b",
        "nack",
        Some(json!({"reason": "Hồ sơ không thuộc thẩm quyền của Sở"})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("dead_lettered")),
        "{v}"
    );
    let parked = bus.first_parked(Duration::from_secs(20)).await;
    assert_eq!(parked["id"], "mb-b");
    assert_eq!(parked["adapter"], BOX);
    assert_eq!(parked["reason"], "Hồ sơ không thuộc thẩm quyền của Sở");
    wait_listed(&base, &[]).await;
    let (s, _) = settle(&base, "mb-b", "ack", None).await;
    assert_eq!(s, 404);
    bus.stop().await;
}

#[tokio::test]
async fn a_fetched_message_not_acked_within_its_lease_is_offered_again() {
    let bus = TestBus::start("mailbox-lease", &config("1s")).await;
    let base = bus.url("");
    let (s, v) = bus
        .post(
            "H40",
            &envelope(Some("lease-1"), H40, &[STP], dossier("lease-1")),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    wait_listed(&base, &["lease-1"]).await;
    let r = call(
        reqwest::Method::GET,
        &inbox_url(&base, "lease-1", ""),
        Some("STP"),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = list(&base, "STP").await;
    assert_eq!(v, json!([]), "leased, so not listed");
    wait_listed(&base, &["lease-1"]).await;
    let (s, _) = settle(&base, "lease-1", "ack", None).await;
    assert_eq!(s, 200);
    wait_listed(&base, &[]).await;
    bus.stop().await;
}

#[tokio::test]
async fn kill_9_between_fetch_and_ack_loses_nothing_and_an_acked_message_never_returns() {
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("mailbox-kill");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let (file, http, admin) = write_config(dir.path(), &ns, &state, &config("5m"));
    let base = format!("http://127.0.0.1:{http}");
    let post = |id: &'static str| {
        let url = format!("{base}/v1/messages");
        async move {
            let (s, v) = post_raw(
                &url,
                Some("H40"),
                "application/json",
                envelope(Some(id), H40, &[STP], dossier(id))
                    .to_string()
                    .into_bytes(),
            )
            .await;
            assert_eq!(s, 202, "{v}");
        }
    };

    let mut bus = BusProcess::spawn(&file, http, admin).await;
    post("kill-1").await;
    wait_listed(&base, &["kill-1"]).await;
    let r = call(
        reqwest::Method::GET,
        &inbox_url(&base, "kill-1", ""),
        Some("STP"),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    bus.kill9();

    // RabbitMQ took the unacknowledged delivery back: the new process offers it again, and the ack holds.
    let mut bus = BusProcess::spawn(&file, http, admin).await;
    wait_listed(&base, &["kill-1"]).await;
    let (s, v) = settle(&base, "kill-1", "ack", None).await;
    assert_eq!(s, 200, "{v}");
    wait_listed(&base, &[]).await;
    bus.kill9();

    // Across another kill -9, the acked message is not offered again: a message sent after it is listed
    // alone (the queue is first in, first out, so the acked one would have come first).
    let bus = BusProcess::spawn(&file, http, admin).await;
    post("kill-2").await;
    wait_listed(&base, &["kill-2"]).await;
    drop(bus);
    let names = lienthong_bus::broker::topology::Names::new(&ns);
    let topo =
        topology::build(&names, &[], &BTreeSet::new(), 1).with_mailboxes(&names, &[BOX.into()]);
    delete_topology(&topo).await;
}

#[tokio::test]
async fn a_client_draining_until_an_empty_list_gets_every_message() {
    // A window of 10: most of the 60 messages wait in the queue and come forward as held ones are acked. A
    // client that lists, acks what it got, and stops at the first empty list must still get all of them.
    let bus = TestBus::start(
        "mailbox-drain",
        &config("5m").replace("lease = \"5m\"", "lease = \"5m\"\nwindow = 10"),
    )
    .await;
    let base = bus.url("");
    let ids: Vec<String> = (0..60).map(|i| format!("drain-{i:02}")).collect();
    for id in &ids {
        let (s, v) = bus
            .post("H40", &envelope(Some(id), H40, &[STP], dossier(id)))
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let mut acked = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "still draining after 60 s: {acked:?}"
        );
        let (s, listed) = list(&base, "STP").await;
        assert_eq!(s, 200, "{listed}");
        let listed = listed.as_array().unwrap().clone();
        if listed.is_empty() {
            break;
        }
        // All of a listing acked at once, then listed again at once, as a quick client does.
        let ids: Vec<String> = listed
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        let settled =
            futures::future::join_all(ids.iter().map(|id| settle(&base, id, "ack", None))).await;
        for (id, (s, v)) in ids.into_iter().zip(settled) {
            assert_eq!(s, 200, "{v}");
            acked.insert(id);
        }
    }
    let want: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(
        acked, want,
        "the first empty list came with messages still queued"
    );
    bus.stop().await;
}
