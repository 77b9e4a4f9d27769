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
            // The warnings too: a mistake elsewhere must not hide a certificate about to expire. What the file
            // holds is read around its problems, as for the report above.
            if let Ok((c, _)) = lienthong_bus::config::Config::load_all(config) {
                for w in lienthong_bus::check::warnings(&c) {
                    println!("warning: {}: {}", w.path, w.message);
                }
            }
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
    let signals = Signals::listen();
    let bus = match lienthong_bus::runtime::start(
        loaded,
        std::sync::Arc::new(Factory),
        std::sync::Arc::new(lienthong_domain::Province),
        std::sync::Arc::new(super::env),
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
    signals.serve(&bus).await;
    tracing::info!("Shutdown requested; finishing in-flight deliveries");
    bus.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
type Signal = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Signal = std::convert::Infallible;

/// SIGTERM and SIGHUP, listened for from before the bus starts: SIGHUP's default action would end the
/// process, and an operator may send it as soon as the bus answers.
struct Signals {
    term: Option<Signal>,
    hup: Option<Signal>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {
            term: None,
            hup: None,
        }
    }

    /// Waits for SIGTERM or Ctrl-C; each SIGHUP meanwhile reloads the config (the reloader logs the outcome:
    /// the hash in force, or every problem while the running config stays).
    async fn serve(self, bus: &lienthong_bus::RunningBus) {
        let Signals { mut term, mut hup } = self;
        loop {
            tokio::select! {
                _ = next(&mut term) => return,
                _ = tokio::signal::ctrl_c() => return,
                _ = next(&mut hup) => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = bus.reload().await;
                }
            }
        }
    }
}

/// The next delivery of `signal`; never, when it could not be listened for.
async fn next(signal: &mut Option<Signal>) {
    #[cfg(unix)]
    if let Some(s) = signal
        && s.recv().await.is_some()
    {
        return;
    }
    #[cfg(not(unix))]
    let _ = signal;
    std::future::pending::<()>().await
}
