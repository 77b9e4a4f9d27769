//! `lienthong run` and `lienthong check`.

use lienthong_adapters::Factory;
use std::path::Path;
use std::process::ExitCode;

pub fn check(config: &Path) -> ExitCode {
    match lienthong_bus::check::check(config, &Factory, &lienthong_domain::Province, &super::env) {
        Ok((c, registry)) => {
            println!(
                "{}: OK ({} agencies, {} adapters, {} routes; schemas for {})",
                config.display(),
                c.agencies.len(),
                c.adapters.len(),
                c.routes.len(),
                registry.types().join(", ")
            );
            for w in lienthong_bus::check::warnings(&c) {
                println!("warning: {}: {}", w.path, w.message);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(config: &Path) -> ExitCode {
    let loaded = match lienthong_bus::config::Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            // The same report as `check`: every problem, not only those of the file's structure.
            match lienthong_bus::check::check(
                config,
                &Factory,
                &lienthong_domain::Province,
                &super::env,
            ) {
                Err(all) => eprint!("{all}"),
                Ok(_) => eprint!("{e}"),
            }
            return ExitCode::FAILURE;
        }
    };
    let bus = match lienthong_bus::runtime::start(
        loaded,
        &Factory,
        std::sync::Arc::new(lienthong_domain::Province),
        &super::env,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            eprint!("{e}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("Shutdown requested; finishing in-flight deliveries");
    bus.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
