//! Pull mailboxes: messages for an agency that cannot receive wait in its mailbox adapter's queue until the
//! agency fetches and acknowledges them over the ingress API (`/v1/inbox`, [`http`]).
//!
//! Why held this way: the message must stay in RabbitMQ until the agency says it is done, so nothing is lost
//! when the bus restarts or is killed. One holder per mailbox ([`hold`]) consumes the adapter's queue
//! (`<namespace>.deliver.<adapter>`) with manual acks and keeps up to `window` deliveries unacknowledged in
//! memory; those are what the agency lists and fetches. An ack records the delivery in the state store (like
//! a delivery worker's success) and only then acknowledges it to RabbitMQ; a nack publishes a dead letter with
//! the agency's reason (confirmed) and then acknowledges. A process that dies holding deliveries loses none:
//! RabbitMQ requeues a closed channel's unacknowledged deliveries, and a copy of a message already acked
//! (recorded in the state store by adapter, sender and id) is dropped when it comes back.
//!
//! Messages are named by sender and id (ids are chosen by senders, unique per sender only): `{id}` in a URL
//! is the message's id and `?from=` its sender, needed only when two senders' messages with that id are held.
//!
//! Leases live in this process's memory: a fetched message leaves the listing for `lease`, and after a
//! restart every held message is listed again at once (offered again, never lost). RabbitMQ closes a channel
//! whose delivery stayed unacknowledged longer than its `consumer_timeout` (30 minutes by default), so a
//! held message older than [`RECYCLE_AFTER`] is put back at the tail of the queue (republished, confirmed,
//! then acknowledged); its lease is kept.

pub mod hold;
pub mod http;

use crate::adapter::MailboxSpec;
use crate::broker::topology::Names;
use crate::broker::{Acker, Broker};
use crate::error::{ApiError, code};
use crate::message::now_rfc3339;
use crate::state::StateStore;
use crate::wire::AdapterCopy;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A held message older than this goes back to the tail of its queue (RabbitMQ's default `consumer_timeout`
/// is 30 minutes; past it the broker closes the channel holding it).
pub const RECYCLE_AFTER: Duration = Duration::from_secs(600);

/// How long an acknowledgement is remembered in memory, so a repeated ack is answered 200 without `?from=`.
const RECENT_ACKS: Duration = Duration::from_secs(3600);

/// A message is named by its sender and its id.
type Key = (String, String);

/// Every mailbox of the running bus, by the agency that reads it.
#[derive(Default)]
pub struct Mailboxes {
    by_agency: HashMap<String, Arc<Mailbox>>,
}

impl Mailboxes {
    pub fn new(boxes: impl IntoIterator<Item = Arc<Mailbox>>) -> Self {
        Self {
            by_agency: boxes
                .into_iter()
                .map(|m| (m.spec.agency.clone(), m))
                .collect(),
        }
    }

    /// The mailbox `agency` reads, if it has one.
    pub fn of_agency(&self, agency: &str) -> Option<&Arc<Mailbox>> {
        self.by_agency.get(agency)
    }

    /// Every mailbox.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Mailbox>> {
        self.by_agency.values()
    }

    /// The mailbox adapters' ids, sorted (their queues are in the topology).
    pub fn adapter_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.all().map(|m| m.adapter.clone()).collect();
        ids.sort();
        ids
    }
}

/// One message as `GET /v1/inbox` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pending {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: String,
    pub created_at: String,
    /// Payload size in bytes (the JSON `payload` value, or the whole XML document).
    pub size: usize,
    /// `application/json` (fetched as its envelope) or `application/xml` (fetched as the document).
    pub content_type: &'static str,
}

/// A message held for its agency: the copy, and the delivery that keeps it in RabbitMQ until settled.
struct Held {
    copy: AdapterCopy,
    acker: Arc<Acker>,
    arrived: Instant,
}

#[derive(Default)]
struct Inner {
    /// Held messages in arrival order.
    held: BTreeMap<u64, Held>,
    index: HashMap<Key, u64>,
    next: u64,
    /// Fetched messages and until when they stay out of the listing (kept across recycling).
    leases: HashMap<Key, Instant>,
    /// Acknowledged messages and when.
    acked: HashMap<Key, Instant>,
}

impl Inner {
    fn insert(&mut self, key: Key, held: Held) {
        let seq = self.next;
        self.next += 1;
        self.index.insert(key, seq);
        self.held.insert(seq, held);
    }

