//! The delivery worker of one adapter: consume its queue, hand each message to the sink, then settle it.
//!
//! Settling is always "publish the next place first, then ack": success is recorded in the state store and
//! acked; a transient failure is republished (confirmed) to the retry tier whose TTL matches the route's
//! backoff, then acked; a permanent failure or a spent budget is republished to the dead-letter exchange with
//! the reason, then acked. If that publish fails the delivery is rejected back into its queue. So a message is
//! always in exactly one of: its work queue, a retry tier, the dead-letter queue, or delivered.
//! Concurrency per adapter is bounded by `bus.prefetch`; waiting for retries happens in RabbitMQ, never here.

use crate::adapter::{Delivery, ErrorClass, Sink};
use crate::broker::Broker;
use crate::broker::Incoming;
use crate::broker::topology::Names;
use crate::context::InFlight as Busy;
use crate::evidence::{Event, Kind};
use crate::live::Live;
use crate::message::{now_rfc3339, trace_id};
use crate::router::Router;
use crate::state::StateStore;
use crate::wire::AdapterCopy;
use futures::FutureExt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The sink a worker delivers with; a reload that changes the adapter's options puts a new one in.
pub(super) type SinkSlot = Arc<RwLock<Arc<dyn Sink>>>;

/// What one adapter's delivery worker needs.
pub(super) struct Worker {
    pub adapter: String,
    /// The adapter's metric handles.
    pub meters: super::meters::Meters,
    pub sink: SinkSlot,
    pub broker: Broker,
    pub state: StateStore,
    pub names: Names,
    /// The routes' retry policies and the declared retry tiers in force.
    pub live: Live,
    /// The routes when the worker started: the retry policy of a copy whose route a reload removed since.
    pub routes_at_start: Router,
    pub in_flight: Busy,
    pub prefetch: u16,
    pub publish_timeout: Duration,
    /// How long a shutdown waits for deliveries in progress.
    pub grace: Duration,
    /// Ordered partition queues of this adapter (`[[routes]] order_by`); 0 when no ordered route reaches it.
    pub partitions: u16,
}

/// Marks (adapter, sender, id) as being delivered by this process; a second copy waits for the first to finish, so
/// its `was_delivered` check sees the first one's outcome.
pub(super) struct InFlight<'a> {
    busy: &'a Busy,
    key: (String, String, String),
}

impl<'a> InFlight<'a> {
    pub(super) async fn claim(
        busy: &'a Busy,
        adapter: &str,
        sender: &str,
        id: &str,
    ) -> InFlight<'a> {
        let key = (adapter.to_owned(), sender.to_owned(), id.to_owned());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if busy.lock().expect("lock").insert(key.clone()) || Instant::now() > deadline {
                return InFlight { busy, key };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.busy.lock().expect("lock").remove(&self.key);
    }
}

/// Logs and counts an evidence record that could not be written (what it records happened regardless).
pub(super) fn evidence_failed(r: Result<(), crate::state::StateError>) {
    if let Err(e) = r {
        metrics::counter!("lienthong_evidence_failures_total").increment(1);
        tracing::error!(error = %e, "An evidence record could not be written");
    }
}

/// Picks the declared tier for a wanted delay: the smallest tier at least as long, else the longest.
pub(super) fn pick_tier(tiers: &[Duration], wanted: Duration) -> Option<Duration> {
    tiers
        .iter()
        .copied()
        .find(|t| *t >= wanted)
        .or_else(|| tiers.last().copied())
}

pub(super) async fn handle(w: &Worker, incoming: Incoming) {
    let sink = w.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
    let copy = match AdapterCopy::from_envelope(&incoming.envelope, &incoming.routing_key) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Malformed message in a delivery queue; dead-lettering it");
            let _ = incoming.acker.reject(false).await; // → <namespace>.dead → parking lot
            return;
        }
    };
    // Ids are chosen by agencies: a message is named by its sender and its id together, everywhere.
    let (id, sender) = (&copy.message.meta.id, &copy.message.meta.from);
    let adapter = &copy.adapter;
    let _guard = InFlight::claim(&w.in_flight, adapter, sender, id).await;
    match w.state.was_delivered(adapter, sender, id).await {
        Ok(true) => {
            tracing::info!(id = %id, trace_id = %trace_id(&copy.traceparent), from = %sender, adapter = %adapter, "Already delivered; dropping the duplicate copy");
            w.meters.deduplicated.increment(1);
            let _ = incoming.acker.ack().await;
            return;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "State store unavailable; returning the message to its queue");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = incoming.acker.reject(true).await;
            return;
        }
    }
    let attempt = copy.attempts + 1;
    let err = match try_once(w, sink.as_ref(), &copy).await {
        Tried::Delivered => {
            let _ = incoming.acker.ack().await;
            return;
        }
        // A sink that panics must not take the message with it: the delivery goes back to its queue, and the
        // quorum queue's delivery limit dead-letters it if it keeps crashing (reason `delivery_limit`).
        Tried::Crashed => {
            tracing::error!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, "The adapter crashed delivering this message; returning it to its queue");
            let _ = incoming.acker.reject(true).await;
            return;
        }
        Tried::Failed(e) => e,
    };
    let now = now_rfc3339();
    let next = after_failure(&copy, &err, &now);
    let live = w.live.current();
    let policy = policy_of(w, &copy.route);
    let retry_in = match err.class {
        ErrorClass::Transient => policy
            .delay_before_retry(attempt)
            .map(|d| d.max(err.retry_after.unwrap_or_default()))
            .and_then(|d| pick_tier(&live.retry_tiers, d)),
        ErrorClass::Permanent => None,
    };
    let (exchange, env) = match retry_in {
        Some(tier) => {
            tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, attempt, error = %err.reason, retry_in = ?tier, "Delivery failed; will retry");
            w.meters.retries.increment(1);
            w.meters.route_retried.get(&copy.route).increment(1);
            (w.names.retry_tier(tier), next.to_envelope())
        }
        None => {
            let reason = match err.class {
                ErrorClass::Permanent => "permanent_error",
                ErrorClass::Transient => "retries_exhausted",
            };
            tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, attempt, error = %err.reason, reason, "Delivery failed; dead-lettering");
            w.meters.dead_lettered(reason).increment(1);
            w.meters.route_dead_lettered.get(&copy.route).increment(1);
            (w.names.dead_exchange(), next.to_dead_letter(reason, &now))
        }
    };
    match w
        .broker
        .publish(&exchange, adapter, &env, w.publish_timeout)
        .await
    {
        Ok(()) => {
            // A dead letter's record is written when it is parked (runtime/dlq.rs), whoever dead-lettered it.
            if let Some(tier) = retry_in {
                let mut event = Event::new(Kind::Retried, sender, id)
                    .with("adapter", adapter.clone())
                    .with("route", copy.route.clone())
                    .with("attempt", attempt)
                    .with("error", err.reason.clone())
                    .with(
                        "retry_in_ms",
                        u64::try_from(tier.as_millis()).unwrap_or(u64::MAX),
                    );
                if let Some(status) = err.status {
                    event = event.with("receiver_status", status);
                }
                evidence_failed(w.state.record(event).await);
            }
            let _ = incoming.acker.ack().await;
        }
        Err(e) => {
            tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), error = %e, "Could not move the message on; returning it to its queue");
            let _ = incoming.acker.reject(true).await;
        }
    }
}

