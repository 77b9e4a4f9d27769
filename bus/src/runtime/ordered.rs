//! The consumer of one ordered partition queue (`<namespace>.order.<adapter>.<n>`, `[[routes]] order_by`):
//! per-key order with different keys in parallel.
//!
//! Why it differs from the unordered worker: there, a failed delivery moves to a retry tier and is acked,
//! so later messages overtake it — fine for independent messages, wrong for an insert and its progress
//! rows. Here RabbitMQ's single active consumer makes this process the only reader of the partition, so it
//! sees every message of a key in the order it was accepted. It keeps one chain per key: the key's first
//! message is delivered while the next ones wait in memory, unacknowledged; a failed delivery is retried
//! in place (held, its backoff slept here) so nothing of its key can overtake it; a dead-lettered one
//! releases its key. Deliveries of other keys run meanwhile (bounded by `bus.prefetch` sink calls per
//! adapter). Whatever is unacknowledged when the consumer is lost (connection, shutdown, kill -9) is
//! redelivered by RabbitMQ in queue order to the next consumer — this process after a reconnect, or
//! another one — so order holds across processes. A held message's retry history (attempts made, when the
//! next is due) is remembered by this process across its re-subscriptions (a reconnect, RabbitMQ's
//! consumer timeout), so its budget is not started over; another process starts it over from the copy's
//! `lt-attempts` as published (the queue's delivery limit still ends a message that keeps coming back).

use super::worker::{InFlight, Tried, Worker, after_failure, try_once};
use crate::adapter::ErrorClass;
use crate::broker::Incoming;
use crate::message::{now_rfc3339, trace_id};
use crate::wire::{self, AdapterCopy};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Messages waiting behind the one being delivered, per key; a key is present while its chain runs.
type Chains = Arc<Mutex<HashMap<String, VecDeque<Incoming>>>>;

/// Held messages' retry history by (sender, id): the copy after its last failure and when the next attempt
/// is due. Outlives a subscription, so a redelivered held message goes on with its budget and its backoff.
type Held = Arc<Mutex<HashMap<(String, String), (AdapterCopy, tokio::time::Instant)>>>;

/// Consumes partition `partition` of `w.adapter` until `stop`, re-subscribing after a connection loss.
pub(super) async fn run(
    w: Arc<Worker>,
    partition: u16,
    sink_calls: Arc<Semaphore>,
    stop: CancellationToken,
) {
    let queue = w.names.order_queue(&w.adapter, partition);
    let held: Held = Default::default();
    while !stop.is_cancelled() {
        let consumer = tokio::select! {
            c = w.broker.consume(&queue, w.prefetch, Duration::from_secs(5)) => c,
            _ = stop.cancelled() => break,
        };
        let mut consumer = match consumer {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(queue, error = %e, "Ordered consumer waiting for the broker");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        };
        // Everything of this subscription: when it ends, its chains stop starting attempts (what they hold
        // goes back to the queue with the channel, in order).
        let epoch = stop.child_token();
        let chains: Chains = Default::default();
        let mut tasks = JoinSet::new();
        loop {
            let next = tokio::select! {
                n = consumer.next() => n,
                _ = stop.cancelled() => None,
            };
            let incoming = match next {
                Some(Ok(i)) => i,
                Some(Err(e)) => {
                    tracing::warn!(queue, error = %e, "Ordered consumer ended; re-subscribing");
                    break;
                }
                None => break,
            };
            let key = incoming
                .envelope
                .header_str(wire::ORDER_KEY)
                .unwrap_or_default()
                .to_owned();
            let mut map = chains.lock().expect("lock");
            match map.get_mut(&key) {
                Some(waiting) => waiting.push_back(incoming),
                None => {
                    map.insert(key.clone(), VecDeque::new());
                    tasks.spawn(chain(
                        w.clone(),
                        chains.clone(),
                        held.clone(),
                        key,
                        incoming,
                        epoch.clone(),
                        sink_calls.clone(),
                    ));
                }
            }
            drop(map);
            while tasks.try_join_next().is_some() {}
        }
        epoch.cancel();
        if tokio::time::timeout(w.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                queue,
                "Ordered deliveries still running at the deadline; returning their messages to the queue"
            );
            tasks.abort_all();
        }
        consumer.close().await;
    }
}

/// Delivers one key's messages one after the other, as they arrive.
async fn chain(
    w: Arc<Worker>,
    chains: Chains,
    held: Held,
    key: String,
    first: Incoming,
    epoch: CancellationToken,
    sink_calls: Arc<Semaphore>,
) {
    let mut next = Some(first);
    while let Some(incoming) = next {
        settle(&w, incoming, &key, &held, &epoch, &sink_calls).await;
        if epoch.is_cancelled() {
            return;
        }
        let mut map = chains.lock().expect("lock");
        next = map.get_mut(&key).and_then(VecDeque::pop_front);
        if next.is_none() {
            map.remove(&key);
        }
    }
}

