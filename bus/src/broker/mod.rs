//! The broker transport: publish with confirms, consume with manual acks, on RabbitMQ or in-process.
//!
//! The runtime talks to a closed enum, [`Broker`], with two variants: [`amqp::AmqpBroker`] (the product: real
//! RabbitMQ, quorum queues, publisher confirms, mandatory publishes, its own reconnect loop) and
//! [`memory::MemoryBroker`] (the embedded default for demos and business-logic tests; same topology semantics —
//! direct/fanout exchanges, TTL queues that dead-letter, delivery limits — but nothing survives the process).
//!
//! A publish returns only when the broker has confirmed it, so "202 Accepted" can never be said about a
//! message the broker does not hold.

pub mod amqp;
mod lapin_runtime;
mod large;
pub mod memory;
pub mod supervise;
mod teardown;
pub mod topology;

use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

pub use teardown::teardown;
pub use topology::{ExchangeKind, Topology};

/// A header value as the bus uses them (strings and integers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Str(String),
    Int(i64),
}

impl HeaderValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Str(s) => Some(s),
            HeaderValue::Int(_) => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            HeaderValue::Int(i) => Some(*i),
            HeaderValue::Str(s) => s.parse().ok(),
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            HeaderValue::Str(s) => serde_json::Value::String(s.clone()),
            HeaderValue::Int(i) => serde_json::Value::from(*i),
        }
    }
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::String(s) => Some(HeaderValue::Str(s.clone())),
            serde_json::Value::Number(n) => n.as_i64().map(HeaderValue::Int),
            _ => None,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::Str(s.to_owned())
    }
}
impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::Str(s)
    }
}
impl From<i64> for HeaderValue {
    fn from(i: i64) -> Self {
        HeaderValue::Int(i)
    }
}

pub type Headers = BTreeMap<String, HeaderValue>;

/// Properties and body of a message, as published or received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// AMQP `user_id`: RabbitMQ guarantees it equals the publishing connection's user when set.
    pub user_id: Option<String>,
    pub headers: Headers,
    pub body: Bytes,
}

impl Envelope {
    pub fn header_str(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(HeaderValue::as_str)
    }
    pub fn header_int(&self, k: &str) -> Option<i64> {
        self.headers.get(k).and_then(HeaderValue::as_int)
    }
}

/// A received message and the handle that settles it.
pub struct Incoming {
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    pub envelope: Envelope,
    pub acker: Acker,
}

/// Settles one delivery. Dropping an unsettled acker leaves the message to the broker (requeued when the
/// channel closes), never lost. On RabbitMQ, settling hands the delivery to its channel's settling task
/// ([`amqp::Settle`]), which acks finished deliveries in batches; an error means the delivery can no longer be
/// settled (its channel is gone, and RabbitMQ has given it back).
pub enum Acker {
    Amqp(amqp::Settle),
    Memory(memory::MemAcker),
}

impl Acker {
    /// The message is done with; the broker forgets it.
    pub async fn ack(&self) -> Result<(), BrokerError> {
        match self {
            Acker::Amqp(a) => a.ack(),
            Acker::Memory(a) => {
                a.ack();
                Ok(())
            }
        }
    }

    /// Give the message back: `requeue = true` puts it back in its queue (counts toward the delivery limit),
    /// `false` dead-letters it (or drops it if the queue has no dead-letter exchange).
    pub async fn reject(&self, requeue: bool) -> Result<(), BrokerError> {
        match self {
            Acker::Amqp(a) => a.reject(requeue),
            Acker::Memory(a) => {
                a.reject(requeue);
                Ok(())
            }
        }
    }
}

/// What can go wrong talking to the broker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// Not connected, connection lost, or not confirmed in time. Retry later; the message was not accepted.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (negative confirm), e.g. a queue at its length limit.
    #[error("broker refused the message (nack)")]
    Nacked,
    /// No queue is bound for this exchange/routing key (mandatory publish returned).
    #[error("unroutable: {0}")]
    Unroutable(String),
    /// Declaring topology failed (e.g. a queue exists with other arguments).
    #[error("topology error: {0}")]
    Topology(String),
}

impl BrokerError {
    pub(crate) fn from_lapin(e: lapin::Error) -> Self {
        BrokerError::Unavailable(e.to_string())
    }
}

