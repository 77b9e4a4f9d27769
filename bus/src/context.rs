//! What the running bus's parts share, built once by [`crate::runtime::start`].
//!
//! It sits low in the core and names no component, so ingress, the admin API and the runtime depend on it
//! and not on each other (the runtime assembles them; none of them imports the runtime). Components take the
//! parts they need: the delivery worker gets a [`crate::runtime`]-built view of its own, DLQ governance gets
//! [`crate::dlq::Ops`]; ingress and the admin API, which use most of it, hold the whole.

use crate::adapter::{Lookup, Sink};
use crate::broker::Broker;
use crate::broker::topology::Names;
use crate::config::Config;
use crate::router::Router;
use crate::schema::SchemaRegistry;
use crate::state::StateStore;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Messages being delivered by this process right now, by (adapter, sender, id), so two copies of one message
/// (a client's resubmission after a crash) are never delivered concurrently.
pub type InFlight = Arc<Mutex<HashSet<(String, String, String)>>>;

pub struct Context {
    pub config: Arc<Config>,
    pub names: Names,
    pub registry: Arc<SchemaRegistry>,
    pub router: Router,
    pub broker: Broker,
    pub state: StateStore,
    pub sinks: HashMap<String, Arc<dyn Sink>>,
    pub lookups: HashMap<String, Arc<dyn Lookup>>,
    /// Pull mailboxes, by the agency that reads each.
    pub mailboxes: Arc<crate::mailbox::Mailboxes>,
    /// Sorted distinct retry delays (one TTL tier each).
    pub retry_tiers: Vec<Duration>,
    pub in_flight: InFlight,
}

impl Context {
    /// What DLQ replay and purge need.
    pub fn dlq_ops(&self) -> crate::dlq::Ops<'_> {
        crate::dlq::Ops {
            broker: &self.broker,
            state: &self.state,
            names: &self.names,
            publish_timeout: self.config.bus.publish_timeout.get(),
        }
    }
}
