//! One function per measured path: throughput (raw lapin, relay, AMQP ingress, HTTP ingress, the hand-written
//! bridge), path 3 with 1 and 2 bus processes, the state store alone, schema validation, the large document through the real binary, latency at a fixed load, and
//! the soak.
//!
//! Why apart from [`crate::run`]: the runner only decides which phases run and collects their results; each
//! function here owns how its path is driven, so a path's options, repeats and progress lines sit together.

use crate::{Latency, Opts, Outcome, Procs, Throughput, Via, progress, size_label};
use crate::{amqp, bridge, bus, edxml, payload, procs, state, sys, track, validation};
use std::sync::Arc;
use std::time::Duration;

/// What every phase shares.
pub(crate) struct Ctx<'a> {
    pub opts: &'a Opts,
    /// Short id of this run, part of every queue and namespace it creates.
    pub run_id: String,
    /// The in-process buses' settings.
    pub setup: bus::Setup,
    /// Pause between phases so one phase's leftovers (broker flushes, freed memory) do not weigh on the next.
    pub settle: Duration,
}

/// First send → last arrival, first send → last confirm/202, CPU.
type Timing = (Duration, Duration, sys::CpuUse);

/// Path 1, 2 and 3 for each message size, in order raw, relay, AMQP, HTTP, bridge (those `--only` lists).
pub(crate) async fn throughput(ctx: &Ctx<'_>) -> Vec<Throughput> {
    let opts = ctx.opts;
    let sizes = [
        (1024usize, opts.pick(opts.messages, 20_000, 200)),
        (65536usize, opts.pick(opts.messages_64k, 3_000, 200)),
    ];
    let mut all = Vec::new();
    for (size, n) in sizes {
        let mut tmpl = payload::Template::new(&ctx.run_id, size);
        if ctx.opts.one_dossier {
            tmpl = tmpl.one_dossier();
        }
        for path in [Via::Raw, Via::Relay, Via::Amqp, Via::Http, Via::Bridge] {
            let phase = match path {
                Via::Raw => crate::Phase::Raw,
                Via::Relay => crate::Phase::Relay,
                Via::Amqp => crate::Phase::Amqp,
                Via::Http => crate::Phase::Http,
                Via::Bridge => crate::Phase::Bridge,
            };
            if !opts.wants(phase) {
                continue;
            }
            all.push(throughput_of(ctx, path, size, n, &tmpl).await);
            tokio::time::sleep(ctx.settle).await;
        }
    }
    all
}

/// One path at one size: the median of its runs by throughput, with the range of all runs alongside.
async fn throughput_of(
    ctx: &Ctx<'_>,
    path: Via,
    size: usize,
    n: u64,
    tmpl: &payload::Template,
) -> Throughput {
    let opts = ctx.opts;
    let timeout = Duration::from_secs(60) + Duration::from_millis(10) * n as u32;
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
            Via::Raw => raw_run(ctx, &label, n, tmpl, timeout).await,
            Via::Relay => relay_run(ctx, &label, n, tmpl, timeout).await,
            Via::Amqp => bus::amqp_path(&ctx.setup, &label, tmpl, n, None, false, timeout)
                .await
                .map(|(x, _)| (x.elapsed, x.sent, x.cpu)),
            Via::Http => bus::http_path(&ctx.setup, &label, tmpl, n, opts.http_clients, timeout)
                .await
                .map(|x| (x.elapsed, x.sent, x.cpu)),
            Via::Bridge => bridge::run(&ctx.setup, &label, tmpl, n, opts.http_clients, timeout)
                .await
                .map(|x| (x.elapsed, x.sent, x.cpu)),
        };
        let failed = outcome.is_err();
        runs.push(outcome);
        if failed {
            break;
        }
    }
    let (outcome, spread) = median(runs, n);
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
    t
}

/// The median run by throughput (an error if any run failed), and the lowest and highest msg/s when every
/// one of several runs succeeded.
fn median(
    mut runs: Vec<Result<Timing, String>>,
    n: u64,
) -> (Result<Timing, String>, Option<(f64, f64)>) {
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
    (outcome, spread)
}

