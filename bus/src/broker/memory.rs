//! The embedded, in-process broker behind `broker_url = "memory://"`.
//!
//! It exists so a newcomer can run the whole bus with nothing installed, and so business-logic tests can run
//! without RabbitMQ. It mirrors the parts of RabbitMQ the runtime relies on — direct and fanout exchanges, the
//! default exchange, mandatory publishes, per-consumer prefetch, reject/requeue with a delivery limit, TTL queues
//! that dead-letter, `x-death` reasons — but holds everything in memory: NOT durable. The broker path of the
//! product is tested against real RabbitMQ.

use super::topology::{ExchangeKind, QueueDecl, Topology};
use super::{Acker, BrokerError, Envelope, HeaderValue, Incoming};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

#[derive(Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    exchanges: HashMap<String, (ExchangeKind, Vec<(String, String)>)>,
    queues: HashMap<String, Arc<MemQueue>>,
}

struct MemQueue {
    decl: QueueDecl,
    items: Mutex<VecDeque<Item>>,
    notify: Notify,
}

#[derive(Clone)]
struct Item {
    exchange: String,
    routing_key: String,
    envelope: Envelope,
    delivery_count: u32,
    redelivered: bool,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the topology (idempotent).
    pub fn declare(&self, t: &Topology) {
        let mut s = self.inner.lock().expect("memory broker lock");
        for e in &t.exchanges {
            s.exchanges
                .entry(e.name.clone())
                .or_insert_with(|| (e.kind, Vec::new()));
        }
        for q in &t.queues {
            s.queues.entry(q.name.clone()).or_insert_with(|| {
                Arc::new(MemQueue {
                    decl: q.clone(),
                    items: Mutex::new(VecDeque::new()),
                    notify: Notify::new(),
                })
            });
        }
        for b in &t.bindings {
            if let Some((_, binds)) = s.exchanges.get_mut(&b.exchange) {
                let pair = (b.routing_key.clone(), b.queue.clone());
                if !binds.contains(&pair) {
                    binds.push(pair);
                }
            }
        }
    }

    fn targets(&self, exchange: &str, routing_key: &str) -> Vec<Arc<MemQueue>> {
        let s = self.inner.lock().expect("memory broker lock");
        if exchange.is_empty() {
            return s.queues.get(routing_key).cloned().into_iter().collect();
        }
        let Some((kind, binds)) = s.exchanges.get(exchange) else {
            return Vec::new();
        };
        binds
            .iter()
            .filter(|(rk, _)| *kind == ExchangeKind::Fanout || rk == routing_key)
            .filter_map(|(_, q)| s.queues.get(q).cloned())
            .collect()
    }

    /// Routes and enqueues; `Unroutable` when no queue matches (as a returned mandatory publish).
    pub fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: Envelope,
    ) -> Result<(), BrokerError> {
        let targets = self.targets(exchange, routing_key);
        if targets.is_empty() {
            return Err(BrokerError::Unroutable(format!(
                "no queue bound to exchange `{exchange}` with routing key `{routing_key}`"
            )));
        }
        for q in targets {
            self.enqueue(
                &q,
                Item {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                    envelope: envelope.clone(),
                    delivery_count: 0,
                    redelivered: false,
                },
            );
        }
        Ok(())
    }

    fn enqueue(&self, q: &Arc<MemQueue>, item: Item) {
        if let Some(ttl) = q.decl.message_ttl {
            // A TTL queue has no consumers in our topology: the message waits, then dead-letters.
            let this = self.clone();
            let q = q.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ttl).await;
                this.dead_letter(&q, item, "expired");
            });
            return;
        }
        q.items.lock().expect("queue lock").push_back(item);
        q.notify.notify_one();
    }

    fn requeue_front(&self, q: &Arc<MemQueue>, mut item: Item) {
        item.delivery_count += 1;
        item.redelivered = true;
        if let Some(limit) = q.decl.delivery_limit
            && item.delivery_count > limit
        {
            self.dead_letter(q, item, "delivery_limit");
            return;
        }
        q.items.lock().expect("queue lock").push_front(item);
        q.notify.notify_one();
    }

    fn dead_letter(&self, q: &Arc<MemQueue>, mut item: Item, reason: &str) {
        let Some(dlx) = q.decl.dead_letter_exchange.clone() else {
            return; // RabbitMQ drops it too; the bus's own queues always have a DLX where it matters.
        };
        let rk = q
            .decl
            .dead_letter_routing_key
            .clone()
            .unwrap_or_else(|| item.routing_key.clone());
        let h = &mut item.envelope.headers;
        h.insert(
            "x-death-last-reason".into(),
            HeaderValue::Str(reason.into()),
        );
        h.insert(
            "x-death-last-queue".into(),
            HeaderValue::Str(q.decl.name.clone()),
        );
        h.entry("x-first-death-reason".into())
            .or_insert(HeaderValue::Str(reason.into()));
        let _ = self.publish(&dlx, &rk, item.envelope);
    }

    /// Consumes `queue` with at most `prefetch` unsettled deliveries.
    pub fn consume(&self, queue: &str, prefetch: u16) -> Result<MemConsumer, BrokerError> {
        let q = self
            .inner
            .lock()
            .expect("memory broker lock")
            .queues
            .get(queue)
            .cloned()
            .ok_or_else(|| BrokerError::Topology(format!("no queue `{queue}`")))?;
        Ok(MemConsumer {
            broker: self.clone(),
            queue: q,
            permits: Arc::new(Semaphore::new(prefetch.max(1) as usize)),
        })
    }

    pub fn queue_depth(&self, queue: &str) -> Option<u32> {
        let s = self.inner.lock().expect("memory broker lock");
        s.queues
            .get(queue)
            .map(|q| q.items.lock().expect("queue lock").len() as u32)
    }
}

