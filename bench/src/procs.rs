//! Path 3 through the real `lienthong` binary, with one bus process and then with two processes sharing one
//! namespace and one PostgreSQL state store (the supported way to run more than one), the HTTP load spread
//! over their listeners.
//!
//! Why: the in-process rows say what one bus costs; this says what a second process adds or takes away. On a
//! machine whose few cores are shared with RabbitMQ, PostgreSQL and the load generator, a second process
//! mostly adds overhead (two of everything competing for the same cores, a shared state store over a socket);
//! scaling needs cores the first process cannot use. Each run has its own namespace and its own PostgreSQL
//! schema, both removed at the end.

use crate::Outcome;
use crate::bus::{self, Setup};
use crate::edxml::{free_port, log_tail, spawn_bus, wait_ready};
use crate::payload::Template;
use crate::sys::{CpuMark, CpuUse, cpu_seconds};
use crate::track::Tracker;
use lienthong_bus::config::Config;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One run with `processes` bus processes.
pub struct ProcsRun {
    /// First POST → last arrival at the receiver.
    pub elapsed: Duration,
    /// First POST → last 202.
    pub sent: Duration,
    /// The bench process (load generator and receiver) and RabbitMQ.
    pub cpu: CpuUse,
    /// CPU seconds of all bus processes together during the run.
    pub bus_seconds: f64,
}

/// A fresh schema in the PostgreSQL database at `admin_url`, selected through `search_path` in `url`.
struct PgSchema {
    admin_url: String,
    name: String,
    url: String,
}

impl PgSchema {
    async fn create(admin_url: &str, name: &str) -> Result<PgSchema, String> {
        exec(admin_url, &format!("CREATE SCHEMA {name}")).await?;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        Ok(PgSchema {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
            url: format!("{admin_url}{sep}options=-c%20search_path%3D{name}"),
        })
    }

    async fn drop(self) -> Result<(), String> {
        exec(
            &self.admin_url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        )
        .await
    }
}

async fn exec(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::{Connection, Executor};
    let mut conn = tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url))
        .await
        .map_err(|_| format!("connecting to PostgreSQL at {} timed out", redact(url)))?
        .map_err(|e| format!("connecting to PostgreSQL at {}: {e}", redact(url)))?;
    let r = conn
        .execute(sql)
        .await
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"));
    let _ = conn.close().await;
    r
}

/// `url` without a password, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (cred, host) = rest.split_once('@')?;
        let user = cred.split(':').next().unwrap_or("");
        Some(format!("{scheme}://{user}@{host}"))
    }) {
        Some(u) => u,
        None => url.to_owned(),
    }
}

/// Whether PostgreSQL answers at `url` (the phase is skipped, not failed, when it does not).
pub async fn reachable(url: &str) -> Result<(), String> {
    exec(url, "SELECT 1").await
}

