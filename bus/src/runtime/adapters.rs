//! The adapters the running bus has started, by id, and what starting, changing and removing one means —
//! at start-up and when a reload adds, changes or removes adapters.
//!
//! Why one place: a reload must never drop what an adapter holds. So an added adapter's queues are declared
//! before any message can be routed to it; a changed sink gets its new options in the running worker (the
//! queue and the messages in it stay); a changed source is stopped and the new one started after it; and a
//! removed sink or mailbox keeps running until no message accepted under the old config is still being
//! published and its queue is empty — only then does it stop. Its dead-letter recorder runs until shutdown.

use super::{dlq, worker};
use crate::adapter::{Lookup, Sink, Source, Submit};
use crate::config::AdapterSpec;
use crate::context::Context;
use crate::live::Snapshot;
use crate::mailbox::Mailbox;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(super) type Tasks = Arc<Mutex<JoinSet<()>>>;

/// What runs for one adapter.
pub(super) enum Running {
    Sink {
        slot: worker::SinkSlot,
        retire: CancellationToken,
    },
    Mailbox {
        mailbox: Arc<Mailbox>,
        retire: CancellationToken,
    },
    Source {
        stop: CancellationToken,
        /// Becomes true when the source task has ended.
        done: tokio::sync::watch::Receiver<bool>,
    },
    /// A lookup only, or nothing the runtime runs.
    Passive,
}

struct Entry {
    spec: AdapterSpec,
    running: Running,
}

/// The running adapters.
pub(crate) struct Adapters {
    ctx: Arc<Context>,
    submit: Arc<dyn Submit>,
    intake: Tasks,
    work: Tasks,
    stop_intake: CancellationToken,
    stop_work: CancellationToken,
    grace: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// One adapter as its factory built it.
pub(super) struct BuiltAdapter {
    pub spec: AdapterSpec,
    pub sink: Option<Arc<dyn Sink>>,
    pub source: Option<Box<dyn Source>>,
    pub lookup: Option<Arc<dyn Lookup>>,
    pub mailbox: Option<Arc<Mailbox>>,
}

impl BuiltAdapter {
    /// What kind of thing runs for it (a reload may not turn one kind into another).
    pub fn kind(&self) -> &'static str {
        match (&self.sink, &self.mailbox, &self.source) {
            (Some(_), _, _) => "sink",
            (_, Some(_), _) => "mailbox",
            (_, _, Some(_)) => "source",
            _ => "passive",
        }
    }
}