    fn take(&mut self, key: &Key) -> Option<Held> {
        let seq = self.index.remove(key)?;
        self.held.remove(&seq)
    }
}

/// One agency's mailbox.
pub struct Mailbox {
    pub adapter: String,
    pub spec: MailboxSpec,
    broker: Broker,
    state: StateStore,
    names: Names,
    publish_timeout: Duration,
    recycle_after: Duration,
    inner: Mutex<Inner>,
    /// Woken when a message comes to be held (a listing waiting for the queue's next ones).
    arrived: tokio::sync::Notify,
}

/// Longest a listing waits when it has nothing to show but the queue has messages ready and the window room for
/// them: they come forward after the acks of the ones before them, each checked against the state store, which
/// can take a moment. Without the wait a client draining its mailbox would see an empty list and stop early.
const REFILL_WAIT: Duration = Duration::from_secs(2);

/// What an ack found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub id: String,
    pub from: String,
}

impl Mailbox {
    pub fn new(
        adapter: &str,
        spec: MailboxSpec,
        broker: Broker,
        state: StateStore,
        names: Names,
        publish_timeout: Duration,
    ) -> Self {
        Self {
            adapter: adapter.to_owned(),
            spec,
            broker,
            state,
            names,
            publish_timeout,
            recycle_after: RECYCLE_AFTER,
            inner: Mutex::default(),
            arrived: tokio::sync::Notify::new(),
        }
    }

    /// Recycle held messages after `d` instead of [`RECYCLE_AFTER`] (tests).
    pub fn with_recycle_after(mut self, d: Duration) -> Self {
        self.recycle_after = d;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held messages not under a lease, oldest first, at most `limit`.
    pub fn list(&self, limit: usize) -> Vec<Pending> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.leases.retain(|_, until| *until > now);
        let inner = &*inner;
        inner
            .held
            .values()
            .filter(|h| !inner.leases.contains_key(&key_of(&h.copy)))
            .take(limit)
            .map(|h| {
                let m = &h.copy.message;
                Pending {
                    id: m.meta.id.clone(),
                    kind: m.meta.kind.clone(),
                    from: m.meta.from.clone(),
                    created_at: m.meta.created_at.clone(),
                    size: m.payload.len(),
                    content_type: m.content.mime(),
                }
            })
            .collect()
    }

