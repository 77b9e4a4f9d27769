use super::*;
use crate::testing::{build, check};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxResponse};
use axum::routing::post;
use bytes::Bytes;
use lienthong_bus::adapter::{AdapterFactory, ErrorClass};
use lienthong_bus::config::{AdapterSpec, Config};
use lienthong_bus::message::{Message, Meta};
use std::net::SocketAddr;
use tokio::sync::mpsc;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const DEADLINE: Duration = Duration::from_secs(5);

/// One request as the receiver saw it.
struct Seen {
    path: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
    peer: SocketAddr,
}

/// A local receiver: `POST /<status>` answers that status (with a >1 KiB body), `POST /slow` never answers.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/{status}", post(answer))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (format!("http://{addr}"), rx)
}

async fn answer(
    State(tx): State<mpsc::UnboundedSender<Seen>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(status): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> AxResponse {
    let _ = tx.send(Seen {
        path: status.clone(),
        headers,
        body: body.to_vec(),
        peer,
    });
    if status == "slow" {
        std::future::pending::<()>().await;
    }
    let code: u16 = status.parse().unwrap();
    let mut resp = (
        StatusCode::from_u16(code).unwrap(),
        format!("answer {code}; ").repeat(200),
    )
        .into_response();
    let h = resp.headers_mut();
    match code {
        429 => _ = h.insert("retry-after", "7".parse().unwrap()),
        503 => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
            h.insert("retry-after", at.parse().unwrap());
        }
        302 => _ = h.insert("location", "/200".parse().unwrap()),
        _ => {}
    }
    resp
}

fn adapter(options: &str) -> (Config, AdapterSpec) {
    let text = format!("[[adapters]]\nid = \"w\"\ntype = \"webhook\"\n{options}\n");
    let config = Config::parse(std::path::Path::new("/etc/lienthong/bus.toml"), &text).unwrap();
    let spec = config.adapters[0].clone();
    (config, spec)
}

fn sink(options: &str) -> Arc<dyn Sink> {
    let (config, spec) = adapter(options);
    assert_eq!(check(&spec, &config), vec![]);
    build(&spec, &config).unwrap().sink.unwrap()
}

fn message(content: ContentKind, payload: &'static [u8]) -> Message {
    Message {
        meta: Meta {
            id: "0199a1b2-msg-1".into(),
            kind: "dossier.submitted".into(),
            version: 1,
            from: "000.00.00.H40".into(),
            to: vec!["000.00.12.H40".into(), "000.00.13.H40".into()],
            correlation_id: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        },
        content,
        payload: Bytes::from_static(payload),
    }
}

