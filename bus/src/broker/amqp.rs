//! RabbitMQ transport on lapin, with the bus's own reconnect loop.
//!
//! Why our own loop rather than lapin's auto-recover: we want one place that knows whether the bus is ready
//! (`/readyz`), that re-declares the whole [`Topology`] after every reconnect, and that lets a publish in flight
//! during a connection loss be retried on the new connection within its deadline (so ingress answers 202 only
//! after a real confirm, and 503 when the deadline passes — never a guess). Consumers simply re-subscribe when
//! their stream ends; unacked deliveries of a dead channel are requeued by RabbitMQ, so handlers are idempotent.
//!
//! Publishing and consuming use two connections, as RabbitMQ advises: when the broker applies flow control
//! to a connection that publishes too fast, it blocks that connection's reads, and consumers on it would stop
//! acknowledging — the very thing that would relieve the pressure. Two connections also give each direction
//! its own lapin I/O thread.

use super::topology::{ExchangeKind, Topology};
use super::{Acker, BrokerError, Envelope, HeaderValue, Headers, Incoming};
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Channels used for publishing; several so confirms of one do not serialize all publishes.
const PUBLISH_CHANNELS: usize = 4;

#[derive(Clone)]
pub struct AmqpBroker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    topology: Topology,
    link: watch::Sender<Option<Arc<Link>>>,
    last_error: Mutex<Option<String>>,
    inflight: Arc<Semaphore>,
    /// Bodies of at least this many bytes go through [`super::large`]; 0 = never.
    large_message_bytes: usize,
    large: Arc<super::large::Pool>,
    shutdown: CancellationToken,
}

struct Link {
    /// Publishes, topology, queue inspection.
    conn: Connection,
    /// Consumers only.
    consumers: Connection,
    publishers: Vec<Mutex<Channel>>,
    next: AtomicUsize,
}

impl AmqpBroker {
    /// Starts the connection supervisor; returns immediately.
    pub fn start(url: &str, topology: Topology, tuning: super::Tuning) -> Self {
        let (link, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            topology,
            link,
            last_error: Mutex::new(None),
            inflight: Arc::new(Semaphore::new(tuning.max_in_flight.max(1))),
            large_message_bytes: tuning.large_message_bytes,
            large: super::large::Pool::new(),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(supervise(inner.clone()));
        tokio::spawn(reap_large(inner.clone()));
        Self { inner }
    }

    pub fn is_ready(&self) -> bool {
        self.inner
            .link
            .borrow()
            .as_ref()
            .is_some_and(|l| l.connected())
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().expect("lock").clone()
    }

    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_link(Instant::now() + timeout).await.is_some()
    }

    async fn wait_link(&self, deadline: Instant) -> Option<Arc<Link>> {
        let mut rx = self.inner.link.subscribe();
        loop {
            if let Some(l) = rx.borrow_and_update().clone()
                && l.connected()
            {
                return Some(l);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => {
                    // The watch may not change when a connection silently dies; check once more.
                    let l = rx.borrow().clone();
                    return l.filter(|l| l.connected());
                }
            }
        }
    }

    /// Publish and wait for the confirm, retrying across reconnects until `timeout`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: &Envelope,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let deadline = Instant::now() + timeout;
        let _permit = tokio::time::timeout_at(deadline, self.inner.inflight.acquire())
            .await
            .map_err(|_| BrokerError::Unavailable("too many publishes awaiting confirms".into()))?
            .map_err(|_| BrokerError::Unavailable("broker closed".into()))?;
        let props = properties(envelope);
        let mut last = String::from("not connected");
        let mut tried = false;
        loop {
            let Some(link) = self.wait_link(deadline).await else {
                return Err(BrokerError::Unavailable(format!(
                    "{last} (gave up after {})",
                    humantime::format_duration(timeout)
                )));
            };
            let large = self.inner.large_message_bytes > 0
                && envelope.body.len() >= self.inner.large_message_bytes;
            let attempt = async {
                if large {
                    self.publish_large(exchange, routing_key, envelope, props.clone(), deadline)
                        .await
                } else {
                    link.publish_once(exchange, routing_key, &envelope.body, props.clone())
                        .await
                }
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(BrokerError::Unavailable(e))) => {
                    // An attempt cut short by the deadline does not hide why the earlier ones failed.
                    if !tried || Instant::now() < deadline {
                        last = e;
                    }
                    tried = true;
                    link.repair().await;
                    let pause = Instant::now() + Duration::from_millis(100);
                    tokio::time::sleep_until(pause.min(deadline)).await;
                }
                Ok(Err(other)) => return Err(other),
                Err(_) => {
                    let mut why = format!(
                        "not confirmed within {}",
                        humantime::format_duration(timeout)
                    );
                    if tried {
                        why = format!("{why}; last attempt: {last}");
                    }
                    return Err(BrokerError::Unavailable(why));
                }
            }
        }
    }

    /// One attempt through [`super::large`]: its own connection, body frames written from our buffer.
    async fn publish_large(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: &Envelope,
        properties: BasicProperties,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let uri = broker_uri(&self.inner.url).map_err(BrokerError::Unavailable)?;
        metrics::counter!("lienthong_broker_large_publishes_total").increment(1);
        self.inner
            .large
            .publish(
                super::large::Large {
                    uri,
                    connection_name: format!(
                        "lienthong {} (large message)",
                        self.inner.topology_name()
                    ),
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                    properties,
                    body: envelope.body.clone(),
                },
                deadline,
            )
            .await
    }

    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        timeout: Duration,
    ) -> Result<AmqpConsumer, BrokerError> {
        let link = self
            .wait_link(Instant::now() + timeout)
            .await
            .ok_or_else(|| BrokerError::Unavailable("not connected".into()))?;
        let channel = link
            .consumers
            .create_channel()
            .await
            .map_err(BrokerError::from_lapin)?;
        channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await
            .map_err(BrokerError::from_lapin)?;
        let tag = format!("lienthong-{}", uuid::Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| BrokerError::Topology(format!("cannot consume `{queue}`: {e}")))?;
        Ok(AmqpConsumer { channel, consumer })
    }

    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        let link = self.wait_link(Instant::now()).await?;
        let ch = link.conn.create_channel().await.ok()?;
        let q = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = ch.close(200, "done".into()).await;
        Some(q.message_count())
    }

    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        self.inner.large.reap(true).await;
        let link = self.inner.link.borrow().clone();
        if let Some(l) = link {
            l.close("lienthong shutting down").await;
        }
    }
}

