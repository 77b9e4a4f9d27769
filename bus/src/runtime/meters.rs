//! The metric handles of one adapter's delivery worker, made once when it starts.
//!
//! Why: `metrics::counter!(name, "adapter" => id.clone())` builds its key on every call (a copy of the id, a
//! label vector) and looks it up in the recorder; a delivered message made five such calls. A handle made once
//! records with neither (`crate::meters`). The series and their labels are those of README "Metrics".

use crate::meters::Counters;
use metrics::{Counter, Histogram};

/// Handles labelled with the worker's adapter, and `lienthong_route_messages_total` by route and outcome.
pub(super) struct Meters {
    adapter: String,
    pub delivered: Counter,
    pub seconds: Histogram,
    pub deduplicated: Counter,
    pub retries: Counter,
    pub panics: Counter,
    pub route_delivered: Counters,
    pub route_retried: Counters,
    pub route_dead_lettered: Counters,
}

impl Meters {
    /// Registers the adapter's series with the process's recorder (installed before any worker starts).
    pub fn new(adapter: &str) -> Self {
        let a = adapter.to_owned();
        let route = |outcome| {
            Counters::new("lienthong_route_messages_total", "route").with("outcome", outcome)
        };
        Meters {
            delivered: metrics::counter!("lienthong_delivered_total", "adapter" => a.clone()),
            seconds: metrics::histogram!("lienthong_delivery_seconds", "adapter" => a.clone()),
            deduplicated: metrics::counter!("lienthong_deliveries_deduplicated_total", "adapter" => a.clone()),
            retries: metrics::counter!("lienthong_delivery_retries_total", "adapter" => a.clone()),
            panics: metrics::counter!("lienthong_adapter_panics_total", "adapter" => a.clone()),
            adapter: a,
            route_delivered: route("delivered"),
            route_retried: route("retried"),
            route_dead_lettered: route("dead_lettered"),
        }
    }

    /// `lienthong_dead_lettered_total` for `reason` (rare: made on each use).
    pub fn dead_lettered(&self, reason: &'static str) -> Counter {
        metrics::counter!("lienthong_dead_lettered_total", "adapter" => self.adapter.clone(), "reason" => reason)
    }
}
