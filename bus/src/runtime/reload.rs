//! Hot reload, acknowledged: SIGHUP or `POST /v1/reload` reads the config file again (its includes and the
//! schemas too), checks all of it exactly as `lienthong check` does, and only then puts it in force.
//!
//! Why this order: a province reloads while messages flow. A config that fails any check changes nothing —
//! the running one stays, the problems (file and key path each) are logged and answered, and
//! `lienthong_config_reload_failures_total` counts it. One that passes is applied as one step for ingress: new
//! adapters' queues are declared and their workers started first, then the new [`Snapshot`] replaces the old
//! one, so every message accepted from then on is judged and routed by the new config, and every message
//! accepted before keeps the routes it was accepted with (they travel with each copy). Adapters the new config
//! removes keep delivering until their queue is empty ([`super::adapters`]).
//!
//! What a reload cannot change — `[bus]`, `[http]`, `[admin]`, `[state]` and the plugin's own sections, read
//! once at start-up — makes it fail, naming the section: the process must restart for those.

use super::adapters::{Adapters, BuiltAdapter};
use crate::adapter::AdapterFactory;
use crate::broker::topology;
use crate::config::{Config, Problem};
use crate::context::Context;
use crate::live::{Snapshot, Version};
use crate::mailbox::{Mailbox, Mailboxes};
use crate::plugin::Plugin;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The environment tokens and adapters' secrets are read from (the process environment in production).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Why a reload changed nothing: every problem, each with its file (when not the main one) and key path.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the new config was not loaded ({} problem(s)); the running config stays", problems.len())]
pub struct ReloadError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// Reloads the config of a running bus; cheap to clone. Reloads run one at a time.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    file: PathBuf,
    factory: Arc<dyn AdapterFactory>,
    plugin: Arc<dyn Plugin>,
    env: Env,
    ctx: Arc<Context>,
    adapters: Arc<Adapters>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub(super) fn new(
        file: PathBuf,
        factory: Arc<dyn AdapterFactory>,
        plugin: Arc<dyn Plugin>,
        env: Env,
        ctx: Arc<Context>,
        adapters: Arc<Adapters>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                file,
                factory,
                plugin,
                env,
                ctx,
                adapters,
                one_at_a_time: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Reads, checks and (if everything passes) puts the config file in force; answers the new version.
    pub async fn reload(&self) -> Result<Version, ReloadError> {
        let _one = self.inner.one_at_a_time.lock().await;
        match self.inner.apply().await {
            Ok(v) => Ok(v),
            Err(problems) => {
                metrics::counter!("lienthong_config_reload_failures_total").increment(1);
                for p in &problems {
                    tracing::warn!(file = ?p.file.as_deref().unwrap_or(&self.inner.file), path = %p.path, problem = %p.message, "Config reload refused");
                }
                tracing::error!(
                    problems = problems.len(),
                    hash = %self.inner.ctx.live.current().version.hash,
                    "Config reload failed; the running config stays"
                );
                Err(ReloadError {
                    file: self.inner.file.clone(),
                    problems,
                })
            }
        }
    }
}

/// Marks `version` as the config in force (`lienthong_config_info{hash} = 1`) and logs it; `previous`, if any,
/// goes to 0.
pub(super) fn announce(version: &Version, previous: Option<&Version>) {
    if let Some(p) = previous.filter(|p| p.hash != version.hash) {
        metrics::gauge!("lienthong_config_info", "hash" => p.hash.clone()).set(0.0);
    }
    metrics::gauge!("lienthong_config_info", "hash" => version.hash.clone()).set(1.0);
    // Shown as 0 from the start, so a rise can be read against it before the first failure.
    metrics::counter!("lienthong_config_reload_failures_total").increment(0);
    tracing::info!(hash = %version.hash, files = version.files.len(), "Config in force");
}

/// What a reload cannot change, compared with the config the process started with.
fn fixed_changes(running: &Config, new: &Config) -> Vec<Problem> {
    let json = |v: &dyn erased::Section| v.value();
    let mut out = Vec::new();
    let pairs: [(&str, &dyn erased::Section, &dyn erased::Section); 4] = [
        ("bus", &running.bus, &new.bus),
        ("http", &running.http, &new.http),
        ("admin", &running.admin, &new.admin),
        ("state", &running.state, &new.state),
    ];
    for (name, a, b) in pairs {
        if json(a) != json(b) {
            out.push(Problem::new(
                name,
                format!("[{name}] changed; a reload cannot change it: restart the bus"),
            ));
        }
    }
    // The evidence log's signer and the console's accounts are set up once, at start: taking a change and
    // not applying it would leave a removed operator able to log in, or evidence switched on recording nothing.
    if json(&running.evidence) != json(&new.evidence) {
        out.push(Problem::new(
            "evidence",
            "[evidence] changed; a reload cannot change it: restart the bus",
        ));
    }
    if json(&running.operators) != json(&new.operators) {
        out.push(Problem::new(
            "operators",
            "[[operators]] changed; a reload cannot change the console's accounts: restart the bus",
        ));
    }
    // Ordered routes have partition queues of their own, declared and consumed from the start.
    if crate::order::ordered_adapters(running).0 != crate::order::ordered_adapters(new).0 {
        out.push(Problem::new(
            "routes",
            "which adapters keep per-key order (`order_by`, `order_partitions`) changed; a reload cannot \
             change that: restart the bus",
        ));
    }
    let names: BTreeSet<&String> = running.sections.keys().chain(new.sections.keys()).collect();
    for name in names {
        if running.sections.get(name) != new.sections.get(name) {
            out.push(Problem::new(
                name.as_str(),
                format!("[{name}] changed; a reload cannot change it: restart the bus"),
            ));
        }
    }
    out
}

