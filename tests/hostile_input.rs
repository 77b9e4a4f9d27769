//! Issue 3 "Bad input": a corpus of hostile and broken requests against one bus on the real RabbitMQ. Each is
//! answered with its own 4xx status and error code (with a JSON pointer in `details` where a field is at
//! fault), the answer stays small whatever was sent, nothing panics (a panic hook counts panics in any
//! thread of this process, the bus's included), `/healthz` keeps answering, and a message accepted before
//! the corpus is still delivered exactly once after it.

mod common;

use common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

const LIMIT: usize = 10 * 1024 * 1024;
const FIVE_MB: usize = 5 * 1024 * 1024;
/// No error answer may echo a hostile value back at length.
const MAX_ANSWER: usize = 16 * 1024;

fn config(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"10s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\nretry = {{ attempts = 5, backoff = [\"3s\"] }}\n"
    )
}

/// One request of the corpus and the answer it must get.
struct Case {
    name: String,
    content_type: Option<String>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A `details[].path` the answer must carry.
    pointer: Option<&'static str>,
}

fn case(
    name: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name: name.into(),
        content_type: Some("application/json".into()),
        body: body.into(),
        status,
        code,
        pointer: None,
    }
}

impl Case {
    fn at(mut self, pointer: &'static str) -> Self {
        self.pointer = Some(pointer);
        self
    }
    fn content_type(mut self, ct: Option<&str>) -> Self {
        self.content_type = ct.map(str::to_owned);
        self
    }
}

/// A valid envelope (H40 → STP) as a JSON value, to be broken by each case.
fn good() -> Value {
    envelope(Some(&new_id()), H40, &[STP], dossier("HOSTILE"))
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut v = good();
    f(v.as_object_mut().unwrap());
    v.to_string().into_bytes()
}

