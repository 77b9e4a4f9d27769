//! Assembles and runs the bus: broker, state store, ingress (HTTP, AMQP, sources), one delivery worker and
//! one dead-letter recorder per sink adapter, the admin API and the plugin's own listeners — and stops them in
//! order on shutdown.

mod dlq;
mod ordered;
mod worker;

use crate::adapter::{AdapterFactory, Source, Submit};
use crate::broker::Broker;
use crate::broker::topology::{self, Names};
use crate::config::{Config, ConfigErrors};
use crate::context::Context;
use crate::ingress::Ingress;
use crate::plugin::{Plugin, PluginContext};
use crate::router::Router;
use crate::state::StateStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
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
    stop_intake: CancellationToken,
    stop_work: CancellationToken,
    intake: JoinSet<()>,
    work: JoinSet<()>,
}

/// Checks the config completely (see [`crate::check`]), then starts everything with `plugin`'s hooks (the
/// domain; [`crate::plugin::NoPlugin`] for the bus alone). `env` reads environment variables (tokens); pass
/// `|k| std::env::var(k).ok()` in production.
pub async fn start(
    config: Config,
    factory: &dyn AdapterFactory,
    plugin: Arc<dyn Plugin>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RunningBus, StartError> {
    let registry = crate::check::check_loaded(&config, factory, plugin.as_ref(), env)?;
    // Checked above already; built here, before anything starts, from the same function.
    let credentials = crate::check::credentials(&config, env).map_err(|problems| ConfigErrors {
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
    let http_tls = tls("http", &config.http.tls)?;
    let admin_tls = tls("admin", &config.admin.tls)?;
    let config = Arc::new(config);
    let mut sinks = HashMap::new();
    let mut lookups = HashMap::new();
    let mut sources: Vec<(String, Box<dyn Source>)> = Vec::new();
    for spec in &config.adapters {
        let built = factory
            .build(spec, &config, env)
            .map_err(|problems| ConfigErrors {
                file: config.file.clone(),
                problems: config.origins.locate(problems),
            })?;
        if let Some(s) = built.sink {
            sinks.insert(spec.id.clone(), s);
        }
        if let Some(l) = built.lookup {
            lookups.insert(spec.id.clone(), l);
        }
        if let Some(s) = built.source {
            sources.push((spec.id.clone(), s));
        }
    }
    let state_url = config.state_url();
    let state = StateStore::connect_with(&state_url, &config.bus.namespace, &plugin.tables())
        .await
        .map_err(|e| StartError::State(e.to_string()))?;
    let names = Names::new(&config.bus.namespace);
    let tiers = topology::retry_tiers(&config);
    let mut sink_ids: Vec<String> = sinks.keys().cloned().collect();
    sink_ids.sort();
    let (ordered, _) = crate::order::ordered_adapters(&config);
    let topo = topology::build(&names, &sink_ids, &tiers, config.bus.delivery_limit)
        .with_order(&names, &sink_ids, &ordered, config.bus.delivery_limit)
        .with_quorum_size(config.bus.quorum_size);
    let broker = Broker::start(
        config.bus.broker_url.urls(),
        topo,
        crate::broker::Tuning::from_config(&config.bus),
    );
    let registry = Arc::new(registry);
    let mut hooks = plugin.start(&PluginContext {
        config: config.clone(),
        state: state.clone(),
        schemas: registry.clone(),
    });
    if let Some(d) = &hooks.deliveries {
        for sink in sinks.values() {
            sink.attach(d.clone());
        }
    }
    let ctx = Arc::new(Context {
        router: Router::new(&config.routes)
            .with_party_codes(&config.agencies)
            .with_inboxes(config.inboxes()),
        config: config.clone(),
        names,
        registry,
        broker,
        state,
        sinks,
        lookups,
        retry_tiers: tiers.into_iter().collect(),
        in_flight: Default::default(),
    });
    let ingress = Arc::new(Ingress::new(ctx.clone(), credentials, plugin, &hooks));

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
    let mut intake = JoinSet::new();
    let mut work = JoinSet::new();

    // Workers first, so queued messages start moving as soon as the broker is up.
    let grace = config.bus.shutdown_timeout.get();
    for (id, sink) in &ctx.sinks {
        let w = worker::Worker {
            adapter: id.clone(),
            sink: sink.clone(),
            broker: ctx.broker.clone(),
            state: ctx.state.clone(),
            names: ctx.names.clone(),
            router: ctx.router.clone(),
            tiers: ctx.retry_tiers.clone(),
            in_flight: ctx.in_flight.clone(),
            prefetch: config.bus.prefetch,
            publish_timeout: config.bus.publish_timeout.get(),
            grace,
            partitions: ordered.get(id).copied().unwrap_or(0),
        };
        work.spawn(worker::run(w, stop_work.clone()));
        let r = dlq::Recorder {
            broker: ctx.broker.clone(),
            state: ctx.state.clone(),
            queue: ctx.names.dead_queue(id),
            adapter: id.clone(),
            grace,
        };
        work.spawn(dlq::record(r, stop_work.clone()));
    }
    intake.spawn(crate::listener::serve_tls(
        http,
        crate::ingress::http::router(ingress.clone()),
        config.http.listener_limits(),
        http_tls,
        stop_intake.clone(),
    ));
    for (tcp, l) in plugin_listeners {
        let limits = crate::config::ListenerLimits {
            section: l.key.split('.').next().unwrap_or(l.key),
            header_read_timeout: l.request_timeout,
            body_read_timeout: l.request_timeout,
            idle_timeout: l.idle_timeout,
            max_connections: l.max_connections.max(1),
        };
        intake.spawn(crate::listener::serve(
            tcp,
            l.app,
            limits,
            stop_intake.clone(),
        ));
    }
    intake.spawn(crate::ingress::amqp::run(
        ingress.clone(),
        stop_intake.clone(),
    ));
    for (id, source) in sources {
        let submit: Arc<dyn Submit> = ingress.clone();
        let stop = stop_intake.clone();
        intake.spawn(async move {
            if let Err(e) = source.run(submit, stop).await {
                tracing::error!(adapter = %id, error = %e, "Source adapter stopped with an error");
            }
        });
    }
    work.spawn(crate::listener::serve_tls(
        admin,
        crate::admin::router(ctx.clone(), env, hooks.admin),
        config.admin.listener_limits(),
        admin_tls,
        stop_work.clone(),
    ));
    {
        let ctx = ctx.clone();
        let stop = stop_work.clone();
        work.spawn(async move {
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
        });
    }
    tracing::info!(
        http = %http_addr,
        admin = %admin_addr,
        broker = %config.bus.broker_url.redacted(),
        state = ctx.state.backend(),
        "Liên Thông bus started"
    );
    Ok(RunningBus {
        http_addr,
        admin_addr,
        listeners,
        context: ctx,
        ingress,
        stop_intake,
        stop_work,
        intake,
        work,
    })
}

impl RunningBus {
    /// Graceful stop: refuse new input, let in-flight deliveries finish (bounded by `bus.shutdown_timeout`),
    /// hand anything unfinished back to the broker, close connections.
    pub async fn shutdown(mut self) {
        let grace = self.context.config.bus.shutdown_timeout.get();
        self.stop_intake.cancel();
        let _ = tokio::time::timeout(grace, async {
            while self.intake.join_next().await.is_some() {}
        })
        .await;
        self.intake.abort_all();
        self.stop_work.cancel();
        let _ = tokio::time::timeout(grace, async {
            while self.work.join_next().await.is_some() {}
        })
        .await;
        self.work.abort_all();
        self.context.broker.close().await;
        tracing::info!("Liên Thông bus stopped");
    }
}
