//! The bus under test, in-process: a config of its own per run (fresh namespace, fresh SQLite state), the
//! production adapter factory plus a `null` sink that counts, and the two ingress paths.

use crate::amqp::{self, Publish};
use crate::payload::{self, Template};
use crate::sys::{CpuMark, CpuUse};
use crate::track::Tracker;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use lapin::BasicProperties;
use lienthong_bus::adapter::{AdapterFactory, Built, Delivery, DeliveryError, Sink};
use lienthong_bus::config::{AdapterSpec, Config, Problem};
use lienthong_bus::runtime::RunningBus;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Env var the bench's agency token is read from (only through the injected `env`, never the real one).
pub const TOKEN_ENV: &str = "LT_BENCH_TOKEN_H40";

/// What every bus run needs to know.
#[derive(Clone)]
pub struct Setup {
    pub amqp: String,
    pub schemas: PathBuf,
    pub prefetch: u16,
    pub window: usize,
    pub token: String,
    /// Prefix of namespaces, unique per bench run.
    pub run: String,
    /// Where buses keep their config and state (None = system temp folder).
    pub state_dir: Option<PathBuf>,
    /// `[evidence]` on, with a key made for each bus (`--evidence`).
    pub evidence: bool,
    /// `order_by` of the bench route (`--order-by`), e.g. `/id` (every message its own key).
    pub order_by: Option<String>,
}

/// A sink that only counts (and, for latency runs, measures): the bus's own cost with nothing behind it.
struct NullSink {
    tracker: Arc<Tracker>,
}

#[async_trait]
impl Sink for NullSink {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        self.tracker.arrived(payload::seq_of(&d.message.meta.id));
        Ok(())
    }
}

/// The production factory plus type `null`.
#[derive(Clone)]
pub struct BenchFactory {
    inner: lienthong_adapters::Factory,
    tracker: Arc<Tracker>,
}

impl BenchFactory {
    pub fn new(tracker: Arc<Tracker>) -> Self {
        Self {
            inner: lienthong_adapters::Factory,
            tracker,
        }
    }
}

