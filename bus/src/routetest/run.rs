//! Running one case and saying, in one line, how the answer differs from what was expected.

use super::{Case, DryBus, Expect};
use crate::ingress::submission;

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// `expected …, got …`.
    Fail(String),
}

/// Submits `case` to `bus` (dry) and compares the answer with its expectation.
pub async fn run_case(bus: &DryBus, case: &Case) -> Outcome {
    let sub = submission(&case.as_agency, case.input.content, case.input.body.clone());
    let got = bus.dry_run(sub).await;
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let expected = describe_expect(&case.expect);
    match (&case.expect, got) {
        (Expect::Accepted { routes, adapters }, Ok((acc, got_adapters))) => {
            if sorted(routes) == sorted(&acc.routes) && sorted(adapters) == sorted(&got_adapters) {
                Outcome::Pass
            } else {
                Outcome::Fail(format!(
                    "expected {expected}, got 202 routes {:?} adapters {:?}",
                    acc.routes, got_adapters
                ))
            }
        }
        (Expect::Refused { .. }, Ok((acc, got_adapters))) => Outcome::Fail(format!(
            "expected {expected}, got 202 routes {:?} adapters {:?}",
            acc.routes, got_adapters
        )),
        (expect, Err(e)) => {
            let got_paths: Vec<&str> = e.details.iter().map(|d| d.path.as_str()).collect();
            let got = format!(
                "{} {} ({}){}",
                e.status(),
                e.code,
                e.message,
                if got_paths.is_empty() {
                    String::new()
                } else {
                    format!(" at {got_paths:?}")
                }
            );
            match expect {
                Expect::Refused {
                    status,
                    code,
                    paths,
                } if *status == e.status()
                    && code == e.code.as_str()
                    && paths.iter().all(|p| got_paths.contains(&p.as_str())) =>
                {
                    Outcome::Pass
                }
                _ => Outcome::Fail(format!("expected {expected}, got {got}")),
            }
        }
    }
}

fn describe_expect(e: &Expect) -> String {
    match e {
        Expect::Accepted { routes, adapters } => {
            format!("202 routes {routes:?} adapters {adapters:?}")
        }
        Expect::Refused {
            status,
            code,
            paths,
        } if paths.is_empty() => format!("{status} {code}"),
        Expect::Refused {
            status,
            code,
            paths,
        } => format!("{status} {code} at {paths:?}"),
    }
}
