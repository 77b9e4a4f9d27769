//! The connection supervisor: connect, declare, watch, reconnect with backoff, and say whether the bus is
//! ready.
//!
//! Why one loop of our own (not lapin's auto-recover): it is the one place that knows whether both connections
//! are up (`/readyz`), re-declares the whole topology after every reconnect, and records the last error an
//! operator should see. It also closes large-message connections left idle.
//!
//! How a connection is opened lives here too (the broker URL it is opened with, its publish channels in
//! confirm mode): `publish` takes both from here (for a large message's own connection, for a dead channel's
//! replacement), so the files depend one way only.

use super::declare::declare;
use super::{Inner, Link, PUBLISH_CHANNELS};
use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Closes large-message connections that have waited idle too long.
pub(super) async fn reap_large(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(crate::broker::large::IDLE / 3);
    loop {
        tokio::select! {
            _ = every.tick() => inner.large.reap(false).await,
            _ = inner.shutdown.cancelled() => return,
        }
    }
}

pub(super) async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(200);
    // The node tried first: the first URL at start, the next one after a connection loss.
    let mut first = 0;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        match connect_any(&inner, first).await {
            Ok((link, mut events)) => {
                let redacted = crate::config::redact_url(inner.current_url());
                backoff = Duration::from_millis(200);
                *inner.last_error.lock().expect("lock") = None;
                tracing::info!(broker = %redacted, "Connected to RabbitMQ; topology declared");
                metrics::gauge!("lienthong_broker_connected").set(1.0);
                inner.link.send_replace(Some(link.clone()));
                loop {
                    tokio::select! {
                        ev = events.next() => match ev {
                            Some(lapin::Event::Error(e)) => {
                                *inner.last_error.lock().expect("lock") = Some(e.to_string());
                                tracing::warn!(error = %e, "RabbitMQ connection error");
                                break;
                            }
                            None => break,
                            Some(_) => {}
                        },
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {
                            if !link.connected() { break; }
                        }
                        _ = inner.shutdown.cancelled() => return,
                    }
                }
                inner.link.send_replace(None);
                // One of the two may still be open; close it so a reconnect does not leave it behind.
                link.close("reconnecting").await;
                metrics::gauge!("lienthong_broker_connected").set(0.0);
                tracing::warn!(broker = %redacted, "Lost the RabbitMQ connection; reconnecting");
                // The next node first: the one just lost is likely the one that is down.
                first = (inner.current.load(Ordering::Relaxed) + 1) % inner.urls.len().max(1);
            }
            Err(e) => {
                let nodes = inner
                    .urls
                    .iter()
                    .map(|u| crate::config::redact_url(u))
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::warn!(broker = %nodes, error = %e, retry_in = ?backoff, "Cannot connect to RabbitMQ or declare topology");
                *inner.last_error.lock().expect("lock") = Some(e);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = inner.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

type Events = std::pin::Pin<Box<dyn futures::Stream<Item = lapin::Event> + Send>>;

/// RabbitMQ's default `frame_max`, which the broker would choose anyway.
const FRAME_MAX: u32 = 131_072;

/// The broker URL, proposing [`FRAME_MAX`] when it names no `frame_max`.
///
/// Why: lapin sizes its send and receive buffers (32 frames each) from the client's `frame_max`. Without one it
/// starts them at the 8 KiB protocol minimum and, once the broker's 128 KiB is negotiated, grows them by
/// writing zeros into 2 × 3.75 MiB — resident for the life of the process, before any message is sent. Sized
/// right from the start they are left untouched until traffic fills them. The negotiated value is the same.
pub(super) fn broker_uri(url: &str) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = url.parse()?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Ok(uri)
}

async fn open(inner: &Inner, url: &str, role: &str) -> Result<Connection, String> {
    let name = format!("lienthong {} ({role})", inner.topology_name());
    crate::broker::lapin_runtime::open(broker_uri(url)?, name).await
}

/// A channel in confirm mode, as every publish needs: opened for each connection and again by `publish` when
/// one dies while its connection lives.
pub(super) async fn publish_channel(conn: &Connection) -> Result<Channel, lapin::Error> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// The order in which the nodes are tried: `first`, then the ones after it, wrapping around.
fn node_order(count: usize, first: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |k| (first + k) % count)
}

/// Connects to the first node (from `first` on) that answers and takes the topology; records it as current.
async fn connect_any(inner: &Inner, first: usize) -> Result<(Arc<Link>, Events), String> {
    let mut errors = Vec::new();
    for i in node_order(inner.urls.len(), first) {
        match connect(inner, &inner.urls[i]).await {
            Ok(ok) => {
                inner.current.store(i, Ordering::Relaxed);
                return Ok(ok);
            }
            Err(e) if inner.urls.len() == 1 => return Err(e),
            Err(e) => errors.push(format!(
                "{}: {e}",
                crate::config::redact_url(&inner.urls[i])
            )),
        }
    }
    Err(errors.join("; "))
}

async fn connect(inner: &Inner, url: &str) -> Result<(Arc<Link>, Events), String> {
    let conn = open(inner, url, "publish").await?;
    let consumers = match open(inner, url, "consume").await {
        Ok(c) => c,
        Err(e) => {
            super::closed(conn.close(200, "second connection failed".into())).await;
            return Err(e);
        }
    };
    let ready = async {
        let topology = inner.topology.lock().expect("lock").clone();
        declare(&conn, &topology).await?;
        let mut publishers = Vec::with_capacity(PUBLISH_CHANNELS);
        for _ in 0..PUBLISH_CHANNELS {
            publishers.push(Mutex::new(
                publish_channel(&conn).await.map_err(|e| e.to_string())?,
            ));
        }
        Ok::<_, String>(publishers)
    };
    let publishers = match ready.await {
        Ok(p) => p,
        Err(e) => {
            super::closed(conn.close(200, "topology failed".into())).await;
            super::closed(consumers.close(200, "topology failed".into())).await;
            return Err(e);
        }
    };
    // Listened to from here on: a declaration RabbitMQ refused and `declare` got past (a queue kept with its
    // own group size) closed its channel with an error event, which must not read as a lost connection. A
    // connection lost meanwhile is still noticed: the supervisor also checks the link every half second.
    let events: Events = Box::pin(futures::stream::select(
        conn.events_listener(),
        consumers.events_listener(),
    ));
    Ok((
        Arc::new(Link {
            conn,
            consumers,
            publishers,
            next: AtomicUsize::new(0),
        }),
        events,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposes_rabbitmq_frame_max_unless_the_url_names_one() {
        let uri = broker_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.query.frame_max, Some(FRAME_MAX));
        let uri = broker_uri("amqp://127.0.0.1/%2f?frame_max=16384&heartbeat=5").unwrap();
        assert_eq!(uri.query.frame_max, Some(16384));
        assert_eq!(uri.query.heartbeat, Some(5));
        assert!(broker_uri("not a url").is_err());
    }

    #[test]
    fn nodes_are_tried_from_the_given_one_wrapping_around() {
        assert_eq!(node_order(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(node_order(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(node_order(3, 2).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(node_order(1, 0).collect::<Vec<_>>(), [0]);
        assert_eq!(node_order(0, 0).count(), 0);
    }
}
