use super::pull::package_sender;
use super::*;
use crate::testing::{build, check};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lienthong_bus::adapter::{Accepted, Caller, Submission};
use lienthong_bus::config::{AdapterSpec, Config};
use lienthong_bus::error::ApiError;
use lienthong_bus::error::code;
use lienthong_bus::message::ContentKind;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

const SYSTEM_ID: &str = "h40-qlvb";
const SECRET: &str = "axis-secret-key-123";
const AGENCY: &str = "000.00.00.H40";

fn edxml(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016" xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope>
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>{from}</edXML:OrganId><edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From>
        <edXML:To><edXML:OrganId>{to}</edXML:OrganId></edXML:To>
        <edXML:Subject>{subject}</edXML:Subject>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
    <edXML:edXMLBody><edXML:edXMLManifest/></edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded/>
</edXML>"#
    )
    .into_bytes()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DocStatus {
    Pending,
    Done,
    Fail(String),
}

struct Doc {
    from: Option<String>,
    body: Vec<u8>,
    status: DocStatus,
    /// `eDoc` or `status`: listed, fetched and marked only under that `servicetype`.
    service: &'static str,
}

#[derive(Default)]
struct AxisState {
    docs: BTreeMap<String, Doc>,
    /// `getEdoc` answers 500 for these.
    broken: std::collections::HashSet<String>,
    /// The next this many `updateStatus` calls never answer (and change nothing).
    hang_updates: u32,
    /// `(operation, status, other origin)`: calls of that operation (`getEdoc`, `updateStatus`) are answered
    /// with a redirect there instead.
    redirect: Option<(&'static str, u16, String)>,
    /// Events in order, shared with the fake bus: `list`, `get:<id>`, `submit:<id>`, `mark:<id>:<status>`.
    log: Vec<String>,
    bad_headers: u32,
}

#[derive(Clone)]
struct Axis {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<AxisState>>,
}

impl Axis {
    async fn start() -> Axis {
        let state = Arc::new(Mutex::new(AxisState::default()));
        let app = Router::new()
            .route("/getReceivedEdocList", get(list))
            .route("/getEdoc", get(get_edoc))
            .route("/updateStatus", post(update))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Axis { addr, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut AxisState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn add(&self, id: &str, from: Option<&str>, body: Vec<u8>) {
        self.add_as("eDoc", id, from, body);
    }

    fn add_as(&self, service: &'static str, id: &str, from: Option<&str>, body: Vec<u8>) {
        self.with(|s| {
            s.docs.insert(
                id.into(),
                Doc {
                    from: from.map(str::to_owned),
                    body,
                    status: DocStatus::Pending,
                    service,
                },
            )
        });
    }

    fn status(&self, id: &str) -> DocStatus {
        self.with(|s| s.docs[id].status.clone())
    }

    fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    fn count(&self, event: &str) -> usize {
        self.log().iter().filter(|e| *e == event).count()
    }
}

type St = State<Arc<Mutex<AxisState>>>;

/// The `servicetype` of a request (with its `messagetype`), when both are there and agree.
fn service(h: &HeaderMap) -> Option<&'static str> {
    let st = h.get("servicetype")?.to_str().ok()?;
    let mt = h.get("messagetype")?.to_str().ok()?;
    ["eDoc", "status"]
        .into_iter()
        .find(|known| *known == st && known.to_lowercase() == mt)
}

fn authorised(s: &mut AxisState, h: &HeaderMap) -> bool {
    let ok = h.get("systemId").is_some_and(|v| v == SYSTEM_ID)
        && h.get("secretKey").is_some_and(|v| v == SECRET)
        && h.get("from").is_some_and(|v| v == AGENCY)
        && service(h).is_some();
    if !ok {
        s.bad_headers += 1;
    }
    ok
}

/// The redirect `op` is answered with, if the test asked for one.
fn redirected(s: &AxisState, op: &str, uri: &axum::http::Uri) -> Option<Response> {
    let (which, status, to) = s.redirect.as_ref()?;
    (*which == op).then(|| crate::http_client::redirect_trap::redirect(*status, to, uri))
}

fn denied() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"status": "FAIL", "ErrorCode": 401, "ErrorDesc": "systemId/secretKey không hợp lệ"})),
    )
        .into_response()
}