fn delivery(message: Message, attempt: u32) -> Delivery {
    Delivery {
        message,
        route: "r1".into(),
        adapter: "w".into(),
        attempt,
        traceparent: TRACEPARENT.into(),
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("receiver saw no request")
        .unwrap()
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn json_is_posted_as_the_exact_envelope_with_headers() {
    let (base, mut rx) = receiver().await;
    let sink = sink(&format!(
        "url = \"{base}/200\"\nheaders = {{ \"X-Api-Version\" = \"2\" }}\nauth_token_env = \"CARGO_PKG_NAME\""
    ));
    let m = message(
        ContentKind::Json,
        "{ \"MaHoSo\" :\"Hồ sơ 1\",  \"n\":1.50 }".as_bytes(),
    );
    sink.deliver(&delivery(m.clone(), 3)).await.unwrap();
    let seen = next(&mut rx).await;
    assert_eq!(seen.body, m.envelope_json(Some(3)));
    assert_eq!(header(&seen, "content-type"), "application/json");
    assert_eq!(header(&seen, "idempotency-key"), "0199a1b2-msg-1");
    // The sender goes with the key: two agencies may use one id.
    assert_eq!(header(&seen, "x-lt-from"), m.meta.from);
    assert_eq!(header(&seen, "traceparent"), TRACEPARENT);
    assert_eq!(header(&seen, "x-api-version"), "2");
    assert_eq!(header(&seen, "authorization"), "Bearer lienthong-adapters");
    assert!(seen.headers.get("x-lt-type").is_none());
}

#[tokio::test]
async fn xml_is_posted_byte_for_byte_with_envelope_headers() {
    let (base, mut rx) = receiver().await;
    let sink = sink(&format!("url = \"{base}/200\""));
    let package = "<?xml version=\"1.0\"?>\n<edXML><Subject>Về việc cấp phép</Subject></edXML>\r\n";
    let m = message(ContentKind::Xml, package.as_bytes());
    sink.deliver(&delivery(m, 2)).await.unwrap();
    let seen = next(&mut rx).await;
    assert_eq!(seen.body, package.as_bytes());
    assert_eq!(header(&seen, "content-type"), "application/xml");
    assert_eq!(header(&seen, "x-lt-message-id"), "0199a1b2-msg-1");
    assert_eq!(header(&seen, "x-lt-type"), "dossier.submitted");
    assert_eq!(header(&seen, "x-lt-from"), "000.00.00.H40");
    assert_eq!(header(&seen, "x-lt-to"), "000.00.12.H40,000.00.13.H40");
    assert_eq!(header(&seen, "x-lt-attempt"), "2");
    assert_eq!(header(&seen, "idempotency-key"), "0199a1b2-msg-1");
    assert_eq!(header(&seen, "traceparent"), TRACEPARENT);
    assert!(seen.headers.get("authorization").is_none());
}

#[tokio::test]
async fn answers_are_classified() {
    use ErrorClass::{Permanent, Transient};
    let (base, mut rx) = receiver().await;
    let m = message(ContentKind::Json, b"{}");
    let cases = [
        (400, Permanent),
        (404, Permanent),
        (302, Permanent),
        (408, Transient),
        (429, Transient),
        (500, Transient),
        (503, Transient),
    ];
    for (code, class) in cases {
        let sink = sink(&format!("url = \"{base}/{code}\""));
        let err = sink.deliver(&delivery(m.clone(), 1)).await.unwrap_err();
        assert_eq!(next(&mut rx).await.path, code.to_string());
        assert_eq!(
            (err.class, err.status),
            (class, Some(code.into())),
            "{code}"
        );
        assert_eq!(err.reason, format!("HTTP {code} from receiver"));
        let body = err.body_excerpt.unwrap();
        assert!(
            body.starts_with(&format!("answer {code}; ")) && body.len() == 1024,
            "{code}: {body}"
        );
        match code {
            429 => assert_eq!(err.retry_after, Some(Duration::from_secs(7))),
            503 => {
                let wait = err.retry_after.unwrap().as_secs();
                assert!((110..=120).contains(&wait), "{wait}");
            }
            _ => assert_eq!(err.retry_after, None, "{code}"),
        }
    }
    sink(&format!("url = \"{base}/200\""))
        .deliver(&delivery(m, 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_transient() {
    let (base, mut rx) = receiver().await;
    let sink = sink(&format!("url = \"{base}/slow\"\ntimeout = \"300ms\""));
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        DEADLINE,
        sink.deliver(&delivery(message(ContentKind::Json, b"1"), 1)),
    )
    .await
    .expect("the adapter's own timeout should fire first")
    .unwrap_err();
    next(&mut rx).await;
    assert_eq!((err.class, err.status), (ErrorClass::Transient, None));
    assert!(
        err.reason.starts_with("receiver did not answer in time"),
        "{}",
        err.reason
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_closed_port_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let sink = sink(&format!("url = \"http://{addr}/inbox\""));
    let err = sink
        .deliver(&delivery(message(ContentKind::Json, b"1"), 1))
        .await
        .unwrap_err();
    assert_eq!((err.class, err.status), (ErrorClass::Transient, None));
    assert!(
        err.reason.starts_with("cannot connect to receiver"),
        "{}",
        err.reason
    );
    assert!(
        !err.reason.contains(&addr.to_string()),
        "URL leaked: {}",
        err.reason
    );
}

#[tokio::test]
async fn deliveries_share_one_kept_alive_connection() {
    let (base, mut rx) = receiver().await;
    let sink = sink(&format!("url = \"{base}/200\""));
    for attempt in 1..=3 {
        sink.deliver(&delivery(message(ContentKind::Json, b"1"), attempt))
            .await
            .unwrap();
    }
    let peers: Vec<_> = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ]
    .iter()
    .map(|s| s.peer)
    .collect();
    assert!(peers.iter().all(|p| *p == peers[0]), "{peers:?}");
}

#[test]
fn check_lists_every_problem_with_its_key_path() {
    let (config, spec) = adapter(
        "url = \"ftp://example.org/in\"\ntimeout = \"0s\"\nauth_token_env = \"LT_TEST_SURELY_UNSET_5F3A\"\n\
         headers = { \"Content-Type\" = \"text/plain\", \"X-LT-From\" = \"x\", \"bad name\" = \"v\", \"X-Ok\" = \"a\\nb\" }",
    );
    let problems = check(&spec, &config);
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "adapters[0].url",
            "adapters[0].timeout",
            "adapters[0].headers.Content-Type",
            "adapters[0].headers.X-LT-From",
            "adapters[0].headers.X-Ok",
            "adapters[0].headers.bad name",
            "adapters[0].auth_token_env",
        ],
        "{problems:?}"
    );
    assert!(problems[6].message.contains("LT_TEST_SURELY_UNSET_5F3A"));
}

#[test]
fn a_value_serde_refuses_does_not_hide_the_other_problems() {
    let (config, spec) = adapter("url = \"ftp://x/y\"\ntimeout = \"forever\"\nmax_body = 1");
    let problems = check(&spec, &config);
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "adapters[0].max_body",
            "adapters[0].timeout",
            "adapters[0].url"
        ],
        "{problems:?}"
    );
}

