//! Assembles and runs the bus: broker, state store, ingress (HTTP, AMQP, sources), one delivery worker and
//! one dead-letter recorder per sink adapter (a holder per mailbox), the admin API and the plugin's own
//! listeners — and stops them in order on shutdown. The adapters started are kept in [`adapters`], so that a
//! reload ([`reload`]) can add, change and retire them.

mod adapters;
mod dlq;
mod meters;
mod ordered;
pub(crate) mod reload;
mod worker;

pub use reload::{Env, ReloadError, Reloader};

use crate::adapter::{AdapterFactory, Submit};
use crate::broker::Broker;
use crate::broker::topology::{self, Names};
use crate::config::{Config, ConfigErrors};
use crate::context::Context;
use crate::ingress::Ingress;
use crate::live::{Live, Snapshot};
use crate::plugin::{Plugin, PluginContext};
use crate::state::StateStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the bus could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("state store: {0}")]
    State(String),
    #[error("cannot listen on {addr} ({key}): {error}")]
    Listen {
        key: &'static str,
        addr: String,
        error: std::io::Error,
    },
}

/// A started bus. Drop does not stop it; call [`RunningBus::shutdown`].
pub struct RunningBus {
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The plugin's own listeners' addresses, by config key (`public.listen`).
    pub listeners: HashMap<&'static str, SocketAddr>,
    pub context: Arc<Context>,
    pub ingress: Arc<Ingress>,
    /// Reloads the config file (what SIGHUP and `POST /v1/reload` do).
    pub reloader: Reloader,
    stop_intake: CancellationToken,
    stop_work: CancellationToken,
    intake: adapters::Tasks,
    work: adapters::Tasks,
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

fn spawn(set: &adapters::Tasks, f: BoxFuture) {
    set.lock().unwrap_or_else(|p| p.into_inner()).spawn(f);
}

/// Checks the config completely (see [`crate::check`]), then starts everything with `plugin`'s hooks (the
/// domain; [`crate::plugin::NoPlugin`] for the bus alone). `env` reads environment variables (tokens,
/// adapters' secrets; `Arc::new(|k| std::env::var(k).ok())` in production). `factory` and `env` are kept
/// for reloads.
pub async fn start(
    config: Config,
    factory: Arc<dyn AdapterFactory>,
    plugin: Arc<dyn Plugin>,
    env: Env,
) -> Result<RunningBus, StartError> {
    let env_fn = |k: &str| env(k);
    let registry = crate::check::check_loaded(&config, factory.as_ref(), plugin.as_ref(), &env_fn)?;
    // Checked above already; built here, before anything starts, from the same function.
    let credentials =
        crate::check::credentials(&config, &env_fn).map_err(|problems| ConfigErrors {
            file: config.file.clone(),
            problems: config.origins.locate(problems),
        })?;
    // Checked above already; the TLS configs of the two listeners, built before anything starts.
    let tls = |section: &str, t: &Option<crate::config::TlsConfig>| {
        t.as_ref()
            .map(|t| crate::tls::server_config(t, section, &config))
            .transpose()
            .map_err(|problems| ConfigErrors {
                file: config.file.clone(),
                problems,
            })
    };
    let evidence = crate::state::EvidenceSetup::from_config(&config).map_err(|p| ConfigErrors {
        file: config.file.clone(),
        problems: vec![p],
    })?;
    let http_tls = tls("http", &config.http.tls)?;
    let admin_tls = tls("admin", &config.admin.tls)?;
    let config = Arc::new(config);
    let mut built = Vec::new();
    for spec in &config.adapters {
        let b = factory
            .build(spec, &config, &env_fn)
            .map_err(|problems| ConfigErrors {
                file: config.file.clone(),
                problems: config.origins.locate(problems),
            })?;
        built.push((spec.clone(), b));
    }
    let state_url = config.state_url();
    let state = StateStore::connect_with(&state_url, &config.bus.namespace, &plugin.tables())
        .await
        .map_err(|e| StartError::State(e.to_string()))?;
    let state = match evidence {
        Some(e) => state.with_evidence(e),
        None => state,
    };
    let names = Names::new(&config.bus.namespace);
    let tiers = topology::retry_tiers(&config);
    let ids = |f: fn(&crate::adapter::Built) -> bool| {
        let mut v: Vec<String> = built
            .iter()
            .filter(|(_, b)| f(b))
            .map(|(s, _)| s.id.clone())
            .collect();
        v.sort();
        v
    };
    let sink_ids = ids(|b| b.sink.is_some());
    let (ordered, _) = crate::order::ordered_adapters(&config);
    let mailbox_ids = ids(|b| b.mailbox.is_some());
    let topo = topology::build(&names, &sink_ids, &tiers, config.bus.delivery_limit)
        .with_mailboxes(&names, &mailbox_ids)
        .with_order(&names, &sink_ids, &ordered, config.bus.delivery_limit)
        .with_quorum_size(config.bus.quorum_size);
    let broker = Broker::start(
        config.bus.broker_url.urls(),
        topo,
        crate::broker::Tuning::from_config(&config.bus),
    );
    let registry = Arc::new(registry);
    let in_force = crate::config::ConfigInForce::new(config.clone());
    let mut hooks = plugin.start(&PluginContext {
        config: config.clone(),
        config_in_force: in_force.clone(),
        state: state.clone(),
        schemas: registry.clone(),
    });
    let mut adapters_built = Vec::new();
    for (spec, b) in built {
        // What a sink may ask about earlier deliveries (the plugin's answer; e.g. the portal adapter's
        // "has this dossier's insert been delivered?").
        if let (Some(d), Some(sink)) = (&hooks.deliveries, &b.sink) {
            sink.attach(d.clone());
        }
        let mailbox = b.mailbox.map(|m| {
            Arc::new(crate::mailbox::Mailbox::new(
                &spec.id,
                m,
                broker.clone(),
                state.clone(),
                names.clone(),
                config.bus.publish_timeout.get(),
            ))
        });
        adapters_built.push(adapters::BuiltAdapter {
            spec,
            sink: b.sink,
            source: b.source,
            lookup: b.lookup,
            mailbox,
        });
    }
    let mailboxes = Arc::new(crate::mailbox::Mailboxes::new(
        adapters_built.iter().filter_map(|a| a.mailbox.clone()),
    ));
    let snapshot = Snapshot::new(config.clone(), registry, credentials, mailboxes, &tiers);
    // The recorder must be in before the first gauge is set.
    crate::admin::metrics_handle();
    reload::announce(&snapshot.version, None);
    let ctx = Arc::new(Context {
        config: config.clone(),
        live: Live::following(snapshot, in_force),
        names,
        broker,
        state,
        queues: Default::default(),
        lookups: Default::default(),
        in_flight: Default::default(),
    });
    let ingress = Arc::new(Ingress::new(ctx.clone(), plugin.clone(), &hooks));

    let bind = |key: &'static str, addr: &str| {
        let addr = addr.to_owned();
        async move {
            crate::listener::bind(&addr)
                .await
                .map_err(|error| StartError::Listen { key, addr, error })
        }
    };
    // Each listener caps its connections; the process's descriptor limit must hold both caps and the rest.
    crate::listener::fds::ensure(&config);
    let http = bind("http.listen", &config.http.listen).await?;
    let admin = bind("admin.listen", &config.admin.listen).await?;
    let http_addr = http.local_addr().expect("bound");
    let admin_addr = admin.local_addr().expect("bound");
    let mut plugin_listeners = Vec::new();
    let mut listeners = HashMap::new();
    for l in std::mem::take(&mut hooks.listeners) {
        let tcp = bind(l.key, &l.addr).await?;
        listeners.insert(l.key, tcp.local_addr().expect("bound"));
        plugin_listeners.push((tcp, l));
    }

