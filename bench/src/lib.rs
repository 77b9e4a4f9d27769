//! `lienthong-bench`: how fast the Liên Thông bus moves messages on RabbitMQ, measured against raw lapin on
//! the same broker in the same run, plus schema validation cost, a large edXML package through the real
//! binary, latency at a fixed load and an optional memory soak. BENCHMARKS.md explains each measurement.
//!
//! [`run`] does everything [`Opts`] asks for and returns the markdown report and the list of failures
//! (messages that did not arrive, a package that came out different, a phase that errored). Performance
//! floors are reported as verdicts, not failures. The options live in `opts`, one function per measured path
//! in `phases`, the report's rendering in `report`; this file holds what they share.
#![forbid(unsafe_code)]

pub mod amqp;
pub mod bridge;
pub mod bus;
pub mod edxml;
mod judge;
mod opts;
pub mod payload;
mod phases;
pub mod procs;
mod report;
mod rounds;
pub mod state;
pub mod sys;
pub mod track;
pub mod validation;

pub use opts::{DEFAULT_AMQP, DEFAULT_POSTGRES, Opts, Phase};

use std::path::Path;
use std::time::Duration;

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
    /// Path 3b: the hand-written bridge (`bridge`).
    Bridge,
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

/// Path 3 through the real binary with `processes` bus processes.
pub struct Procs {
    pub processes: usize,
    pub messages: u64,
    pub bytes: usize,
    pub outcome: Outcome<procs::ProcsRun>,
}

impl Procs {
    pub fn rate(&self) -> Option<f64> {
        self.outcome
            .done()
            .map(|x| self.messages as f64 / x.elapsed.as_secs_f64())
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
    /// Rounds 2… of the throughput paths (`--rounds`); `throughput` is round 1.
    pub more_rounds: Vec<Vec<Throughput>>,
    /// 1 and 2 bus processes (`procs`).
    pub procs: Vec<Procs>,
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

/// Runs the phases `opts` asks for, in order: throughput (raw, relay, AMQP, HTTP, bridge) per size, 1 vs 2
/// bus processes, state store, validation, edXML, latency, soak.
pub async fn run(opts: &Opts) -> Report {
    sys::set_broker_url(&opts.amqp);
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
        evidence: opts.evidence,
        order_by: opts.order_by.clone(),
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
        more_rounds: Vec::new(),
        procs: Vec::new(),
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
    let ctx = phases::Ctx {
        opts,
        run_id,
        setup,
        settle,
    };

    r.throughput = phases::throughput(&ctx).await;
    for round in 2..=opts.rounds {
        progress(&format!("round {round} of {}", opts.rounds));
        tokio::time::sleep(settle).await;
        r.more_rounds.push(phases::throughput(&ctx).await);
    }
    if opts.wants(Phase::Procs) {
        r.procs = phases::procs(&ctx).await;
        tokio::time::sleep(settle).await;
    }
    if opts.wants(Phase::State) {
        r.state = Some(phases::state_store(&ctx).await);
    }
    if opts.wants(Phase::Validation) {
        r.validation = phases::validation(&ctx).await;
    }
    if opts.wants(Phase::Edxml) {
        r.edxml = Some(phases::edxml(&ctx).await);
        tokio::time::sleep(settle).await;
    }
    if opts.wants(Phase::Latency) {
        r.latency = phases::latency(&ctx).await;
    }
    if opts.wants(Phase::Soak) {
        r.soak = Some(phases::soak(&ctx).await);
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