/// How the broker client uses the broker; from `[bus]` (see `BusConfig` for what each means).
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Publishes awaiting a confirm at once (`bus.max_in_flight`).
    pub max_in_flight: usize,
    /// Bodies this large or larger are published on a connection of their own, without a second copy
    /// (`bus.large_message_bytes`); 0 = never.
    pub large_message_bytes: usize,
}

impl Tuning {
    pub fn from_config(bus: &crate::config::BusConfig) -> Tuning {
        Tuning {
            max_in_flight: bus.max_in_flight,
            large_message_bytes: bus.large_message_bytes,
        }
    }
}

/// The broker the runtime uses.
#[derive(Clone)]
pub enum Broker {
    Amqp(amqp::AmqpBroker),
    Memory(memory::MemoryBroker),
}

/// A stream of deliveries from one queue.
pub enum Consumer {
    Amqp(Box<amqp::AmqpConsumer>),
    Memory(memory::MemConsumer),
}

impl Consumer {
    /// Next delivery; `None` or `Some(Err)` when the consumer ended (connection lost, cancelled).
    pub async fn next(&mut self) -> Option<Result<Incoming, BrokerError>> {
        match self {
            Consumer::Amqp(c) => c.next().await,
            Consumer::Memory(c) => c.next().await.map(Ok),
        }
    }

    /// Stop receiving; deliveries not yet settled go back to the queue when the channel closes.
    pub async fn close(self) {
        match self {
            Consumer::Amqp(c) => c.close().await,
            Consumer::Memory(c) => c.close(),
        }
    }
}

impl Broker {
    /// Connects to the first of `urls` that answers (`amqp://`, `amqps://`; or `memory://` alone) and keeps
    /// `topology` declared, across reconnects and moves to another node of the cluster. Returns at once; use
    /// [`Broker::wait_ready`] or [`Broker::is_ready`].
    pub fn start(urls: &[String], topology: Topology, tuning: Tuning) -> Broker {
        if urls.len() == 1 && urls[0] == "memory://" {
            let b = memory::MemoryBroker::new();
            b.declare(&topology);
            Broker::Memory(b)
        } else {
            Broker::Amqp(amqp::AmqpBroker::start(urls, topology, tuning))
        }
    }

    /// Connected and topology declared.
    pub fn is_ready(&self) -> bool {
        match self {
            Broker::Amqp(b) => b.is_ready(),
            Broker::Memory(_) => true,
        }
    }

    /// Last connection or declare error, for `/readyz` and logs.
    pub fn last_error(&self) -> Option<String> {
        match self {
            Broker::Amqp(b) => b.last_error(),
            Broker::Memory(_) => None,
        }
    }

    /// Waits until ready or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        match self {
            Broker::Amqp(b) => b.wait_ready(timeout).await,
            Broker::Memory(_) => true,
        }
    }

    /// Publishes persistently with `mandatory`, and returns once the broker confirmed it. Retries across a
    /// reconnect until `timeout`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: &Envelope,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        match self {
            Broker::Amqp(b) => b.publish(exchange, routing_key, envelope, timeout).await,
            Broker::Memory(b) => b.publish(exchange, routing_key, envelope.clone()),
        }
    }

    /// Starts consuming `queue` with manual acks and `prefetch` unacked deliveries at most. Waits (up to
    /// `timeout`) for the broker to be ready.
    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        timeout: Duration,
    ) -> Result<Consumer, BrokerError> {
        match self {
            Broker::Amqp(b) => b
                .consume(queue, prefetch, timeout)
                .await
                .map(|c| Consumer::Amqp(Box::new(c))),
            Broker::Memory(b) => b.consume(queue, prefetch).map(Consumer::Memory),
        }
    }

    /// Number of messages ready in `queue` (for the admin API and tests); None if unknown.
    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        match self {
            Broker::Amqp(b) => b.queue_depth(queue).await,
            Broker::Memory(b) => b.queue_depth(queue),
        }
    }

    /// Declares `more` now (when connected) and on every reconnect from now on.
    pub async fn declare_more(&self, more: &Topology) -> Result<(), BrokerError> {
        match self {
            Broker::Amqp(b) => b.declare_more(more).await,
            Broker::Memory(b) => {
                b.declare(more);
                Ok(())
            }
        }
    }

    /// Closes connections (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Broker::Amqp(b) => b.close().await,
            Broker::Memory(_) => {}
        }
    }
}