fn bad_envelope(
    name: &str,
    pointer: &'static str,
    f: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Case {
    case(name, with(f), 400, "invalid_envelope").at(pointer)
}

fn corpus() -> Vec<Case> {
    let mut c = Vec::new();
    let valid = good().to_string();

    // --- not JSON at all -------------------------------------------------------------------------------
    for (name, body) in [
        ("empty body", "".to_string()),
        ("lone brace", "{".into()),
        ("closing brace", "}".into()),
        ("bare word", "nope".into()),
        ("missing value", r#"{"type":}"#.into()),
        ("trailing comma", r#"{"type":"dossier.submitted",}"#.into()),
        ("single quotes", r#"{'type':'dossier.submitted'}"#.into()),
        ("unterminated string", r#"{"type":"dossier.submi"#.into()),
        ("garbage after the envelope", format!("{valid}x")),
        ("two envelopes back to back", format!("{valid}{valid}")),
        ("byte order mark", format!("\u{feff}{valid}")),
        (
            "NaN in the payload",
            valid.replace("\"KenhThucHien\":2", "\"KenhThucHien\":NaN"),
        ),
        (
            "number out of range in the payload",
            valid.replace("\"KenhThucHien\":2", "\"KenhThucHien\":1e999999"),
        ),
        (
            "raw control character in a string",
            valid.replace("Hộ tịch", "Hộ\u{1}tịch"),
        ),
        ("escaped lone surrogate in id", {
            let mut v = good();
            v["id"] = json!("PLACEHOLDER");
            v.to_string().replace("PLACEHOLDER", "\\ud800")
        }),
        (
            "escaped lone surrogate in the payload",
            valid.replace("Hộ tịch", "\\udc00"),
        ),
        ("unbalanced deep nesting", "[".repeat(100_000)),
    ] {
        c.push(case(name, body, 400, "invalid_json"));
    }

    // Every truncation point of a valid envelope (cuts inside multi-byte characters included).
    let bytes = valid.as_bytes();
    for k in 0..bytes.len() {
        c.push(case(
            format!("truncated at byte {k}"),
            &bytes[..k],
            400,
            "invalid_json",
        ));
    }

    // --- invalid UTF-8 -----------------------------------------------------------------------------------
    let splice = |needle: &str, bad: &[u8]| {
        let at = valid.find(needle).unwrap();
        let mut b = valid.as_bytes()[..at].to_vec();
        b.extend_from_slice(bad);
        b.extend_from_slice(&valid.as_bytes()[at + needle.len()..]);
        b
    };
    c.push(case(
        "0xFF in a string",
        splice("Hộ tịch", b"H\xff"),
        400,
        "invalid_json",
    ));
    c.push(case(
        "overlong encoding",
        splice("Hộ tịch", b"\xc0\xaf"),
        400,
        "invalid_json",
    ));
    c.push(case(
        "UTF-8-encoded surrogate",
        splice("Hộ tịch", b"\xed\xa0\x80"),
        400,
        "invalid_json",
    ));
    c.push(case(
        "truncated multi-byte sequence",
        splice("Hộ tịch", b"H\xe1\xbb"),
        400,
        "invalid_json",
    ));
    c.push(case(
        "Latin-1 instead of UTF-8",
        splice("Hộ tịch", b"H\xf4 t\xedch"),
        400,
        "invalid_json",
    ));
    c.push(case(
        "invalid UTF-8 in a key",
        splice("\"MaLinhVuc\"", b"\"Ma\xffLinhVuc\""),
        400,
        "invalid_json",
    ));

    // --- nesting -----------------------------------------------------------------------------------------
    let payload = |p: &str| {
        let mut v = good();
        v["payload"] = json!("PAYLOAD");
        v.to_string().replace("\"PAYLOAD\"", p)
    };
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    c.push(case(
        "100k nested arrays in the payload",
        payload(&arrays(100_000)),
        400,
        "invalid_json",
    ));
    c.push(case(
        "100k nested objects in the payload",
        payload(&objects(100_000)),
        400,
        "invalid_json",
    ));
    // The envelope is level 1: 63 levels of payload are allowed (and then judged by the schema), 64 are not.
    c.push(
        case(
            "payload nested to the depth limit",
            payload(&objects(63)),
            422,
            "schema_violation",
        )
        .at("/payload/MaHoSo"),
    );
    c.push(case(
        "payload nested one past the depth limit",
        payload(&objects(64)),
        400,
        "invalid_json",
    ));

    // --- huge fields in a body under the 10 MB limit -----------------------------------------------------
    let huge = "x".repeat(FIVE_MB);
    c.push(bad_envelope("5 MB id", "/id", |m| {
        m.insert("id".into(), json!(huge));
    }));
    c.push(bad_envelope("5 MB type", "/type", |m| {
        m.insert("type".into(), json!(huge));
    }));
    c.push(bad_envelope("5 MB from", "/from", |m| {
        m.insert("from".into(), json!(huge));
    }));
    c.push(bad_envelope("5 MB addressee", "/to/0", |m| {
        m.insert("to".into(), json!([huge]));
    }));
    c.push(bad_envelope(
        "5 MB correlation_id",
        "/correlation_id",
        |m| {
            m.insert("correlation_id".into(), json!(huge));
        },
    ));
    c.push(bad_envelope("5 MB string as version", "/version", |m| {
        m.insert("version".into(), json!(huge));
    }));
    c.push(case(
        "5 MB unknown field name",
        with(|m| {
            m.insert(huge.clone(), json!(1));
        }),
        400,
        "invalid_envelope",
    ));
    c.push(
        case(
            "5 MB dossier code",
            with(|m| {
                m.get_mut("payload").unwrap()["MaHoSo"] = json!(huge);
            }),
            422,
            "schema_violation",
        )
        .at("/payload/MaHoSo"),
    );
    c.push(
        case(
            "5 MB field name in the payload",
            with(|m| {
                m.get_mut("payload").unwrap()[format!("_{huge}")] = json!(1);
            }),
            422,
            "schema_violation",
        )
        .at("/payload"),
    );

    // --- media types -------------------------------------------------------------------------------------
    for ct in [
        Some("text/plain"),
        None,
        Some(""),
        Some("multipart/form-data; boundary=XyZ"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("json"),
    ] {
        let body = match ct {
            Some(m) if m.starts_with("multipart") => format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"envelope\"\r\nContent-Type: application/json\r\n\r\n{valid}\r\n--XyZ--\r\n"
            ),
            _ => valid.clone(),
        };
        c.push(
            case(
                format!("Content-Type {ct:?}"),
                body,
                415,
                "unsupported_media_type",
            )
            .content_type(ct),
        );
    }
    c.push(
        case("broken edXML", "<edXML><edXMLHeader>", 400, "invalid_xml")
            .content_type(Some("application/xml")),
    );
    c.push(
        case("JSON sent as XML", valid.clone(), 400, "invalid_xml")
            .content_type(Some("application/xml")),
    );

    // --- envelopes with missing, extra or mistyped fields ------------------------------------------------
    for field in ["type", "from", "payload"] {
        c.push(case(
            format!("missing {field}"),
            with(|m| {
                m.remove(field);
            }),
            400,
            "invalid_envelope",
        ));
    }
    c.push(bad_envelope("an extra field", "/surprise", |m| {
        m.insert("surprise".into(), json!(1));
    }));
    c.push(bad_envelope("a misspelt field", "/corelation_id", |m| {
        m.insert("corelation_id".into(), json!("c-1"));
    }));
    // A key twice in one object is not JSON every reader agrees on (issue 10 item 6), envelope or payload.
    c.push(
        case(
            "a duplicated field",
            valid.replacen("\"type\":", "\"type\":\"dossier.submitted\",\"type\":", 1),
            400,
            "invalid_json",
        )
        .at("/type"),
    );
    c.push(
        case(
            "a duplicated payload field",
            valid.replacen("\"payload\":{", "\"payload\":{\"TrangThaiHoSo\":\"x\",", 1),
            400,
            "invalid_json",
        )
        .at("/payload/TrangThaiHoSo"),
    );
    for (name, body) in [
        ("an array", "[]"),
        ("null", "null"),
        ("a number", "42"),
        ("a string", "\"dossier.submitted\""),
        ("true", "true"),
    ] {
        c.push(case(
            format!("{name} instead of an envelope"),
            body,
            400,
            "invalid_envelope",
        ));
    }
    for (field, value, pointer) in [
        ("type", json!(null), "/type"),
        ("from", json!(null), "/from"),
        ("to", json!(null), "/to"),
        ("to", json!([null]), "/to/0"),
        ("id", json!(42), "/id"),
        ("type", json!(42), "/type"),
        ("from", json!(123), "/from"),
        ("to", json!([1]), "/to/0"),
        ("to", json!([STP, 2]), "/to/1"),
        ("correlation_id", json!(7), "/correlation_id"),
        ("id", json!({"a": 1}), "/id"),
        ("type", json!(["dossier.submitted"]), "/type"),
        ("version", json!("1"), "/version"),
        ("version", json!(-1), "/version"),
        ("version", json!(1.5), "/version"),
        ("version", json!(4_294_967_296u64), "/version"),
        ("version", json!(0), "/version"),
        ("to", json!(STP), "/to"),
        ("to", json!({"0": STP}), "/to"),
        ("to", json!(1), "/to"),
        // Not a code of any scheme (a sender may write any of its codes, a receiver may be any code).
        ("from", json!("Sở Tư pháp"), "/from"),
        ("from", json!("000.00.00.H40 "), "/from"),
        ("from", json!(""), "/from"),
        ("to", json!(["G12,H40"]), "/to/0"),
        ("to", json!([STP, "000.00.12 H4"]), "/to/1"),
        ("to", json!([""]), "/to/0"),
        ("type", json!(""), "/type"),
        ("type", json!("t".repeat(101)), "/type"),
        ("id", json!(""), "/id"),
        ("id", json!("i".repeat(201)), "/id"),
        ("id", json!("i".repeat(10_000)), "/id"),
        ("id", json!("a\u{0}b"), "/id"),
        ("id", json!("line\nbreak"), "/id"),
        ("id", json!("tab\there"), "/id"),
        ("id", json!("del\u{7f}"), "/id"),
        ("id", json!("c1\u{85}"), "/id"),
        ("id", json!("\u{1b}[31mred"), "/id"),
        ("correlation_id", json!("c\u{1}"), "/correlation_id"),
        ("correlation_id", json!("c".repeat(201)), "/correlation_id"),
    ] {
        let name = format!("{field} = {}", abbreviate(&value.to_string()));
        c.push(bad_envelope(&name, pointer, |m| {
            m.insert(field.into(), value);
        }));
    }
    for (name, payload, pointer) in [
        ("payload null", json!(null), "/payload"),
        ("payload a string", json!("MaHoSo"), "/payload"),
        ("payload an array", json!([1, 2]), "/payload"),
        ("payload empty", json!({}), "/payload/MaHoSo"),
    ] {
        c.push(
            case(
                name,
                with(|m| {
                    m.insert("payload".into(), payload);
                }),
                422,
                "schema_violation",
            )
            .at(pointer),
        );
    }
    for (name, field, value, pointer) in [
        ("unknown type", "type", json!("dossier.teleported"), "/type"),
        (
            "type with a control character",
            "type",
            json!("dossier.\u{0}submitted"),
            "/type",
        ),
        ("unknown version", "version", json!(2), "/version"),
        ("far future version", "version", json!(u32::MAX), "/version"),
    ] {
        c.push(
            case(
                name,
                with(|m| {
                    m.insert(field.into(), value);
                }),
                422,
                "unknown_type",
            )
            .at(pointer),
        );
    }
    // Codes, but not the caller's: another agency's, and shapes that are no code of this caller.
    for from in [SYT, "H40", "000.00.00.h40"] {
        c.push(
            case(
                format!("from {from}, not a code of the caller"),
                with(|m| {
                    m.insert("from".into(), json!(from));
                }),
                403,
                "forbidden",
            )
            .at("/from"),
        );
    }
    c.push(case(
        "nobody to route to",
        with(|m| {
            m.insert("type".into(), json!("dossier.status-changed"));
            m.insert(
                "payload".into(),
                json!({"MaHoSo": format!("{STP}-261127-00001"), "TrangThai": 4, "ThoiDiemXuLy": "20261127090000", "NoiDungXuLy": "Đang xử lý"}),
            );
        }),
        422,
        "no_route",
    ));
    c
}

/// `v` with every long string abbreviated, to show the shape of an answer that is too long.
fn shorten(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(abbreviate(&s)),
        Value::Array(a) => a.into_iter().map(shorten).collect(),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (abbreviate(&k), shorten(v)))
            .collect(),
        v => v,
    }
}

fn abbreviate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!(
            "{}…({} chars)",
            s.chars().take(20).collect::<String>(),
            s.chars().count()
        )
    } else {
        s.to_string()
    }
}

/// Sends one case; returns (status, raw answer).
async fn send(client: &reqwest::Client, url: &str, case: &Case) -> (u16, Vec<u8>) {
    let mut req = client
        .post(url)
        .bearer_auth("tok-H40")
        .body(case.body.clone());
    if let Some(ct) = &case.content_type {
        req = req.header("content-type", ct.as_str());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: no answer: {e}", case.name));
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap_or_default().to_vec())
}

/// Checks an error answer: status, code, a message, the pointer, and a bounded size.
fn check(name: &str, status: u16, raw: &[u8], want: u16, code: &str, pointer: Option<&str>) {
    if let Err(e) = verdict(status, raw, want, code, pointer) {
        panic!("{name}: {e}");
    }
}

fn verdict(
    status: u16,
    raw: &[u8],
    want: u16,
    code: &str,
    pointer: Option<&str>,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(raw);
    if raw.len() > MAX_ANSWER {
        return Err(format!(
            "answer of {} bytes echoes the input: {}",
            raw.len(),
            serde_json::from_slice(raw)
                .map_or_else(|_| abbreviate(&text), |v| shorten(v).to_string())
        ));
    }
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| format!("answer is not JSON ({e}): {text}"))?;
    let ok = status == want
        && v["error"]["code"] == code
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty());
    if !ok {
        return Err(format!("want {want} {code}, got {status} {text}"));
    }
    let details = v["error"]["details"]
        .as_array()
        .ok_or_else(|| format!("details is not an array: {text}"))?;
    for d in details {
        let p = d["path"].as_str().unwrap_or("?");
        let pointer = p.is_empty() || p.starts_with('/');
        let message = d["message"].as_str().is_some_and(|m| !m.is_empty());
        if !(pointer && message) {
            return Err(format!("detail is not a JSON pointer and a message: {d}"));
        }
    }
    if let Some(p) = pointer
        && !details.iter().any(|d| d["path"] == p)
    {
        return Err(format!("no detail at {p:?}: {text}"));
    }
    Ok(())
}

