//! `lienthong-bench`: how fast the Liên Thông bus moves messages on RabbitMQ, measured against raw lapin on
//! the same broker in the same run, plus schema validation cost, a large edXML package through the real
//! binary, latency at a fixed load and an optional memory soak. BENCHMARKS.md explains each measurement.
//!
//! [`run`] does everything [`Opts`] asks for and returns the markdown report and the list of failures
//! (messages that did not arrive, a package that came out different, a phase that errored). Performance
//! floors are reported as verdicts, not failures.
#![forbid(unsafe_code)]

pub mod amqp;
pub mod bus;
pub mod edxml;
pub mod payload;
mod report;
pub mod state;
pub mod sys;
pub mod track;
pub mod validation;

use clap::{Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Phases that can be picked with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Path 1: raw lapin baseline.
    Raw,
    /// Path 1 through two quorum queues with a confirming relay between them (the bus's topology, nothing else).
    Relay,
    /// Path 2: AMQP ingress → bus → null sink.
    Amqp,
    /// Path 3: HTTP ingress → bus → webhook → receiver.
    Http,
    /// The bus's SQLite state store alone (the four calls path 2 makes per message).
    State,
    /// Schema validation alone.
    Validation,
    /// 20 MB edXML package through the real binary.
    Edxml,
    /// p50/p99 at a fixed offered load.
    Latency,
    /// Memory soak (also needs --soak).
    Soak,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "lienthong-bench",
    version,
    about = "Benchmark the Liên Thông bus against raw lapin on RabbitMQ; prints a markdown report"
)]
pub struct Opts {
    /// Messages per 1 KB throughput run [default: 20000; --smoke: 200].
    #[arg(long)]
    pub messages: Option<u64>,
    /// Messages per 64 KB throughput run [default: 3000; --smoke: 200].
    #[arg(long)]
    pub messages_64k: Option<u64>,
    /// Tiny counts, a 1 MB edXML package, a 2 s latency run, no soak; exits non-zero if anything fails to
    /// arrive. Floors are not judged.
    #[arg(long)]
    pub smoke: bool,
    /// Also run path 2 at --soak-rate for this long (e.g. `10m`), sampling this process's RSS every 10 s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub soak: Option<Duration>,
    /// Write the results into this markdown file (between the `bench:begin`/`bench:end` markers, which are
    /// appended if missing); everything else in the file is kept.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// RabbitMQ to use.
    #[arg(long, env = "LIENTHONG_AMQP_URL", default_value = DEFAULT_AMQP)]
    pub amqp: String,
    /// The `lienthong` binary for the edXML phase [default: `lienthong` next to this executable].
    #[arg(long, env = "LIENTHONG_BIN")]
    pub lienthong_bin: Option<PathBuf>,
    /// Offered load of the latency and soak runs, messages per second [default: 1000; --smoke: 100].
    #[arg(long)]
    pub rate: Option<u32>,
    /// Offered load of the soak [default: --rate].
    #[arg(long)]
    pub soak_rate: Option<u32>,
    /// Length of each latency run [default: 10s; --smoke: 2s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency_duration: Option<Duration>,
    /// Size of the edXML attachment in MB (10^6 bytes) [default: 20; --smoke: 1].
    #[arg(long)]
    pub edxml_mb: Option<usize>,
    /// Further edXML packages sent to the same process after the first, VmHWM read after each [default: 2;
    /// --smoke: 1].
    #[arg(long)]
    pub edxml_repeat: Option<usize>,
    /// Runs of the raw and relay baselines per size; the median is reported [default: 3; --smoke: 1].
    /// They are cheap and the most sensitive to other load on the machine.
    #[arg(long)]
    pub raw_repeat: Option<u32>,
    /// Publishes awaiting a confirm at once (raw baseline and AMQP ingress publisher).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Consumer prefetch of the raw baseline, and `bus.prefetch` of the bus under test.
    #[arg(long, default_value_t = 200)]
    pub prefetch: u16,
    /// Concurrent keep-alive HTTP clients on path 3.
    #[arg(long, default_value_t = 64)]
    pub http_clients: usize,
    /// Time spent validating each payload in the validation phase [default: 2s; --smoke: 200ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validation_time: Option<Duration>,
    /// Folder for the in-process buses' config and SQLite state store [default: the system temp folder].
    /// Pointing it at a tmpfs (e.g. /dev/shm) shows what the state store's fsyncs cost.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Run only these phases (comma-separated); default all (soak only with --soak).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Phase>,
    /// Repository checkout (schemas, git commit) [default: the one this was built from].
    #[arg(long)]
    pub repo: Option<PathBuf>,
}

