//! The holder of one mailbox: consumes the mailbox adapter's queue and keeps its deliveries unacknowledged
//! while the agency has not settled them (see the module above for why).
//!
//! Why not the shared consume loop (`broker::supervise`): that one hands each delivery to a task that settles
//! it; here a delivery stays open for minutes, is settled by an HTTP request, and every open one must be
//! forgotten when its channel ends (RabbitMQ gives them back, and they arrive again on the next consumer).

use super::Mailbox;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often held messages are checked for their recycle age.
const TICK: Duration = Duration::from_secs(15);

/// Holds `mailbox`'s queue until `stop`; re-subscribes after a lost connection.
pub async fn run(mailbox: Arc<Mailbox>, stop: CancellationToken) {
    let queue = mailbox.names.deliver_queue(&mailbox.adapter);
    let tick = TICK.min(mailbox.recycle_after.max(Duration::from_millis(100)));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        let consumer = tokio::select! {
            c = mailbox.broker.consume(&queue, mailbox.spec.window, Duration::from_secs(5)) => c,
            _ = stop.cancelled() => break,
        };
        let mut consumer = match consumer {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(queue, error = %e, "Mailbox waiting for the broker");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        };
        loop {
            tokio::select! {
                next = consumer.next() => match next {
                    Some(Ok(incoming)) => mailbox.arrive(incoming).await,
                    Some(Err(e)) => {
                        tracing::warn!(queue, error = %e, "Mailbox consumer ended; holding again");
                        break;
                    }
                    None => break,
                },
                _ = ticks.tick() => mailbox.recycle().await,
                _ = stop.cancelled() => break,
            }
        }
        mailbox.release_all();
        consumer.close().await;
    }
}
