//! Runs the benchmark's smoke mode in-process against the local RabbitMQ, so `cargo test --workspace`
//! exercises every path (tiny counts; floors are not judged). The edXML and procs phases need the `lienthong`
//! binary, which another package builds: they run only when `target/{debug,release}/lienthong` exists.

use lienthong_bench::{Opts, run};
use std::path::PathBuf;

/// `target/<profile>/lienthong` for the target dir this test binary lives in (`target/<profile>/deps/`).
fn lienthong_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let target = profile_dir.parent()?;
    [
        profile_dir.join("lienthong"),
        target.join("debug/lienthong"),
        target.join("release/lienthong"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_moves_every_message() {
    let mut opts = Opts::smoke();
    // The edXML and procs phases need the `lienthong` binary (procs also PostgreSQL, else it is skipped).
    match lienthong_bin() {
        Some(bin) => opts.lienthong_bin = Some(bin),
        None => {
            eprintln!(
                "skipping the edXML phase: no lienthong binary next to this test's target dir \
                 (run `cargo build --bin lienthong` first)"
            );
            opts.only = vec![
                lienthong_bench::Phase::Raw,
                lienthong_bench::Phase::Relay,
                lienthong_bench::Phase::Amqp,
                lienthong_bench::Phase::Http,
                lienthong_bench::Phase::Bridge,
                lienthong_bench::Phase::State,
                lienthong_bench::Phase::Validation,
                lienthong_bench::Phase::Latency,
            ];
        }
    }
    let started = std::time::Instant::now();
    let report = run(&opts).await;
    eprintln!("{}", report.markdown);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(report.markdown.contains("### Throughput"));
    eprintln!("smoke run took {:.1} s", started.elapsed().as_secs_f64());
}
