//! Issue 4, edXML over HTTP against the real RabbitMQ: document packages go through byte for byte (to a
//! `file-out` folder and a webhook), hostile XML is refused quickly, the sender and the header schema are
//! checked, status packages must follow the allowed transitions and flow back to the document's sender, and
//! resubmitting a package is idempotent.

mod common;

use common::*;
use lienthong_qcvn102::edxml::{self, DocumentDescription, FileAttachment, StatusDescription};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const XML: &str = "application/xml";

fn webhook(id: &str, url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    )
}

fn file_out(id: &str, path: &Path) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"file-out\"\npath = \"{}\"\n",
        path.display()
    )
}

fn route(id: &str, kind: &str, to: &str, deliver: &[&str]) -> String {
    let d: Vec<String> = deliver.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "\n[[routes]]\nid = \"{id}\"\ntypes = [\"{kind}\"]\nto = [\"{to}\"]\ndeliver = [{}]\n",
        d.join(", ")
    )
}

/// A document from `from` to `to`, numbered `number` (its DocumentId is `<from>,2026/11/27,<number>/UBND-VP`).
fn document(from: &str, to: &[&str], number: u32) -> DocumentDescription {
    serde_json::from_value(json!({
        "from": {"organ_id": from, "organ_name": "UBND tỉnh Nam Định", "email": "vanthu@namdinh.gov.vn"},
        "to": to.iter().map(|t| json!({"organ_id": t})).collect::<Vec<_>>(),
        "code": {"number": number.to_string(), "notation": "UBND-VP"},
        "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
        "document_type": {"type": 1, "type_detail": 0, "type_name": "Công văn"},
        "subject": format!("V/v triển khai liên thông văn bản điện tử (số {number})"),
        "content": "Đề nghị các sở, ngành triển khai & báo cáo <trước> ngày 30/11.",
        "signer": {"competence": "TM. UBND", "position": "Chủ tịch", "full_name": "Nguyễn Văn A"},
        "due_date": "2026-11-30",
        "priority": 0,
        "business": {"doc_type": 0, "reason": "Văn bản mới",
                     "staff": {"department": "Văn phòng", "staff": "Trần Thị B", "mobile": "0912345678"}}
    }))
    .expect("a valid document description")
}

fn document_id(from: &str, number: u32) -> String {
    format!("{from},2026/11/27,{number}/UBND-VP")
}

/// Deterministic noise, so attachments are not trivially compressible or all zeros.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn package(doc: &DocumentDescription, files: &[FileAttachment]) -> Vec<u8> {
    edxml::build(doc, files).expect("the builder writes the package")
}

/// A status package about H40's document `number`, reported by `from` at second `second` of 10:00.
fn status_of(from: &str, to: &str, number: u32, code: &str, second: u32) -> Vec<u8> {
    let mut s = json!({
        "response_for": {"organ_id": to, "code": format!("{number}/UBND-VP"),
                         "promulgation_date": "2026/11/27", "document_id": document_id(H40, number)},
        "from": {"organ_id": from, "organ_name": "Sở Tư pháp"},
        "status_code": code,
        "timestamp": format!("2026-11-27T10:{:02}:{:02}", second / 60, second % 60),
        "staff": {"department": "Văn thư", "staff": "Lê Văn C"}
    });
    if code == "02" {
        s["description"] = json!("Văn bản gửi nhầm đơn vị");
    }
    let desc: StatusDescription = serde_json::from_value(s).expect("a valid status description");
    edxml::build_status(&desc).expect("the builder writes the status package")
}

/// A status from STP (the receiver) back to H40 (the document's sender).
fn status(number: u32, code: &str, second: u32) -> Vec<u8> {
    status_of(STP, H40, number, code, second)
}

async fn post_xml(bus: &TestBus, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
    post_raw(&bus.url("/v1/messages"), Some(token), XML, body.to_vec()).await
}

fn expect_error(status: u16, answer: &serde_json::Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
}