impl AdapterFactory for BenchFactory {
    fn types(&self) -> Vec<&'static str> {
        let mut t = self.inner.types();
        t.push("null");
        t
    }

    fn check(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Problem> {
        match spec.kind.as_str() {
            "null" => spec
                .options
                .keys()
                .map(|k| Problem::new(format!("{}.{k}", spec.path()), "`null` takes no options"))
                .collect(),
            _ => self.inner.check(spec, config, env),
        }
    }

    fn build(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Built, Vec<Problem>> {
        match spec.kind.as_str() {
            "null" => Ok(Built {
                sink: Some(Arc::new(NullSink {
                    tracker: self.tracker.clone(),
                })),
                ..Built::default()
            }),
            _ => self.inner.build(spec, config, env),
        }
    }
}

/// Config text of a bench bus: one sending agency (HTTP token and AMQP user), one receiving agency, one route
/// of `dossier.submitted` to adapter `sink` (declared by `adapter`, a TOML `[[adapters]]` table).
pub fn config_text(s: &Setup, ns: &str, state_url: &str, adapter: &str) -> String {
    format!(
        r#"[bus]
broker_url = "{amqp}"
namespace = "{ns}"
schemas_dir = "{schemas}"
prefetch = {prefetch}
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[state]
url = "{state_url}"

[[agencies]]
code = "{from}"
name = "UBND tỉnh Nam Định"
token_env = "{TOKEN_ENV}"
amqp_user = "{user}"

[[agencies]]
code = "{to}"
name = "Sở Tư pháp"

{adapter}

[[routes]]
id = "dossiers"
types = ["dossier.submitted"]
to = ["{to}"]
deliver = ["sink"]
{order}"#,
        amqp = s.amqp,
        schemas = s.schemas.display(),
        prefetch = s.prefetch,
        order = s
            .order_by
            .as_ref()
            .map(|p| format!("order_by = \"{p}\"\n"))
            .unwrap_or_default(),
        user = amqp::url_user(&s.amqp),
        from = payload::FROM,
        to = payload::TO,
    )
}

/// A started in-process bus and what is needed to tear it down without leaving queues behind.
pub struct BusUnderTest {
    pub bus: RunningBus,
    pub config: Config,
    pub dir: tempfile::TempDir,
    amqp: String,
}

impl BusUnderTest {
    pub async fn start(
        s: &Setup,
        label: &str,
        adapter: &str,
        factory: &BenchFactory,
    ) -> Result<Self, String> {
        let dir = match &s.state_dir {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .map_err(|e| format!("temp dir: {e}"))?;
        let ns = format!("{}-{label}", s.run);
        let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
        let file = dir.path().join("bus.toml");
        let mut text = config_text(s, &ns, &state, adapter);
        if s.evidence {
            let key = dir.path().join("evidence.pem");
            lienthong_bus::evidence::keygen(&key)?;
            text.push_str(&format!(
                "\n[evidence]\nsigning_key = \"{}\"\n",
                key.display()
            ));
        }
        std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
        let config = Config::load(&file).map_err(|e| e.to_string())?;
        let token = s.token.clone();
        let env = move |k: &str| (k == TOKEN_ENV).then(|| token.clone());
        let bus = lienthong_bus::runtime::start(
            config.clone(),
            Arc::new(factory.clone()),
            std::sync::Arc::new(lienthong_domain::Province),
            Arc::new(env),
        )
        .await
        .map_err(|e| format!("starting the bus: {e}"))?;
        let this = BusUnderTest {
            bus,
            config,
            dir,
            amqp: s.amqp.clone(),
        };
        if !this
            .bus
            .context
            .broker
            .wait_ready(Duration::from_secs(20))
            .await
        {
            let err = this.bus.context.broker.last_error();
            this.stop().await;
            return Err(format!("the bus did not connect to RabbitMQ: {err:?}"));
        }
        // Let the ingress consumer and the delivery worker subscribe before the clock starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(this)
    }

    pub fn ingress_exchange(&self) -> String {
        self.bus.context.names.ingress_exchange()
    }

    /// Bytes the SQLite state store occupies on disk (database plus WAL).
    pub fn state_bytes(&self) -> u64 {
        ["state.db", "state.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    pub async fn stop(self) {
        self.bus.shutdown().await;
        amqp::delete_topology(&self.amqp, &self.config).await;
    }
}

/// What one run through the bus measured.
pub struct BusRun {
    /// First send → last arrival at the sink.
    pub elapsed: Duration,
    /// First send → last publish confirmed (AMQP) or last 202 received (HTTP).
    pub sent: Duration,
    pub cpu: CpuUse,
}

pub(crate) fn too_slow(tracker: &Tracker, n: u64, timeout: Duration) -> String {
    format!(
        "only {} of {n} messages arrived within {}",
        tracker.count(),
        humantime::format_duration(timeout)
    )
}

/// Publishes `n` envelopes to `<ns>.ingress` as the sending agency's RabbitMQ user.
async fn publish_ingress(
    s: &Setup,
    but: &BusUnderTest,
    tmpl: &Template,
    n: u64,
    rate: Option<u32>,
    tracker: &Tracker,
) -> Result<Duration, String> {
    let conn = amqp::connect(&s.amqp, "lienthong-bench ingress publisher").await?;
    let result = async {
        let ch = amqp::confirm_channel(&conn).await?;
        let exchange = but.ingress_exchange();
        let user = amqp::url_user(&s.amqp);
        let p = Publish {
            exchange: &exchange,
            routing_key: "",
            count: n,
            window: s.window,
            rate,
        };
        amqp::publish(
            &ch,
            &p,
            |seq| tmpl.message(seq),
            |_| {
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_user_id(user.as_str().into())
            },
            Some(tracker),
        )
        .await
    }
    .await;
    amqp::closed(conn.close(200, "bye".into())).await;
    result
}

/// Path 2: AMQP ingress → validate → route → RabbitMQ → delivery worker → null sink.
pub async fn amqp_path(
    s: &Setup,
    label: &str,
    tmpl: &Template,
    n: u64,
    rate: Option<u32>,
    latency: bool,
    timeout: Duration,
) -> Result<(BusRun, Arc<Tracker>), String> {
    let tracker = Arc::new(Tracker::new(n, latency));
    let factory = BenchFactory::new(tracker.clone());
    let but = BusUnderTest::start(
        s,
        label,
        "[[adapters]]\nid = \"sink\"\ntype = \"null\"",
        &factory,
    )
    .await?;
    let cpu = CpuMark::now();
    let start = Instant::now();
    let sent = publish_ingress(s, &but, tmpl, n, rate, &tracker).await;
    let last = match sent {
        Ok(_) => tracker.wait(timeout).await,
        Err(_) => None,
    };
    let cpu = cpu.since();
    but.stop().await;
    let sent = sent?;
    let last = last.ok_or_else(|| too_slow(&tracker, n, timeout))?;
    Ok((
        BusRun {
            elapsed: last.duration_since(start),
            sent,
            cpu,
        },
        tracker,
    ))
}

async fn receive(State(t): State<Arc<Tracker>>, body: bytes::Bytes) -> StatusCode {
    if body.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    t.arrived(None);
    StatusCode::OK
}

/// The webhook receiver of paths 3 and 3b: an axum server on a free loopback port that counts every
/// non-empty POST and answers 200. Returns its address and the server task (abort it when done).
pub(crate) async fn receiver(
    tracker: Arc<Tracker>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new().fallback(receive).with_state(tracker);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, server))
}

/// The HTTP load of paths 3 and 3b: `clients` concurrent tasks sharing one keep-alive client POST messages
/// 0..n (bearer `token`, JSON) to `urls`, message `seq` to `urls[seq % len]`, each waiting for its 202.
/// Returns the time from `start` until the last task finished; any other answer is an error.
pub(crate) async fn post_load(
    urls: &[String],
    token: &str,
    tmpl: &Template,
    n: u64,
    clients: usize,
    start: Instant,
) -> Result<Duration, String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let next = Arc::new(AtomicU64::new(0));
    let tmpl = Arc::new(tmpl.clone());
    let urls: Arc<[String]> = urls.into();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let (client, urls, next, tmpl, token) = (
            client.clone(),
            urls.clone(),
            next.clone(),
            tmpl.clone(),
            token.to_owned(),
        );
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    return Ok(());
                }
                let url = &urls[(seq % urls.len() as u64) as usize];
                let resp = client
                    .post(url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(tmpl.message(seq))
                    .send()
                    .await
                    .map_err(|e| format!("POST: {e}"))?;
                if resp.status().as_u16() != 202 {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(format!("POST answered {status}: {text}"));
                }
            }
        });
    }
    let mut failed = None;
    let mut sent = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        sent = start.elapsed();
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => failed = failed.or(Some(format!("client task: {e}"))),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