    /// [`Self::list`], waiting up to [`REFILL_WAIT`] for messages to come forward when none is listed though
    /// the queue has some ready and the window has room for them (so an empty answer means an empty mailbox,
    /// not one between two batches).
    pub async fn list_waiting(&self, limit: usize) -> Vec<Pending> {
        let deadline = tokio::time::Instant::now() + REFILL_WAIT;
        let mut coming: Option<bool> = None;
        loop {
            // Registered before looking, so an arrival in between is not missed.
            let arrived = self.arrived.notified();
            let listed = self.list(limit);
            if !listed.is_empty() || limit == 0 {
                return listed;
            }
            if coming.is_none() {
                let room = self.lock().held.len() < usize::from(self.spec.window);
                let queue = self.names.deliver_queue(&self.adapter);
                coming = Some(room && self.broker.queue_depth(&queue).await.unwrap_or(0) > 0);
            }
            if coming != Some(true) || tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.list(limit);
            }
        }
    }

    /// Whether this mailbox holds a message `id` (of `from`, when given), leased or not.
    pub fn holds(&self, id: &str, from: Option<&str>) -> bool {
        self.lock()
            .index
            .keys()
            .any(|(f, i)| i == id && from.is_none_or(|from| from == f))
    }

    /// The held message `id` (of `from`, when given), leased to the agency for `lease` from now.
    pub fn fetch(&self, id: &str, from: Option<&str>) -> Result<(AdapterCopy, String), ApiError> {
        let mut inner = self.lock();
        let key = resolve(inner.index.keys(), id, from)?;
        let seq = inner.index[&key];
        let copy = inner.held[&seq].copy.clone();
        let lease = self.spec.lease;
        inner.leases.insert(key, Instant::now() + lease);
        let until = time::OffsetDateTime::now_utc() + lease;
        let until = until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok((copy, until))
    }

    /// Done: recorded as delivered in the state store, then acknowledged to RabbitMQ (removed). Acking again is
    /// answered the same.
    pub async fn ack(&self, id: &str, from: Option<&str>) -> Result<Settled, ApiError> {
        let found = {
            let mut inner = self.lock();
            let now = Instant::now();
            inner
                .acked
                .retain(|_, at| now.duration_since(*at) < RECENT_ACKS);
            let known = inner
                .index
                .keys()
                .chain(inner.leases.keys())
                .chain(inner.acked.keys());
            match resolve(known, id, from) {
                Ok(key) if inner.acked.contains_key(&key) => return Ok(settled(&key)),
                Ok(key) => {
                    let held = inner.take(&key);
                    Ok((key, held))
                }
                Err(e) => Err(e),
            }
        };
        let (key, held) = match (found, from) {
            (Ok(found), _) => found,
            // Acked before this process started (or before a restart): the state store knows.
            (Err(e), Some(from)) if e.code == code::NOT_FOUND => {
                return match self.state.was_delivered(&self.adapter, from, id).await {
                    Ok(true) => Ok(Settled {
                        id: id.to_owned(),
                        from: from.to_owned(),
                    }),
                    Ok(false) => Err(e),
                    Err(e) => Err(e.into()),
                };
            }
            (Err(e), _) => return Err(e),
        };
        if let Err(e) = self
            .state
            .mark_delivered(&self.adapter, &key.0, &key.1)
            .await
        {
            tracing::warn!(id = %key.1, from = %key.0, error = %e, "Could not record a mailbox ack; the message stays");
            if let Some(h) = held {
                self.lock().insert(key, h);
            }
            return Err(e.into());
        }
        if let Some(h) = held
            && let Err(e) = h.acker.ack().await
        {
            // Recorded as delivered: the copy RabbitMQ gives back is dropped when it arrives.
            tracing::info!(id = %key.1, error = %e, "Mailbox ack recorded, but the delivery was already gone");
        }
        {
            let mut inner = self.lock();
            inner.leases.remove(&key);
            inner.acked.insert(key.clone(), Instant::now());
        }
        metrics::counter!("lienthong_delivered_total", "adapter" => self.adapter.clone())
            .increment(1);
        tracing::info!(id = %key.1, from = %key.0, adapter = %self.adapter, "Delivered (acknowledged from the mailbox)");
        Ok(settled(&key))
    }

    /// Refused by the agency: dead-lettered with `reason` (confirmed), then acknowledged to RabbitMQ. It is
    /// then in the parking lot, where an operator sees the reason and may replay it.
    pub async fn nack(
        &self,
        id: &str,
        from: Option<&str>,
        reason: &str,
    ) -> Result<Settled, ApiError> {
        let (key, held) = {
            let mut inner = self.lock();
            let key = resolve(inner.index.keys(), id, from)?;
            let held = inner.take(&key).expect("indexed");
            (key, held)
        };
        let now = now_rfc3339();
        let mut next = held.copy.clone();
        next.attempts = next.attempts.saturating_add(1);
        next.first_attempt_at.get_or_insert_with(|| now.clone());
        next.last_attempt_at = Some(now.clone());
        next.last_error = Some(format!("refused by {}: {reason}", self.spec.agency));
        let dead = next.to_dead_letter(reason, &now);
        let exchange = self.names.dead_exchange();
        if let Err(e) = self
            .broker
            .publish(&exchange, &self.adapter, &dead, self.publish_timeout)
            .await
        {
            tracing::warn!(id = %key.1, error = %e, "Could not dead-letter a refused mailbox message; it stays");
            self.lock().insert(key, held);
            return Err(ApiError::new(
                code::BROKER_UNAVAILABLE,
                format!("the broker did not confirm the dead letter ({e}); retry"),
            ));
        }
        if let Err(e) = held.acker.ack().await {
            tracing::warn!(id = %key.1, error = %e, "Dead-lettered, but the delivery was already gone; it may be offered again");
        }
        self.lock().leases.remove(&key);
        metrics::counter!("lienthong_dead_lettered_total", "adapter" => self.adapter.clone(), "reason" => "nacked")
            .increment(1);
        tracing::warn!(id = %key.1, from = %key.0, adapter = %self.adapter, reason, "Refused by its agency; dead-lettered");
        Ok(settled(&key))
    }

    /// Takes one delivery from the holder's consumer: held, or dropped when it is a copy of a message already
    /// acknowledged or already held.
    async fn arrive(&self, incoming: crate::broker::Incoming) {
        let copy = match AdapterCopy::from_envelope(&incoming.envelope, &incoming.routing_key) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(adapter = %self.adapter, error = %e, "Malformed message in a mailbox; dead-lettering it");
                let _ = incoming.acker.reject(false).await;
                return;
            }
        };
        let key = key_of(&copy);
        match self
            .state
            .was_delivered(&self.adapter, &key.0, &key.1)
            .await
        {
            Ok(true) => {
                tracing::info!(id = %key.1, from = %key.0, adapter = %self.adapter, "Already acknowledged; dropping the copy");
                metrics::counter!("lienthong_deliveries_deduplicated_total", "adapter" => self.adapter.clone())
                    .increment(1);
                let _ = incoming.acker.ack().await;
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "State store unavailable; returning the message to its mailbox queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = incoming.acker.reject(true).await;
                return;
            }
        }
        let second = {
            let mut inner = self.lock();
            if inner.index.contains_key(&key) {
                Some(incoming.acker)
            } else {
                inner.insert(
                    key.clone(),
                    Held {
                        copy,
                        acker: Arc::new(incoming.acker),
                        arrived: Instant::now(),
                    },
                );
                self.arrived.notify_waiters();
                None
            }
        };
        if let Some(acker) = second {
            // A second copy (a resubmission) while the first is held: the first stands for both.
            tracing::info!(id = %key.1, from = %key.0, adapter = %self.adapter, "Already held; dropping the second copy");
            metrics::counter!("lienthong_deliveries_deduplicated_total", "adapter" => self.adapter.clone())
                .increment(1);
            let _ = acker.ack().await;
        }
    }

    /// Puts held messages older than the recycle age back at the tail of the queue: republished (confirmed),
    /// then acknowledged. A message whose republish fails stays held and is tried again next time.
    async fn recycle(&self) {
        let old: Vec<(Key, Held)> = {
            let mut inner = self.lock();
            let due: Vec<Key> = inner
                .held
                .values()
                .filter(|h| h.arrived.elapsed() >= self.recycle_after)
                .map(|h| key_of(&h.copy))
                .collect();
            due.into_iter()
                .filter_map(|k| inner.take(&k).map(|h| (k, h)))
                .collect()
        };
        let exchange = self.names.deliver_exchange();
        for (key, held) in old {
            let env = held.copy.to_envelope();
            match self
                .broker
                .publish(&exchange, &self.adapter, &env, self.publish_timeout)
                .await
            {
                Ok(()) => {
                    let _ = held.acker.ack().await;
                }
                Err(e) => {
                    tracing::warn!(id = %key.1, error = %e, "Could not put a held mailbox message back in its queue; holding it");
                    self.lock().insert(key, held);
                }
            }
        }
    }

    /// Forgets every held delivery (the consumer ended): RabbitMQ gives them back when the channel closes.
    /// Leases and acks are kept.
    fn release_all(&self) {
        let mut inner = self.lock();
        inner.held.clear();
        inner.index.clear();
    }

    /// How many messages are held now.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }
}