/// Waits for `<id>.xml` in `dir` and returns its bytes (file-out renames complete files into place).
async fn wait_file(dir: &Path, id: &str, timeout: Duration) -> Vec<u8> {
    let path: PathBuf = dir.join(format!("{id}.xml"));
    wait_for(&format!("{}", path.display()), timeout, || {
        let path = path.clone();
        async move { std::fs::read(&path).ok() }
    })
    .await
}

/// Regular files in the folder that are not hidden temp files.
fn visible_files(dir: &Path) -> Vec<String> {
    file_names(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[tokio::test]
async fn document_package_arrives_byte_identical_at_file_out_and_webhook() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = TestBus::start(
        "xml-bytes",
        &(file_out("stp-folder", &folder)
            + &webhook("stp-hook", &rx.url())
            + &route("docs", "document.edxml", STP, &["stp-folder", "stp-hook"])),
    )
    .await;
    let one_mb = noise(1024 * 1024, 42);
    let files = [
        FileAttachment::new("empty.txt", "text/plain", Vec::new()),
        FileAttachment::new("cong-van-101.pdf", "application/pdf", one_mb.clone()),
    ];
    let body = package(&document(H40, &[STP], 101), &files);

    let (s, answer) = post_xml(&bus, "H40", &body).await;
    assert_eq!(s, 202, "{answer}");
    assert_eq!(answer["routes"], json!(["docs"]), "{answer}");
    let id = answer["id"].as_str().expect("an id").to_owned();

    let written = wait_file(&folder, &id, Duration::from_secs(30)).await;
    assert!(written == body, "file-out changed the package bytes");
    // The attachments are intact inside what was delivered.
    let limits = edxml::Limits::default();
    let pkg = edxml::parse(&written, &limits).unwrap();
    assert_eq!(pkg.attachments.len(), 2);
    assert_eq!(pkg.attachments[0].decoded_len, 0);
    assert_eq!(pkg.attachments[1].decoded_len, one_mb.len());
    let mut decoded = Vec::new();
    edxml::decode_attachment(&written, &limits, "cid:2", &mut decoded).unwrap();
    assert!(decoded == one_mb, "the 1 MB attachment changed");

    let calls = rx.wait_calls(1, Duration::from_secs(30)).await;
    let call = &calls[0];
    assert!(call.body == body, "the webhook got different bytes");
    assert_eq!(call.header("content-type").as_deref(), Some(XML));
    assert_eq!(call.header("x-lt-message-id").as_deref(), Some(id.as_str()));
    assert_eq!(call.header("idempotency-key").as_deref(), Some(id.as_str()));
    assert_eq!(call.header("x-lt-type").as_deref(), Some("document.edxml"));
    assert_eq!(call.header("x-lt-from").as_deref(), Some(H40));
    assert_eq!(call.header("x-lt-to").as_deref(), Some(STP));
    assert_eq!(call.header("x-lt-attempt").as_deref(), Some("1"));
    assert_eq!(call.header("traceparent").map(|t| t.len()), Some(55));
    assert_eq!(visible_files(&folder), vec![format!("{id}.xml")]);
    bus.stop().await;
}

#[tokio::test]
async fn a_20_mb_attachment_passes_byte_identical() {
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = TestBus::start_with_head_extra(
        "xml-20mb",
        "max_body_bytes = 67108864",
        &(file_out("stp-folder", &folder) + &route("docs", "document.edxml", STP, &["stp-folder"])),
    )
    .await;
    let big = noise(20 * 1024 * 1024, 7);
    let files = [FileAttachment::new(
        "ho-so-quet.pdf",
        "application/pdf",
        big.clone(),
    )];
    let body = package(&document(H40, &[STP], 120), &files);
    assert!(
        body.len() > 26 * 1024 * 1024,
        "base64 makes the package larger"
    );
    let (s, answer) = post_xml(&bus, "H40", &body).await;
    assert_eq!(s, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let written = wait_file(&folder, &id, Duration::from_secs(120)).await;
    assert_eq!(written.len(), body.len());
    assert!(written == body, "the 20 MB package changed on the way");
    let mut decoded = Vec::new();
    edxml::decode_attachment(&written, &edxml::Limits::default(), "cid:1", &mut decoded).unwrap();
    assert!(decoded == big);
    bus.stop().await;
}

/// Inserts `doctype` after the XML declaration and puts `reference` in place of the Subject's text.
fn with_doctype(body: &[u8], doctype: &str, reference: &str) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let (decl, rest) = text.split_once('\n').unwrap();
    assert!(decl.starts_with("<?xml"), "{decl}");
    let start = rest.find("<edXML:Subject>").unwrap() + "<edXML:Subject>".len();
    let end = rest.find("</edXML:Subject>").unwrap();
    format!(
        "{decl}\n{doctype}\n{}{reference}{}",
        &rest[..start],
        &rest[end..]
    )
    .into_bytes()
}

fn billion_laughs() -> String {
    let mut d = String::from("<!DOCTYPE edXML [\n  <!ENTITY lol0 \"lol\">\n");
    for i in 1..10 {
        let refs = format!("&lol{};", i - 1).repeat(10);
        d.push_str(&format!("  <!ENTITY lol{i} \"{refs}\">\n"));
    }
    d.push(']');
    d.push('>');
    d
}

#[tokio::test]
async fn xxe_and_billion_laughs_are_refused_quickly_and_never_delivered() {
    let rx = Receiver::start().await;
    // Stands in for an attacker's server: an external entity must never be fetched.
    let evil = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = TestBus::start(
        "xml-hostile",
        &(file_out("stp-folder", &folder)
            + &webhook("stp-hook", &rx.url())
            + &route("docs", "document.edxml", STP, &["stp-folder", "stp-hook"])),
    )
    .await;
    let good = package(&document(H40, &[STP], 130), &[]);
    let hostile = [
        (
            "XXE file",
            with_doctype(
                &good,
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
                "&e;",
            ),
        ),
        (
            "XXE http parameter entity",
            with_doctype(
                &good,
                &format!("<!DOCTYPE x [<!ENTITY % p SYSTEM \"{}\"> %p;]>", evil.url()),
                "x",
            ),
        ),
        (
            "billion laughs",
            with_doctype(&good, &billion_laughs(), "&lol9;"),
        ),
        ("undeclared entity", with_doctype(&good, "", "&lol9;")),
    ];
    for (what, body) in &hostile {
        let started = Instant::now();
        let (s, answer) = post_xml(&bus, "H40", body).await;
        let took = started.elapsed();
        expect_error(s, &answer, 400, "invalid_xml");
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
        let text = answer.to_string();
        assert!(!text.contains("root:"), "{what}: leaked a file: {text}");
        assert!(!text.contains("lollollol"), "{what}: expanded: {text}");
    }
    // A good package sent afterwards arrives; none of the refused ones ever does.
    let (s, answer) = post_xml(&bus, "H40", &good).await;
    assert_eq!(s, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    wait_file(&folder, &id, Duration::from_secs(30)).await;
    let calls = rx.wait_calls(1, Duration::from_secs(30)).await;
    assert_eq!(calls.len(), 1);
    assert!(calls[0].body == good);
    assert_eq!(visible_files(&folder), vec![format!("{id}.xml")]);
    assert!(evil.calls().is_empty(), "an external entity was fetched");
    for adapter in ["stp-folder", "stp-hook"] {
        let depth = bus
            .bus
            .context
            .broker
            .queue_depth(&bus.names().deliver_queue(adapter))
            .await;
        assert_eq!(depth, Some(0), "{adapter}");
    }
    bus.stop().await;
}

#[tokio::test]
async fn sender_header_schema_and_media_type_are_checked() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "xml-refusals",
        &(webhook("stp-hook", &rx.url()) + &route("docs", "document.edxml", STP, &["stp-hook"])),
    )
    .await;
    let from_h40 = package(&document(H40, &[STP], 140), &[]);

    // From/OrganId is not the caller: STP's token on H40's package, H40's token on SYT's package.
    let (s, a) = post_xml(&bus, "STP", &from_h40).await;
    expect_error(s, &a, 403, "forbidden");
    let from_syt = package(&document(SYT, &[STP], 141), &[]);
    let (s, a) = post_xml(&bus, "H40", &from_syt).await;
    expect_error(s, &a, 403, "forbidden");
    assert!(
        a.to_string().contains("OrganId"),
        "the answer points at From/OrganId: {a}"
    );

    // A header without Subject violates the document.edxml schema.
    let text = String::from_utf8(from_h40.clone()).unwrap();
    let start = text.find("<edXML:Subject>").unwrap();
    let end = text.find("</edXML:Subject>").unwrap() + "</edXML:Subject>".len();
    let no_subject = format!("{}{}", &text[..start], &text[end..]);
    let (s, a) = post_xml(&bus, "H40", no_subject.as_bytes()).await;
    expect_error(s, &a, 422, "schema_violation");
    let details = a["error"]["details"].as_array().expect("details");
    assert!(!details.is_empty(), "{a}");
    assert!(
        details.iter().any(|d| d.to_string().contains("Subject")),
        "the details name the missing Subject: {a}"
    );

    // Organisation codes are checked wherever they name someone, also inside BussinessDocumentInfo however it is
    // nested (any scheme's code is one; two codes run together are not).
    let close = text
        .find("</edXML:Bussiness>")
        .expect("the builder writes Bussiness");
    let bad_receiver = format!(
        "{}<edXML:BussinessDocumentInfo><edXML:ReceiverList><edXML:Receiver><edXML:OrganId>H40,H41</edXML:OrganId>\
         </edXML:Receiver></edXML:ReceiverList></edXML:BussinessDocumentInfo>{}",
        &text[..close],
        &text[close..]
    );
    let (s, a) = post_xml(&bus, "H40", bad_receiver.as_bytes()).await;
    expect_error(s, &a, 422, "schema_violation");
    assert!(
        a["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"]
                .as_str()
                .is_some_and(|p| p.contains("BussinessDocumentInfo") && p.ends_with("OrganId"))),
        "the details point at the bad OrganId: {a}"
    );

    // The package's own bytes under the wrong media types.
    let url = bus.url("/v1/messages");
    let (s, a) = post_raw(&url, Some("H40"), "text/plain", from_h40.clone()).await;
    expect_error(s, &a, 415, "unsupported_media_type");
    let (s, a) = post_raw(
        &url,
        Some("H40"),
        "application/octet-stream",
        from_h40.clone(),
    )
    .await;
    expect_error(s, &a, 415, "unsupported_media_type");
    let (s, a) = post_raw(&url, None, XML, from_h40.clone()).await;
    expect_error(s, &a, 401, "unauthenticated");

    // text/xml is accepted like application/xml; only this one is delivered.
    let (s, a) = post_raw(
        &url,
        Some("H40"),
        "text/xml; charset=utf-8",
        from_h40.clone(),
    )
    .await;
    assert_eq!(s, 202, "{a}");
    let calls = rx.wait_calls(1, Duration::from_secs(30)).await;
    assert_eq!(calls.len(), 1);
    assert!(calls[0].body == from_h40);
    assert_eq!(
        bus.bus
            .context
            .broker
            .queue_depth(&bus.names().deliver_queue("stp-hook"))
            .await,
        Some(0)
    );
    bus.stop().await;
}

