//! Every exchange, queue and binding the bus declares, as data.
//!
//! Building the topology as a value (rather than a sequence of declare calls) lets the AMQP broker re-declare
//! exactly the same thing after a reconnect, lets the memory broker mirror it, and lets ARCHITECTURE.md and the
//! admin API list it. Names are all under `<namespace>.`; see [`Names`].

use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeDecl {
    pub name: String,
    pub kind: ExchangeKind,
}

/// A durable queue and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueDecl {
    pub name: String,
    /// `x-queue-type = quorum` (always true for the bus's own queues).
    pub quorum: bool,
    /// `x-message-ttl`: messages expire (and dead-letter) after this long.
    pub message_ttl: Option<Duration>,
    /// `x-dead-letter-exchange`.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`; None keeps the message's own routing key.
    pub dead_letter_routing_key: Option<String>,
    /// `x-delivery-limit`: after this many failed deliveries the message is dead-lettered.
    pub delivery_limit: Option<u32>,
    /// `x-quorum-initial-group-size` (quorum queues only): on how many cluster nodes the queue is replicated
    /// when created; None leaves it to RabbitMQ (every node). From `[bus] quorum_size`.
    pub initial_group_size: Option<u32>,
    /// `x-single-active-consumer`: one consumer at a time receives, across every connection (the ordered
    /// partition queues).
    pub single_active_consumer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingDecl {
    pub queue: String,
    pub exchange: String,
    pub routing_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    pub exchanges: Vec<ExchangeDecl>,
    pub queues: Vec<QueueDecl>,
    pub bindings: Vec<BindingDecl>,
}

impl Topology {
    /// Adds what `more` declares that this does not yet (a reload's new adapters and retry tiers).
    pub fn merge(&mut self, more: &Topology) {
        for e in &more.exchanges {
            if !self.exchanges.contains(e) {
                self.exchanges.push(e.clone());
            }
        }
        for q in &more.queues {
            if !self.queues.iter().any(|have| have.name == q.name) {
                self.queues.push(q.clone());
            }
        }
        for b in &more.bindings {
            if !self.bindings.contains(b) {
                self.bindings.push(b.clone());
            }
        }
    }

    /// Adds the queues of pull mailboxes (`type = "mailbox"`): like a sink's work queue and dead-letter queue,
    /// but without `x-delivery-limit`, because a mailbox's deliveries go back to the queue each time the bus
    /// holding them restarts, which is no sign of a poisonous message.
    pub fn with_mailboxes(mut self, names: &Names, mailboxes: &[String]) -> Self {
        for a in mailboxes {
            self.queues.push(QueueDecl {
                name: names.deliver_queue(a),
                quorum: true,
                dead_letter_exchange: Some(names.dead_exchange()),
                ..Default::default()
            });
            self.bindings.push(BindingDecl {
                queue: names.deliver_queue(a),
                exchange: names.deliver_exchange(),
                routing_key: a.clone(),
            });
            self.queues.push(QueueDecl {
                name: names.dead_queue(a),
                quorum: true,
                ..Default::default()
            });
            self.bindings.push(BindingDecl {
                queue: names.dead_queue(a),
                exchange: names.dead_exchange(),
                routing_key: a.clone(),
            });
        }
        self
    }

    /// Sets `x-quorum-initial-group-size` on every quorum queue (`[bus] quorum_size`; None: RabbitMQ's
    /// default).
    pub fn with_quorum_size(mut self, size: Option<u32>) -> Self {
        for q in self.queues.iter_mut().filter(|q| q.quorum) {
            q.initial_group_size = size;
        }
        self
    }
}

