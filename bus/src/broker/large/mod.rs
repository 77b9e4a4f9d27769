//! Large messages published without a second copy of the body.
//!
//! Why: lapin's `basic_publish` turns the whole body into owned frames before it sends the first byte, so a
//! 27 MB XML document with attachments is held twice at the moment it is published, and lapin's 4 MiB send
//! ring stays resident once a large message has passed through it. A body of `bus.large_message_bytes` or
//! more is published here instead: on a connection of its own (a small AMQP client on amq-protocol's frame
//! codec), from a blocking thread, each body frame written straight from the caller's buffer. The promise is
//! the lapin path's: persistent, `mandatory`, a success only on the broker's publisher confirm, and failures
//! reported with the same [`BrokerError`]s so the caller's retry-until-deadline loop applies unchanged.
//!
//! At most [`CONCURRENT`] such publishes run at once. A connection that published successfully is kept for the
//! next large message for [`IDLE`] at most (RabbitMQ warns against connection churn, and a steady stream of
//! 1 MiB messages would otherwise open hundreds a second); one that saw any error is closed, and an idle one
//! is checked before reuse. The idle limit is short because these connections run without heartbeats: a
//! middlebox that silently drops an idle connection would otherwise turn the next publish into a timeout.
//!
//! Files by concern: this one holds the pool (the bound, idle connections, their reaping); `frames` defines the
//! connection and writes and reads its frames, including the body frames sent straight from the message's
//! buffer; `conn` opens a connection and walks the AMQP handshake over those frames.

mod conn;
mod frames;
#[cfg(test)]
mod tests;

use super::BrokerError;
use bytes::Bytes;
use frames::Conn;
use lapin::BasicProperties;
use lapin::uri::AMQPUri;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Large publishes in flight at once across the process (each holds a connection and a blocking thread).
pub(super) const CONCURRENT: usize = 4;

/// How long a connection may wait idle for the next large message before it is closed.
pub(super) const IDLE: Duration = Duration::from_secs(15);

/// One large message and where it goes.
pub(super) struct Large {
    pub uri: AMQPUri,
    /// Shown in the RabbitMQ management UI, so an operator can tell these connections apart.
    pub connection_name: String,
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Bytes,
}

/// The large-message connections of one broker client: a bound on concurrent publishes, and idle connections.
pub(super) struct Pool {
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<(Conn, Instant)>>,
    /// Set at shutdown: a publish that finishes afterwards closes its connection instead of keeping it.
    closed: AtomicBool,
}

impl Pool {
    pub(super) fn new() -> Arc<Pool> {
        Arc::new(Pool {
            slots: Arc::new(Semaphore::new(CONCURRENT)),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Publishes `msg` and waits for its confirm, giving up at `deadline`.
    pub(super) async fn publish(
        self: &Arc<Self>,
        msg: Large,
        deadline: tokio::time::Instant,
    ) -> Result<(), BrokerError> {
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                unavailable(
                    "publish",
                    "too many large publishes at once until the deadline",
                )
            })?
            .map_err(|_| unavailable("publish", "closed"))?;
        let pool = self.clone();
        let deadline = deadline.into_std();
        // The slot goes with the thread: if our caller gives up first (its own deadline, a client gone), the
        // publish still running keeps counting against [`CONCURRENT`].
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut conn = match pool.take(&conn::node_of(&msg.uri)) {
                Some(c) => c,
                None => Conn::open(&msg.uri, &msg.connection_name, deadline)?,
            };
            let outcome = conn.publish(&msg, deadline);
            match outcome {
                Ok(()) => pool.put(conn),
                Err(_) => conn.close(),
            }
            outcome
        })
        .await
        .map_err(|e| BrokerError::Unavailable(format!("large-message publisher stopped: {e}")))?
    }

    /// An idle connection to `node` still fit for use; stale or broken ones met on the way, and ones to
    /// another node (the bus has moved to another cluster node since), are closed.
    fn take(&self, node: &str) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.idle.lock().expect("lock").pop()?;
            if conn.node == node && since.elapsed() < IDLE && conn.quiet() {
                return Some(conn);
            }
            conn.close();
        }
    }

    fn put(&self, mut conn: Conn) {
        let mut idle = self.idle.lock().expect("lock");
        if idle.len() < CONCURRENT && !self.closed.load(Ordering::SeqCst) {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            conn.close();
        }
    }

    /// Closes connections idle longer than [`IDLE`]; `all` closes every idle one (shutdown).
    pub(super) async fn reap(self: &Arc<Self>, all: bool) {
        if all {
            self.closed.store(true, Ordering::SeqCst);
        }
        let stale: Vec<Conn> = {
            let mut idle = self.idle.lock().expect("lock");
            let (old, keep): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(_, since)| all || since.elapsed() >= IDLE);
            *idle = keep;
            old.into_iter().map(|(c, _)| c).collect()
        };
        if !stale.is_empty() {
            let _ =
                tokio::task::spawn_blocking(move || stale.into_iter().for_each(|mut c| c.close()))
                    .await;
        }
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().expect("lock").len()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("large-message connection: {what}: {e}"))
}

/// What went wrong on the socket; a timeout says so in the words the lapin path uses.
fn io_error(what: &str, e: std::io::Error) -> BrokerError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            unavailable(what, "not confirmed before the publish deadline")
        }
        _ => unavailable(what, e),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, BrokerError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(unavailable(
            "publish",
            "not confirmed before the publish deadline",
        ))
    } else {
        Ok(left)
    }
}