/// A bus where documents go from H40 to STP's folder and statuses come back to H40's webhook (and a recall
/// from H40 goes to STP's folder).
async fn status_bus(test: &str, h40: &Receiver, folder: &Path) -> TestBus {
    TestBus::start(
        test,
        &(file_out("stp-folder", folder)
            + &webhook("h40-hook", &h40.url())
            + &route("docs", "document.edxml", STP, &["stp-folder"])
            + &route("status-back", "document.status", H40, &["h40-hook"])
            + &route("recall-to-stp", "document.status", STP, &["stp-folder"])),
    )
    .await
}

/// Ids of the status packages H40's webhook received, by message id.
fn received_ids(rx: &Receiver) -> Vec<String> {
    rx.calls()
        .iter()
        .map(|c| c.header("x-lt-message-id").expect("x-lt-message-id"))
        .collect()
}

#[tokio::test]
async fn every_allowed_status_sequence_is_accepted_and_flows_back_to_the_sender() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-status-ok", &rx, &folder).await;
    let sequences: [&[&str]; 8] = [
        &["01", "03", "04", "05", "06"],
        &["03", "05"],
        &["03", "06"],
        &["03", "04", "06"],
        &["01", "02"],
        &["02"],
        &["01", "01", "03", "03", "04", "04", "05", "05", "06", "06"],
        &["03", "04", "05", "06", "13", "13"],
    ];
    // id → the bytes that were posted under it.
    let mut accepted: Vec<(String, Vec<u8>)> = Vec::new();
    for (n, seq) in sequences.iter().enumerate() {
        let number = 200 + n as u32;
        let (s, a) = post_xml(&bus, "H40", &package(&document(H40, &[STP], number), &[])).await;
        assert_eq!(s, 202, "document {number}: {a}");
        for (i, code) in seq.iter().enumerate() {
            // 13 is the sender's recall, sent by H40 to STP; everything else is STP reporting to H40.
            let (token, body) = if *code == "13" {
                ("H40", status_of(H40, STP, number, code, i as u32))
            } else {
                ("STP", status(number, code, i as u32))
            };
            let (s, a) = post_xml(&bus, token, &body).await;
            assert_eq!(s, 202, "sequence {seq:?}, step {i} ({code}): {a}");
            let want_route = if *code == "13" {
                "recall-to-stp"
            } else {
                "status-back"
            };
            assert_eq!(a["routes"], json!([want_route]), "{a}");
            if *code != "13" {
                accepted.push((a["id"].as_str().unwrap().to_owned(), body));
            }
        }
    }
    let calls = rx.wait_calls(accepted.len(), Duration::from_secs(60)).await;
    for (id, body) in &accepted {
        let got: Vec<_> = calls
            .iter()
            .filter(|c| c.header("x-lt-message-id").as_deref() == Some(id))
            .collect();
        assert_eq!(got.len(), 1, "status {id} delivered {} time(s)", got.len());
        let call = got[0];
        assert!(call.body == *body, "status {id} changed on the way");
        assert_eq!(call.header("x-lt-type").as_deref(), Some("document.status"));
        assert_eq!(call.header("x-lt-from").as_deref(), Some(STP));
        assert_eq!(call.header("x-lt-to").as_deref(), Some(H40));
        assert_eq!(call.header("content-type").as_deref(), Some(XML));
    }
    assert_eq!(calls.len(), accepted.len(), "{:?}", received_ids(&rx));
    bus.stop().await;
}