impl Inner {
    /// A label for the connection (shown in the RabbitMQ management UI): the namespace of the topology.
    fn topology_name(&self) -> String {
        self.topology
            .exchanges
            .first()
            .map(|e| e.name.trim_end_matches(".ingress").to_owned())
            .unwrap_or_else(|| "cli".into())
    }
}

impl Link {
    fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.publishers.len();
        self.publishers[i].lock().expect("lock").clone()
    }

    /// Closes both connections (either may already be gone), giving up on each after a short wait.
    async fn close(&self, why: &str) {
        for c in [&self.conn, &self.consumers] {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close(200, why.into())).await;
        }
    }

    fn connected(&self) -> bool {
        self.conn.status().connected() && self.consumers.status().connected()
    }

    async fn publish_once(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), BrokerError> {
        let channel = self.channel();
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(BrokerError::from_lapin)?
            .await
            .map_err(BrokerError::from_lapin)?;
        match confirm {
            lapin::Confirmation::Ack(None) => Ok(()),
            lapin::Confirmation::Ack(Some(returned)) => Err(BrokerError::Unroutable(format!(
                "exchange `{exchange}` routing key `{routing_key}`: {}",
                returned.reply_text
            ))),
            lapin::Confirmation::Nack(_) => Err(BrokerError::Nacked),
            lapin::Confirmation::NotRequested => Err(BrokerError::Unavailable(
                "publisher confirms not enabled on channel".into(),
            )),
        }
    }

    /// Replaces publish channels that died while the connection lives (a channel-level error closes them).
    async fn repair(&self) {
        if !self.conn.status().connected() {
            return;
        }
        for slot in &self.publishers {
            let dead = !slot.lock().expect("lock").status().connected();
            if dead && let Ok(ch) = publish_channel(&self.conn).await {
                *slot.lock().expect("lock") = ch;
            }
        }
    }
}

async fn publish_channel(conn: &Connection) -> Result<Channel, lapin::Error> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Closes large-message connections that have waited idle too long.
async fn reap_large(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(super::large::IDLE / 3);
    loop {
        tokio::select! {
            _ = every.tick() => inner.large.reap(false).await,
            _ = inner.shutdown.cancelled() => return,
        }
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(200);
    let redacted = super::redact_url(&inner.url);
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        match connect(&inner).await {
            Ok((link, mut events)) => {
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
            }
            Err(e) => {
                tracing::warn!(broker = %redacted, error = %e, retry_in = ?backoff, "Cannot connect to RabbitMQ or declare topology");
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
fn broker_uri(url: &str) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = url.parse()?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Ok(uri)
}

async fn open(inner: &Inner, role: &str) -> Result<Connection, String> {
    let name = format!("lienthong {} ({role})", inner.topology_name());
    super::lapin_runtime::open(broker_uri(&inner.url)?, name).await
}

async fn connect(inner: &Inner) -> Result<(Arc<Link>, Events), String> {
    let conn = open(inner, "publish").await?;
    let consumers = match open(inner, "consume").await {
        Ok(c) => c,
        Err(e) => {
            let _ = conn.close(200, "second connection failed".into()).await;
            return Err(e);
        }
    };
    let events: Events = Box::pin(futures::stream::select(
        conn.events_listener(),
        consumers.events_listener(),
    ));
    let ready = async {
        declare(&conn, &inner.topology).await?;
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
            let _ = conn.close(200, "topology failed".into()).await;
            let _ = consumers.close(200, "topology failed".into()).await;
            return Err(e);
        }
    };
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

async fn declare(conn: &Connection, t: &Topology) -> Result<(), String> {
    let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    for e in &t.exchanges {
        let kind = match e.kind {
            ExchangeKind::Direct => lapin::ExchangeKind::Direct,
            ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
        };
        ch.exchange_declare(
            e.name.as_str().into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|err| format!("declaring exchange `{}`: {err}", e.name))?;
    }
    for q in &t.queues {
        let mut args = FieldTable::default();
        if q.quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        if let Some(ttl) = q.message_ttl {
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(ttl.as_millis() as i64),
            );
        }
        if let Some(dlx) = &q.dead_letter_exchange {
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.as_str().into()),
            );
            if q.quorum {
                // Dead-lettering that cannot lose: the source keeps the message until the DLX target confirms.
                args.insert(
                    "x-dead-letter-strategy".into(),
                    AMQPValue::LongString("at-least-once".into()),
                );
                args.insert(
                    "x-overflow".into(),
                    AMQPValue::LongString("reject-publish".into()),
                );
            }
        }
        if let Some(rk) = &q.dead_letter_routing_key {
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(rk.as_str().into()),
            );
        }
        if let Some(limit) = q.delivery_limit {
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(limit as i64),
            );
        }
        ch.queue_declare(q.name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await
            .map_err(|err| {
                format!(
                    "declaring queue `{}`: {err} (if it exists with other arguments, e.g. after changing \
                     bus.delivery_limit, delete it while empty or use another bus.namespace)",
                    q.name
                )
            })?;
    }
    for b in &t.bindings {
        ch.queue_bind(
            b.queue.as_str().into(),
            b.exchange.as_str().into(),
            b.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|err| format!("binding `{}` to `{}`: {err}", b.queue, b.exchange))?;
    }
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