async fn list(State(st): St, h: HeaderMap) -> Response {
    let mut s = st.lock().unwrap();
    if !authorised(&mut s, &h) {
        return denied();
    }
    s.log.push("list".into());
    let asked = service(&h);
    let data: Vec<Value> = s
        .docs
        .iter()
        .filter(|(_, d)| d.status == DocStatus::Pending && Some(d.service) == asked)
        .map(|(id, d)| match &d.from {
            Some(f) => json!({"docId": id, "from": f, "servicetype": "eDoc"}),
            None => json!({"docId": id}),
        })
        .collect();
    axum::Json(json!({"status": "OK", "data": data})).into_response()
}

async fn get_edoc(
    State(st): St,
    h: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = st.lock().unwrap();
    if let Some(r) = redirected(&s, "getEdoc", &uri) {
        return r;
    }
    if !authorised(&mut s, &h) {
        return denied();
    }
    let id = q.get("docId").cloned().unwrap_or_default();
    s.log.push(format!("get:{id}"));
    if s.broken.contains(&id) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "storage error").into_response();
    }
    let asked = service(&h);
    match s.docs.get(&id).filter(|d| Some(d.service) == asked) {
        Some(d) => ([(header::CONTENT_TYPE, "application/xml")], d.body.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"status": "FAIL", "ErrorCode": 404, "ErrorDesc": "không tìm thấy"})),
        )
            .into_response(),
    }
}

async fn update(
    State(st): St,
    h: HeaderMap,
    uri: axum::http::Uri,
    axum::Json(v): axum::Json<Value>,
) -> Response {
    let id = v["docId"].as_str().unwrap_or_default().to_owned();
    let hang = {
        let mut s = st.lock().unwrap();
        if let Some(r) = redirected(&s, "updateStatus", &uri) {
            return r;
        }
        if !authorised(&mut s, &h) {
            return denied();
        }
        if s.hang_updates > 0 {
            s.hang_updates -= 1;
            s.log.push(format!("mark-started:{id}"));
            true
        } else {
            false
        }
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let mut s = st.lock().unwrap();
    let status = match (v["status"].as_str(), v["reason"].as_str()) {
        (Some("done"), None) => DocStatus::Done,
        (Some("fail"), Some(r)) if !r.is_empty() => DocStatus::Fail(r.to_owned()),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"status": "FAIL"})),
            )
                .into_response();
        }
    };
    let Some(doc) = s.docs.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"status": "FAIL"}))).into_response();
    };
    doc.status = status;
    let st_name = v["status"].as_str().unwrap().to_owned();
    s.log.push(format!("mark:{id}:{st_name}"));
    axum::Json(json!({"status": "OK"})).into_response()
}

/// A bus that records submissions and answers as scripted per fallback id (default: accepted).
struct FakeBus {
    axis: Axis,
    script: Mutex<HashMap<String, VecDeque<Result<(), ApiError>>>>,
    seen: Mutex<Vec<(Submission, DocStatus)>>,
}