#[tokio::test]
async fn recall_is_answered_by_the_receiver() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-recall", &rx, &folder).await;
    for number in [300, 301] {
        let (s, a) = post_xml(&bus, "H40", &package(&document(H40, &[STP], number), &[])).await;
        assert_eq!(s, 202, "{a}");
    }
    // Only the issuer may recall: STP "recalling" H40's document is refused, and changes nothing.
    let (s, a) = post_xml(&bus, "STP", &status_of(STP, H40, 300, "13", 9)).await;
    expect_error(s, &a, 403, "forbidden");
    assert_eq!(
        a["error"]["details"][0]["path"],
        "/ResponseFor/0/DocumentId"
    );
    // 300: 03, H40 recalls (13), STP agrees (15): the document is recalled, nothing else may follow.
    let recall = status_of(H40, STP, 300, "13", 1);
    for (token, body) in [
        ("STP", status(300, "03", 0)),
        ("H40", recall.clone()),
        ("STP", status(300, "15", 2)),
    ] {
        let (s, a) = post_xml(&bus, token, &body).await;
        assert_eq!(s, 202, "{a}");
    }
    let (s, a) = post_xml(&bus, "STP", &status(300, "04", 3)).await;
    expect_error(s, &a, 422, "invalid_transition");

    // 301: 03, 05, recall 13 — nothing but an answer while it is pending — refused (16), the flow resumes.
    let (s, a) = post_xml(&bus, "STP", &status(301, "03", 0)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(301, "05", 1)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "H40", &status_of(H40, STP, 301, "13", 2)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(301, "06", 3)).await;
    expect_error(s, &a, 422, "invalid_transition");
    let (s, a) = post_xml(&bus, "STP", &status(301, "16", 4)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(301, "06", 5)).await;
    assert_eq!(s, 202, "{a}");

    // The recall package reached STP's folder as it was sent.
    let recall_id = id_of(&bus, "H40", &recall).await;
    let written = wait_file(&folder, &recall_id, Duration::from_secs(30)).await;
    assert!(written == recall);
    // STP's statuses reached H40: 03, 15 for 300; 03, 05, 16, 06 for 301.
    rx.wait_calls(6, Duration::from_secs(30)).await;
    bus.stop().await;
}