impl Running {
    pub fn kind(&self) -> &'static str {
        match self {
            Running::Sink { .. } => "sink",
            Running::Mailbox { .. } => "mailbox",
            Running::Source { .. } => "source",
            Running::Passive => "passive",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Spawns `task` into `tasks` (joined at shutdown), first letting go of tasks that have ended (a reload's
/// drain watchers), so the set does not grow with every reload.
fn spawn_on(tasks: &Tasks, task: impl std::future::Future<Output = ()> + Send + 'static) {
    let mut set = lock(tasks);
    while set.try_join_next().is_some() {}
    set.spawn(task);
}

impl Adapters {
    pub(super) fn new(
        ctx: Arc<Context>,
        submit: Arc<dyn Submit>,
        (intake, work): (Tasks, Tasks),
        (stop_intake, stop_work): (CancellationToken, CancellationToken),
    ) -> Self {
        let grace = ctx.config.bus.shutdown_timeout.get();
        Self {
            ctx,
            submit,
            intake,
            work,
            stop_intake,
            stop_work,
            grace,
            entries: Mutex::default(),
        }
    }

    /// The spec of running adapter `id` and the kind of what runs for it.
    pub(super) fn running(&self, id: &str) -> Option<(AdapterSpec, &'static str)> {
        lock(&self.entries)
            .get(id)
            .map(|e| (e.spec.clone(), e.running.kind()))
    }

    /// Ids of every running adapter.
    pub(super) fn ids(&self) -> Vec<String> {
        lock(&self.entries).keys().cloned().collect()
    }

    /// Running mailboxes, by adapter id.
    pub(super) fn mailboxes(&self) -> Vec<Arc<Mailbox>> {
        lock(&self.entries)
            .values()
            .filter_map(|e| match &e.running {
                Running::Mailbox { mailbox, .. } => Some(mailbox.clone()),
                _ => None,
            })
            .collect()
    }

    /// Starts `a` (its queues are declared already).
    pub(super) fn start(&self, a: BuiltAdapter) {
        let id = a.spec.id.clone();
        self.set_lookup(&id, a.lookup.clone());
        let running = if let Some(sink) = a.sink {
            let slot: worker::SinkSlot = Arc::new(RwLock::new(sink));
            let retire = self.stop_work.child_token();
            let w = worker::Worker {
                meters: super::meters::Meters::new(&id),
                adapter: id.clone(),
                sink: slot.clone(),
                broker: self.ctx.broker.clone(),
                state: self.ctx.state.clone(),
                names: self.ctx.names.clone(),
                live: self.ctx.live.clone(),
                routes_at_start: self.ctx.live.current().router.clone(),
                in_flight: self.ctx.in_flight.clone(),
                prefetch: self.ctx.config.bus.prefetch,
                publish_timeout: self.ctx.config.bus.publish_timeout.get(),
                grace: self.grace,
                partitions: crate::order::ordered_adapters(&self.ctx.live.current().config)
                    .0
                    .get(&id)
                    .copied()
                    .unwrap_or(0),
            };
            spawn_on(&self.work, run_worker(w, retire.clone()));
            self.record_dead_letters(&id);
            self.declared(&id, false);
            Running::Sink { slot, retire }
        } else if let Some(mailbox) = a.mailbox {
            let retire = self.stop_work.child_token();
            spawn_on(
                &self.work,
                crate::mailbox::hold::run(mailbox.clone(), retire.clone()),
            );
            self.record_dead_letters(&id);
            self.declared(&id, true);
            Running::Mailbox { mailbox, retire }
        } else if let Some(source) = a.source {
            self.start_source(&id, source, None)
        } else {
            Running::Passive
        };
        lock(&self.entries).insert(
            id,
            Entry {
                spec: a.spec,
                running,
            },
        );
    }

    /// Puts a changed adapter's new build in place of the running one (same kind; checked by the caller).
    pub(super) fn replace(&self, a: BuiltAdapter) {
        let id = a.spec.id.clone();
        self.set_lookup(&id, a.lookup.clone());
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.get_mut(&id) else {
            drop(entries);
            return self.start(a);
        };
        entry.spec = a.spec;
        match (&mut entry.running, a.sink, a.source) {
            (Running::Sink { slot, .. }, Some(sink), _) => {
                *slot.write().unwrap_or_else(|p| p.into_inner()) = sink;
                tracing::info!(adapter = %id, "Adapter changed; its worker delivers with the new options");
            }
            (Running::Source { stop, done }, _, Some(source)) => {
                stop.cancel();
                let previous = done.clone();
                entry.running = self.start_source(&id, source, Some(previous));
                tracing::info!(adapter = %id, "Source adapter changed; restarted with the new options");
            }
            _ => {}
        }
    }

    /// Stops a removed adapter once nothing can still reach its queue and the queue is empty: `settled`
    /// turns true when no message accepted under the config it was in is still being published
    /// ([`Adapters::settled`]).
    pub(super) fn retire(&self, id: &str, settled: tokio::sync::watch::Receiver<bool>) {
        let Some(entry) = lock(&self.entries).remove(id) else {
            return;
        };
        self.set_lookup(id, None);
        let (retire, mailbox) = match entry.running {
            Running::Sink { retire, .. } => (retire, None),
            Running::Mailbox { mailbox, retire } => (retire, Some(mailbox)),
            Running::Source { stop, .. } => {
                stop.cancel();
                tracing::info!(adapter = %id, "Source adapter removed; stopped");
                return;
            }
            Running::Passive => return,
        };
        let (ctx, stop, id) = (self.ctx.clone(), self.stop_work.clone(), id.to_owned());
        spawn_on(&self.work, async move {
            let queue = ctx.names.deliver_queue(&id);
            let mut empty_in_a_row = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.cancelled() => return,
                }
                if !*settled.borrow() {
                    continue;
                }
                let busy =
                    lock_in_flight(&ctx, &id) || mailbox.as_ref().is_some_and(|m| m.held() > 0);
                let empty = ctx.broker.queue_depth(&queue).await == Some(0) && !busy;
                empty_in_a_row = if empty { empty_in_a_row + 1 } else { 0 };
                if empty_in_a_row >= 3 {
                    retire.cancel();
                    let mut q = ctx.queues.write().unwrap_or_else(|p| p.into_inner());
                    q.sinks.retain(|s| *s != id);
                    q.mailboxes.retain(|s| *s != id);
                    tracing::info!(adapter = %id, "Adapter removed by a reload: its queue is empty; stopped");
                    return;
                }
            }
        });
    }

    /// Turns true once `old` is held by nobody else: every message accepted under it (ingress holds the
    /// snapshot until all its copies are confirmed) has been published.
    pub(super) fn settled(&self, old: Arc<Snapshot>) -> tokio::sync::watch::Receiver<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stop = self.stop_work.clone();
        spawn_on(&self.work, async move {
            while Arc::strong_count(&old) > 1 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.cancelled() => return,
                }
            }
            let _ = tx.send(true);
        });
        rx
    }

    fn start_source(
        &self,
        id: &str,
        source: Box<dyn Source>,
        after: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Running {
        let stop = self.stop_intake.child_token();
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let (submit, token, id) = (self.submit.clone(), stop.clone(), id.to_owned());
        spawn_on(&self.intake, async move {
            if let Some(mut previous) = after {
                // The old source of this id must be gone first: two must never take the same input.
                let _ = previous.wait_for(|d| *d).await;
            }
            if !token.is_cancelled()
                && let Err(e) = source.run(submit, token).await
            {
                tracing::error!(adapter = %id, error = %e, "Source adapter stopped with an error");
            }
            let _ = done_tx.send(true);
        });
        Running::Source { stop, done }
    }

    fn record_dead_letters(&self, id: &str) {
        let r = dlq::Recorder {
            broker: self.ctx.broker.clone(),
            state: self.ctx.state.clone(),
            queue: self.ctx.names.dead_queue(id),
            adapter: id.to_owned(),
            grace: self.grace,
        };
        spawn_on(&self.work, dlq::record(r, self.stop_work.clone()));
    }

    fn declared(&self, id: &str, mailbox: bool) {
        let mut q = self.ctx.queues.write().unwrap_or_else(|p| p.into_inner());
        let list = if mailbox {
            &mut q.mailboxes
        } else {
            &mut q.sinks
        };
        if !list.iter().any(|s| s == id) {
            list.push(id.to_owned());
            list.sort();
        }
    }

    fn set_lookup(&self, id: &str, lookup: Option<Arc<dyn Lookup>>) {
        let mut l = self.ctx.lookups.write().unwrap_or_else(|p| p.into_inner());
        match lookup {
            Some(x) => {
                l.insert(id.to_owned(), x);
            }
            None => {
                l.remove(id);
            }
        }
    }
}

/// Whether this process is delivering a message of adapter `id` right now.
fn lock_in_flight(ctx: &Context, id: &str) -> bool {
    ctx.in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(a, _, _)| a == id)
}

/// A sink adapter's delivery: its work queue's consumer (`worker.rs`) and, when ordered routes reach it, one
/// consumer per partition queue (`ordered.rs`), until `stop`.
async fn run_worker(w: worker::Worker, stop: CancellationToken) {
    let w = Arc::new(w);
    // The ordered partitions' deliveries in progress share one bound, as the unordered queue's do.
    let sink_calls = Arc::new(tokio::sync::Semaphore::new(usize::from(w.prefetch.max(1))));
    let mut partitions = tokio::task::JoinSet::new();
    for p in 0..w.partitions {
        partitions.spawn(super::ordered::run(
            w.clone(),
            p,
            sink_calls.clone(),
            stop.clone(),
        ));
    }
    let queue = w.names.deliver_queue(&w.adapter);
    crate::broker::supervise::consume_until(
        &w.broker,
        &queue,
        w.prefetch,
        w.grace,
        &stop,
        |incoming| {
            let w = w.clone();
            async move { worker::handle(&w, incoming).await }
        },
    )
    .await;
    while partitions.join_next().await.is_some() {}
}
