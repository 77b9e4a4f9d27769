//! Agencies' names by code, as the config in force has them.
//!
//! Why not read once at start: a reload that renames an agency or adds one takes effect for everything else
//! (rights, routes, inboxes), and the dossier views, the on-time rates and the citizens' lookup show names; they
//! must not go on showing the old ones until a restart. The map is rebuilt only when the config in force is a
//! new one.

use lienthong_bus::config::Config;
use lienthong_bus::config::ConfigInForce;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Code → configured name (`None` when the agency has no name), of the config in force.
pub type Names = BTreeMap<String, Option<String>>;

/// The names last made, with the config they were made of.
type Made = Option<(Arc<Config>, Arc<Names>)>;

#[derive(Clone)]
pub struct AgencyNames {
    config: ConfigInForce,
    made: Arc<Mutex<Made>>,
}

impl AgencyNames {
    pub fn new(config: ConfigInForce) -> Self {
        AgencyNames {
            config,
            made: Arc::new(Mutex::new(None)),
        }
    }

    /// Every configured agency's code and name.
    pub fn all(&self) -> Arc<Names> {
        let now = self.config.get();
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((from, names)) = &*made
            && Arc::ptr_eq(from, &now)
        {
            return names.clone();
        }
        let names: Arc<Names> = Arc::new(
            now.agencies
                .iter()
                .map(|a| {
                    let name = Some(a.name.trim().to_owned()).filter(|n| !n.is_empty());
                    (a.code.clone(), name)
                })
                .collect(),
        );
        *made = Some((now, names.clone()));
        names
    }

    /// The agency's configured `code` for any of its codes (`qd20_code`, `other_codes`); `code` itself when no
    /// configured agency has it.
    pub fn canonical(&self, code: &str) -> String {
        self.config.get().canonical_code(code).to_owned()
    }

    /// The configured name of agency `code`.
    pub fn get(&self, code: &str) -> Option<String> {
        self.all().get(code).cloned().flatten()
    }
}