/// Sleeps `d`, or returns false at once when the subscription ends.
async fn pause(d: Duration, epoch: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = epoch.cancelled() => false,
    }
}

/// Delivers one message, retrying in place, until it is delivered or dead-lettered — or the subscription
/// ends (then it is left unacknowledged, for RabbitMQ to redeliver in order).
async fn settle(
    w: &Worker,
    incoming: Incoming,
    key: &str,
    held: &Held,
    epoch: &CancellationToken,
    sink_calls: &Semaphore,
) {
    let mut copy = match AdapterCopy::from_envelope(&incoming.envelope, &w.adapter) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Malformed message in an ordered queue; dead-lettering it");
            let _ = incoming.acker.reject(false).await; // → <namespace>.dead → parking lot
            return;
        }
    };
    let (id, sender) = (copy.message.meta.id.clone(), copy.message.meta.from.clone());
    let adapter = w.adapter.clone();
    let _guard = InFlight::claim(&w.in_flight, &adapter, &sender, &id).await;
    loop {
        match w.state.was_delivered(&adapter, &sender, &id).await {
            Ok(true) => {
                tracing::info!(id = %id, trace_id = %trace_id(&copy.traceparent), from = %sender, adapter = %adapter, "Already delivered; dropping the duplicate copy");
                w.meters.deduplicated.increment(1);
                held.lock()
                    .expect("lock")
                    .remove(&(sender.clone(), id.clone()));
                let _ = incoming.acker.ack().await;
                return;
            }
            Ok(false) => break,
            Err(e) => {
                // Not returned to the queue: it would come back behind the rest of its key.
                tracing::warn!(error = %e, "State store unavailable; holding the ordered message");
                if !pause(Duration::from_secs(1), epoch).await {
                    return;
                }
            }
        }
    }
    let policy = super::worker::policy_of(w, &copy.route);
    let remembered = held
        .lock()
        .expect("lock")
        .get(&(sender.clone(), id.clone()))
        .cloned();
    if let Some((before, due)) = remembered
        && before.attempts > copy.attempts
    {
        copy = before;
        if !pause(
            due.saturating_duration_since(tokio::time::Instant::now()),
            epoch,
        )
        .await
        {
            return;
        }
    }
    let forget = || {
        held.lock()
            .expect("lock")
            .remove(&(sender.clone(), id.clone()));
    };
    loop {
        if epoch.is_cancelled() {
            return;
        }
        let tried = {
            let _permit = sink_calls.acquire().await;
            let sink = w.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
            try_once(w, sink.as_ref(), &copy).await
        };
        let err = match tried {
            Tried::Delivered => {
                forget();
                let _ = incoming.acker.ack().await;
                return;
            }
            Tried::Failed(e) => e,
            Tried::Crashed => {
                tracing::error!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, "The adapter crashed delivering this ordered message; retrying it in place");
                crate::adapter::DeliveryError::transient("the adapter crashed delivering it")
            }
        };
        let now = now_rfc3339();
        let next = after_failure(&copy, &err, &now);
        let attempt = next.attempts;
        let wait = match err.class {
            ErrorClass::Transient => policy
                .delay_before_retry(attempt)
                .map(|d| d.max(err.retry_after.unwrap_or_default())),
            ErrorClass::Permanent => None,
        };
        if let Some(wait) = wait {
            tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, attempt, order_key = %key, error = %err.reason, retry_in = ?wait, "Delivery failed; holding its key and retrying in place");
            w.meters.retries.increment(1);
            w.meters.route_retried.get(&next.route).increment(1);
            copy = next;
            held.lock().expect("lock").insert(
                (sender.clone(), id.clone()),
                (copy.clone(), tokio::time::Instant::now() + wait),
            );
            if !pause(wait, epoch).await {
                return;
            }
            continue;
        }
        let reason = match err.class {
            ErrorClass::Permanent => "permanent_error",
            ErrorClass::Transient => "retries_exhausted",
        };
        tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), adapter = %adapter, attempt, order_key = %key, error = %err.reason, reason, "Delivery failed; dead-lettering it and releasing its key");
        w.meters.dead_lettered(reason).increment(1);
        w.meters.route_dead_lettered.get(&next.route).increment(1);
        let dead = next.to_dead_letter(reason, &now);
        loop {
            match w
                .broker
                .publish(&w.names.dead_exchange(), &adapter, &dead, w.publish_timeout)
                .await
            {
                Ok(()) => {
                    forget();
                    let _ = incoming.acker.ack().await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(id = %id, trace_id = %trace_id(&copy.traceparent), error = %e, "Could not dead-letter the ordered message; holding it");
                    if !pause(Duration::from_secs(1), epoch).await {
                        return;
                    }
                }
            }
        }
    }
}
