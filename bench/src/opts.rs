//! The benchmark's command line: which phases run, how many messages, at what load, and the smoke
//! defaults.
//!
//! Why apart from the runner: every default has a full value and a `--smoke` value, and [`Opts::pick`] is
//! the one place that chooses between them, so a phase never hard-codes its own.

use clap::{Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
    /// Path 3b: a minimal hand-written HTTP → one quorum queue → webhook bridge (path 3's ceiling).
    Bridge,
    /// Path 3 through the real binary with 1 and then 2 bus processes sharing a PostgreSQL state store.
    Procs,
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
    /// PostgreSQL database of the `procs` phase; each run creates a schema of its own in it and drops it.
    #[arg(long, env = "LIENTHONG_BENCH_POSTGRES_URL", default_value = DEFAULT_POSTGRES)]
    pub postgres: String,
    /// Messages per run of the `procs` phase (1 KB) [default: 10000; --smoke: 200].
    #[arg(long)]
    pub procs_messages: Option<u64>,
    /// The `lienthong` binary for the edXML and procs phases [default: `lienthong` next to this executable].
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
    /// Rounds of the throughput paths: each round runs every selected path once at each size, in order, so
    /// a path and its ceiling alternate. With more than one, the report adds "Paired rounds": each floored
    /// path ÷ its ceiling per round, their mean and standard error, and the verdict on the mean (one run's
    /// ratio can miss or pass a floor by the machine's run-to-run spread alone) [default: 1].
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Publishes awaiting a confirm at once (raw baseline and AMQP ingress publisher).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Consumer prefetch of the raw baseline, and `bus.prefetch` of the bus under test.
    #[arg(long, default_value_t = 200)]
    pub prefetch: u16,
    /// Concurrent keep-alive HTTP clients on paths 3 and 3b (and the procs phase).
    #[arg(long, default_value_t = 64)]
    pub http_clients: usize,
    /// Time spent validating each payload in the validation phase [default: 2s; --smoke: 200ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validation_time: Option<Duration>,
    /// Folder for the in-process buses' config and SQLite state store [default: the system temp folder].
    /// Pointing it at a tmpfs (e.g. /dev/shm) shows what the state store's fsyncs cost.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Run the in-process buses with `[evidence]` on (a fresh signing key each): every accepted and delivered
    /// message leaves a signed, hash-chained record (docs/evidence.md). Compare a run with and without it.
    #[arg(long)]
    pub evidence: bool,
    /// Give the bench route this `order_by` (a JSON pointer, e.g. `/id`: every message its own key, or
    /// `/payload/MaHoSo`: every message of the bench about one dossier, so one key): per-key order's cost
    /// (README "Per-key order"). Compare a run with and without it.
    #[arg(long)]
    pub order_by: Option<String>,
    /// Every message of the throughput runs about one dossier (the bench's input before 2026-11-29, when
    /// comparing with a build of that time) instead of a dossier each.
    #[arg(long)]
    pub one_dossier: bool,
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

    pub(crate) fn wants(&self, p: Phase) -> bool {
        let listed = self.only.is_empty() || self.only.contains(&p);
        match p {
            Phase::Soak => listed && self.soak.is_some() && !self.smoke,
            _ => listed,
        }
    }

    pub(crate) fn pick<T>(&self, given: Option<T>, full: T, smoke: T) -> T {
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