impl FakeBus {
    fn new(axis: &Axis) -> Arc<FakeBus> {
        Arc::new(FakeBus {
            axis: axis.clone(),
            script: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn answer(&self, fallback_id: &str, results: Vec<Result<(), ApiError>>) {
        self.script
            .lock()
            .unwrap()
            .insert(fallback_id.into(), results.into());
    }

    fn submissions(&self) -> Vec<(Submission, DocStatus)> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Submit for FakeBus {
    async fn submit(&self, s: Submission) -> Result<Accepted, ApiError> {
        let fid = s.fallback_id.clone().unwrap();
        let doc = fid
            .trim_start_matches("vxp-")
            .trim_start_matches("status-")
            .to_owned();
        // What the axis holds for this document while the bus is deciding.
        let at_axis = self.axis.status(&doc);
        self.axis.with(|st| st.log.push(format!("submit:{doc}")));
        self.seen.lock().unwrap().push((s, at_axis));
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(&fid)
            .and_then(VecDeque::pop_front);
        next.unwrap_or(Ok(())).map(|()| Accepted {
            id: fid,
            routes: vec!["r-inbox".into()],
        })
    }
}

fn source(axis: &Axis, max_bytes: usize) -> Box<VxpPull> {
    source_with(axis, max_bytes, "")
}

fn source_with(axis: &Axis, max_bytes: usize, extra: &str) -> Box<VxpPull> {
    let options = format!(
        "base_url = \"http://{}\"\nsystem_id = \"{SYSTEM_ID}\"\nsecret_env = \"VXP_SECRET\"\nagency = \"{AGENCY}\"\n\
         poll_interval = \"30ms\"\ntimeout = \"5s\"\n{extra}",
        axis.addr
    );
    let cfg: VxpPullConfig = spec(&options).parse_options().unwrap();
    Box::new(VxpPull::new(&cfg, SECRET.into(), max_bytes).unwrap())
}

fn spec(options: &str) -> AdapterSpec {
    AdapterSpec {
        index: 1,
        id: "vxp".into(),
        kind: "vxp-pull".into(),
        options: options.parse().unwrap(),
        base_dir: ".".into(),
    }
}

/// Waits for `cond`, failing the test after 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start(
    src: Box<VxpPull>,
    bus: &Arc<FakeBus>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let token = CancellationToken::new();
    let handle = tokio::spawn(src.run(bus.clone(), token.clone()));
    (token, handle)
}

async fn stop(token: CancellationToken, handle: tokio::task::JoinHandle<Result<(), String>>) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("source stops on shutdown")
        .unwrap()
        .unwrap();
}

fn position(log: &[String], event: &str) -> usize {
    log.iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("{event} not in {log:?}"))
}

#[tokio::test]
async fn happy_path_marks_done_only_after_the_bus_accepted() {
    let axis = Axis::start().await;
    let vpcp = edxml("000.00.00.G22", AGENCY, "Công văn về việc triển khai DVC");
    let nghe_an = edxml("000.00.00.H41", AGENCY, "Giấy mời họp");
    axis.add("d1", Some("000.00.00.G22"), vpcp.clone());
    axis.add("d2", None, nghe_an.clone()); // no sender in the list: read from the package
    let bus = FakeBus::new(&axis);
    let (token, handle) = start(source(&axis, 1 << 20), &bus);

    eventually("both documents done", || {
        axis.status("d1") == DocStatus::Done && axis.status("d2") == DocStatus::Done
    })
    .await;
    stop(token, handle).await;

    let log = axis.log();
    for d in ["d1", "d2"] {
        let (get, submit, mark) = (
            position(&log, &format!("get:{d}")),
            position(&log, &format!("submit:{d}")),
            position(&log, &format!("mark:{d}:done")),
        );
        assert!(get < submit && submit < mark, "{log:?}");
    }
    let subs = bus.submissions();
    assert_eq!(subs.len(), 2, "each document submitted once");
    for (s, at_axis) in &subs {
        assert_eq!(
            *at_axis,
            DocStatus::Pending,
            "nothing marked before the bus answered"
        );
        assert_eq!(s.content, ContentKind::Xml);
        assert!(s.traceparent.is_none());
    }
    assert_eq!(subs[0].0.caller, Caller::Agency("000.00.00.G22".into()));
    assert_eq!(subs[0].0.fallback_id.as_deref(), Some("vxp-d1"));
    assert_eq!(subs[0].0.body, vpcp);
    assert_eq!(subs[1].0.caller, Caller::Agency("000.00.00.H41".into()));
    assert_eq!(subs[1].0.body, nghe_an);
    assert_eq!(axis.with(|s| s.bad_headers), 0);
}

#[tokio::test]
async fn status_packages_are_pulled_under_their_own_service_type_when_asked() {
    let axis = Axis::start().await;
    let doc = edxml("000.00.00.G22", AGENCY, "Công văn");
    let status = edxml("000.00.00.G22", AGENCY, "status 03");
    axis.add("d1", Some("000.00.00.G22"), doc.clone());
    axis.add_as("status", "s1", Some("000.00.00.G22"), status.clone());

    // By default only documents are pulled: the status stays pending at the axis.
    let bus = FakeBus::new(&axis);
    let stats = source(&axis, 1 << 20).poll_once(bus.as_ref()).await;
    assert_eq!((stats.listed, stats.done), (1, 1));
    assert_eq!(axis.status("s1"), DocStatus::Pending);

    let bus = FakeBus::new(&axis);
    let src = source_with(&axis, 1 << 20, "service_types = [\"eDoc\", \"status\"]\n");
    let stats = src.poll_once(bus.as_ref()).await;
    assert_eq!((stats.listed, stats.done), (1, 1), "the status round");
    assert_eq!(axis.status("s1"), DocStatus::Done);
    let subs = bus.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].0.fallback_id.as_deref(), Some("vxp-status-s1"));
    assert_eq!(subs[0].0.body, status);
    assert_eq!(
        axis.with(|s| s.bad_headers),
        0,
        "servicetype and messagetype sent on every call"
    );
}

