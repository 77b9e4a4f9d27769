//! Test harness: a bus on the real RabbitMQ under a namespace of its own, a scriptable webhook receiver, and
//! waiting on conditions with deadlines (never sleep-and-hope).
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use lienthong_bus::broker::topology::{self, Names};
use lienthong_bus::config::Config;
use lienthong_bus::runtime::RunningBus;
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod browser;
pub mod console;
pub mod pki;
pub mod process;
pub mod raw;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const H40: &str = "000.00.00.H40";
pub const STP: &str = "000.00.12.H40";
/// Sở Tư pháp's tax code, one of its `other_codes` in [`head`].
pub const STP_TAX_CODE: &str = "0600112233";
pub const SYT: &str = "000.00.13.H40";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every token env var `X` holds `tok-X` in tests.
pub fn env(key: &str) -> Option<String> {
    Some(format!("tok-{key}"))
}

/// Polls `check` until it returns Some or the deadline passes (then panics with `what`).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Call {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Call {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct ReceiverState {
    calls: Mutex<Vec<Call>>,
    /// Statuses to answer, in order; when empty, 200.
    script: Mutex<VecDeque<u16>>,
    /// Status to answer once the script is used up.
    then: Mutex<u16>,
}

/// A webhook receiver on 127.0.0.1:0 that records every call and answers from a script.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::scripted(&[], 200).await
    }

    /// Answers `script` in order, then `then` forever.
    pub async fn scripted(script: &[u16], then: u16) -> Self {
        let state = Arc::new(ReceiverState::default());
        state.script.lock().unwrap().extend(script.iter().copied());
        *state.then.lock().unwrap() = then;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/inbox", self.addr)
    }

    pub fn set_then(&self, status: u16) {
        *self.state.then.lock().unwrap() = status;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Successful (2xx-answered) calls are not tracked separately; callers filter by what they scripted.
    pub async fn wait_calls(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let this = self.clone();
        wait_for(
            &format!("{n} call(s) at the receiver"),
            timeout,
            move || {
                let calls = this.calls();
                async move { (calls.len() >= n).then_some(calls) }
            },
        )
        .await
    }
}

async fn handle(
    State(s): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    s.calls.lock().unwrap().push(Call {
        headers,
        body,
        at: Instant::now(),
    });
    let status = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| *s.then.lock().unwrap());
    (StatusCode::from_u16(status).unwrap(), "receiver says hello")
}