fn key_of(copy: &AdapterCopy) -> Key {
    (copy.message.meta.from.clone(), copy.message.meta.id.clone())
}

fn settled(key: &Key) -> Settled {
    Settled {
        from: key.0.clone(),
        id: key.1.clone(),
    }
}

/// The one key among `keys` with this id (and sender, when given): 404 when none, 409 when several senders
/// used the id and `from` was not given.
fn resolve<'a>(
    keys: impl Iterator<Item = &'a Key>,
    id: &str,
    from: Option<&str>,
) -> Result<Key, ApiError> {
    let mut found: Vec<&Key> = keys
        .filter(|(f, i)| i == id && from.is_none_or(|from| from == f))
        .collect();
    found.sort();
    found.dedup();
    match found[..] {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::new(
            code::NOT_FOUND,
            match from {
                Some(from) => format!("no message `{id}` from {from} in this mailbox"),
                None => format!("no message `{id}` in this mailbox"),
            },
        )),
        _ => Err(ApiError::new(
            code::CONFLICT,
            format!(
                "several senders' messages have id `{id}` ({}); say which with `?from=<sender>`",
                found
                    .iter()
                    .map(|k| k.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .at("from", "required: the id is not unique among held messages")),
    }
}

#[cfg(test)]
mod tests;
