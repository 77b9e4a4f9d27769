//! Issue 15, real traffic gets through, against the real RabbitMQ: packages shaped like the ones the bus used to
//! refuse (the national SDK's empty `ResponseFor` with hop codes of other schemes, a company sending under its tax
//! code to a ministry named two ways, a cross-province receiver in the QĐ 20 scheme) are accepted and delivered
//! byte for byte; a sender still cannot pose as another agency; a receiver no route serves is `no_route` naming
//! it; and a status about a document the bus never saw reaches the document's sender, with later statuses still
//! checked.

mod common;

use common::*;
use lienthong_qcvn102::edxml::{self, StatusDescription};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const XML: &str = "application/xml";
/// The sending ministry of the 2019 axis package.
const G22: &str = "000.00.00.G22";
/// A state company with a QCVN 102 code in this province, whose software writes its tax code.
const COMPANY: &str = "000.00.90.H40";
const TAX_CODE: &str = "020100107370";
/// The ministry of transport, a receiver known here by its QCVN 102 code and its QĐ 20 code.
const G12: &str = "000.00.00.G12";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("qcvn102/tests/fixtures/edxml/traffic")
            .join(name),
    )
    .unwrap()
}

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

fn route(id: &str, types: &str, to: &str, deliver: &str) -> String {
    format!(
        "\n[[routes]]\nid = \"{id}\"\ntypes = [{types}]\nto = [\"{to}\"]\ndeliver = [{deliver}]\n"
    )
}

/// The receivers of one test bus.
struct Receivers {
    h40: Receiver,
    g12: Receiver,
    ninh_binh: Receiver,
    stp: Receiver,
    _out: tempfile::TempDir,
    h40_folder: PathBuf,
}

/// Agencies beyond the three of every test bus: the ministry that sent the 2019 package, the company (its tax
/// code as an other code), and the ministry of transport (a receiver only, with its QĐ 20 code).
fn agencies() -> String {
    format!(
        "\n[[agencies]]\ncode = \"{G22}\"\nname = \"Bộ Nội vụ\"\ntoken_env = \"G22\"\n\
         \n[[agencies]]\ncode = \"{COMPANY}\"\nname = \"Công ty TNHH MTV Cảng Nam Định\"\ntoken_env = \"CTY\"\n\
         other_codes = [\"{TAX_CODE}\"]\n\
         \n[[agencies]]\ncode = \"{G12}\"\nname = \"Bộ Giao thông vận tải\"\nqd20_code = \"G12\"\n"
    )
}

async fn start(test: &str) -> (TestBus, Receivers) {
    let out = tempfile::tempdir().unwrap();
    let rx = Receivers {
        h40: Receiver::start().await,
        g12: Receiver::start().await,
        ninh_binh: Receiver::start().await,
        stp: Receiver::start().await,
        h40_folder: out.path().join("h40"),
        _out: out,
    };
    let docs = "\"document.edxml\", \"document.status\"";
    let body = agencies()
        + &file_out("h40-folder", &rx.h40_folder)
        + &webhook("h40-hook", &rx.h40.url())
        + &webhook("g12-hook", &rx.g12.url())
        + &webhook("ninh-binh-hook", &rx.ninh_binh.url())
        + &webhook("stp-hook", &rx.stp.url())
        + &route("to-h40", docs, H40, "\"h40-folder\", \"h40-hook\"")
        // Named by its QCVN 102 code; packages name it `G12` too.
        + &route("to-g12", docs, G12, "\"g12-hook\"")
        + &route("cross-province", "\"document.edxml\"", "H37.02.02", "\"ninh-binh-hook\"")
        + &route("to-stp", "\"document.edxml\", \"dossier.submitted\"", STP, "\"stp-hook\"");
    (TestBus::start(test, &body).await, rx)
}

async fn post_xml(bus: &TestBus, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
    post_raw(&bus.url("/v1/messages"), Some(token), XML, body.to_vec()).await
}

