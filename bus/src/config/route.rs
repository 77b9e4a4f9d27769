//! `[[routes]]` and their retry policy: which messages go to which adapters, and how a failed delivery is
//! tried again.

use super::HumanDuration;
use serde::{Deserialize, Serialize};

/// In a route's `deliver`: each receiver in the message's `to` (that the route's `to` admits) gets its copy
/// through its own `[[agencies]] inbox` adapter.
pub const TO_RECEIVERS: &str = "@to";

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
    /// On an ordered route (`order_by`) the waits happen in the bus, the failing message held unacknowledged
    /// while later messages of its key wait behind it (see `order_by`).
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Per-key order: a JSON pointer (RFC 6901) into the message's envelope naming its order key, e.g.
    /// `"/payload/case_id"`; also `/id`, `/type`, `/from`, `/to/0`, `/correlation_id` (`/payload/…` of a
    /// non-JSON message is answered by the domain's format). For each
    /// adapter of this route, messages with the same key are delivered in the order they were accepted,
    /// across retries, reconnects and bus processes: a later message waits while an earlier one of its key is
    /// being retried, and a dead-lettered one releases its key (its DLQ entry says so in header
    /// `lt-order-note`). Different keys flow in parallel. A message without a value there (or with an
    /// object, array or null there) is refused at ingress: 422 `schema_violation` naming the pointer. A key is
    /// a string or a number (its JSON text). Absent (the default): no order is kept.
    #[serde(default)]
    pub order_by: Option<String>,
    /// With `order_by`: how many partition queues (`<namespace>.order.<adapter>.<n>`, single active consumer
    /// each) an adapter's ordered messages are spread over by a hash of their key; keys of one partition
    /// share its prefetch window (`bus.prefetch`). Every ordered route reaching one adapter must give the
    /// same number. 1–1024; default 16. Changing it re-partitions keys: change it while the adapter's
    /// ordered queues are empty.
    #[serde(default)]
    pub order_partitions: Option<u16>,
}

/// Partition queues per ordered adapter when a route does not say.
pub const DEFAULT_ORDER_PARTITIONS: u16 = 16;

impl RouteConfig {
    /// The route's partition count when it is ordered.
    pub fn partitions(&self) -> u16 {
        self.order_partitions.unwrap_or(DEFAULT_ORDER_PARTITIONS)
    }

    /// Problems of `order_by` / `order_partitions`, at their key paths under `at` (`routes[2]`).
    pub fn order_problems(&self, at: &str) -> Vec<super::Problem> {
        let mut problems = Vec::new();
        if let Some(p) = &self.order_by
            && let Err(e) = super::order::check_pointer(p)
        {
            problems.push(super::Problem::new(format!("{at}.order_by"), e));
        }
        match (self.order_partitions, &self.order_by) {
            (Some(_), None) => problems.push(super::Problem::new(
                format!("{at}.order_partitions"),
                "only means something with `order_by`",
            )),
            (Some(n), Some(_)) if !(1..=1024).contains(&n) => problems.push(super::Problem::new(
                format!("{at}.order_partitions"),
                "must be 1 to 1024",
            )),
            _ => {}
        }
        problems
    }
}