pub struct MemConsumer {
    broker: MemoryBroker,
    queue: Arc<MemQueue>,
    permits: Arc<Semaphore>,
}

impl MemConsumer {
    pub async fn next(&mut self) -> Option<Incoming> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        loop {
            let notified = self.queue.notify.notified();
            let popped = self.queue.items.lock().expect("queue lock").pop_front();
            if let Some(item) = popped {
                return Some(Incoming {
                    exchange: item.exchange.clone(),
                    routing_key: item.routing_key.clone(),
                    redelivered: item.redelivered,
                    envelope: item.envelope.clone(),
                    acker: Acker::Memory(MemAcker {
                        broker: self.broker.clone(),
                        queue: self.queue.clone(),
                        item: Mutex::new(Some(item)),
                        _permit: permit,
                    }),
                });
            }
            notified.await;
        }
    }

    pub fn close(self) {
        self.permits.close();
    }
}

/// Settles one in-memory delivery; dropping it unsettled requeues the message.
pub struct MemAcker {
    broker: MemoryBroker,
    queue: Arc<MemQueue>,
    item: Mutex<Option<Item>>,
    _permit: OwnedSemaphorePermit,
}

impl MemAcker {
    fn take(&self) -> Option<Item> {
        self.item.lock().expect("acker lock").take()
    }
    pub fn ack(&self) {
        self.take();
    }
    pub fn reject(&self, requeue: bool) {
        if let Some(item) = self.take() {
            if requeue {
                self.broker.requeue_front(&self.queue, item);
            } else {
                self.broker.dead_letter(&self.queue, item, "rejected");
            }
        }
    }
}

impl Drop for MemAcker {
    fn drop(&mut self) {
        if let Some(item) = self.take() {
            self.broker.requeue_front(&self.queue, item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::topology::{Names, build};
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn env(body: &'static str) -> Envelope {
        Envelope {
            body: bytes::Bytes::from_static(body.as_bytes()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn routes_by_adapter_and_refuses_unroutable() {
        let b = MemoryBroker::new();
        let n = Names::new("t");
        b.declare(&build(&n, &["a".into(), "b".into()], &BTreeSet::new(), 3));
        b.publish(&n.deliver_exchange(), "a", env("1")).unwrap();
        assert_eq!(b.queue_depth(&n.deliver_queue("a")), Some(1));
        assert_eq!(b.queue_depth(&n.deliver_queue("b")), Some(0));
        assert!(matches!(
            b.publish(&n.deliver_exchange(), "zzz", env("x")),
            Err(BrokerError::Unroutable(_))
        ));
    }

    #[tokio::test]
    async fn delivery_limit_dead_letters_and_ttl_tiers_return_messages() {
        let b = MemoryBroker::new();
        let n = Names::new("t");
        let delay = Duration::from_millis(20);
        b.declare(&build(&n, &["a".into()], &BTreeSet::from([delay]), 1));
        b.publish(&n.deliver_exchange(), "a", env("m")).unwrap();
        let mut c = b.consume(&n.deliver_queue("a"), 1).unwrap();
        for _ in 0..2 {
            let d = c.next().await.unwrap();
            d.acker.reject(true).await.unwrap();
        }
        assert_eq!(b.queue_depth(&n.dead_queue("a")), Some(1));
        let mut dead = b.consume(&n.dead_queue("a"), 1).unwrap();
        let d = dead.next().await.unwrap();
        assert_eq!(
            d.envelope.header_str("x-death-last-reason"),
            Some("delivery_limit")
        );
        d.acker.ack().await.unwrap();

        // A retry tier sends the message back to the work queue after its TTL.
        b.publish(&n.retry_tier(delay), "a", env("again")).unwrap();
        let back = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back.envelope.body[..], b"again");
        assert_eq!(
            back.envelope.header_str("x-death-last-reason"),
            Some("expired")
        );
    }

    #[tokio::test]
    async fn dropped_unsettled_delivery_is_requeued() {
        let b = MemoryBroker::new();
        let n = Names::new("t");
        b.declare(&build(&n, &["a".into()], &BTreeSet::new(), 5));
        b.publish(&n.deliver_exchange(), "a", env("keep")).unwrap();
        let mut c = b.consume(&n.deliver_queue("a"), 1).unwrap();
        drop(c.next().await.unwrap());
        let again = c.next().await.unwrap();
        assert!(again.redelivered);
    }
}
