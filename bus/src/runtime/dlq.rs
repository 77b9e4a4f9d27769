//! The dead-letter recorder: moves dead letters into the state store's parking lot.
//!
//! Dead letters arrive in `<namespace>.dlq.<adapter>` (from the worker, with the reason in headers, or from
//! RabbitMQ when a message hit the delivery limit). The recorder moves each into the parking lot — only after
//! the row is written is the queue message acked — where an operator can list, inspect, replay or purge it
//! ([`crate::dlq`]).

use crate::broker::Broker;
use crate::evidence::{Event, Kind};
use crate::message::now_rfc3339;
use crate::state::StateStore;
use crate::wire;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the recorder of one adapter's dead letters needs.
pub(super) struct Recorder {
    pub broker: Broker,
    pub state: StateStore,
    /// `<namespace>.dlq.<adapter>`.
    pub queue: String,
    pub adapter: String,
    /// How long a shutdown waits for a dead letter being written.
    pub grace: Duration,
}

pub(super) async fn record(r: Recorder, stop: CancellationToken) {
    let Recorder {
        broker,
        state,
        queue,
        adapter,
        grace,
    } = r;
    crate::broker::supervise::consume_until(&broker, &queue, 16, grace, &stop, |incoming| {
        let (state, adapter) = (state.clone(), adapter.clone());
        async move {
            let entry = wire::dead::parked(&incoming.envelope, &adapter, &now_rfc3339());
            match state.park(&entry).await {
                Ok(()) => {
                    let event = Event::new(Kind::DeadLettered, &entry.from, &entry.id)
                        .with("adapter", adapter.clone())
                        .with("route", entry.route.clone())
                        .with("reason", entry.reason.clone())
                        .with("attempts", entry.attempts);
                    super::worker::evidence_failed(state.record(event).await);
                    let traceparent = incoming.envelope.header_str(crate::wire::TRACEPARENT).unwrap_or("");
                    tracing::warn!(id = %entry.id, trace_id = %crate::message::trace_id(traceparent), adapter = %adapter, reason = %entry.reason, "Parked in the dead-letter queue");
                    let _ = incoming.acker.ack().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Cannot write the parking lot; the dead letter stays queued");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = incoming.acker.reject(true).await;
                }
            }
        }
    })
    .await;
}