impl Opts {
    /// Smoke options with defaults, for tests.
    pub fn smoke() -> Opts {
        Opts::parse_from(["lienthong-bench", "--smoke"])
    }

    fn wants(&self, p: Phase) -> bool {
        let listed = self.only.is_empty() || self.only.contains(&p);
        match p {
            Phase::Soak => listed && self.soak.is_some() && !self.smoke,
            _ => listed,
        }
    }

    fn pick<T>(&self, given: Option<T>, full: T, smoke: T) -> T {
        given.unwrap_or(if self.smoke { smoke } else { full })
    }

    /// Offered load of the latency and soak runs.
    pub fn rate(&self) -> u32 {
        self.pick(self.rate, 1000, 100)
    }

    /// Offered load of the soak.
    pub fn soak_rate(&self) -> u32 {
        self.soak_rate.unwrap_or_else(|| self.rate())
    }

    pub fn repo(&self) -> PathBuf {
        self.repo
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
    }
}

/// A phase's result: measured, failed (counts as a failure), or skipped (with why).
pub enum Outcome<T> {
    Done(T),
    Failed(String),
    Skipped(String),
}

impl<T> Outcome<T> {
    fn from(r: Result<T, String>) -> Self {
        match r {
            Ok(v) => Outcome::Done(v),
            Err(e) => Outcome::Failed(e),
        }
    }
    pub fn done(&self) -> Option<&T> {
        match self {
            Outcome::Done(v) => Some(v),
            _ => None,
        }
    }
}

/// Which way messages went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Raw,
    Relay,
    Amqp,
    Http,
}

pub struct Throughput {
    pub path: Via,
    /// Envelope size target (1024 or 65536).
    pub size: usize,
    /// Actual message size in bytes.
    pub bytes: usize,
    pub messages: u64,
    /// Runs made; the median one is reported.
    pub runs: u32,
    /// Lowest and highest msg/s over the runs, when there was more than one.
    pub spread: Option<(f64, f64)>,
    /// (first send → last arrival, first send → last confirm/202, CPU)
    pub outcome: Outcome<(Duration, Duration, sys::CpuUse)>,
}

impl Throughput {
    pub fn rate(&self) -> Option<f64> {
        self.outcome
            .done()
            .map(|(e, _, _)| self.messages as f64 / e.as_secs_f64())
    }
}

pub struct Latency {
    pub path: Via,
    pub rate: u32,
    pub duration: Duration,
    pub bytes: usize,
    /// (sorted latencies in µs, time to publish everything)
    pub outcome: Outcome<(Vec<u64>, Duration)>,
}

/// Everything one run measured.
pub struct Results {
    pub smoke: bool,
    pub opts: Opts,
    pub machine: sys::Machine,
    /// Mean 4 KiB write + fsync in the state folder.
    pub fsync: Option<Duration>,
    pub throughput: Vec<Throughput>,
    pub state: Option<Outcome<state::StateRun>>,
    pub validation: Vec<Outcome<validation::ValidationRun>>,
    pub edxml: Option<Outcome<edxml::EdxmlRun>>,
    pub latency: Vec<Latency>,
    pub soak: Option<Outcome<bus::SoakRun>>,
}

/// The report and what went wrong.
pub struct Report {
    pub markdown: String,
    pub failures: Vec<String>,
}

fn progress(msg: &str) {
    eprintln!("[lienthong-bench] {msg}");
}

