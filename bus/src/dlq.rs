//! Governed replay and purge of parked messages (the parking lot itself is in the state store; the runtime's
//! recorder fills it).
//!
//! A replay keeps the message id, starts a fresh attempt budget, and is recorded in the audit log with who did
//! it; a compare-and-set on the row's state means two operators cannot replay it twice. Usable from the running
//! bus (admin API) and from the CLI alone (`lienthong dlq`).

use crate::broker::Broker;
use crate::broker::topology::Names;
use crate::error::{ApiError, code};
use crate::evidence::{Event, Kind};
use crate::state::{DlqEntry, StateStore};
use crate::wire;
use std::time::Duration;

/// Which parked messages an operator action is about. With an `id`, `from` picks the sender's message when
/// several agencies used the same id (an action on such an id without `from` is refused as ambiguous).
#[derive(Debug, Clone, Copy, Default)]
pub struct Select<'a> {
    pub id: Option<&'a str>,
    pub adapter: Option<&'a str>,
    pub from: Option<&'a str>,
}

/// Refuses to act on an id that names the messages of several senders: the operator must say whose.
pub fn ambiguous(id: &str, entries: &[DlqEntry]) -> Result<(), ApiError> {
    let mut senders: Vec<&str> = entries.iter().map(|e| e.from.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    if senders.len() > 1 {
        return Err(ApiError::new(
            code::CONFLICT,
            format!(
                "id `{id}` names parked messages of several senders ({}); say whose with `from`",
                senders.join(", ")
            ),
        )
        .at("/from", "required when several senders used this id"));
    }
    Ok(())
}

/// What replay and purge need; usable from the running bus and from the CLI alone.
pub struct Ops<'a> {
    pub broker: &'a Broker,
    pub state: &'a StateStore,
    pub names: &'a Names,
    pub publish_timeout: Duration,
}

/// Result of a replay or purge of one parked message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub id: String,
    /// The sender of the message (ids are scoped by sender).
    pub from: String,
    pub adapter: String,
    pub done: bool,
    pub message: String,
}

impl Ops<'_> {
    /// The parked entries an action names: one id (of one sender when several senders used it), or all
    /// (of one adapter, of one sender).
    async fn select(&self, which: &Select<'_>) -> Result<Vec<DlqEntry>, ApiError> {
        let Select { id, adapter, from } = *which;
        match id {
            Some(id) => {
                let v = self.state.dlq_get(id, adapter, from).await?;
                if v.is_empty() {
                    return Err(ApiError::new(
                        code::NOT_FOUND,
                        format!(
                            "no parked message with id `{id}`{}{}",
                            from.map(|f| format!(" from {f}")).unwrap_or_default(),
                            adapter
                                .map(|a| format!(" for adapter `{a}`"))
                                .unwrap_or_default()
                        ),
                    ));
                }
                ambiguous(id, &v)?;
                Ok(v)
            }
            None => {
                let list = self.state.dlq_list(adapter).await?;
                let mut out = Vec::with_capacity(list.len());
                for e in list.iter().filter(|e| from.is_none_or(|f| e.from == f)) {
                    out.extend(
                        self.state
                            .dlq_get(&e.id, Some(&e.adapter), Some(&e.from))
                            .await?,
                    );
                }
                Ok(out)
            }
        }
    }

    /// Appends an operator action on a parked message to the evidence log.
    async fn evidence(&self, kind: Kind, e: &DlqEntry, actor: &str) {
        let event = Event::new(kind, &e.from, &e.id)
            .with("adapter", e.adapter.clone())
            .with("actor", actor)
            .with("reason_was", e.reason.clone());
        if let Err(err) = self.state.record(event).await {
            metrics::counter!("lienthong_evidence_failures_total").increment(1);
            tracing::error!(error = %err, "The evidence record of an operator action could not be written");
        }
    }

    /// Sends parked messages back to their adapter's work queue with a fresh attempt budget.
    pub async fn replay(&self, which: &Select<'_>, actor: &str) -> Result<Vec<Outcome>, ApiError> {
        let mut out = Vec::new();
        for entry in self.select(which).await? {
            out.push(self.replay_one(&entry, actor).await);
        }
        Ok(out)
    }

    async fn replay_one(&self, e: &DlqEntry, actor: &str) -> Outcome {
        let outcome = |done, message: String| Outcome {
            id: e.id.clone(),
            from: e.from.clone(),
            adapter: e.adapter.clone(),
            done,
            message,
        };
        match self
            .state
            .dlq_set_state(&e.adapter, &e.from, &e.id, "parked", "replayed")
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return outcome(false, "already replayed or purged by someone else".into());
            }
            Err(err) => return outcome(false, format!("state store: {err}")),
        }
        let env = wire::dead::replay(e);
        let exchange = self.names.deliver_exchange();
        // An ordered message goes back into its partition, behind what its key holds now; if that partition
        // no longer exists (order_partitions changed, or the route is no longer ordered), to the adapter's
        // unordered queue.
        let ordered = match env.header_int(wire::ORDER_PARTITION) {
            Some(p) if env.header_str(wire::ORDER_KEY).is_some() => {
                let rk = self
                    .names
                    .order_routing_key(&e.adapter, u16::try_from(p).unwrap_or(u16::MAX));
                self.broker
                    .publish(
                        &self.names.order_exchange(),
                        &rk,
                        &env,
                        self.publish_timeout,
                    )
                    .await
            }
            _ => Err(crate::broker::BrokerError::Unroutable(String::new())),
        };
        let published = match ordered {
            Err(crate::broker::BrokerError::Unroutable(_)) => {
                self.broker
                    .publish(&exchange, &e.adapter, &env, self.publish_timeout)
                    .await
            }
            other => other,
        };
        if let Err(err) = published {
            let _ = self
                .state
                .dlq_set_state(&e.adapter, &e.from, &e.id, "replayed", "parked")
                .await;
            return outcome(false, format!("not replayed: {err}"));
        }
        let _ = self
            .state
            .audit(
                actor,
                "replay",
                &e.adapter,
                &e.from,
                &e.id,
                &format!("reason was {}", e.reason),
            )
            .await;
        self.evidence(Kind::Replayed, e, actor).await;
        tracing::info!(id = %e.id, adapter = %e.adapter, actor, "Replayed from the dead-letter queue");
        outcome(true, "replayed".into())
    }

    /// Removes parked messages for good (recorded in the audit log).
    pub async fn purge(&self, which: &Select<'_>, actor: &str) -> Result<Vec<Outcome>, ApiError> {
        let mut out = Vec::new();
        for e in self.select(which).await? {
            let done = matches!(
                self.state
                    .dlq_set_state(&e.adapter, &e.from, &e.id, "parked", "purged")
                    .await,
                Ok(true)
            );
            if done {
                let _ = self
                    .state
                    .audit(
                        actor,
                        "purge",
                        &e.adapter,
                        &e.from,
                        &e.id,
                        &format!("reason was {}", e.reason),
                    )
                    .await;
                self.evidence(Kind::Purged, &e, actor).await;
            }
            out.push(Outcome {
                id: e.id.clone(),
                from: e.from.clone(),
                adapter: e.adapter.clone(),
                done,
                message: if done {
                    "purged".into()
                } else {
                    "already replayed or purged".into()
                },
            });
        }
        Ok(out)
    }
}