#[tokio::test]
async fn a_sender_named_by_its_qd20_code_is_mapped_to_qcvn102() {
    let axis = Axis::start().await;
    let vpcp = edxml("000.00.00.G22", AGENCY, "Công văn");
    axis.add("q1", Some("G22"), vpcp.clone()); // the axis speaks QĐ 20/2020
    let bus = FakeBus::new(&axis);
    let src = source(&axis, 1 << 20)
        .with_qd20_map([("G22".to_owned(), "000.00.00.G22".to_owned())].into());
    let (token, handle) = start(Box::new(src), &bus);
    eventually("the document done", || axis.status("q1") == DocStatus::Done).await;
    stop(token, handle).await;
    let subs = bus.submissions();
    assert_eq!(subs[0].0.caller, Caller::Agency("000.00.00.G22".into()));
}

#[tokio::test]
async fn a_permanent_refusal_is_marked_fail_with_the_reason() {
    let axis = Axis::start().await;
    axis.add(
        "d1",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "x"),
    );
    axis.add(
        "d2",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "y"),
    );
    let bus = FakeBus::new(&axis);
    bus.answer(
        "vxp-d1",
        vec![Err(ApiError::new(
            code::FORBIDDEN,
            "agency 000.00.00.G22 may not send this type",
        )
        .at("/edXML/edXMLEnvelope", "From is not allowed on any route"))],
    );
    let (token, handle) = start(source(&axis, 1 << 20), &bus);
    eventually("d1 failed and d2 done", || {
        matches!(axis.status("d1"), DocStatus::Fail(_)) && axis.status("d2") == DocStatus::Done
    })
    .await;
    // A few more polls: a failed document is not offered nor submitted again.
    let lists = axis.count("list");
    eventually("two more polls", || axis.count("list") >= lists + 2).await;
    stop(token, handle).await;

    let DocStatus::Fail(reason) = axis.status("d1") else {
        unreachable!()
    };
    assert!(reason.contains("forbidden"), "{reason}");
    assert!(reason.contains("may not send this type"), "{reason}");
    assert!(reason.contains("From is not allowed"), "{reason}");
    let d1_submits = bus
        .submissions()
        .iter()
        .filter(|(s, _)| s.fallback_id.as_deref() == Some("vxp-d1"))
        .count();
    assert_eq!(d1_submits, 1);
    assert!(!axis.log().contains(&"mark:d1:done".to_owned()));
}

#[tokio::test]
async fn bus_unavailable_leaves_the_document_pending_until_the_next_poll() {
    let axis = Axis::start().await;
    axis.add(
        "d1",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "x"),
    );
    let bus = FakeBus::new(&axis);
    bus.answer(
        "vxp-d1",
        vec![
            Err(ApiError::new(
                code::BROKER_UNAVAILABLE,
                "broker did not confirm in time",
            )),
            Err(ApiError::new(code::INTERNAL, "state store hiccup")),
            Ok(()),
        ],
    );
    let (token, handle) = start(source(&axis, 1 << 20), &bus);
    eventually("d1 done", || axis.status("d1") == DocStatus::Done).await;
    stop(token, handle).await;

    let subs = bus.submissions();
    assert_eq!(subs.len(), 3, "retried on the next polls");
    assert!(
        subs.iter()
            .all(|(s, at)| s.fallback_id.as_deref() == Some("vxp-d1") && *at == DocStatus::Pending)
    );
    let marks: Vec<String> = axis
        .log()
        .into_iter()
        .filter(|e| e.starts_with("mark:"))
        .collect();
    assert_eq!(marks, ["mark:d1:done"]);
}