#[tokio::test]
async fn an_update_can_be_answered_with_15_or_16_without_holding_the_flow() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-update", &rx, &folder).await;
    let (s, a) = post_xml(&bus, "H40", &package(&document(H40, &[STP], 700), &[])).await;
    assert_eq!(s, 202, "{a}");
    let doc_message = a["id"].as_str().unwrap().to_owned();
    let (s, a) = post_xml(&bus, "STP", &status(700, "03", 0)).await;
    assert_eq!(s, 202, "{a}");
    // Nothing to answer yet.
    let (s, a) = post_xml(&bus, "STP", &status(700, "15", 1)).await;
    expect_error(s, &a, 422, "invalid_transition");
    // H40 updates the document (BussinessDocType 2): STP may answer it, and goes on with its flow meanwhile.
    let mut changed = document(H40, &[STP], 700);
    changed.business =
        Some(serde_json::from_value(json!({"doc_type": 2, "reason": "Sửa nơi nhận"})).unwrap());
    let (s, a) = post_xml(&bus, "H40", &package(&changed, &[])).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(700, "05", 2)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(700, "16", 3)).await;
    assert_eq!(s, 202, "the update is refused by its receiver: {a}");
    // Answered once; the flow is where it was.
    let (s, a) = post_xml(&bus, "STP", &status(700, "15", 4)).await;
    expect_error(s, &a, 422, "invalid_transition");
    let (s, a) = post_xml(&bus, "STP", &status(700, "06", 5)).await;
    assert_eq!(s, 202, "{a}");
    // 03, 05, 16, 06 went back to H40.
    rx.wait_calls(4, Duration::from_secs(30)).await;
    // The operator's view: where document 700 stands at each receiver (query form and percent-encoded path).
    let doc_id = document_id(H40, 700);
    let url =
        reqwest::Url::parse_with_params(&bus.admin("/v1/documents"), &[("id", &doc_id)]).unwrap();
    let view: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(view["document_id"], doc_id.as_str(), "{view}");
    assert_eq!(
        view["document"]["message_id"],
        doc_message.as_str(),
        "{view}"
    );
    assert_eq!(view["document"]["routes"], json!(["docs"]), "{view}");
    let stp = &view["receivers"][0];
    assert_eq!(stp["organ"], STP, "{view}");
    assert_eq!(stp["last_status"], "06", "{view}");
    assert_eq!(stp["update_pending"], false, "{view}");
    let encoded: String = doc_id
        .bytes()
        .map(|b| match b {
            b'/' => "%2F".to_owned(),
            b',' => "%2C".to_owned(),
            _ => (b as char).to_string(),
        })
        .collect();
    let same: serde_json::Value = reqwest::get(bus.admin(&format!("/v1/documents/{encoded}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(same["receivers"], view["receivers"]);
    assert_eq!(
        same["document"]["message_id"],
        view["document"]["message_id"]
    );
    // Delivered to STP's folder, and the view says so.
    let url =
        reqwest::Url::parse_with_params(&bus.admin("/v1/documents"), &[("id", &doc_id)]).unwrap();
    wait_for(
        "the document's delivery in the view",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
                (v["document"]["delivered"][0]["adapter"] == "stp-folder").then_some(())
            }
        },
    )
    .await;
    let missing = reqwest::get(bus.admin("/v1/documents?id=nothing"))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    bus.stop().await;
}