/// Path 3 through `processes` `lienthong run` children of `bin` sharing namespace `<run>-<label>` and one fresh
/// PostgreSQL schema; `n` messages POSTed by `clients` clients, message `seq` to process `seq % processes`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    s: &Setup,
    bin: &Path,
    pg_admin: &str,
    label: &str,
    processes: usize,
    tmpl: &Template,
    n: u64,
    clients: usize,
    timeout: Duration,
) -> Result<ProcsRun, String> {
    let ident = |t: &str| t.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let schema = format!("lt_{}_{}", ident(&s.run), ident(label));
    let pg = PgSchema::create(pg_admin, &schema).await?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"));
    let result = match &dir {
        Ok(dir) => {
            drive(
                s,
                bin,
                &pg.url,
                dir.path(),
                label,
                processes,
                tmpl,
                n,
                clients,
                timeout,
            )
            .await
        }
        Err(e) => Err(e.clone()),
    };
    let dropped = pg.drop().await;
    let r = result?;
    dropped?;
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    s: &Setup,
    bin: &Path,
    state_url: &str,
    dir: &Path,
    label: &str,
    processes: usize,
    tmpl: &Template,
    n: u64,
    clients: usize,
    timeout: Duration,
) -> Result<ProcsRun, String> {
    let tracker = Arc::new(Tracker::new(n, false));
    let (addr, receiver) = bus::receiver(tracker.clone()).await?;
    let ns = format!("{}-{label}", s.run);
    let body = bus::config_text(s, &ns, state_url, &bus::webhook_adapter(addr));
    let mut children = Vec::new();
    let mut urls = Vec::new();
    let mut logs = Vec::new();
    let mut config = None;
    let started = async {
        for i in 0..processes {
            let (http, admin) = (free_port()?, free_port()?);
            // `[http]` comes before `[admin]` in the config text: the first wildcard listen is HTTP's.
            let text = body
                .replacen(
                    "listen = \"127.0.0.1:0\"",
                    &format!("listen = \"127.0.0.1:{http}\""),
                    1,
                )
                .replacen(
                    "listen = \"127.0.0.1:0\"",
                    &format!("listen = \"127.0.0.1:{admin}\""),
                    1,
                );
            let file = dir.join(format!("bus-{i}.toml"));
            std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
            if config.is_none() {
                config = Some(Config::load(&file).map_err(|e| e.to_string())?);
            }
            let log = dir.join(format!("lienthong-{i}.log"));
            children.push(spawn_bus(bin, &file, &log, &s.token)?);
            logs.push(log);
            // One at a time: the first creates the schema's tables and the broker topology.
            wait_ready(children.last_mut().expect("just pushed"), admin).await?;
            urls.push(format!("http://127.0.0.1:{http}/v1/messages"));
        }
        // Let every process's consumers subscribe before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok::<(), String>(())
    }
    .await;

    let result = match started {
        Err(e) => Err(e),
        Ok(()) => {
            let pids: Vec<String> = children.iter().map(|c| c.0.id().to_string()).collect();
            let bus_cpu = || pids.iter().filter_map(|p| cpu_seconds(p)).sum::<f64>();
            let bus_before = bus_cpu();
            let cpu = CpuMark::now();
            let start = Instant::now();
            let sent = bus::post_load(&urls, &s.token, tmpl, n, clients, start).await;
            let last = match sent {
                Ok(_) => tracker.wait(timeout).await,
                Err(_) => None,
            };
            let cpu = cpu.since();
            let bus_seconds = bus_cpu() - bus_before;
            sent.and_then(|sent| {
                let last = last.ok_or_else(|| bus::too_slow(&tracker, n, timeout))?;
                Ok(ProcsRun {
                    elapsed: last.duration_since(start),
                    sent,
                    cpu,
                    bus_seconds,
                })
            })
        }
    };
    for c in &mut children {
        c.terminate(Duration::from_secs(10)).await;
    }
    receiver.abort();
    if let Some(config) = &config {
        crate::amqp::delete_topology(&s.amqp, config).await;
    }
    result.map_err(|e| {
        let tails: Vec<String> = logs
            .iter()
            .enumerate()
            .map(|(i, l)| format!("last lines of bus process {}:\n{}", i + 1, log_tail(l)))
            .collect();
        format!("{e}\n{}", tails.join("\n"))
    })
}

/// Path 3 through the real binary with 1 and 2 bus processes.
pub(crate) fn report_section(s: &mut String, r: &crate::Results) {
    let _ = writeln!(
        s,
        "\n### 3c · path 3 through the real binary: 1 vs 2 bus processes (PostgreSQL state store)\n\n\
         `lienthong run` child processes sharing one namespace and one fresh PostgreSQL schema; the {} HTTP \
         clients spread their POSTs over the processes' listeners; webhook to the bench's receiver. On a \
         machine with {} cores shared with RabbitMQ, PostgreSQL and the load generator, the second process \
         shows what running two costs (overhead), not how the bus scales.\n",
        r.opts.http_clients, r.machine.nproc
    );
    if let Some(Outcome::Skipped(e)) = r.procs.first().map(|p| &p.outcome) {
        let _ = writeln!(s, "skipped: {e}");
        return;
    }
    let _ = writeln!(
        s,
        "| bus processes | payload | messages | all sent after | last arrived after | msg/s | × 1 process | CPU cores: bench / bus processes / RabbitMQ |"
    );
    let _ = writeln!(s, "|--:|---|--:|--:|--:|--:|--:|---|");
    let one = r
        .procs
        .iter()
        .find(|p| p.processes == 1)
        .and_then(|p| p.rate());
    for p in &r.procs {
        let payload = format!("1 KB ({} B)", p.bytes);
        match &p.outcome {
            Outcome::Done(x) => {
                let rate = p.messages as f64 / x.elapsed.as_secs_f64();
                let _ = writeln!(
                    s,
                    "| {} | {payload} | {} | {:.2} s | {:.2} s | {rate:.0} | {} | {:.2} / {:.2} / {} |",
                    p.processes,
                    p.messages,
                    x.sent.as_secs_f64(),
                    x.elapsed.as_secs_f64(),
                    one.map(|o| format!("{:.2}", rate / o))
                        .unwrap_or_else(|| "—".into()),
                    x.cpu.me_cores(),
                    x.bus_seconds / x.cpu.wall.max(1e-9),
                    x.cpu
                        .broker_cores()
                        .map(|b| format!("{b:.2}"))
                        .unwrap_or_else(|| "?".into()),
                );
            }
            Outcome::Failed(e) | Outcome::Skipped(e) => {
                let _ = writeln!(
                    s,
                    "| {} | {payload} | {} | | | **failed**: {} | | |",
                    p.processes,
                    p.messages,
                    e.replace('|', "/").replace('\n', " ")
                );
            }
        }
    }
}
