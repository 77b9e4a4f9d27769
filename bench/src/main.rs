//! `lienthong-bench`: see BENCHMARKS.md for what each path measures and how to rerun it.

use clap::Parser;
use lienthong_bench::{Opts, run, write_into};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The in-process bus runs with the allocator settings of the `lienthong` binary (before any thread).
    lienthong_bus::malloc::tune();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench_main())
}

async fn bench_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,lapin=off,sqlx=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = Opts::parse();
    let report = run(&opts).await;
    println!("{}", report.markdown);
    if let Some(path) = &opts.write {
        match write_into(path, &report.markdown) {
            Ok(()) => eprintln!("[lienthong-bench] wrote {}", path.display()),
            Err(e) => {
                eprintln!("[lienthong-bench] cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &report.failures {
            eprintln!("[lienthong-bench] FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}