/// Path 3: `clients` concurrent keep-alive HTTP clients → bus → webhook adapter → an in-process receiver.
pub async fn http_path(
    s: &Setup,
    label: &str,
    tmpl: &Template,
    n: u64,
    clients: usize,
    timeout: Duration,
) -> Result<BusRun, String> {
    let tracker = Arc::new(Tracker::new(n, false));
    let (addr, server) = receiver(tracker.clone()).await?;
    let factory = BenchFactory::new(tracker.clone());
    let adapter = webhook_adapter(addr);
    let but = match BusUnderTest::start(s, label, &adapter, &factory).await {
        Ok(b) => b,
        Err(e) => {
            server.abort();
            return Err(e);
        }
    };
    let url = format!("http://{}/v1/messages", but.bus.http_addr);
    let cpu = CpuMark::now();
    let start = Instant::now();
    let sent = post_load(&[url], &s.token, tmpl, n, clients, start).await;
    let last = match sent {
        Ok(_) => tracker.wait(timeout).await,
        Err(_) => None,
    };
    let cpu = cpu.since();
    but.stop().await;
    server.abort();
    let sent = sent?;
    let last = last.ok_or_else(|| too_slow(&tracker, n, timeout))?;
    Ok(BusRun {
        elapsed: last.duration_since(start),
        sent,
        cpu,
    })
}

/// The `[[adapters]]` table of path 3: adapter `sink`, a webhook to the receiver at `addr`.
pub(crate) fn webhook_adapter(addr: std::net::SocketAddr) -> String {
    format!(
        "[[adapters]]\nid = \"sink\"\ntype = \"webhook\"\nurl = \"http://{addr}/inbox\"\ntimeout = \"10s\""
    )
}

/// What a soak saw.
pub struct SoakRun {
    /// (seconds since start, RSS bytes of this process).
    pub samples: Vec<(f64, u64)>,
    pub sent: u64,
    pub arrived: u64,
    pub state_bytes: u64,
    pub cpu: CpuUse,
}

/// Path 2 at a fixed rate for `duration`, sampling this process's RSS every `every`.
pub async fn soak(
    s: &Setup,
    tmpl: &Template,
    duration: Duration,
    rate: u32,
    every: Duration,
) -> Result<SoakRun, String> {
    let tracker = Arc::new(Tracker::unbounded());
    let factory = BenchFactory::new(tracker.clone());
    let but = BusUnderTest::start(
        s,
        "soak",
        "[[adapters]]\nid = \"sink\"\ntype = \"null\"",
        &factory,
    )
    .await?;
    let n = (duration.as_secs_f64() * rate as f64).round() as u64;
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            loop {
                t.tick().await;
                let rss = crate::sys::status_bytes("self", "VmRSS:").unwrap_or(0);
                samples
                    .lock()
                    .expect("lock")
                    .push((start.elapsed().as_secs_f64(), rss));
            }
        })
    };
    let cpu = CpuMark::now();
    let sent = publish_ingress(s, &but, tmpl, n, Some(rate), &tracker).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.is_ok() && tracker.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu.since();
    sampler.abort();
    let mut samples = samples.lock().expect("lock").clone();
    samples.push((
        start.elapsed().as_secs_f64(),
        crate::sys::status_bytes("self", "VmRSS:").unwrap_or(0),
    ));
    let state_bytes = but.state_bytes();
    but.stop().await;
    sent?;
    Ok(SoakRun {
        samples,
        sent: n,
        arrived: tracker.count(),
        state_bytes,
        cpu,
    })
}

/// The schemas folder of a repository checkout.
pub fn schemas_of(repo: &Path) -> PathBuf {
    repo.join("schemas")
}
