//! The seam between the core and adapters: what a sink, a source and a lookup are, and how the binary hands
//! the core a factory that builds them from `[[adapters]]` tables.
//!
//! Adapters depend on the core, never the reverse, so the core only knows these traits. The runtime consumes an
//! adapter's queue and calls [`Sink::deliver`]; the adapter says whether a failure is worth retrying
//! ([`ErrorClass`]); the runtime does the retrying, parking and acking.

use crate::config::{AdapterSpec, Config, Problem};
use crate::error::ApiError;
use crate::message::{ContentKind, Message};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

/// One attempt to hand one message to one adapter.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Message,
    /// Route that produced this copy.
    pub route: String,
    /// Adapter this copy is for.
    pub adapter: String,
    /// 1 for the first attempt; counts across retries; a replay starts again at 1.
    pub attempt: u32,
    /// W3C trace context to pass on (`traceparent` header).
    pub traceparent: String,
}

/// Whether trying again later could succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Timeouts, connection errors, 408/429/5xx, a peer's "try later": retried per the route's policy.
    Transient,
    /// The peer refused the message itself (other 4xx, a validation error): dead-lettered at once.
    Permanent,
}

/// Why a delivery failed, with what an operator needs to see in the dead-letter queue.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    pub class: ErrorClass,
    /// Short human reason, e.g. `HTTP 503 from receiver` or `portal error_code 3: already exists`.
    pub reason: String,
    /// Peer status code where there is one (HTTP status, portal error code).
    pub status: Option<i64>,
    /// First bytes of the peer's answer (at most 1 KiB), for the DLQ.
    pub body_excerpt: Option<String>,
    /// The peer asked us to wait at least this long (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            reason: reason.into(),
            status: None,
            body_excerpt: None,
            retry_after: None,
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            ..Self::transient(reason)
        }
    }
    pub fn with_status(mut self, status: i64) -> Self {
        self.status = Some(status);
        self
    }
    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.body_excerpt = Some(excerpt(body, 1024));
        self
    }
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }
}

/// The first `max` bytes of `body` as text (lossy, cut on a char boundary), at most `max` bytes long.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(max)]);
    let s = s.trim_end_matches('\u{FFFD}');
    // Each byte that is not UTF-8 became a 3-byte replacement character: cut again to stay within `max`.
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

/// Something that takes delivered messages (a webhook, a folder, the national portal).
#[async_trait]
pub trait Sink: Send + Sync {
    /// Deliver one message. Must be safe to call again with the same message id (receivers get
    /// `Idempotency-Key`), because a crash between success and ack redelivers.
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError>;

    /// Called once at start, after the state store and the domain are up, with what the domain can say
    /// about past deliveries (when it says anything: [`crate::plugin::Hooks::deliveries`]). Default: unused.
    fn attach(&self, _deliveries: Arc<dyn Deliveries>) {}
}

/// What this bus delivered, as the domain can tell it: lets a sink judge an answer by what came before
/// (a receiver's "does not exist" for an update is only final once the record's creation was delivered to
/// it).
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Whether a message of type `kind` about `subject` (the domain's case key, e.g. a case number) was
    /// delivered to adapter `adapter` by this bus (and its delivery record is still kept, `[state] retention`).
    async fn delivered_about(
        &self,
        adapter: &str,
        kind: &str,
        subject: &str,
    ) -> Result<bool, String>;
}

/// Who is submitting, as established by the transport (token, RabbitMQ user, adapter config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An authenticated agency, by its party code.
    Agency(String),
}

/// A message offered to the bus by a transport or a source adapter.
#[derive(Debug, Clone)]
pub struct Submission {
    pub caller: Caller,
    pub content: ContentKind,
    pub body: Bytes,
    /// Incoming `traceparent`, if the caller sent one.
    pub traceparent: Option<String>,
    /// An id the transport supplies when the body has none (AMQP `message_id`, a file name).
    pub fallback_id: Option<String>,
}

pub use crate::message::Accepted;

/// The ingress, as source adapters see it: validate, route, publish with confirms, answer.
#[async_trait]
pub trait Submit: Send + Sync {
    async fn submit(&self, submission: Submission) -> Result<Accepted, ApiError>;
}

/// Something that produces messages on its own (a watched folder, a pull from a national axis).
#[async_trait]
pub trait Source: Send {
    /// Run until `shutdown` is cancelled. Anything taken from the outside world must be submitted and accepted
    /// (broker-confirmed) before it is marked done there.
    async fn run(
        self: Box<Self>,
        ingress: Arc<dyn Submit>,
        shutdown: CancellationToken,
    ) -> Result<(), String>;
}

/// A read-only query against an adapter's peer (e.g. a status lookup on a portal), exposed on the admin API.
#[async_trait]
pub trait Lookup: Send + Sync {
    async fn lookup(&self, key: &str) -> Result<serde_json::Value, DeliveryError>;
}

/// A pull mailbox: the adapter's queue is not consumed by a delivery worker but held by the bus for one agency,
/// which reads it over the ingress API (`/v1/inbox`, see [`crate::mailbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSpec {
    /// The agency (its `code`) whose mailbox this is; only it may list, fetch, ack and nack.
    pub agency: String,
    /// How long a fetched message stays out of the listing before it is offered again.
    pub lease: Duration,
    /// At most this many messages are held (listable) at once; the rest wait in the queue.
    pub window: u16,
}

/// What a factory builds from one `[[adapters]]` table.
#[derive(Default)]
pub struct Built {
    pub sink: Option<Arc<dyn Sink>>,
    pub source: Option<Box<dyn Source>>,
    pub lookup: Option<Arc<dyn Lookup>>,
    /// A pull mailbox instead of a sink: its queue is held for [`MailboxSpec::agency`].
    pub mailbox: Option<MailboxSpec>,
}

/// Builds adapters from config; implemented by the adapters crate, handed to the core by the binary.
pub trait AdapterFactory: Send + Sync {
    /// Adapter types this factory knows (`webhook`, `file-out`, ...).
    fn types(&self) -> Vec<&'static str>;
    /// Checks one adapter's own keys; every problem with its key path (`adapters[2].url`). Secrets named by
    /// its keys are read through `env` (the same environment the core reads tokens from).
    fn check(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Problem>;
    /// Builds the adapter (called only after `check` found nothing), its secrets read through `env`.
    fn build(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Built, Vec<Problem>>;
}

#[cfg(test)]
mod excerpt_tests {
    use super::excerpt;

    /// An oracle of `fuzz/fuzz_targets/dvcqg_response.rs`; before this fix each byte that is not UTF-8 became a 3-byte replacement
    /// character, so a "1 KiB" body excerpt of a binary answer was up to 3 KiB.
    #[test]
    fn an_excerpt_is_at_most_max_bytes_whatever_the_body() {
        let binary = b"a\xff".repeat(1000);
        let e = excerpt(&binary, 1024);
        assert!(e.len() <= 1024, "{} bytes", e.len());
        assert!(e.starts_with("a\u{FFFD}a"));
        assert_eq!(excerpt("Hồ sơ đã tồn tại".as_bytes(), 6), "Hồ s");
        assert_eq!(excerpt("Hồ sơ".as_bytes(), 3), "H");
        assert_eq!(excerpt(b"short", 1024), "short");
    }
}