#[tokio::test]
async fn a_failed_fetch_is_not_marked_and_does_not_block_others() {
    let axis = Axis::start().await;
    axis.add(
        "d1",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "x"),
    );
    axis.add(
        "d2",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "y"),
    );
    axis.with(|s| s.broken.insert("d1".into()));
    let bus = FakeBus::new(&axis);
    let (token, handle) = start(source(&axis, 1 << 20), &bus);
    eventually("d2 done and d1 fetched 3 times", || {
        axis.status("d2") == DocStatus::Done && axis.count("get:d1") >= 3
    })
    .await;
    assert_eq!(axis.status("d1"), DocStatus::Pending);
    assert!(
        bus.submissions()
            .iter()
            .all(|(s, _)| s.fallback_id.as_deref() != Some("vxp-d1"))
    );

    axis.with(|s| s.broken.clear());
    eventually("d1 done once the axis recovers", || {
        axis.status("d1") == DocStatus::Done
    })
    .await;
    stop(token, handle).await;
}

#[tokio::test]
async fn a_crash_between_submit_and_mark_resubmits_with_the_same_id() {
    let axis = Axis::start().await;
    axis.add(
        "d1",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "x"),
    );
    axis.with(|s| s.hang_updates = 1);
    let bus = FakeBus::new(&axis);

    // First run: the bus accepts, then the process dies while marking.
    let (_token, handle) = start(source(&axis, 1 << 20), &bus);
    eventually("mark under way", || axis.count("mark-started:d1") == 1).await;
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    assert_eq!(axis.status("d1"), DocStatus::Pending);
    assert_eq!(bus.submissions().len(), 1);

    // Next run: offered again, submitted again with the same id, then marked.
    let (token, handle) = start(source(&axis, 1 << 20), &bus);
    eventually("d1 done", || axis.status("d1") == DocStatus::Done).await;
    stop(token, handle).await;
    let ids: Vec<_> = bus
        .submissions()
        .into_iter()
        .map(|(s, _)| s.fallback_id.unwrap())
        .collect();
    assert_eq!(ids, ["vxp-d1", "vxp-d1"]);
}

#[tokio::test]
async fn oversized_or_senderless_packages_are_marked_fail() {
    let axis = Axis::start().await;
    axis.add(
        "big",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, &"x".repeat(5000)),
    );
    axis.add("anon", None, b"<edXML><edXMLEnvelope/></edXML>".to_vec());
    axis.add(
        "ok",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "y"),
    );
    let bus = FakeBus::new(&axis);
    let src = source(&axis, 4096);
    let stats = src.poll_once(bus.as_ref()).await;
    assert_eq!(
        stats,
        PollStats {
            listed: 3,
            done: 1,
            failed: 2,
            left: 0
        }
    );
    let DocStatus::Fail(big) = axis.status("big") else {
        panic!()
    };
    assert!(big.contains("larger than the bus accepts"), "{big}");
    let DocStatus::Fail(anon) = axis.status("anon") else {
        panic!()
    };
    assert!(anon.contains("sender unknown"), "{anon}");
    assert_eq!(bus.submissions().len(), 1);
}

#[tokio::test]
async fn an_axis_refusing_our_key_is_survived() {
    let axis = Axis::start().await;
    let cfg: VxpPullConfig = spec(&format!(
        "base_url = \"http://{}\"\nsystem_id = \"{SYSTEM_ID}\"\nsecret_env = \"X\"\nagency = \"{AGENCY}\"\n",
        axis.addr
    ))
    .parse_options()
    .unwrap();
    // Wrong key: the axis refuses every call.
    let src = VxpPull::new(&cfg, "wrong".into(), 1 << 20).unwrap();
    let bus = FakeBus::new(&axis);
    assert_eq!(src.poll_once(bus.as_ref()).await, PollStats::default());
    assert_eq!(axis.with(|s| s.bad_headers), 1);
    assert!(
        !format!("{src:?}").contains("wrong"),
        "secret in Debug output"
    );
}