/// The id the bus gave `body` (posting it again is idempotent and answers the same id).
async fn id_of(bus: &TestBus, token: &str, body: &[u8]) -> String {
    let (s, a) = post_xml(bus, token, body).await;
    assert_eq!(s, 202, "{a}");
    a["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forbidden_status_transitions_are_refused_and_not_delivered() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-status-bad", &rx, &folder).await;
    // (steps accepted first, then the refused one). A receiver's first status is taken as reported, so every
    // refusal follows something the bus saw.
    let cases: [(&[&str], &str); 9] = [
        (&["02"], "03"),
        (&["05"], "04"),
        (&["01"], "06"),
        (&["01"], "05"),
        (&["01"], "15"),
        (&["03"], "16"),
        (&["03"], "02"),
        (&["03", "05"], "04"),
        (&["03", "06"], "05"),
    ];
    let mut refused = Vec::new();
    let mut n_accepted = 0;
    for (n, (before, bad)) in cases.iter().enumerate() {
        let number = 400 + n as u32;
        for (i, code) in before.iter().enumerate() {
            let (s, a) = post_xml(&bus, "STP", &status(number, code, i as u32)).await;
            assert_eq!(s, 202, "{before:?}: {a}");
            n_accepted += 1;
        }
        let body = status(number, bad, 30);
        let (s, a) = post_xml(&bus, "STP", &body).await;
        expect_error(s, &a, 422, "invalid_transition");
        let message = a["error"]["message"].as_str().unwrap();
        assert!(message.contains(bad), "{message}");
        refused.push(body);
    }
    // The refused ones left no trace: the flow still allows what it allowed before.
    let (s, a) = post_xml(&bus, "STP", &status(402, "03", 40)).await;
    assert_eq!(s, 202, "01 then a refused 06 still allows 03: {a}");
    n_accepted += 1;
    let calls = rx.wait_calls(n_accepted, Duration::from_secs(60)).await;
    assert_eq!(calls.len(), n_accepted);
    for c in &calls {
        assert!(
            !refused.contains(&c.body.to_vec()),
            "a refused status was delivered"
        );
    }
    assert_eq!(
        bus.bus
            .context
            .broker
            .queue_depth(&bus.names().deliver_queue("h40-hook"))
            .await,
        Some(0)
    );
    bus.stop().await;
}