fn size_label(size: usize) -> &'static str {
    if size <= 1024 { "1 KB" } else { "64 KB" }
}

/// Runs the phases `opts` asks for, in order: throughput (raw, AMQP, HTTP) per size, validation, edXML,
/// latency, soak.
pub async fn run(opts: &Opts) -> Report {
    let repo = opts.repo();
    let machine = sys::machine(&repo);
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let setup = bus::Setup {
        amqp: opts.amqp.clone(),
        schemas: bus::schemas_of(&repo),
        prefetch: opts.prefetch,
        window: opts.window,
        token: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        run: format!("bench-{run_id}"),
        state_dir: opts.state_dir.clone(),
    };
    let settle = if opts.smoke {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    };
    let state_dir = opts.state_dir.clone().unwrap_or_else(std::env::temp_dir);
    let fsync = sys::fsync_latency(&state_dir, if opts.smoke { 10 } else { 100 });
    let mut r = Results {
        smoke: opts.smoke,
        opts: opts.clone(),
        fsync,
        machine,
        throughput: Vec::new(),
        state: None,
        validation: Vec::new(),
        edxml: None,
        latency: Vec::new(),
        soak: None,
    };
    progress(&format!(
        "run {run_id}: {} build, RabbitMQ {}",
        r.machine.profile, r.machine.rabbitmq
    ));

    let sizes = [
        (1024usize, opts.pick(opts.messages, 20_000, 200)),
        (65536usize, opts.pick(opts.messages_64k, 3_000, 200)),
    ];
    for (size, n) in sizes {
        let tmpl = payload::Template::new(&run_id, size);
        let timeout = Duration::from_secs(60) + Duration::from_millis(10) * n as u32;
        for path in [Via::Raw, Via::Relay, Via::Amqp, Via::Http] {
            let phase = match path {
                Via::Raw => Phase::Raw,
                Via::Relay => Phase::Relay,
                Via::Amqp => Phase::Amqp,
                Via::Http => Phase::Http,
            };
            if !opts.wants(phase) {
                continue;
            }
            progress(&format!("{path:?} {}: {n} messages", size_label(size)));
            let label = format!("{}-{}k", format!("{path:?}").to_lowercase(), size / 1024);
            let repeats = match path {
                Via::Raw | Via::Relay => opts.pick(opts.raw_repeat, 3, 1).max(1),
                _ => 1,
            };
            let mut runs = Vec::new();
            for i in 0..repeats {
                let label = format!("{label}-r{i}");
                let outcome = match path {
                    Via::Raw => {
                        let p = amqp::Publish {
                            exchange: "",
                            routing_key: "",
                            count: n,
                            window: opts.window,
                            rate: None,
                        };
                        amqp::raw(
                            &opts.amqp,
                            &format!("{}.{label}", setup.run),
                            &p,
                            opts.prefetch,
                            |s| tmpl.message(s),
                            Arc::new(track::Tracker::new(n, false)),
                            timeout,
                        )
                        .await
                        .map(|x| (x.elapsed, x.published, x.cpu))
                    }
                    Via::Relay => {
                        let p = amqp::Publish {
                            exchange: "",
                            routing_key: "",
                            count: n,
                            window: opts.window,
                            rate: None,
                        };
                        let (q1, q2) = (
                            format!("{}.{label}.in", setup.run),
                            format!("{}.{label}.out", setup.run),
                        );
                        amqp::relay(
                            &opts.amqp,
                            [&q1, &q2],
                            &p,
                            opts.prefetch,
                            |s| tmpl.message(s),
                            Arc::new(track::Tracker::new(n, false)),
                            timeout,
                        )
                        .await
                        .map(|x| (x.elapsed, x.published, x.cpu))
                    }
                    Via::Amqp => bus::amqp_path(&setup, &label, &tmpl, n, None, false, timeout)
                        .await
                        .map(|(x, _)| (x.elapsed, x.sent, x.cpu)),
                    Via::Http => {
                        bus::http_path(&setup, &label, &tmpl, n, opts.http_clients, timeout)
                            .await
                            .map(|x| (x.elapsed, x.sent, x.cpu))
                    }
                };
                let failed = outcome.is_err();
                runs.push(outcome);
                if failed {
                    break;
                }
            }
            // The median run by throughput; all runs' range alongside.
            let spread = if runs.len() > 1 && runs.iter().all(|r| r.is_ok()) {
                let rates: Vec<f64> = runs
                    .iter()
                    .flatten()
                    .map(|(e, _, _)| n as f64 / e.as_secs_f64())
                    .collect();
                let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = rates.iter().copied().fold(0.0, f64::max);
                Some((lo, hi))
            } else {
                None
            };
            runs.sort_by(|a, b| match (a, b) {
                (Ok(x), Ok(y)) => x.0.cmp(&y.0),
                (Err(_), _) => std::cmp::Ordering::Less,
                (_, Err(_)) => std::cmp::Ordering::Greater,
            });
            let outcome = runs.swap_remove(runs.len() / 2);
            let outcome = match runs.iter().find_map(|r| r.as_ref().err()) {
                Some(e) => Err(e.clone()),
                None => outcome,
            };
            let t = Throughput {
                path,
                size,
                bytes: tmpl.len(),
                messages: n,
                runs: repeats,
                spread,
                outcome: Outcome::from(outcome),
            };
            match (&t.outcome, t.rate()) {
                (Outcome::Failed(e), _) => progress(&format!("  FAILED: {e}")),
                (_, Some(rate)) => progress(&format!("  {rate:.0} msg/s")),
                _ => {}
            }
            r.throughput.push(t);
            tokio::time::sleep(settle).await;
        }
    }

    if opts.wants(Phase::State) {
        let n = opts.pick(opts.messages.map(|m| m.min(5_000)), 5_000, 200);
        let concurrency = 2 * opts.prefetch as usize;
        progress(&format!(
            "state store alone: {n} messages, {concurrency} concurrent tasks"
        ));
        let o = Outcome::from(state::run(opts.state_dir.as_deref(), n, concurrency).await);
        match &o {
            Outcome::Done(x) => progress(&format!("  {:.0} msg/s", x.rate())),
            Outcome::Failed(e) => progress(&format!("  FAILED: {e}")),
            Outcome::Skipped(_) => {}
        }
        r.state = Some(o);
    }

    if opts.wants(Phase::Validation) {
        progress("schema validation");
        let budget = opts.pick(
            opts.validation_time,
            Duration::from_secs(2),
            Duration::from_millis(200),
        );
        let schemas = setup.schemas.clone();
        let payloads = [
            (
                "1 KB message (path 2)".to_owned(),
                payload::Template::new(&run_id, 1024).payload,
            ),
            (
                "sample 01-dossier-submitted".to_owned(),
                payload::full_dossier(),
            ),
            (
                "64 KB message".to_owned(),
                payload::Template::new(&run_id, 65536).payload,
            ),
        ];
        let runs = tokio::task::spawn_blocking(move || {
            let reg = match validation::registry(&schemas) {
                Ok(reg) => reg,
                Err(e) => return vec![Err(format!("loading schemas: {e}"))],
            };
            payloads
                .iter()
                .map(|(label, p)| validation::run(&reg, label, p, budget))
                .collect()
        })
        .await
        .unwrap_or_else(|e| vec![Err(format!("validation task: {e}"))]);
        r.validation = runs.into_iter().map(Outcome::from).collect();
    }

    if opts.wants(Phase::Edxml) {
        let bin = opts
            .lienthong_bin
            .clone()
            .unwrap_or_else(edxml::default_bin);
        let mb = opts.pick(opts.edxml_mb, 20, 1);
        r.edxml = Some(if bin.is_file() {
            progress(&format!(
                "edXML: {mb} MB attachment through {}",
                bin.display()
            ));
            let repeat = opts.pick(opts.edxml_repeat, 2, 1);
            let o = Outcome::from(edxml::run(&setup, &bin, mb * 1_000_000, repeat).await);
            if let Outcome::Failed(e) = &o {
                progress(&format!("  FAILED: {e}"));
            }
            o
        } else {
            let why = format!(
                "the lienthong binary is not at {} (build it, or set LIENTHONG_BIN)",
                bin.display()
            );
            progress(&format!("edXML skipped: {why}"));
            Outcome::Skipped(why)
        });
        tokio::time::sleep(settle).await;
    }

    if opts.wants(Phase::Latency) {
        let duration = opts.pick(
            opts.latency_duration,
            Duration::from_secs(10),
            Duration::from_secs(2),
        );
        let n = (duration.as_secs_f64() * opts.rate() as f64)
            .round()
            .max(1.0) as u64;
        let tmpl = payload::Template::new(&run_id, 1024);
        let timeout = Duration::from_secs(60);
        for path in [Via::Raw, Via::Amqp] {
            progress(&format!(
                "latency {path:?}: {} msg/s for {}",
                opts.rate(),
                humantime::format_duration(duration)
            ));
            let outcome = match path {
                Via::Raw => {
                    let tracker = Arc::new(track::Tracker::new(n, true));
                    let p = amqp::Publish {
                        exchange: "",
                        routing_key: "",
                        count: n,
                        window: opts.window,
                        rate: Some(opts.rate()),
                    };
                    amqp::raw(
                        &opts.amqp,
                        &format!("{}.latency-raw", setup.run),
                        &p,
                        opts.prefetch,
                        |s| tmpl.message(s),
                        tracker.clone(),
                        timeout,
                    )
                    .await
                    .map(|x| (tracker.sorted_latencies(), x.published))
                }
                _ => bus::amqp_path(
                    &setup,
                    "latency-amqp",
                    &tmpl,
                    n,
                    Some(opts.rate()),
                    true,
                    timeout,
                )
                .await
                .map(|(x, t)| (t.sorted_latencies(), x.sent)),
            };
            if let Err(e) = &outcome {
                progress(&format!("  FAILED: {e}"));
            }
            r.latency.push(Latency {
                path,
                rate: opts.rate(),
                duration,
                bytes: tmpl.len(),
                outcome: Outcome::from(outcome),
            });
            tokio::time::sleep(settle).await;
        }
    }

    if opts.wants(Phase::Soak) {
        let duration = opts.soak.expect("wants(Soak) implies --soak");
        progress(&format!(
            "soak: path 2 at {} msg/s for {}",
            opts.soak_rate(),
            humantime::format_duration(duration)
        ));
        let tmpl = payload::Template::new(&run_id, 1024);
        let o = bus::soak(
            &setup,
            &tmpl,
            duration,
            opts.soak_rate(),
            Duration::from_secs(10),
        )
        .await;
        r.soak = Some(match o {
            Ok(s) if s.arrived < s.sent => Outcome::Failed(format!(
                "only {} of {} soak messages arrived",
                s.arrived, s.sent
            )),
            other => Outcome::from(other),
        });
    }

    let failures = report::failures(&r);
    Report {
        markdown: report::markdown(&r),
        failures,
    }
}

/// Markers around the generated part of BENCHMARKS.md.
pub const BEGIN: &str =
    "<!-- bench:begin (generated by lienthong-bench --write; do not edit by hand) -->";
pub const END: &str = "<!-- bench:end -->";

/// Puts `section` between the markers in `path` (appending the markers if missing), keeping the rest.
pub fn write_into(path: &Path, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &old[..b], &old[e + END.len()..])
        }
        _ if old.trim().is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", old.trim_end()),
    };
    std::fs::write(path, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_into_replaces_only_the_generated_block() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("B.md");
        std::fs::write(&f, "# Head\n\nhand text\n").unwrap();
        write_into(&f, "one").unwrap();
        std::fs::write(
            &f,
            std::fs::read_to_string(&f).unwrap() + "\n## Findings\nmore\n",
        )
        .unwrap();
        write_into(&f, "two").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("# Head\n\nhand text\n"));
        assert!(text.contains("two") && !text.contains("one"));
        assert!(text.ends_with("## Findings\nmore\n"));
    }
}