/// POSTs `parts` over a raw connection, framed by `Content-Length: <content_length>` or, when `None`, as
/// `Transfer-Encoding: chunked` (one chunk a part, so the bus cannot know the size up front). The answer is
/// read while the body is still being written, since the bus may answer early and close; returns
/// (status, answer body).
async fn post_streamed(
    addr: SocketAddr,
    content_length: Option<usize>,
    parts: impl Iterator<Item = Vec<u8>> + Send + 'static,
) -> (u16, Vec<u8>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let framing = match content_length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".into(),
    };
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer tok-H40\r\n{framing}\r\nConnection: close\r\n\r\n"
    );
    let chunked = content_length.is_none();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for part in parts {
            if chunked {
                wr.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .await?;
            }
            wr.write_all(&part).await?;
            if chunked {
                wr.write_all(b"\r\n").await?;
            }
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        wr.flush().await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Some(answer) = parse_answer(&raw) {
            break answer;
        }
        let mut buf = [0u8; 8192];
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            Ok(_) => panic!(
                "connection ended before a whole answer: {}",
                String::from_utf8_lossy(&raw)
            ),
            Err(_) => panic!("no answer within 60 s"),
        }
    };
    writer.abort();
    answer
}

/// A complete HTTP/1.1 answer in `raw`, if there is one yet: (status, body).
fn parse_answer(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    if let Some(n) = header("content-length:") {
        let n: usize = n.parse().ok()?;
        return (body.len() >= n).then(|| (status, body[..n].to_vec()));
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        return dechunk(body).map(|b| (status, b));
    }
    None
}