fn properties(e: &Envelope) -> BasicProperties {
    let mut p = BasicProperties::default().with_delivery_mode(2);
    if let Some(id) = &e.message_id {
        p = p.with_message_id(id.as_str().into());
    }
    if let Some(ct) = &e.content_type {
        p = p.with_content_type(ct.as_str().into());
    }
    let mut table = FieldTable::default();
    for (k, v) in &e.headers {
        let v = match v {
            HeaderValue::Str(s) => AMQPValue::LongString(s.as_str().into()),
            HeaderValue::Int(i) => AMQPValue::LongLongInt(*i),
        };
        table.insert(k.as_str().into(), v);
    }
    p.with_headers(table)
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn int(v: &AMQPValue) -> Option<i64> {
    Some(match v {
        AMQPValue::ShortShortInt(i) => *i as i64,
        AMQPValue::ShortShortUInt(i) => *i as i64,
        AMQPValue::ShortInt(i) => *i as i64,
        AMQPValue::ShortUInt(i) => *i as i64,
        AMQPValue::LongInt(i) => *i as i64,
        AMQPValue::LongUInt(i) => *i as i64,
        AMQPValue::LongLongInt(i) => *i,
        AMQPValue::Timestamp(t) => *t as i64,
        AMQPValue::Boolean(b) => *b as i64,
        _ => return None,
    })
}

fn headers_from(table: Option<&FieldTable>) -> Headers {
    let mut h = Headers::new();
    let Some(table) = table else { return h };
    for (k, v) in table.inner() {
        let k = k.as_str();
        if k == "x-death" {
            // Most recent death first: surface its reason and queue as plain headers.
            if let AMQPValue::FieldArray(arr) = v
                && let Some(AMQPValue::FieldTable(first)) = arr.as_slice().first()
            {
                for (src, dst) in [
                    ("reason", "x-death-last-reason"),
                    ("queue", "x-death-last-queue"),
                ] {
                    if let Some(s) = first.inner().get(&ShortString::from(src)).and_then(text) {
                        h.insert(dst.into(), HeaderValue::Str(s));
                    }
                }
            }
            continue;
        }
        if let Some(s) = text(v) {
            h.insert(k.into(), HeaderValue::Str(s));
        } else if let Some(i) = int(v) {
            h.insert(k.into(), HeaderValue::Int(i));
        }
    }
    h
}

/// A consumer on its own channel (prefetch is per channel consumer).
pub struct AmqpConsumer {
    channel: Channel,
    consumer: lapin::Consumer,
}

impl AmqpConsumer {
    pub async fn next(&mut self) -> Option<Result<Incoming, BrokerError>> {
        let d = match self.consumer.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(BrokerError::from_lapin(e))),
        };
        let p = &d.properties;
        Some(Ok(Incoming {
            exchange: d.exchange.as_str().to_owned(),
            routing_key: d.routing_key.as_str().to_owned(),
            redelivered: d.redelivered,
            envelope: Envelope {
                message_id: p.message_id().as_ref().map(|s| s.as_str().to_owned()),
                content_type: p.content_type().as_ref().map(|s| s.as_str().to_owned()),
                user_id: p.user_id().as_ref().map(|s| s.as_str().to_owned()),
                headers: headers_from(p.headers().as_ref()),
                body: Bytes::from(d.data),
            },
            acker: Acker::Amqp(d.acker),
        }))
    }

    pub async fn close(self) {
        let _ = self.channel.close(200, "consumer closed".into()).await;
    }
}

#[allow(dead_code)]
fn _assert_long_string_from_str(s: &str) -> LongString {
    s.into()
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
}
