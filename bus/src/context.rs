//! What the running bus's parts share, built once by [`crate::runtime::start`].
//!
//! It sits low in the core and names no component, so ingress, the admin API and the runtime depend on it
//! and not on each other (the runtime assembles them; none of them imports the runtime). Components take the
//! parts they need: the delivery worker gets a [`crate::runtime`]-built view of its own, DLQ governance gets
//! [`crate::dlq::Ops`]; ingress and the admin API, which use most of it, hold the whole.

use crate::adapter::Lookup;
use crate::broker::Broker;
use crate::broker::topology::Names;
use crate::config::Config;
use crate::live::Live;
use crate::state::StateStore;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// Messages being delivered by this process right now, by (adapter, sender, id), so two copies of one message
/// (a client's resubmission after a crash) are never delivered concurrently.
pub type InFlight = Arc<Mutex<HashSet<(String, String, String)>>>;

pub struct Context {
    /// The config the process started with: what a reload cannot change (`[bus]`, `[http]`, `[admin]`,
    /// `[state]`, a plugin's sections). Agencies, rights, routes, adapters and schemas in force are in
    /// [`Context::live`].
    pub config: Arc<Config>,
    /// The config in force, swapped whole by a reload.
    pub live: Live,
    pub names: Names,
    pub broker: Broker,
    pub state: StateStore,
    /// Adapters with a queue the bus has declared, in force or draining after a reload removed them: sink
    /// and mailbox ids (for the admin API's topology and for tearing down a test's namespace).
    pub queues: Arc<RwLock<AdapterQueues>>,
    pub lookups: Arc<RwLock<HashMap<String, Arc<dyn Lookup>>>>,
    pub in_flight: InFlight,
}

/// The adapters whose queues are declared (see [`Context::queues`]).
#[derive(Debug, Clone, Default)]
pub struct AdapterQueues {
    /// Adapters a delivery worker consumes for.
    pub sinks: Vec<String>,
    /// Pull mailboxes.
    pub mailboxes: Vec<String>,
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
