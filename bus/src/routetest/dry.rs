//! A bus that can answer "what would you do with this message" and can do nothing else.
//!
//! Route tests must run in CI: no RabbitMQ, no secrets, no listening port, no state left behind. So the
//! ingress is built as `runtime::start` builds it (the same config checks, credentials, schema registry,
//! plugin hooks and formats) but on the embedded broker with nothing declared (never published to: only
//! [`Ingress::dry_run`] is called), and on a scratch SQLite state store in a fresh temporary folder that is
//! deleted when the [`DryBus`] is dropped. The scratch store is what the plugin's formats read and write
//! (a document-flow plugin): the cases of one run share it in file order, so a test file can accept a
//! document and then check which statuses may follow; nothing reaches the config's real `[state]`.
//! Secrets are not needed: every variable a `*_env` key names reads as set (to a placeholder of its own).

use crate::adapter::Accepted;
use crate::adapter::{AdapterFactory, Submission};
use crate::broker::topology::{self, Names};
use crate::broker::{Broker, Tuning};
use crate::config::{Config, ConfigErrors, Problem};
use crate::context::Context;
use crate::error::ApiError;
use crate::ingress::Ingress;
use crate::plugin::{Plugin, PluginContext};
use crate::state::StateStore;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// An ingress with no broker connection and a scratch state store (removed on drop).
pub struct DryBus {
    ingress: Ingress,
    scratch: PathBuf,
}

/// The environment of a dry bus: each variable reads as a placeholder naming it, so distinct variables
/// hold distinct values (two agencies naming one variable are still refused, as `check` refuses them).
pub fn placeholder_env(key: &str) -> Option<String> {
    Some(format!("lienthong-test-placeholder:{key}"))
}

impl DryBus {
    /// Checks `config` as `lienthong check` does (with [`placeholder_env`]) and builds its ingress.
    pub async fn build(
        config: Config,
        factory: &dyn AdapterFactory,
        plugin: Arc<dyn Plugin>,
    ) -> Result<DryBus, ConfigErrors> {
        let env = &placeholder_env;
        let registry = crate::check::check_loaded(&config, factory, plugin.as_ref(), env)?;
        let fail = |message: String| ConfigErrors {
            file: config.file.clone(),
            problems: vec![Problem::new("", message)],
        };
        let credentials =
            crate::check::credentials(&config, env).map_err(|problems| ConfigErrors {
                file: config.file.clone(),
                problems: config.origins.locate(problems),
            })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let scratch =
            std::env::temp_dir().join(format!("lienthong-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| {
            fail(format!(
                "cannot make a scratch folder {}: {e}",
                scratch.display()
            ))
        })?;
        let url = format!("sqlite://{}?mode=rwc", scratch.join("state.db").display());
        let state =
            match StateStore::connect_with(&url, &config.bus.namespace, &plugin.tables()).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    return Err(fail(format!("scratch state store: {e}")));
                }
            };
        let config = Arc::new(config);
        let names = Names::new(&config.bus.namespace);
        let topo = topology::build(&names, &[], &BTreeSet::new(), config.bus.delivery_limit);
        let broker = Broker::start(
            &["memory://".to_owned()],
            topo,
            Tuning::from_config(&config.bus),
        );
        let registry = Arc::new(registry);
        let hooks = plugin.start(&PluginContext {
            config: config.clone(),
            config_in_force: crate::config::ConfigInForce::new(config.clone()),
            state: state.clone(),
            schemas: registry.clone(),
        });
        let live = crate::live::Live::new(crate::live::Snapshot::new(
            config.clone(),
            registry,
            credentials,
            Default::default(),
            &BTreeSet::new(),
        ));
        let ctx = Arc::new(Context {
            config,
            live,
            names,
            broker,
            state,
            queues: Default::default(),
            lookups: Default::default(),
            in_flight: Default::default(),
        });
        Ok(DryBus {
            ingress: Ingress::new(ctx, plugin, &hooks),
            scratch,
        })
    }

    /// [`Ingress::dry_run`] of this bus.
    pub async fn dry_run(&self, sub: Submission) -> Result<(Accepted, Vec<String>), ApiError> {
        self.ingress.dry_run(sub).await
    }
}

impl Drop for DryBus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