impl Topology {
    /// Adds the order exchange and the partition queues of each ordered adapter (adapter id → partition
    /// count, [`crate::order::ordered_adapters`]) that has a sink (`sink_adapters`).
    pub fn with_order(
        mut self,
        names: &Names,
        sink_adapters: &[String],
        ordered: &std::collections::BTreeMap<String, u16>,
        delivery_limit: u32,
    ) -> Self {
        let ordered: Vec<(&String, &u16)> = ordered
            .iter()
            .filter(|(a, _)| sink_adapters.contains(a))
            .collect();
        if ordered.is_empty() {
            return self;
        }
        self.exchanges.push(ExchangeDecl {
            name: names.order_exchange(),
            kind: ExchangeKind::Direct,
        });
        for (a, n) in ordered {
            for p in 0..*n {
                self.queues.push(QueueDecl {
                    name: names.order_queue(a, p),
                    quorum: true,
                    single_active_consumer: true,
                    dead_letter_exchange: Some(names.dead_exchange()),
                    // The dead-letter exchange is bound by adapter id, not by partition.
                    dead_letter_routing_key: Some(a.clone()),
                    delivery_limit: Some(delivery_limit),
                    ..Default::default()
                });
                self.bindings.push(BindingDecl {
                    queue: names.order_queue(a, p),
                    exchange: names.order_exchange(),
                    routing_key: names.order_routing_key(a, p),
                });
            }
        }
        self
    }
}

/// The names of everything under one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub namespace: String,
}

impl Names {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }
    /// Fanout exchange agencies publish envelopes to.
    pub fn ingress_exchange(&self) -> String {
        format!("{}.ingress", self.namespace)
    }
    /// Queue the bus consumes AMQP ingress from.
    pub fn ingress_queue(&self) -> String {
        format!("{}.ingress", self.namespace)
    }
    /// Queue of refused AMQP ingress messages (error JSON in header `x-lt-error`).
    pub fn rejected_queue(&self) -> String {
        format!("{}.rejected", self.namespace)
    }
    /// Direct exchange of accepted copies; routing key = adapter id.
    pub fn deliver_exchange(&self) -> String {
        format!("{}.deliver", self.namespace)
    }
    /// Work queue of one adapter.
    pub fn deliver_queue(&self, adapter: &str) -> String {
        format!("{}.deliver.{adapter}", self.namespace)
    }
    /// Direct exchange of dead letters; routing key = adapter id.
    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.namespace)
    }
    /// Dead-letter queue of one adapter (drained into the parking lot by the bus).
    pub fn dead_queue(&self, adapter: &str) -> String {
        format!("{}.dlq.{adapter}", self.namespace)
    }
    /// Direct exchange of ordered copies; routing key = [`Names::order_routing_key`].
    pub fn order_exchange(&self) -> String {
        format!("{}.order", self.namespace)
    }
    /// Partition queue `partition` of an ordered adapter (single active consumer).
    pub fn order_queue(&self, adapter: &str, partition: u16) -> String {
        format!("{}.order.{adapter}.{partition}", self.namespace)
    }
    /// Routing key of partition `partition` of `adapter` on the order exchange. The partition is the last
    /// dot-separated part and a number, so two adapters' keys never meet even when ids contain dots.
    pub fn order_routing_key(&self, adapter: &str, partition: u16) -> String {
        format!("{adapter}.{partition}")
    }
    /// Fanout exchange and TTL queue of one retry delay tier.
    pub fn retry_tier(&self, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.namespace, delay.as_millis())
    }
}

/// Builds the whole topology for the given adapters (those with a sink) and retry delays.
/// The retry delays the routes of `config` use: one TTL tier queue each. A backoff of `0s` means "as soon as
/// possible", which is the shortest tier, 1 s (a quorum queue cannot hold a message for no time).
pub fn retry_tiers(config: &crate::config::Config) -> BTreeSet<Duration> {
    config
        .routes
        .iter()
        .filter(|r| r.retry.attempts > 0)
        .flat_map(|r| r.retry.backoff.iter().map(|d| d.get()))
        .map(|d| d.max(SHORTEST_TIER))
        .collect()
}

/// The shortest retry tier: what a backoff of `0s` waits.
pub const SHORTEST_TIER: Duration = Duration::from_secs(1);