fn expect_error(status: u16, answer: &serde_json::Value, want: u16, code: &str) {
    assert_eq!(status, want, "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
}

/// `text` with the first `from` replaced by `to` (the fixture must contain it).
fn replaced(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1).into_bytes()
}

/// The call `rx` got for message `id` (its `Idempotency-Key`), once it arrives.
async fn call_for(rx: &Receiver, id: &str) -> Call {
    let rx = rx.clone();
    wait_for(
        &format!("message {id} at the receiver"),
        Duration::from_secs(30),
        || {
            let calls = rx.calls();
            let id = id.to_owned();
            async move {
                let got: Vec<Call> = calls
                    .into_iter()
                    .filter(|c| c.header("idempotency-key").as_deref() == Some(id.as_str()))
                    .collect();
                (!got.is_empty()).then(|| got[0].clone())
            }
        },
    )
    .await
}

#[tokio::test]
async fn real_traffic_shapes_are_accepted_and_delivered_byte_identical() {
    let (bus, rx) = start("codes-real").await;

    // The 2019 axis package: empty <edXML:ResponseFor/>, hop codes 01.02.G22 and 001.00.20.TT2, CRLF lines.
    let sdk = fixture("axis-2019-empty-response-for.edxml");
    let (s, a) = post_xml(&bus, "G22", &sdk).await;
    assert_eq!(s, 202, "{a}");
    assert_eq!(a["routes"], json!(["to-h40"]), "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let path = rx.h40_folder.join(format!("{id}.xml"));
    let written = wait_for(
        "the package in H40's folder",
        Duration::from_secs(30),
        || {
            let path = path.clone();
            async move { std::fs::read(&path).ok() }
        },
    )
    .await;
    assert!(written == sdk, "file-out changed the 2019 package");
    let call = call_for(&rx.h40, &id).await;
    assert!(call.body == sdk, "the webhook got different bytes");
    assert_eq!(call.header("x-lt-from").as_deref(), Some(G22));

    // The company's letter: From is its tax code (an other code of the company), To names the ministry as
    // `G12` and as `000.00.00.G12` — one receiver, one copy.
    let letter = fixture("company-tax-code-sender.edxml");
    let (s, a) = post_xml(&bus, "CTY", &letter).await;
    assert_eq!(s, 202, "{a}");
    assert_eq!(a["routes"], json!(["to-g12"]), "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let call = call_for(&rx.g12, &id).await;
    assert!(
        call.body == letter,
        "the company's letter changed on the way"
    );
    // The bus names the sender by its code; the package still says what the company wrote.
    assert_eq!(call.header("x-lt-from").as_deref(), Some(COMPANY));
    assert_eq!(call.header("x-lt-to").as_deref(), Some("G12,000.00.00.G12"));

    // The cross-province invitation to H37.02.02 (a QĐ 20 code).
    let invitation = fixture("cross-province-h37.edxml");
    let (s, a) = post_xml(&bus, "H40", &invitation).await;
    assert_eq!(s, 202, "{a}");
    assert_eq!(a["routes"], json!(["cross-province"]), "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let call = call_for(&rx.ninh_binh, &id).await;
    assert!(call.body == invitation, "the invitation changed on the way");
    assert_eq!(call.header("x-lt-to").as_deref(), Some("H37.02.02"));

    // Exactly one delivery each.
    rx.h40.wait_calls(1, Duration::from_secs(5)).await;
    assert_eq!(rx.g12.calls().len(), 1);
    assert_eq!(rx.ninh_binh.calls().len(), 1);
    assert_eq!(rx.h40.calls().len(), 1);
    bus.stop().await;
}

#[tokio::test]
async fn a_sender_writes_any_of_its_codes_but_never_another_agencys() {
    let (bus, rx) = start("codes-sender").await;
    let letter = fixture("company-tax-code-sender.edxml");
    // Another agency's token on the company's package; the company's token on the ministry's package.
    let (s, a) = post_xml(&bus, "H40", &letter).await;
    expect_error(s, &a, 403, "forbidden");
    assert!(a.to_string().contains(TAX_CODE), "{a}");
    let (s, a) = post_xml(&bus, "CTY", &fixture("axis-2019-empty-response-for.edxml")).await;
    expect_error(s, &a, 403, "forbidden");
    // Another agency's other code (G12 is the ministry's QĐ 20 code) or its QCVN 102 code.
    for other in ["G12", G12, H40] {
        let posing = replaced(
            &letter,
            &format!("<OrganId>{TAX_CODE}</OrganId>"),
            &format!("<OrganId>{other}</OrganId>"),
        );
        let (s, a) = post_xml(&bus, "CTY", &posing).await;
        expect_error(s, &a, 403, "forbidden");
        assert!(
            a["error"]["details"][0]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("From/OrganId")),
            "{a}"
        );
    }

    // JSON envelopes: the same rule on the same codes.
    let (s, a) = bus
        .post("CTY", &envelope(None, TAX_CODE, &[STP], dossier("CTY-1")))
        .await;
    assert_eq!(s, 202, "{a}");
    let call = call_for(&rx.stp, a["id"].as_str().unwrap()).await;
    assert_eq!(
        call.json()["from"],
        COMPANY,
        "the bus names the sender by its code"
    );
    assert_eq!(call.json()["payload"], dossier("CTY-1"));
    for other in ["G12", H40] {
        let (s, a) = bus
            .post("CTY", &envelope(None, other, &[STP], dossier("CTY-2")))
            .await;
        expect_error(s, &a, 403, "forbidden");
        assert_eq!(a["error"]["details"][0]["path"], "/from", "{a}");
    }
    // Nothing refused was delivered.
    assert!(rx.g12.calls().is_empty());
    assert!(rx.h40.calls().is_empty());
    assert_eq!(rx.stp.calls().len(), 1);
    bus.stop().await;
}

#[tokio::test]
async fn a_receiver_no_route_serves_is_no_route_naming_it() {
    let (bus, rx) = start("codes-noroute").await;
    // A receiver code of any scheme is no schema violation: it is a receiver nobody carries to.
    let nowhere = replaced(
        &fixture("cross-province-h37.edxml"),
        "H37.02.02",
        "H99.01.01",
    );
    let (s, a) = post_xml(&bus, "H40", &nowhere).await;
    expect_error(s, &a, 422, "no_route");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("H99.01.01"),
        "{a}"
    );
    assert_eq!(a["error"]["details"][0]["path"], "/to/0", "{a}");

    // One receiver served, one not: refused as a whole, naming only the one nobody serves.
    let letter = fixture("company-tax-code-sender.edxml");
    let half = replaced(
        &letter,
        "<OrganId>000.00.00.G12</OrganId>",
        "<OrganId>H99.01.01</OrganId>",
    );
    let (s, a) = post_xml(&bus, "CTY", &half).await;
    expect_error(s, &a, 422, "no_route");
    let details = a["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{a}");
    assert_eq!(details[0]["path"], "/to/1", "{a}");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("H99.01.01"),
        "{a}"
    );
    // The same for a JSON envelope.
    let (s, a) = bus
        .post(
            "H40",
            &envelope(None, H40, &[STP, "H99.01.01"], dossier("NR-1")),
        )
        .await;
    expect_error(s, &a, 422, "no_route");
    assert_eq!(a["error"]["details"][0]["path"], "/to/1", "{a}");

    // What is really broken is still refused: a DocumentId that names no sender, a package with no receiver.
    let no_issuer = replaced(&letter, "<DocumentId>020100107370,", "<DocumentId>,");
    let (s, a) = post_xml(&bus, "CTY", &no_issuer).await;
    expect_error(s, &a, 422, "schema_violation");
    assert!(a.to_string().contains("DocumentId"), "{a}");
    let text = String::from_utf8(letter.clone()).unwrap();
    let first = text.find("<To>").unwrap();
    let last = text.rfind("</To>").unwrap() + "</To>".len();
    let no_receiver = format!("{}{}", &text[..first], &text[last..]);
    let (s, a) = post_xml(&bus, "CTY", no_receiver.as_bytes()).await;
    expect_error(s, &a, 400, "invalid_xml");
    assert!(a.to_string().contains("To/OrganId"), "{a}");

    assert!(
        rx.g12.calls().is_empty() && rx.ninh_binh.calls().is_empty() && rx.stp.calls().is_empty()
    );
    bus.stop().await;
}