#[test]
fn type_errors_and_unknown_keys_are_located() {
    let (config, spec) = adapter("url = 5");
    assert_eq!(check(&spec, &config)[0].path, "adapters[0].url");
    let (config, spec) = adapter("url = \"http://x\"\nurll = \"http://y\"");
    let problems = check(&spec, &config);
    assert!(problems[0].message.contains("urll"), "{problems:?}");
    let (config, spec) = adapter("timeout = \"10s\"");
    assert!(check(&spec, &config)[0].message.contains("url"));
}

#[test]
fn retry_after_reads_seconds_and_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h, now), None);
    h.insert(RETRY_AFTER, " 30 ".parse().unwrap());
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
    h.insert(
        RETRY_AFTER,
        httpdate::fmt_http_date(now + Duration::from_secs(90))
            .parse()
            .unwrap(),
    );
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
    h.insert(
        RETRY_AFTER,
        httpdate::fmt_http_date(now - Duration::from_secs(90))
            .parse()
            .unwrap(),
    );
    assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
    h.insert(RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&h, now), None);
}

/// A receiver URL that redirects to another origin: not followed, so the bearer token (and the message) never
/// reach it; the 3xx is a permanent failure, as any 3xx (see `crate::http_client`).
#[tokio::test]
async fn a_redirect_to_another_origin_never_carries_the_token() {
    use crate::http_client::redirect_trap::{Trap, redirector};
    const TOKEN: &str = "receiver-token-51c9";
    let env = |name: &str| (name == "LT_TEST_WEBHOOK_TOKEN").then(|| TOKEN.to_owned());
    let trap = Trap::start().await;
    for status in [307, 308, 301, 302, 303] {
        let target = redirector(status, &trap.url).await;
        let (config, spec) = adapter(&format!(
            "url = \"{target}/inbox\"\nauth_token_env = \"LT_TEST_WEBHOOK_TOKEN\""
        ));
        let sink = crate::Factory
            .build(&spec, &config, &env)
            .unwrap()
            .sink
            .unwrap();
        let err = sink
            .deliver(&delivery(message(ContentKind::Json, b"{}"), 1))
            .await
            .unwrap_err();
        assert_eq!(
            (err.class, err.status),
            (ErrorClass::Permanent, Some(status.into())),
            "{status}"
        );
    }
    trap.assert_never_saw(TOKEN);
    assert_eq!(trap.requests(), Vec::<String>::new());
}