/// `n` messages to the default exchange as fast as the confirm window allows.
fn unthrottled<'a>(ctx: &Ctx<'_>, n: u64) -> amqp::Publish<'a> {
    amqp::Publish {
        exchange: "",
        routing_key: "",
        count: n,
        window: ctx.opts.window,
        rate: None,
    }
}

/// Path 1: raw lapin, publisher to consumer through one queue.
async fn raw_run(
    ctx: &Ctx<'_>,
    label: &str,
    n: u64,
    tmpl: &payload::Template,
    timeout: Duration,
) -> Result<Timing, String> {
    let opts = ctx.opts;
    let p = unthrottled(ctx, n);
    amqp::raw(
        &opts.amqp,
        &format!("{}.{label}", ctx.setup.run),
        &p,
        opts.prefetch,
        |s| tmpl.message(s),
        Arc::new(track::Tracker::new(n, false)),
        timeout,
    )
    .await
    .map(|x| (x.elapsed, x.published, x.cpu))
}

/// Path 1 through two quorum queues with a confirming relay between them.
async fn relay_run(
    ctx: &Ctx<'_>,
    label: &str,
    n: u64,
    tmpl: &payload::Template,
    timeout: Duration,
) -> Result<Timing, String> {
    let opts = ctx.opts;
    let p = unthrottled(ctx, n);
    let (q1, q2) = (
        format!("{}.{label}.in", ctx.setup.run),
        format!("{}.{label}.out", ctx.setup.run),
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

/// Path 3 (1 KB) through the real binary, with 1 and then 2 bus processes sharing a namespace and a
/// PostgreSQL schema; skipped when the binary is not built or PostgreSQL does not answer.
pub(crate) async fn procs(ctx: &Ctx<'_>) -> Vec<Procs> {
    let opts = ctx.opts;
    let n = opts.pick(opts.procs_messages, 10_000, 200);
    let tmpl = payload::Template::new(&ctx.run_id, 1024);
    let bin = opts
        .lienthong_bin
        .clone()
        .unwrap_or_else(edxml::default_bin);
    let skip = if !bin.is_file() {
        Some(format!(
            "the lienthong binary is not at {} (build it, or set LIENTHONG_BIN)",
            bin.display()
        ))
    } else {
        procs::reachable(&opts.postgres).await.err()
    };
    let timeout = Duration::from_secs(60) + Duration::from_millis(10) * n as u32;
    let mut all = Vec::new();
    for processes in [1usize, 2] {
        let outcome = match &skip {
            Some(why) => {
                progress(&format!("procs skipped: {why}"));
                Outcome::Skipped(why.clone())
            }
            None => {
                progress(&format!(
                    "path 3 through {processes} bus process(es), {}: {n} messages",
                    bin.display()
                ));
                let label = format!("procs-{processes}");
                let o = Outcome::from(
                    procs::run(
                        &ctx.setup,
                        &bin,
                        &opts.postgres,
                        &label,
                        processes,
                        &tmpl,
                        n,
                        opts.http_clients,
                        timeout,
                    )
                    .await,
                );
                if let Outcome::Failed(e) = &o {
                    progress(&format!("  FAILED: {e}"));
                }
                o
            }
        };
        let p = Procs {
            processes,
            messages: n,
            bytes: tmpl.len(),
            outcome,
        };
        if let Some(rate) = p.rate() {
            progress(&format!("  {rate:.0} msg/s"));
        }
        all.push(p);
        if skip.is_some() {
            break;
        }
        tokio::time::sleep(ctx.settle).await;
    }
    all
}

/// The bus's SQLite state store alone: the calls path 2 makes per message.
pub(crate) async fn state_store(ctx: &Ctx<'_>) -> Outcome<state::StateRun> {
    let opts = ctx.opts;
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
    o
}

/// Schema validation alone, on a 1 KB, a full sample and a 64 KB payload.
pub(crate) async fn validation(ctx: &Ctx<'_>) -> Vec<Outcome<validation::ValidationRun>> {
    let opts = ctx.opts;
    progress("schema validation");
    let budget = opts.pick(
        opts.validation_time,
        Duration::from_secs(2),
        Duration::from_millis(200),
    );
    let schemas = ctx.setup.schemas.clone();
    let payloads = [
        (
            "1 KB message (path 2)".to_owned(),
            payload::Template::new(&ctx.run_id, 1024).payload,
        ),
        (
            "sample 01-dossier-submitted".to_owned(),
            payload::full_dossier(),
        ),
        (
            "64 KB message".to_owned(),
            payload::Template::new(&ctx.run_id, 65536).payload,
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
    runs.into_iter().map(Outcome::from).collect()
}

/// A large edXML package through the real `lienthong` binary (skipped when the binary is not built).
pub(crate) async fn edxml(ctx: &Ctx<'_>) -> Outcome<edxml::EdxmlRun> {
    let opts = ctx.opts;
    let bin = opts
        .lienthong_bin
        .clone()
        .unwrap_or_else(edxml::default_bin);
    let mb = opts.pick(opts.edxml_mb, 20, 1);
    if bin.is_file() {
        progress(&format!(
            "edXML: {mb} MB attachment through {}",
            bin.display()
        ));
        let repeat = opts.pick(opts.edxml_repeat, 2, 1);
        let o = Outcome::from(edxml::run(&ctx.setup, &bin, mb * 1_000_000, repeat).await);
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
    }
}

/// p50/p99 at a fixed offered load, raw lapin then path 2.
pub(crate) async fn latency(ctx: &Ctx<'_>) -> Vec<Latency> {
    let opts = ctx.opts;
    let duration = opts.pick(
        opts.latency_duration,
        Duration::from_secs(10),
        Duration::from_secs(2),
    );
    let n = (duration.as_secs_f64() * opts.rate() as f64)
        .round()
        .max(1.0) as u64;
    let tmpl = payload::Template::new(&ctx.run_id, 1024);
    let timeout = Duration::from_secs(60);
    let mut all = Vec::new();
    for path in [Via::Raw, Via::Amqp] {
        progress(&format!(
            "latency {path:?}: {} msg/s for {}",
            opts.rate(),
            humantime::format_duration(duration)
        ));
        let outcome = match path {
            Via::Raw => raw_latency(ctx, n, &tmpl, timeout).await,
            _ => bus::amqp_path(
                &ctx.setup,
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
        all.push(Latency {
            path,
            rate: opts.rate(),
            duration,
            bytes: tmpl.len(),
            outcome: Outcome::from(outcome),
        });
        tokio::time::sleep(ctx.settle).await;
    }
    all
}

/// Raw lapin at the offered load, every message's latency tracked.
async fn raw_latency(
    ctx: &Ctx<'_>,
    n: u64,
    tmpl: &payload::Template,
    timeout: Duration,
) -> Result<(Vec<u64>, Duration), String> {
    let opts = ctx.opts;
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
        &format!("{}.latency-raw", ctx.setup.run),
        &p,
        opts.prefetch,
        |s| tmpl.message(s),
        tracker.clone(),
        timeout,
    )
    .await
    .map(|x| (tracker.sorted_latencies(), x.published))
}

/// Path 2 at `--soak-rate` for `--soak`, this process's RSS sampled every 10 s; fails if a message is lost.
pub(crate) async fn soak(ctx: &Ctx<'_>) -> Outcome<bus::SoakRun> {
    let opts = ctx.opts;
    let duration = opts.soak.expect("wants(Soak) implies --soak");
    progress(&format!(
        "soak: path 2 at {} msg/s for {}",
        opts.soak_rate(),
        humantime::format_duration(duration)
    ));
    let tmpl = payload::Template::new(&ctx.run_id, 1024);
    let o = bus::soak(
        &ctx.setup,
        &tmpl,
        duration,
        opts.soak_rate(),
        Duration::from_secs(10),
    )
    .await;
    match o {
        Ok(s) if s.arrived < s.sent => Outcome::Failed(format!(
            "only {} of {} soak messages arrived",
            s.arrived, s.sent
        )),
        other => Outcome::from(other),
    }
}