pub fn build(
    names: &Names,
    sink_adapters: &[String],
    retry_delays: &BTreeSet<Duration>,
    delivery_limit: u32,
) -> Topology {
    let mut t = Topology::default();
    let quorum = |name: String| QueueDecl {
        name,
        quorum: true,
        ..Default::default()
    };
    t.exchanges.push(ExchangeDecl {
        name: names.ingress_exchange(),
        kind: ExchangeKind::Fanout,
    });
    t.queues.push(quorum(names.ingress_queue()));
    t.bindings.push(BindingDecl {
        queue: names.ingress_queue(),
        exchange: names.ingress_exchange(),
        routing_key: String::new(),
    });
    t.queues.push(quorum(names.rejected_queue()));
    t.exchanges.push(ExchangeDecl {
        name: names.deliver_exchange(),
        kind: ExchangeKind::Direct,
    });
    t.exchanges.push(ExchangeDecl {
        name: names.dead_exchange(),
        kind: ExchangeKind::Direct,
    });
    for a in sink_adapters {
        t.queues.push(QueueDecl {
            dead_letter_exchange: Some(names.dead_exchange()),
            delivery_limit: Some(delivery_limit),
            ..quorum(names.deliver_queue(a))
        });
        t.bindings.push(BindingDecl {
            queue: names.deliver_queue(a),
            exchange: names.deliver_exchange(),
            routing_key: a.clone(),
        });
        t.queues.push(quorum(names.dead_queue(a)));
        t.bindings.push(BindingDecl {
            queue: names.dead_queue(a),
            exchange: names.dead_exchange(),
            routing_key: a.clone(),
        });
    }
    for d in retry_delays {
        let tier = names.retry_tier(*d);
        t.exchanges.push(ExchangeDecl {
            name: tier.clone(),
            kind: ExchangeKind::Fanout,
        });
        t.queues.push(QueueDecl {
            message_ttl: Some(*d),
            dead_letter_exchange: Some(names.deliver_exchange()),
            ..quorum(tier.clone())
        });
        t.bindings.push(BindingDecl {
            queue: tier.clone(),
            exchange: tier,
            routing_key: String::new(),
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: &str) -> crate::config::Config {
        let text = format!(
            "[bus]\nnamespace = \"t\"\n[[adapters]]\nid = \"a\"\ntype = \"file-out\"\npath = \"out\"\n{routes}"
        );
        crate::config::Config::parse(std::path::Path::new("bus.toml"), &text).expect("config")
    }

    #[test]
    fn a_zero_backoff_waits_the_shortest_tier() {
        let c = config(
            "[[routes]]\nid = \"r\"\ntypes = [\"t\"]\ndeliver = [\"a\"]\nretry = { attempts = 2, backoff = [\"0s\", \"2s\"] }\n",
        );
        let tiers = retry_tiers(&c);
        assert_eq!(
            tiers,
            BTreeSet::from([Duration::from_secs(1), Duration::from_secs(2)])
        );
        // No route retries: no tiers at all.
        let none = config(
            "[[routes]]\nid = \"r\"\ntypes = [\"t\"]\ndeliver = [\"a\"]\nretry = { attempts = 0 }\n",
        );
        assert!(retry_tiers(&none).is_empty());
    }

    #[test]
    fn quorum_size_goes_on_every_quorum_queue_only() {
        let names = Names::new("qs");
        let tiers = BTreeSet::from([Duration::from_secs(5)]);
        let t = build(&names, &["a".into()], &tiers, 20);
        assert!(t.queues.iter().all(|q| q.initial_group_size.is_none()));
        let mut t = t.with_quorum_size(Some(3));
        assert!(t.queues.iter().all(|q| q.initial_group_size == Some(3)));
        t.queues.push(QueueDecl {
            name: "classic".into(),
            ..Default::default()
        });
        let t = t.with_quorum_size(Some(2));
        let classic = t.queues.iter().find(|q| q.name == "classic").unwrap();
        assert_eq!(classic.initial_group_size, None);
    }
}
