//! The config in force, for a plugin: it starts before the first snapshot exists (`crate::live`), and what it
//! shows from the config (an agency's name) must follow reloads like everything else
//! (`PluginContext::config_in_force`). Here, below both, so neither imports the other.

use super::Config;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct ConfigInForce(Arc<RwLock<Arc<Config>>>);

impl ConfigInForce {
    pub fn new(config: Arc<Config>) -> Self {
        ConfigInForce(Arc::new(RwLock::new(config)))
    }

    /// The config in force now.
    pub fn get(&self) -> Arc<Config> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `config` in force (the snapshot holder, `crate::live::Live`, on every reload).
    pub(crate) fn set(&self, config: Arc<Config>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = config;
    }
}