/// Comparing the core's sections through their serialized form.
mod erased {
    pub trait Section {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Section for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}

impl Inner {
    async fn apply(&self) -> Result<Version, Vec<Problem>> {
        let env = |k: &str| (self.env)(k);
        let (config, registry) = crate::check::check(
            &self.file,
            self.factory.as_ref(),
            self.plugin.as_ref(),
            &env,
        )
        .map_err(|e| e.problems)?;
        let ctx = &self.ctx;
        let mut problems = fixed_changes(&ctx.config, &config);
        let creds = match crate::check::credentials(&config, &env) {
            Ok(c) => Some(c),
            Err(ps) => {
                problems.extend(config.origins.locate(ps));
                None
            }
        };
        // Which adapters are new, which changed, which are gone.
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for spec in &config.adapters {
            let running = self.adapters.running(&spec.id);
            if running.as_ref().is_some_and(|(old, _)| {
                old.kind == spec.kind
                    && old.options == spec.options
                    && old.base_dir == spec.base_dir
            }) {
                continue;
            }
            let built = match self.factory.build(spec, &config, &env) {
                Ok(b) => b,
                Err(ps) => {
                    problems.extend(config.origins.locate(ps));
                    continue;
                }
            };
            let mailbox = built.mailbox.map(|m| {
                Arc::new(Mailbox::new(
                    &spec.id,
                    m,
                    ctx.broker.clone(),
                    ctx.state.clone(),
                    ctx.names.clone(),
                    ctx.config.bus.publish_timeout.get(),
                ))
            });
            let b = BuiltAdapter {
                spec: spec.clone(),
                sink: built.sink,
                source: built.source,
                lookup: built.lookup,
                mailbox,
            };
            match running {
                None => added.push(b),
                Some((_, kind)) if kind != b.kind() => problems.push(Problem::new(
                    format!("{}.type", spec.path()),
                    format!(
                        "adapter `{}` would change from a {kind} to a {}; a reload cannot do that: give it a new id, or restart the bus",
                        spec.id,
                        b.kind()
                    ),
                )),
                Some((_, "mailbox")) => problems.push(Problem::new(
                    spec.path(),
                    format!(
                        "the options of mailbox `{}` changed; a reload cannot change a running mailbox (its messages are held): give it a new id, or restart the bus",
                        spec.id
                    ),
                )),
                Some(_) => changed.push(b),
            }
        }
        let problems = config.origins.locate(problems);
        let (Some(creds), true) = (creds, problems.is_empty()) else {
            return Err(problems);
        };
        let keep: BTreeSet<&str> = config.adapters.iter().map(|a| a.id.as_str()).collect();
        let removed: Vec<String> = self
            .adapters
            .ids()
            .into_iter()
            .filter(|id| !keep.contains(id.as_str()))
            .collect();

        // Queues of new adapters and new retry tiers first: nothing may be routed where no queue is bound.
        let current = ctx.live.current();
        let mut tiers: BTreeSet<_> = current.retry_tiers.iter().copied().collect();
        tiers.extend(topology::retry_tiers(&config));
        let sinks: Vec<String> = added
            .iter()
            .filter(|a| a.sink.is_some())
            .map(|a| a.spec.id.clone())
            .collect();
        let boxes: Vec<String> = added
            .iter()
            .filter(|a| a.mailbox.is_some())
            .map(|a| a.spec.id.clone())
            .collect();
        let more = topology::build(&ctx.names, &sinks, &tiers, ctx.config.bus.delivery_limit)
            .with_mailboxes(&ctx.names, &boxes)
            .with_quorum_size(ctx.config.bus.quorum_size);
        if let Err(e) = ctx.broker.declare_more(&more).await {
            return Err(vec![Problem::new(
                "adapters",
                format!("could not declare the new adapters' queues on the broker: {e}"),
            )]);
        }

        // Mailboxes in force: the new config's, and removed ones still holding messages for their agency.
        let mut mailboxes: Vec<Arc<Mailbox>> = self
            .adapters
            .mailboxes()
            .into_iter()
            .filter(|m| keep.contains(m.adapter.as_str()) || m.held() > 0)
            .collect();
        mailboxes.extend(added.iter().filter_map(|a| a.mailbox.clone()));
        let mut by_agency: Vec<Arc<Mailbox>> = Vec::new();
        for m in mailboxes.into_iter().rev() {
            // A new mailbox of an agency wins over a removed one still draining.
            if !by_agency.iter().any(|b| b.spec.agency == m.spec.agency) {
                by_agency.push(m);
            }
        }

        for a in added {
            self.adapters.start(a);
        }
        for a in changed {
            self.adapters.replace(a);
        }
        let next = Snapshot::new(
            Arc::new(config),
            Arc::new(registry),
            creds,
            Arc::new(Mailboxes::new(by_agency)),
            &tiers,
        );
        let version = next.version.clone();
        let old = ctx.live.replace(next);
        drop(current);
        announce(&version, Some(&old.version));
        let settled = self.adapters.settled(old);
        for id in removed {
            tracing::info!(adapter = %id, "Adapter removed by the reload; it stops once its queue is empty");
            self.adapters.retire(&id, settled.clone());
        }
        Ok(version)
    }
}