#[tokio::test]
async fn the_same_status_posted_twice_is_accepted_once() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-status-idem", &rx, &folder).await;
    let accepted_03 = status(500, "03", 0);
    let (s1, a1) = post_xml(&bus, "STP", &accepted_03).await;
    let (s2, a2) = post_xml(&bus, "STP", &accepted_03).await;
    assert_eq!((s1, s2), (202, 202), "{a1} {a2}");
    assert_eq!(a1, a2);
    // A client that retries 03 after it already sent 04 gets the first answer, not a refusal.
    let (s, a4) = post_xml(&bus, "STP", &status(500, "04", 1)).await;
    assert_eq!(s, 202, "{a4}");
    let (s3, a3) = post_xml(&bus, "STP", &accepted_03).await;
    assert_eq!(s3, 202, "{a3}");
    assert_eq!(a3, a1);
    // And the flow goes on from 04.
    let (s, a5) = post_xml(&bus, "STP", &status(500, "05", 2)).await;
    assert_eq!(s, 202, "{a5}");
    let calls = rx.wait_calls(3, Duration::from_secs(30)).await;
    let ids = received_ids(&rx);
    assert_eq!(calls.len(), 3, "{ids:?}");
    for a in [&a1, &a4, &a5] {
        let id = a["id"].as_str().unwrap();
        assert_eq!(
            ids.iter().filter(|i| *i == id).count(),
            1,
            "{id} in {ids:?}"
        );
    }
    bus.stop().await;
}