/// The secret key never reaches another origin, whichever call is redirected there (see `crate::http_client`).
#[tokio::test]
async fn a_redirect_to_another_origin_never_carries_the_secret_key() {
    use crate::http_client::redirect_trap::{Trap, redirector};
    let trap = Trap::start().await;
    let axis = Axis::start().await;
    let bus = FakeBus::new(&axis);
    for status in [307, 302] {
        let target = redirector(status, &trap.url).await;
        let cfg: VxpPullConfig = spec(&format!(
            "base_url = \"{target}\"\nsystem_id = \"{SYSTEM_ID}\"\nsecret_env = \"X\"\nagency = \"{AGENCY}\"\n"
        ))
        .parse_options()
        .unwrap();
        let src = VxpPull::new(&cfg, SECRET.into(), 1 << 20).unwrap();
        let stats = src.poll_once(bus.as_ref()).await;
        trap.assert_never_saw(SECRET);
        assert_eq!(stats, PollStats::default());
    }

    // The package download redirected: the document stays pending at the axis.
    axis.add(
        "d1",
        Some("000.00.00.G22"),
        edxml("000.00.00.G22", AGENCY, "s"),
    );
    axis.with(|s| s.redirect = Some(("getEdoc", 307, trap.url.clone())));
    let stats = source(&axis, 1 << 20).poll_once(bus.as_ref()).await;
    trap.assert_never_saw(SECRET);
    assert_eq!((stats.listed, stats.left), (1, 1), "{stats:?}");
    assert!(bus.submissions().is_empty());

    // The mark redirected: accepted by the bus, not marked, offered again next poll.
    axis.with(|s| s.redirect = Some(("updateStatus", 307, trap.url.clone())));
    let stats = source(&axis, 1 << 20).poll_once(bus.as_ref()).await;
    trap.assert_never_saw(SECRET);
    assert_eq!((stats.listed, stats.left), (1, 1), "{stats:?}");
    assert_eq!(axis.status("d1"), DocStatus::Pending);
}

#[test]
fn sender_is_read_from_the_package_header() {
    assert_eq!(
        package_sender(&edxml("000.00.01.H22", AGENCY, "s")).as_deref(),
        Some("000.00.01.H22")
    );
    let unprefixed =
        br#"<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader>
        <MessageHeader><To><OrganId>000.00.00.H40</OrganId></To>
        <From><OrganName>UBND</OrganName><OrganId> 000.00.00.H30 </OrganId></From></MessageHeader>
        </edXMLHeader></edXMLEnvelope></edXML>"#;
    assert_eq!(package_sender(unprefixed).as_deref(), Some("000.00.00.H30"));
    assert_eq!(
        package_sender(b"<edXML><To><OrganId>x</OrganId></To></edXML>"),
        None
    );
    assert_eq!(package_sender(b"not xml <<<"), None);
}

fn config_with(keys: &str) -> Config {
    let text = format!(
        "[[agencies]]\ncode = \"000.00.00.H40\"\n[[adapters]]\nid = \"vxp\"\ntype = \"vxp-pull\"\n{keys}"
    );
    Config::parse(Path::new("/etc/lienthong/bus.toml"), &text).unwrap()
}

#[test]
fn check_names_every_problem() {
    let config = config_with(
        "base_url = \"vxp.example.gov.vn\"\nsystem_id = \" \"\nsecret_env = \"LIENTHONG_TEST_SURELY_UNSET_VXP\"\n\
         agency = \"H40\"\npoll_interval = \"0s\"\nservice_types = [\"eDoc\", \"edoc\"]\n",
    );
    let problems = check(&config.adapters[0], &config);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "adapters[0].base_url",
            "adapters[0].system_id",
            "adapters[0].agency",
            "adapters[0].poll_interval",
            "adapters[0].service_types[1]",
            "adapters[0].secret_env"
        ],
        "{problems:#?}"
    );
    assert!(problems[4].message.contains("`edoc`"), "{problems:?}");
    assert!(
        problems[5]
            .message
            .contains("LIENTHONG_TEST_SURELY_UNSET_VXP` is not set")
    );

    let config = config_with("base_url = \"https://vxp.example.gov.vn/api\"\nsystem_id = \"s\"\n");
    let problems = check(&config.adapters[0], &config);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("secret_env"), "{problems:?}");
}

#[test]
fn a_good_config_builds_a_source_with_defaults() {
    let config = config_with(&format!(
        "base_url = \"https://vxp.example.gov.vn/api/\"\nsystem_id = \"s\"\nsecret_env = \"PATH\"\nagency = \"{AGENCY}\"\n"
    ));
    assert!(check(&config.adapters[0], &config).is_empty());
    let built = build(&config.adapters[0], &config).unwrap();
    assert!(built.source.is_some() && built.sink.is_none() && built.lookup.is_none());
    let cfg: VxpPullConfig = config.adapters[0].parse_options().unwrap();
    assert_eq!(cfg.poll_interval.get(), Duration::from_secs(10));
    assert_eq!(cfg.timeout.get(), Duration::from_secs(60));
}
