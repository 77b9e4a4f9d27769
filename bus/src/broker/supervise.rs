//! One consume loop for every long-lived consumer of the bus (delivery workers, the dead-letter recorder,
//! AMQP ingress): subscribe (waiting for the broker), hand each delivery to its own task (at most `prefetch`
//! at once, bounded by the broker), re-subscribe when the stream ends after a connection loss, and on stop give
//! in-flight handlers `grace` before aborting them — their unsettled deliveries go back to the queue.

use super::{Broker, Incoming};
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub async fn consume_until<F, Fut>(
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    grace: Duration,
    stop: &CancellationToken,
    handle: F,
) where
    F: Fn(Incoming) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    while !stop.is_cancelled() {
        let consumer = tokio::select! {
            c = broker.consume(queue, prefetch, Duration::from_secs(5)) => c,
            _ = stop.cancelled() => break,
        };
        let mut consumer = match consumer {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(queue, error = %e, "Consumer waiting for the broker");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        };
        loop {
            let next = tokio::select! {
                n = consumer.next() => n,
                _ = stop.cancelled() => None,
            };
            match next {
                Some(Ok(incoming)) => {
                    tasks.spawn(handle(incoming));
                }
                Some(Err(e)) => {
                    tracing::warn!(queue, error = %e, "Consumer ended; re-subscribing");
                    break;
                }
                None => break,
            }
            while tasks.try_join_next().is_some() {}
        }
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                queue,
                "Handlers still running at the deadline; returning their messages to the queue"
            );
            tasks.abort_all();
        }
        consumer.close().await;
    }
}
