//! RabbitMQ transport on lapin, with the bus's own reconnect loop.
//!
//! Why our own loop rather than lapin's auto-recover: we want one place that knows whether the bus is ready
//! (`/readyz`), that re-declares the whole [`Topology`] after every reconnect, and that lets a publish in flight
//! during a connection loss be retried on the new connection within its deadline (so ingress answers 202 only
//! after a real confirm, and 503 when the deadline passes — never a guess). Consumers simply re-subscribe when
//! their stream ends; unacked deliveries of a dead channel are requeued by RabbitMQ, so handlers are idempotent.
//!
//! Publishing and consuming use two connections, as RabbitMQ advises: when the broker applies flow control
//! to a connection that publishes too fast, it blocks that connection's reads, and consumers on it would stop
//! acknowledging — the very thing that would relieve the pressure. Two connections also give each direction
//! its own lapin I/O thread.
//!
//! Files by concern: this one holds the client handle and the state it shares; `connection` the reconnect
//! supervisor and how a connection is opened, `declare` the topology declared on every (re)connect, `publish`
//! publishing with confirms (and the hand-off of large bodies to [`super::large`]), `consume` consumers and the
//! headers of what they receive, `settle` acknowledging a consumer's deliveries in batches.

mod connection;
pub(crate) mod consume;
mod declare;
pub(crate) mod publish;
mod settle;

pub use consume::AmqpConsumer;
pub use settle::Settle;

use super::topology::Topology;
use lapin::{Channel, Connection};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Channels used for publishing; several so confirms of one do not serialize all publishes.
const PUBLISH_CHANNELS: usize = 4;

/// Longest wait for RabbitMQ to answer a `channel.close` or `connection.close`.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Waits for a lapin close (`channel.close`, `connection.close`) at most [`CLOSE_WAIT`], ignoring its result.
/// Why: lapin's close future waits for the broker's `close-ok`, and when the broker dropped the connection
/// first it can wait forever; a consumer re-subscribing after a connection loss, or a shutdown, must not
/// hang on a goodbye nobody will answer.
pub(crate) async fn closed<T, E>(close: impl Future<Output = Result<T, E>>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
}

#[derive(Clone)]
pub struct AmqpBroker {
    inner: Arc<Inner>,
}

struct Inner {
    /// The cluster's nodes, in the order given; one for a single broker.
    urls: Vec<String>,
    /// Index in `urls` of the node connected to (or last connected to): large-message connections go there,
    /// and after a loss the supervisor tries the next node first.
    current: AtomicUsize,
    /// Declared on every (re)connect; grows when a reload adds adapters or retry tiers.
    topology: Mutex<Topology>,
    link: watch::Sender<Option<Arc<Link>>>,
    last_error: Mutex<Option<String>>,
    inflight: Arc<Semaphore>,
    /// Bodies of at least this many bytes go through [`super::large`]; 0 = never.
    large_message_bytes: usize,
    large: Arc<super::large::Pool>,
    shutdown: CancellationToken,
}

struct Link {
    /// Publishes, topology, queue inspection.
    conn: Connection,
    /// Consumers only.
    consumers: Connection,
    publishers: Vec<Mutex<Channel>>,
    next: AtomicUsize,
}

impl AmqpBroker {
    /// Starts the connection supervisor for the node(s) at `urls`; returns immediately.
    pub fn start(urls: &[String], topology: Topology, tuning: super::Tuning) -> Self {
        let (link, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            urls: urls.to_vec(),
            current: AtomicUsize::new(0),
            topology: Mutex::new(topology),
            link,
            last_error: Mutex::new(None),
            inflight: Arc::new(Semaphore::new(tuning.max_in_flight.max(1))),
            large_message_bytes: tuning.large_message_bytes,
            large: super::large::Pool::new(),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(connection::supervise(inner.clone()));
        tokio::spawn(connection::reap_large(inner.clone()));
        Self { inner }
    }

    pub fn is_ready(&self) -> bool {
        self.inner
            .link
            .borrow()
            .as_ref()
            .is_some_and(|l| l.connected())
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().expect("lock").clone()
    }

    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_link(Instant::now() + timeout).await.is_some()
    }

    async fn wait_link(&self, deadline: Instant) -> Option<Arc<Link>> {
        let mut rx = self.inner.link.subscribe();
        loop {
            if let Some(l) = rx.borrow_and_update().clone()
                && l.connected()
            {
                return Some(l);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => {
                    // The watch may not change when a connection silently dies; check once more.
                    let l = rx.borrow().clone();
                    return l.filter(|l| l.connected());
                }
            }
        }
    }

    /// Adds `more` to the topology: declared now when connected (an error is returned, and `more` is still
    /// kept for the next connect), and on every reconnect from now on.
    pub async fn declare_more(&self, more: &Topology) -> Result<(), super::BrokerError> {
        {
            let mut t = self.inner.topology.lock().expect("lock");
            t.merge(more);
        }
        let link = self.inner.link.borrow().clone();
        match link.filter(|l| l.connected()) {
            Some(l) => declare::declare(&l.conn, more)
                .await
                .map_err(super::BrokerError::Topology),
            None => Ok(()),
        }
    }

    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        self.inner.large.reap(true).await;
        let link = self.inner.link.borrow().clone();
        if let Some(l) = link {
            l.close("lienthong shutting down").await;
        }
    }
}

impl Inner {
    /// The URL of the node the bus is connected to (or was last).
    fn current_url(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        self.urls
            .get(i)
            .or(self.urls.first())
            .map_or("", |u| u.as_str())
    }

    /// A label for the connection (shown in the RabbitMQ management UI): the namespace of the topology.
    fn topology_name(&self) -> String {
        self.topology
            .lock()
            .expect("lock")
            .exchanges
            .first()
            .map(|e| e.name.trim_end_matches(".ingress").to_owned())
            .unwrap_or_else(|| "cli".into())
    }
}

impl Link {
    /// Closes both connections (either may already be gone), giving up on each after a short wait.
    async fn close(&self, why: &str) {
        for c in [&self.conn, &self.consumers] {
            closed(c.close(200, why.into())).await;
        }
    }

    fn connected(&self) -> bool {
        self.conn.status().connected() && self.consumers.status().connected()
    }
}
