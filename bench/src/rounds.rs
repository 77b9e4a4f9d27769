//! "Paired rounds": each floored path against its ceiling, round by round (`--rounds N`).
//!
//! Why: on the 2-core machines this bench runs on, one build's throughput spreads about ±10 % from run to run
//! (BENCHMARKS.md, "a fifth look"), so a single run's path ÷ ceiling can miss issue 16's floors, or pass them,
//! by chance. A path and its ceiling measured in the same round share the machine's mood of the moment; the
//! mean of the per-round ratios, with its standard error, is what a verdict can stand on.

use crate::judge::{floor, rate_in, verdict, via_name};
use crate::{Throughput, Via, size_label};
use std::fmt::Write as _;

/// Mean and standard error of the mean (None for the error with fewer than two values).
pub(crate) fn mean_and_error(xs: &[f64]) -> Option<(f64, Option<f64>)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let error = (xs.len() > 1).then(|| {
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (var / n).sqrt()
    });
    Some((mean, error))
}

/// Path ÷ ceiling of `path` at `size` in one round, when both ran.
fn ratio_in(round: &[Throughput], path: Via, ceiling: Via, size: usize) -> Option<f64> {
    Some(rate_in(round, path, size)? / rate_in(round, ceiling, size)?)
}

/// Appends the section when more than one round ran.
pub(crate) fn section(s: &mut String, rounds: &[&[Throughput]], smoke: bool) {
    if rounds.len() < 2 {
        return;
    }
    let _ = writeln!(
        s,
        "\n### Paired rounds ({} rounds: each path ÷ its ceiling in the same round)\n",
        rounds.len()
    );
    let _ = writeln!(
        s,
        "| path | payload | per round | mean ± standard error | floor | verdict on the mean |"
    );
    let _ = writeln!(s, "|---|---|---|--:|---|---|");
    for t in rounds[0] {
        let Some((at_least, ceiling, name)) = floor(t.path) else {
            continue;
        };
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|round| ratio_in(round, t.path, ceiling, t.size))
            .collect();
        let Some((mean, error)) = mean_and_error(&ratios) else {
            continue;
        };
        let verdict = verdict(smoke, Some(mean >= at_least));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {mean:.2}{} | ≥ {at_least}× {name} | {verdict} |",
            via_name(t.path),
            size_label(t.size),
            ratios
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            error.map(|e| format!(" ± {e:.2}")).unwrap_or_default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_standard_error_of_the_mean() {
        let (m, e) = mean_and_error(&[0.5, 0.7, 0.6]).unwrap();
        assert!((m - 0.6).abs() < 1e-12);
        // sample sd 0.1, n 3: 0.1 / sqrt(3)
        assert!((e.unwrap() - 0.1 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_and_error(&[0.8]), Some((0.8, None)));
        assert_eq!(mean_and_error(&[]), None);
    }
}