#[tokio::test]
async fn the_same_document_posted_twice_is_accepted_once_and_delivered_once() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = TestBus::start(
        "xml-doc-idem",
        &(file_out("stp-folder", &folder)
            + &webhook("stp-hook", &rx.url())
            + &route("docs", "document.edxml", STP, &["stp-folder", "stp-hook"])),
    )
    .await;
    let files = [FileAttachment::new(
        "to-trinh.pdf",
        "application/pdf",
        noise(64 * 1024, 3),
    )];
    let first = package(&document(H40, &[STP], 600), &files);
    let (s1, a1) = post_xml(&bus, "H40", &first).await;
    let (s2, a2) = post_xml(&bus, "H40", &first).await;
    assert_eq!((s1, s2), (202, 202), "{a1} {a2}");
    assert_eq!(a1, a2, "the same package gets the same answer");
    let id = a1["id"].as_str().unwrap().to_owned();
    // A different document sent afterwards arrives; the duplicate never does.
    let second = package(&document(H40, &[STP], 601), &[]);
    let (s, a) = post_xml(&bus, "H40", &second).await;
    assert_eq!(s, 202, "{a}");
    let second_id = a["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, id);
    // An update of document 600 keeps its DocumentId but is a message of its own (not a duplicate); the same
    // update posted again is.
    let mut changed = document(H40, &[STP], 600);
    changed.business = Some(
        serde_json::from_value(json!({"doc_type": 2, "reason": "Cập nhật tệp đính kèm"})).unwrap(),
    );
    let update = package(&changed, &files);
    let (s, a) = post_xml(&bus, "H40", &update).await;
    assert_eq!(s, 202, "{a}");
    let update_id = a["id"].as_str().unwrap().to_owned();
    assert_ne!(update_id, id, "an update is not the document again");
    assert_eq!(id_of(&bus, "H40", &update).await, update_id);
    wait_file(&folder, &second_id, Duration::from_secs(30)).await;
    wait_file(&folder, &update_id, Duration::from_secs(30)).await;
    let calls = rx.wait_calls(3, Duration::from_secs(30)).await;
    let ids = received_ids(&rx);
    assert_eq!(calls.len(), 3, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{ids:?}");
    assert!(wait_file(&folder, &id, Duration::from_secs(5)).await == first);
    let mut want = vec![
        format!("{id}.xml"),
        format!("{second_id}.xml"),
        format!("{update_id}.xml"),
    ];
    want.sort();
    assert_eq!(visible_files(&folder), want);
    bus.stop().await;
}

#[tokio::test]
async fn a_document_the_bus_carried_has_its_receivers_first_status_checked() {
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("stp");
    let bus = status_bus("xml-carried", &rx, &folder).await;
    let (s, a) = post_xml(&bus, "H40", &package(&document(H40, &[STP], 710), &[])).await;
    assert_eq!(s, 202, "{a}");
    // The bus carried document 710 to STP: "no 06 before 03" holds from its first status on.
    for bad in ["06", "05", "04"] {
        let (s, a) = post_xml(&bus, "STP", &status(710, bad, 0)).await;
        expect_error(s, &a, 422, "invalid_transition");
    }
    let (s, a) = post_xml(&bus, "STP", &status(710, "01", 1)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(710, "03", 2)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(710, "06", 3)).await;
    assert_eq!(s, 202, "{a}");
    // A document it never carried: the receiver's first status is taken as reported.
    let (s, a) = post_xml(&bus, "STP", &status(711, "06", 0)).await;
    assert_eq!(s, 202, "{a}");
    let doc_id = document_id(H40, 710);
    let url =
        reqwest::Url::parse_with_params(&bus.admin("/v1/documents"), &[("id", &doc_id)]).unwrap();
    let view: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let judged: Vec<&str> = view["receivers"][0]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["judged"].as_str().unwrap())
        .collect();
    assert_eq!(judged, ["checked", "checked", "checked"], "{view}");
    // Asking without saying which document is a bad query, not a missing document.
    let r = reqwest::get(bus.admin("/v1/documents")).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_query", "{v}");
    // 01, 03, 06 of 710 and 06 of 711 went back to H40; none of the refused ones.
    let calls = rx.wait_calls(4, Duration::from_secs(30)).await;
    assert_eq!(calls.len(), 4);
    bus.stop().await;
}
