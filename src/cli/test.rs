//! `lienthong test --config F [FILE…]`: route tests, run through the real ingress pipeline with no broker,
//! no network and no state written (see `lienthong_bus::routetest`).
//!
//! Exit status: 0 every case passed, 1 some case failed, 2 the config or a test file is invalid (each
//! problem printed with its file and key path) or there is no test to run.

use lienthong_adapters::Factory;
use lienthong_bus::config::Config;
use lienthong_bus::routetest::{self, DryBus, Outcome};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn test(config: &Path, files: &[PathBuf]) -> ExitCode {
    let invalid = ExitCode::from(2);
    let loaded = match Config::load_all(config) {
        Ok((c, problems)) if problems.is_empty() => c,
        _ => {
            // The same report as `check`: every problem, not only those of the file's structure.
            if let Err(e) = lienthong_bus::check::check(
                config,
                &Factory,
                &lienthong_domain::Province,
                &routetest::dry::placeholder_env,
            ) {
                eprint!("{e}");
            }
            return invalid;
        }
    };
    let files = if files.is_empty() {
        match routetest::discover(config) {
            Ok(f) => f,
            Err(e) => {
                eprint!("{e}");
                return invalid;
            }
        }
    } else {
        files.to_vec()
    };
    if files.is_empty() {
        eprintln!(
            "{}: no *.test.toml beside this config, and none named",
            config.display()
        );
        return invalid;
    }
    let mut tests = Vec::new();
    let mut bad = false;
    for f in &files {
        match routetest::load(f, &loaded) {
            Ok(t) => tests.push(t),
            Err(e) => {
                eprint!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        return invalid;
    }
    let bus = match DryBus::build(loaded, &Factory, Arc::new(lienthong_domain::Province)).await {
        Ok(b) => b,
        Err(e) => {
            eprint!("{e}");
            return invalid;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for t in &tests {
        for case in &t.cases {
            match routetest::run_case(&bus, case).await {
                Outcome::Pass => {
                    passed += 1;
                    println!("ok {}", case.name);
                }
                Outcome::Fail(why) => {
                    failed += 1;
                    println!("FAIL {}: {why}", case.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