/// A unique namespace per test, so tests run in parallel and repeat.
pub fn namespace(test: &str) -> String {
    format!(
        "t-{test}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The `[bus]`, `[http]`, `[admin]`, `[state]` head of a test config, plus three agencies.
pub fn head(ns: &str, broker_url: &str, state_url: &str) -> String {
    format!(
        r#"
[bus]
broker_url = "{broker_url}"
namespace = "{ns}"
schemas_dir = "{schemas}"
publish_timeout = "3s"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[state]
url = "{state_url}"

[[agencies]]
code = "{H40}"
name = "UBND tỉnh Nam Định"
token_env = "H40"
amqp_user = "guest"

[[agencies]]
code = "{STP}"
name = "Sở Tư pháp"
token_env = "STP"
other_codes = ["{STP_TAX_CODE}"]

[[agencies]]
code = "{SYT}"
name = "Sở Y tế"
token_env = "SYT"
"#,
        schemas = repo().join("schemas").display()
    )
}

/// A running bus plus what a test needs to talk to it and clean up after it.
pub struct TestBus {
    pub bus: RunningBus,
    pub dir: tempfile::TempDir,
    pub ns: String,
}

impl TestBus {
    /// Starts a bus on RabbitMQ with `body` (adapters and routes) under a fresh namespace.
    pub async fn start(test: &str, body: &str) -> TestBus {
        Self::start_with(test, AMQP, body).await
    }

    pub async fn start_with(test: &str, broker_url: &str, body: &str) -> TestBus {
        Self::start_custom(
            test,
            broker_url,
            &|h| h,
            body,
            Arc::new(lienthong_adapters::Factory),
        )
        .await
    }

    /// The most general start: `edit_head` may change the `[bus]`/`[http]`/… head, `factory` may add test-only
    /// adapter types.
    pub async fn start_custom(
        test: &str,
        broker_url: &str,
        edit_head: &dyn Fn(String) -> String,
        body: &str,
        factory: Arc<dyn lienthong_bus::adapter::AdapterFactory>,
    ) -> TestBus {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let ns = namespace(test);
        let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
        let text = edit_head(head(&ns, broker_url, &state)) + body;
        let file = dir.path().join("bus.toml");
        std::fs::write(&file, &text).unwrap();
        let config = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let bus = lienthong_bus::runtime::start(
            config,
            factory,
            std::sync::Arc::new(lienthong_domain::Province),
            Arc::new(env),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        // Port 1 is the tests' "broker that is down"; every other AMQP URL must come up.
        if broker_url.starts_with("amqp") && !broker_url.contains("127.0.0.1:1/") {
            assert!(
                bus.context.broker.wait_ready(Duration::from_secs(20)).await,
                "broker not ready: {:?}",
                bus.context.broker.last_error()
            );
        }
        TestBus { bus, dir, ns }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.bus.http_addr)
    }

    /// GET on the admin API, as JSON; None while it does not answer with JSON. Sends the admin token of `admin.token_env = "ADMIN"` (ignored by a bus without one).
    pub async fn admin_json(&self, path: &str) -> Option<serde_json::Value> {
        reqwest::Client::new()
            .get(self.admin(path))
            .bearer_auth(env("ADMIN")?)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Waits (up to `timeout`) for the first dead-lettered message to show in `GET /v1/dlq`.
    pub async fn first_parked(&self, timeout: Duration) -> serde_json::Value {
        wait_for("a parked message in /v1/dlq", timeout, || async {
            self.admin_json("/v1/dlq")
                .await?
                .as_array()?
                .first()
                .cloned()
        })
        .await
    }

    /// Stops the bus (queues stay) and starts it again from the same config and state (new ports).
    pub async fn restart(self) -> TestBus {
        let TestBus { bus, dir, ns } = self;
        bus.shutdown().await;
        let config = Config::load(&dir.path().join("bus.toml")).unwrap_or_else(|e| panic!("{e}"));
        let bus = lienthong_bus::runtime::start(
            config,
            Arc::new(lienthong_adapters::Factory),
            std::sync::Arc::new(lienthong_domain::Province),
            Arc::new(env),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(bus.context.broker.wait_ready(Duration::from_secs(20)).await);
        TestBus { bus, dir, ns }
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.bus.admin_addr)
    }

    pub fn names(&self) -> Names {
        Names::new(&self.ns)
    }

    /// POSTs an envelope as agency `token_var`; returns (status, JSON answer).
    pub async fn post(
        &self,
        token_var: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        post_raw(
            &self.url("/v1/messages"),
            Some(token_var),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Stops the bus and deletes its queues and exchanges from the broker.
    pub async fn stop(self) {
        self.stop_keeping_files().await;
    }

    /// As [`TestBus::stop`], handing back the folder of its config and state database for a look after.
    pub async fn stop_keeping_files(self) -> tempfile::TempDir {
        let shared = self.bus.context.clone();
        self.bus.shutdown().await;
        if shared.config.bus.broker_url.starts_with("amqp") {
            let queues = shared.queues.read().unwrap().clone();
            let tiers: BTreeSet<Duration> =
                shared.live.current().retry_tiers.iter().copied().collect();
            let ordered = lienthong_bus::order::ordered_adapters(&shared.live.current().config).0;
            let topo = topology::build(&shared.names, &queues.sinks, &tiers, 1)
                .with_mailboxes(&shared.names, &queues.mailboxes)
                .with_order(&shared.names, &queues.sinks, &ordered, 1);
            delete_topology(&topo).await;
        }
        self.dir
    }
}

pub async fn delete_topology(topo: &topology::Topology) {
    lienthong_bus::broker::teardown(AMQP, topo).await;
}

/// POSTs raw bytes; `token_var` names the agency whose token (`tok-<var>`) to present.
pub async fn post_raw(
    url: &str,
    token_var: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token_var {
        req = req.bearer_auth(format!("tok-{t}"));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A valid `dossier.submitted` payload (portal field names).
pub fn dossier(label: &str) -> serde_json::Value {
    // A valid dossier code `<agency>-yyMMdd-nnnnn`, derived from the label so it is stable per label.
    let n = label
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 100_000;
    let code = format!("{STP}-261127-{n:05}");
    serde_json::json!({
        "MaHoSo": code,
        "MaTTHC": "1.001757.000.00.00.H40",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "G01-HT",
        "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Văn An",
        "LoaiDoiTuong": 1,
        "TrichYeuHoSo": format!("Đăng ký khai sinh cho con ({label})"),
        "NgayNopHoSo": "20261127083000",
        "NgayTiepNhan": "20261127090000",
        "NgayHenTra": "20261130170000",
        "TrangThaiHoSo": 2
    })
}

/// An envelope of `dossier.submitted` from `from` to `to`.
pub fn envelope(
    id: Option<&str>,
    from: &str,
    to: &[&str],
    payload: serde_json::Value,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "type": "dossier.submitted",
        "version": 1,
        "from": from,
        "to": to,
        "payload": payload,
    });
    if let Some(id) = id {
        v["id"] = serde_json::Value::String(id.into());
    }
    v
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Path of the built `lienthong` binary.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lienthong"))
}

impl TestBus {
    /// Like [`TestBus::start`], with `http_extra` (TOML lines, e.g. `max_body_bytes = 67108864`) added to the
    /// `[http]` table of the head.
    pub async fn start_with_head_extra(test: &str, http_extra: &str, body: &str) -> TestBus {
        let listen = "[http]\nlisten = \"127.0.0.1:0\"\n";
        let edit = |head: String| {
            assert!(head.contains(listen), "head() changed its [http] table");
            head.replacen(listen, &format!("{listen}{http_extra}\n"), 1)
        };
        Self::start_custom(
            test,
            AMQP,
            &edit,
            body,
            Arc::new(lienthong_adapters::Factory),
        )
        .await
    }
}

/// Names of the regular files directly in `dir` (sorted); empty when `dir` does not exist.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The test PostgreSQL: `LIENTHONG_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_admin_url() -> String {
    std::env::var("LIENTHONG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh PostgreSQL schema of one test; `url` selects it through `search_path`. Dropped (with every table
/// the bus created in it) by [`PgSchema::drop_now`], or on drop when a test panics first.
pub struct PgSchema {
    pub name: String,
    pub url: String,
    admin_url: String,
    dropped: bool,
}

impl PgSchema {
    pub async fn create(test: &str) -> PgSchema {
        use sqlx::{Connection, Executor};
        let admin_url = pg_admin_url();
        let name = format!(
            "lt_{}_{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            uuid::Uuid::new_v4().simple()
        );
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be running at {admin_url}: {e}"));
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .expect("create the test schema");
        let _ = conn.close().await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{name}");
        PgSchema {
            name,
            url,
            admin_url,
            dropped: false,
        }
    }

    /// Rows of `sql` (a `SELECT count(*)`-style query returning one BIGINT) in this schema.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let n: i64 = sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0);
        let _ = conn.close().await;
        n
    }

    /// Drops the schema and everything in it; panics if that fails.
    pub async fn drop_now(mut self) {
        drop_schema(&self.admin_url, &self.name)
            .await
            .unwrap_or_else(|e| panic!("drop schema {}: {e}", self.name));
        self.dropped = true;
    }
}

async fn drop_schema(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
        .await?;
    conn.close().await
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Runs inside the test's runtime, which cannot be blocked on: use a private one on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            if let Err(e) = rt.block_on(drop_schema(&url, &name)) {
                eprintln!("could not drop test schema {name}: {e}");
            }
        })
        .join();
    }
}

/// Whether `GET <admin>/healthz` answers 200.
pub async fn healthy(admin_url: &str) -> bool {
    reqwest::get(admin_url)
        .await
        .is_ok_and(|r| r.status().as_u16() == 200)
}

impl Receiver {
    /// Like [`Receiver::scripted`], but takes bodies of any size (axum's default limit is 2 MB).
    pub async fn scripted_unlimited(script: &[u16], then: u16) -> Self {
        let state = Arc::new(ReceiverState::default());
        state.script.lock().unwrap().extend(script.iter().copied());
        *state.then.lock().unwrap() = then;
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }
}

impl TestBus {
    /// Like [`TestBus::start`], with the domain's public lookup listening (`[public]`, plus `public_extra`
    /// TOML lines such as `rate = "5/min"`).
    pub async fn start_with_public(test: &str, public_extra: &str, body: &str) -> TestBus {
        let edit =
            |head: String| format!("{head}\n[public]\nlisten = \"127.0.0.1:0\"\n{public_extra}\n");
        Self::start_custom(
            test,
            AMQP,
            &edit,
            body,
            Arc::new(lienthong_adapters::Factory),
        )
        .await
    }

    /// URL on the public lookup listener (`[public] listen`).
    pub fn public(&self, path: &str) -> String {
        let addr = self
            .bus
            .listeners
            .get("public.listen")
            .expect("started with a [public] listener");
        format!("http://{addr}{path}")
    }
}

/// The error JSON a refused AMQP ingress message carries in `<ns>.rejected` (header `x-lt-error`).
#[allow(dead_code)] // not every test file reads the rejected queue
pub fn rejected_error(d: &lapin::message::Delivery) -> serde_json::Value {
    let headers = d.properties.headers().clone().unwrap_or_default();
    let Some(lapin::types::AMQPValue::LongString(err)) = headers
        .inner()
        .get(&lapin::types::ShortString::from("x-lt-error"))
    else {
        panic!("no x-lt-error header: {headers:?}");
    };
    serde_json::from_slice(err.as_bytes()).unwrap()
}