/// The retry policy of the route a copy was accepted with: as the config in force has it, or as it was when
/// this worker started if a reload removed it since.
pub(super) fn policy_of(w: &Worker, route: &str) -> crate::config::RetryPolicy {
    let live = w.live.current();
    if live.router.has_route(route) {
        live.router.retry_policy(route)
    } else {
        w.routes_at_start.retry_policy(route)
    }
}

/// What one attempt came to.
pub(super) enum Tried {
    /// Delivered and recorded (`mark_delivered`); ack it.
    Delivered,
    /// The sink refused or failed it.
    Failed(crate::adapter::DeliveryError),
    /// The sink panicked (counted in `lienthong_adapter_panics_total`).
    Crashed,
}

/// One delivery attempt of `copy` (attempt number `copy.attempts + 1`): the sink's call, timed; a success is
/// recorded in the state store before the caller acks.
pub(super) async fn try_once(w: &Worker, sink: &dyn Sink, copy: &AdapterCopy) -> Tried {
    let (id, sender, adapter) = (
        &copy.message.meta.id,
        &copy.message.meta.from,
        &copy.adapter,
    );
    let attempt = copy.attempts + 1;
    let delivery = Delivery {
        message: copy.message.clone(),
        route: copy.route.clone(),
        adapter: adapter.clone(),
        attempt,
        traceparent: copy.traceparent.clone(),
    };
    let started = Instant::now();
    let result = match std::panic::AssertUnwindSafe(sink.deliver(&delivery))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            w.meters.panics.increment(1);
            return Tried::Crashed;
        }
    };
    w.meters.seconds.record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            // The delivery mark and the evidence record go into the same group commit. Without `[evidence]`
            // the record is not even made (a dozen allocations a delivery).
            let evidence = async {
                if !w.state.evidence_on() {
                    return Ok(());
                }
                let event = Event::new(Kind::Delivered, sender, id)
                    .with("adapter", adapter.clone())
                    .with("route", copy.route.clone())
                    .with("attempt", attempt)
                    .with("receiver_status", "accepted");
                w.state.record(event).await
            };
            let (marked, evidenced) =
                tokio::join!(w.state.mark_delivered(adapter, sender, id), evidence);
            if let Err(e) = marked {
                tracing::error!(id = %id, trace_id = %trace_id(&copy.traceparent), error = %e, "Delivered, but could not record it; a redelivery may repeat it");
            }
            evidence_failed(evidenced);
            w.meters.delivered.increment(1);
            w.meters.route_delivered.get(&copy.route).increment(1);
            tracing::info!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, attempt, "Delivered");
            Tried::Delivered
        }
        Err(e) => Tried::Failed(e),
    }
}

/// The copy after a failed attempt: one more attempt counted, and what went wrong.
pub(super) fn after_failure(
    copy: &AdapterCopy,
    err: &crate::adapter::DeliveryError,
    now: &str,
) -> AdapterCopy {
    let mut next = copy.clone();
    next.attempts = copy.attempts + 1;
    next.first_attempt_at.get_or_insert_with(|| now.to_owned());
    next.last_attempt_at = Some(now.to_owned());
    next.last_error = Some(err.reason.clone());
    next.last_status = err.status;
    next.body_excerpt = err.body_excerpt.clone();
    next
}

#[cfg(test)]
mod tests {
    use super::pick_tier;
    use std::time::Duration;

    #[test]
    fn picks_the_smallest_sufficient_tier() {
        let s = Duration::from_secs;
        let tiers = [s(1), s(10), s(60)];
        assert_eq!(pick_tier(&tiers, s(1)), Some(s(1)));
        assert_eq!(pick_tier(&tiers, s(7)), Some(s(10)));
        assert_eq!(pick_tier(&tiers, s(3600)), Some(s(60)));
        assert_eq!(pick_tier(&[], s(1)), None);
    }
}