/// The payload of a complete chunked body, or None while it is incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).ok()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(nl + 2..nl + 2 + n)?);
        b = b.get(nl + 2 + n + 2..)?;
    }
}

async fn healthz(bus: &TestBus) {
    let r = reqwest::get(bus.admin("/healthz"))
        .await
        .expect("healthz answers");
    assert_eq!(r.status().as_u16(), 200);
}

fn calls_for(rx: &Receiver, id: &str) -> Vec<Call> {
    rx.calls()
        .into_iter()
        .filter(|c| c.header("idempotency-key").as_deref() == Some(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_broken_input_is_refused_with_its_code_and_breaks_nothing() {
    count_panics();
    // The first delivery (the message accepted before the corpus) is refused with a 503, so its retry
    // (3 s later) happens while the corpus is being sent.
    let rx = Receiver::scripted_unlimited(&[503], 200).await;
    let bus = TestBus::start("hostile", &config(&rx.url())).await;
    let url = bus.url("/v1/messages");
    let before = new_id();
    let (s, a) = bus
        .post(
            "H40",
            &envelope(Some(&before), H40, &[STP], dossier("BEFORE")),
        )
        .await;
    assert_eq!(s, 202, "{a}");
    rx.wait_calls(1, Duration::from_secs(20)).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let corpus = corpus();
    let n = corpus.len();
    let mut failures = Vec::new();
    for (i, case) in corpus.iter().enumerate() {
        let (status, raw) = send(&client, &url, case).await;
        if let Err(e) = verdict(status, &raw, case.status, case.code, case.pointer) {
            failures.push(format!("{}: {e}", case.name));
        }
        if i % 50 == 0 {
            healthz(&bus).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{n} hostile requests refused as expected");

    // Oversized, with Content-Length (refused from the header) and without it (refused once the streamed
    // body passes the limit). Sent over a raw connection: the bus answers early and closes, which an
    // ordinary client may report as a failed write instead of the answer.
    let chunk = vec![b' '; 64 * 1024];
    let n_chunks = LIMIT / chunk.len() + 2;
    let chunks = || std::iter::repeat_n(chunk.clone(), n_chunks);
    let addr = bus.bus.http_addr;
    let (status, raw) = post_streamed(
        addr,
        Some(LIMIT + 1),
        chunks().take(LIMIT / chunk.len()).chain([vec![b' ']]),
    )
    .await;
    check(
        "10 MB + 1 with Content-Length",
        status,
        &raw,
        413,
        "payload_too_large",
        None,
    );
    let (status, raw) = post_streamed(addr, Some(n_chunks * chunk.len()), chunks()).await;
    check(
        "10 MB + 128 KiB with Content-Length",
        status,
        &raw,
        413,
        "payload_too_large",
        None,
    );
    let (status, raw) = post_streamed(addr, None, chunks()).await;
    check(
        "10 MB + 128 KiB streamed without Content-Length",
        status,
        &raw,
        413,
        "payload_too_large",
        None,
    );
    // Exactly at the limit (valid JSON whitespace around nothing): not too large, so judged as JSON.
    let (status, raw) = post_streamed(
        addr,
        None,
        std::iter::repeat_n(chunk.clone(), LIMIT / chunk.len()),
    )
    .await;
    check(
        "10 MB of spaces, streamed",
        status,
        &raw,
        400,
        "invalid_json",
        None,
    );
    // The same raw client with a small valid envelope in chunks is accepted: the 413s above are the size.
    let streamed = new_id();
    let body = envelope(Some(&streamed), H40, &[STP], dossier("CHUNKED"))
        .to_string()
        .into_bytes();
    let pieces: Vec<Vec<u8>> = body.chunks(37).map(<[u8]>::to_vec).collect();
    let (status, raw) = post_streamed(addr, None, pieces.into_iter()).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&raw));
    healthz(&bus).await;

    // A 5 MB free-text field in an otherwise valid envelope (10 MB limit): the schema sets no maximum for
    // TrichYeuHoSo, so it is accepted and delivered whole; either way the answer is a proper one.
    let big = new_id();
    let mut payload = dossier("BIG");
    payload["TrichYeuHoSo"] = json!("ữ".repeat(FIVE_MB / 3));
    let body = envelope(Some(&big), H40, &[STP], payload);
    let (status, raw) = send(
        &client,
        &url,
        &case("5 MB summary", body.to_string(), 0, ""),
    )
    .await;
    let big_accepted = match status {
        202 => {
            let v: Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(v["id"], big.as_str());
            true
        }
        _ => {
            check(
                "5 MB summary",
                status,
                &raw,
                422,
                "schema_violation",
                Some("/payload/TrichYeuHoSo"),
            );
            false
        }
    };
    // Brackets inside strings are text, not nesting.
    let brackets = new_id();
    let mut payload = dossier("BRACKETS");
    payload["TrichYeuHoSo"] = json!("[{".repeat(50_000));
    let (s, a) = bus
        .post("H40", &envelope(Some(&brackets), H40, &[STP], payload))
        .await;
    assert_eq!(s, 202, "{a}");
    healthz(&bus).await;

    // The message accepted before the corpus: delivered exactly once (one refused call, one success),
    // and everything accepted since arrives too.
    let mut expect = vec![streamed.clone(), brackets.clone()];
    if big_accepted {
        expect.push(big.clone());
    }
    wait_for(
        "every accepted message delivered",
        Duration::from_secs(60),
        || async {
            (calls_for(&rx, &before).len() >= 2
                && expect.iter().all(|id| !calls_for(&rx, id).is_empty()))
            .then_some(())
        },
    )
    .await;
    let flush = new_id();
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&flush), H40, &[STP], dossier("FLUSH")),
        )
        .await;
    assert_eq!(s, 202);
    wait_for("the last message", Duration::from_secs(20), || async {
        (!calls_for(&rx, &flush).is_empty()).then_some(())
    })
    .await;
    let calls = calls_for(&rx, &before);
    let attempts: Vec<_> = calls.iter().map(|c| c.json()["attempt"].clone()).collect();
    assert_eq!(
        attempts,
        vec![json!(1), json!(2)],
        "delivered exactly once after one refusal"
    );
    for id in &expect {
        assert_eq!(calls_for(&rx, id).len(), 1, "{id} delivered once");
    }
    if big_accepted {
        let call = &calls_for(&rx, &big)[0];
        assert_eq!(
            call.json()["payload"]["TrichYeuHoSo"]
                .as_str()
                .unwrap()
                .len(),
            FIVE_MB / 3 * "ữ".len()
        );
    }
    // Only the accepted messages reached the receiver: the corpus left no trace.
    let known: Vec<&String> = [&before, &flush].into_iter().chain(expect.iter()).collect();
    let strays: Vec<_> = rx
        .calls()
        .iter()
        .filter_map(|c| c.header("idempotency-key"))
        .filter(|k| !known.contains(&k))
        .collect();
    assert!(strays.is_empty(), "refused input was delivered: {strays:?}");
    healthz(&bus).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    bus.stop().await;
}
