//! How the report names the paths and judges them: the floors of issue 16 (each path against its ceiling in
//! the same run) and the verdict words. Apart from `report.rs` so that the paired rounds (`rounds.rs`), which
//! the report calls, judge by the same rule without importing the report back.

use crate::{Throughput, Via};

pub(crate) fn via_name(v: Via) -> &'static str {
    match v {
        Via::Raw => "1 · raw lapin",
        Via::Relay => "1b · raw lapin, two quorum hops (relay)",
        Via::Amqp => "2 · AMQP ingress → bus → null sink",
        Via::Http => "3 · HTTP ingress → bus → webhook",
        Via::Bridge => "3b · HTTP → hand-written bridge (one quorum queue) → webhook",
    }
}

/// `pass` / `**FAIL**`, or why it is not judged.
pub(crate) fn verdict(smoke: bool, ok: Option<bool>) -> String {
    match (smoke, ok) {
        (true, _) => "n/a (smoke)".into(),
        (false, None) => "—".into(),
        (false, Some(true)) => "pass".into(),
        (false, Some(false)) => "**FAIL**".into(),
    }
}

/// The rate of path `via` at `size` among `runs` (one round of the throughput paths), when it ran and finished.
pub(crate) fn rate_in(runs: &[Throughput], via: Via, size: usize) -> Option<f64> {
    runs.iter()
        .find(|t| t.path == via && t.size == size)
        .and_then(Throughput::rate)
}

/// Throughput floor of a path (issue 16), as a fraction of its ceiling measured in the same run: path 2 against
/// the relay (the bus's two quorum hops with a relay that costs nothing), path 3 against the hand-written bridge.
pub(crate) fn floor(via: Via) -> Option<(f64, Via, &'static str)> {
    match via {
        Via::Amqp => Some((0.85, Via::Relay, "relay")),
        Via::Http => Some((0.8, Via::Bridge, "bridge")),
        _ => None,
    }
}