/// A status package: `from` reports `code` about H40's document `number` (never sent through this bus).
fn status(from: &str, number: u32, code: &str, second: u32) -> Vec<u8> {
    let mut s = json!({
        "response_for": {"organ_id": H40, "code": format!("{number}/UBND-VP"),
                         "promulgation_date": "2019/03/01",
                         "document_id": format!("{H40},2019/03/01,{number}/UBND-VP")},
        "from": {"organ_id": from, "organ_name": "Nơi nhận"},
        "status_code": code,
        "timestamp": format!("2026-11-27T11:00:{second:02}"),
    });
    if code == "02" {
        s["description"] = json!("Trả lại văn bản");
    }
    let desc: StatusDescription = serde_json::from_value(s).unwrap();
    edxml::build_status(&desc).unwrap()
}

#[tokio::test]
async fn a_status_about_an_unseen_document_reaches_its_sender_and_later_ones_are_checked() {
    let (bus, rx) = start("codes-unseen").await;
    // 05 about a document sent before the bus went live: taken as reported, delivered to H40 byte for byte.
    let processing = status(STP, 900, "05", 0);
    let (s, a) = post_xml(&bus, "STP", &processing).await;
    assert_eq!(s, 202, "{a}");
    assert_eq!(a["routes"], json!(["to-h40"]), "{a}");
    let call = call_for(&rx.h40, a["id"].as_str().unwrap()).await;
    assert!(call.body == processing, "the status changed on the way");
    assert_eq!(call.header("x-lt-type").as_deref(), Some("document.status"));
    // From there the flow is checked: 06 follows 05; 02 after a seen 06 is refused; 04 would go back.
    let (s, a) = post_xml(&bus, "STP", &status(STP, 900, "06", 1)).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = post_xml(&bus, "STP", &status(STP, 900, "02", 2)).await;
    expect_error(s, &a, 422, "invalid_transition");
    let (s, a) = post_xml(&bus, "STP", &status(STP, 900, "04", 3)).await;
    expect_error(s, &a, 422, "invalid_transition");

    // The company reports under its tax code: recorded under the company's code.
    let (s, a) = post_xml(&bus, "CTY", &status(TAX_CODE, 900, "04", 4)).await;
    assert_eq!(s, 202, "{a}");

    // The operator's view says which statuses were checked and which were taken as reported.
    let doc = format!("{H40},2019/03/01,900/UBND-VP");
    let url =
        reqwest::Url::parse_with_params(&bus.admin("/v1/documents"), &[("id", &doc)]).unwrap();
    let view: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(
        view["document"],
        serde_json::Value::Null,
        "the bus never carried it: {view}"
    );
    let receivers = view["receivers"].as_array().unwrap();
    let at = |organ: &str| {
        receivers
            .iter()
            .find(|r| r["organ"] == organ)
            .unwrap_or_else(|| panic!("{organ}: {view}"))
    };
    let stp = at(STP);
    assert_eq!(stp["first_seen_at"], "05", "{view}");
    assert_eq!(stp["last_status"], "06", "{view}");
    let judged: Vec<(&str, &str)> = stp["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["code"].as_str().unwrap(), s["judged"].as_str().unwrap()))
        .collect();
    assert_eq!(
        judged,
        [("05", "taken as reported"), ("06", "checked")],
        "{view}"
    );
    let company = at(COMPANY);
    assert_eq!(company["first_seen_at"], "04", "{view}");
    assert_eq!(
        company["statuses"][0]["judged"], "taken as reported",
        "{view}"
    );

    // 05, 06 and the company's 04 reached H40; the refused ones never did.
    let calls = rx.h40.wait_calls(3, Duration::from_secs(30)).await;
    assert_eq!(calls.len(), 3);
    bus.stop().await;
}
