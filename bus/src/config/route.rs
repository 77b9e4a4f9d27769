//! `[[routes]]` and their retry policy: which messages go to which adapters, and how a failed delivery is
//! tried again.

use super::HumanDuration;
use serde::{Deserialize, Serialize};

/// Retry policy of a route: how often and how far apart a failed delivery is tried again.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first failed attempt (so at most `attempts + 1` deliveries). Default 5. 0 = no retry.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before each retry; retry *n* waits `backoff[n-1]`, the last entry repeats.
    /// Default `["1s", "10s", "1m", "10m", "1h"]`. The wait happens in RabbitMQ (a TTL queue per distinct delay).
    #[serde(default = "default_backoff")]
    pub backoff: Vec<HumanDuration>,
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> Vec<HumanDuration> {
    [1, 10, 60, 600, 3600]
        .into_iter()
        .map(HumanDuration::secs)
        .collect()
}
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            backoff: default_backoff(),
        }
    }
}
impl RetryPolicy {
    /// Delay before retry number `n` (1-based), or None when the budget is spent.
    pub fn delay_before_retry(&self, n: u32) -> Option<std::time::Duration> {
        if n == 0 || n > self.attempts {
            return None;
        }
        let i = (n as usize - 1).min(self.backoff.len().saturating_sub(1));
        Some(self.backoff.get(i).map(|d| d.0).unwrap_or_default())
    }
}

/// `[[routes]]`: which messages go to which adapters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Position in `[[routes]]` (for key paths), set by the loader.
    #[serde(skip)]
    pub index: usize,
    /// Unique route id; appears in 202 answers, headers, metrics and the DLQ.
    pub id: String,
    /// Message types this route carries (e.g. `dossier.submitted`). Required; each must have a schema.
    pub types: Vec<String>,
    /// Sender agency codes; absent = any sender. An agency may be named by any of its codes (`code`,
    /// `qd20_code`, `other_codes`).
    #[serde(default)]
    pub from: Option<Vec<String>>,
    /// Matches when the message's receivers include one of these; absent = any. A receiver may be any code the
    /// domain accepts for one (with the provincial domain, any code of the national network: `G12`,
    /// `H37.02.02`, a tax code); a configured agency named here by one of its codes matches the others too.
    /// Every receiver of a message must be served by some matching route, or it is refused (`no_route`).
    #[serde(default)]
    pub to: Option<Vec<String>>,
    /// Adapter ids to deliver to; one copy per adapter (fan-out). `"@to"` stands for each receiver in the
    /// message's `to` (that this route's `to` admits), delivered through its `[[agencies]] inbox`; an
    /// agency this route can reach without an inbox is a `check` error (with no `to` here, every agency
    /// can be reached).
    pub deliver: Vec<String>,
    /// Retry policy for deliveries made by this route. Default `{ attempts = 5, backoff = ["1s","10s","1m","10m","1h"] }`.
    #[serde(default)]
    pub retry: RetryPolicy,
}