    let stop_intake = CancellationToken::new();
    let stop_work = CancellationToken::new();
    let intake: adapters::Tasks = Default::default();
    let work: adapters::Tasks = Default::default();

    // Workers first, so queued messages start moving as soon as the broker is up; sources with them.
    let submit: Arc<dyn Submit> = ingress.clone();
    let running = Arc::new(adapters::Adapters::new(
        ctx.clone(),
        submit,
        (intake.clone(), work.clone()),
        (stop_intake.clone(), stop_work.clone()),
    ));
    for a in adapters_built {
        running.start(a);
    }
    let reloader = Reloader::new(
        config.file.clone(),
        factory,
        plugin,
        env.clone(),
        ctx.clone(),
        running,
    );
    spawn(
        &intake,
        Box::pin(crate::listener::serve_tls(
            http,
            crate::ingress::http::router(ingress.clone()),
            config.http.listener_limits(),
            http_tls,
            stop_intake.clone(),
        )),
    );
    for (tcp, l) in plugin_listeners {
        let limits = crate::config::ListenerLimits {
            section: l.key.split('.').next().unwrap_or(l.key),
            header_read_timeout: l.request_timeout,
            body_read_timeout: l.request_timeout,
            idle_timeout: l.idle_timeout,
            max_connections: l.max_connections.max(1),
        };
        spawn(
            &intake,
            Box::pin(crate::listener::serve(
                tcp,
                l.app,
                limits,
                stop_intake.clone(),
            )),
        );
    }
    spawn(
        &intake,
        Box::pin(crate::ingress::amqp::run(
            ingress.clone(),
            stop_intake.clone(),
        )),
    );
    spawn(
        &work,
        Box::pin(crate::listener::serve_tls(
            admin,
            crate::admin::router(
                ctx.clone(),
                &env_fn,
                hooks.admin,
                hooks.ui,
                Some(reloader.clone()),
            ),
            config.admin.listener_limits(),
            admin_tls,
            stop_work.clone(),
        )),
    );
    {
        let ctx = ctx.clone();
        let stop = stop_work.clone();
        spawn(
            &work,
            Box::pin(async move {
                let retention = ctx.config.state.retention.get();
                loop {
                    match ctx.state.prune(retention).await {
                        Ok(n) if n > 0 => tracing::info!(
                            removed = n,
                            "Pruned expired idempotency and delivery records"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "Pruning the state store failed"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }),
        );
    }
    tracing::info!(
        http = %http_addr,
        admin = %admin_addr,
        broker = %config.bus.broker_url.redacted(),
        state = ctx.state.backend(),
        copy_layout = config.copy_layout(),
        "Liên Thông bus started"
    );
    Ok(RunningBus {
        http_addr,
        admin_addr,
        listeners,
        context: ctx,
        ingress,
        reloader,
        stop_intake,
        stop_work,
        intake,
        work,
    })
}

impl RunningBus {
    /// Reads the config file again and puts it in force if it passes every check (see [`Reloader`]).
    pub async fn reload(&self) -> Result<crate::live::Version, ReloadError> {
        self.reloader.reload().await
    }

    /// Graceful stop: refuse new input, let in-flight deliveries finish (bounded by `bus.shutdown_timeout`),
    /// hand anything unfinished back to the broker, close connections.
    pub async fn shutdown(self) {
        let grace = self.context.config.bus.shutdown_timeout.get();
        let take = |set: &adapters::Tasks| {
            std::mem::take(&mut *set.lock().unwrap_or_else(|p| p.into_inner()))
        };
        self.stop_intake.cancel();
        let mut intake = take(&self.intake);
        let _ = tokio::time::timeout(grace, async { while intake.join_next().await.is_some() {} })
            .await;
        intake.abort_all();
        self.stop_work.cancel();
        let mut work = take(&self.work);
        let _ =
            tokio::time::timeout(grace, async { while work.join_next().await.is_some() {} }).await;
        work.abort_all();
        self.context.broker.close().await;
        tracing::info!("Liên Thông bus stopped");
    }
}
