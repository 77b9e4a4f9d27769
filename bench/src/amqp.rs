//! Talking to RabbitMQ directly: the pipelined confirmed publisher every AMQP measurement uses, the raw lapin
//! baseline (path 1), and deleting what a run declared.

use crate::track::Tracker;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use lienthong_bus::broker::topology::{self, Names};
use lienthong_bus::config::Config;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn connect(url: &str, name: &str) -> Result<Connection, String> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    tokio::time::timeout(Duration::from_secs(10), Connection::connect(url, props))
        .await
        .map_err(|_| format!("connecting to RabbitMQ ({name}) timed out"))?
        .map_err(|e| format!("connecting to RabbitMQ ({name}): {e}"))
}

/// A channel in confirm mode.
pub async fn confirm_channel(conn: &Connection) -> Result<Channel, String> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("channel: {e}"))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("confirm.select: {e}"))?;
    Ok(ch)
}

/// Waits for a lapin close at most 5 s, ignoring its result: lapin waits for the broker's `close-ok`, which
/// never comes when the broker dropped the connection first (one bench run hung there for good).
pub async fn closed<T, E>(close: impl Future<Output = Result<T, E>>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
}

/// The user name in an AMQP URL (`amqp://user:pass@host/vhost`), as lapin reads it; `guest` when there is none.
pub fn url_user(url: &str) -> String {
    url.parse::<lapin::uri::AMQPUri>()
        .map_or_else(|_| "guest".into(), |u| u.authority.userinfo.username)
}

/// Where and how to publish, and how fast.
pub struct Publish<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// Messages to send, numbered 0..count.
    pub count: u64,
    /// Publishes awaiting their confirm at once.
    pub window: usize,
    /// Messages per second (open loop); None = as fast as the window allows.
    pub rate: Option<u32>,
}

/// Publishes `count` persistent, mandatory messages with confirms, keeping up to `window` unconfirmed.
/// `body(seq)` and `props(seq)` make message `seq`; `tracker`, if given, gets each send time. Returns the time
/// from the first publish until the last confirm. Any nack or returned (unroutable) message is an error.
pub async fn publish(
    ch: &Channel,
    p: &Publish<'_>,
    body: impl Fn(u64) -> Vec<u8>,
    props: impl Fn(u64) -> BasicProperties,
    tracker: Option<&Tracker>,
) -> Result<Duration, String> {
    let check = |r: lapin::Result<Confirmation>| -> Result<(), String> {
        match r {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(ret))) => {
                Err(format!("message returned unroutable: {}", ret.reply_text))
            }
            Ok(Confirmation::Nack(_)) => Err("broker nacked a publish".into()),
            Ok(Confirmation::NotRequested) => Err("confirms not enabled".into()),
            Err(e) => Err(format!("publish confirm: {e}")),
        }
    };
    let mut inflight = FuturesUnordered::new();
    let mut ticker = p.rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(1) as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let start = Instant::now();
    for seq in 0..p.count {
        // Keep confirms flowing while waiting for a free slot or for the next tick.
        while inflight.len() >= p.window {
            check(inflight.next().await.expect("non-empty"))?;
        }
        if let Some(t) = ticker.as_mut() {
            loop {
                tokio::select! {
                    _ = t.tick() => break,
                    Some(r) = inflight.next(), if !inflight.is_empty() => check(r)?,
                }
            }
        }
        if let Some(t) = tracker {
            t.sent(seq);
        }
        let confirm = ch
            .basic_publish(
                p.exchange.into(),
                p.routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body(seq),
                props(seq).with_delivery_mode(2),
            )
            .await
            .map_err(|e| format!("basic.publish: {e}"))?;
        inflight.push(confirm);
    }
    while let Some(r) = inflight.next().await {
        check(r)?;
    }
    Ok(start.elapsed())
}

/// What a raw run measured.
pub struct RawRun {
    /// First publish → last message acked by the consumer.
    pub elapsed: Duration,
    /// First publish → last confirm.
    pub published: Duration,
    pub cpu: crate::sys::CpuUse,
}

pub(crate) async fn declare_quorum(ch: &Channel, queue: &str) -> Result<(), String> {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
        .await
        .map(|_| ())
        .map_err(|e| format!("declaring {queue}: {e}"))
}

pub(crate) async fn consumer_on(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
) -> Result<(Channel, lapin::Consumer), String> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("channel: {e}"))?;
    ch.basic_qos(prefetch, BasicQosOptions { global: false })
        .await
        .map_err(|e| format!("basic.qos: {e}"))?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            "lienthong-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("basic.consume: {e}"))?;
    Ok((ch, consumer))
}

/// Consumes `queue`, acking each message and then counting it (message id = sequence number).
async fn counting_consumer(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
    tracker: Arc<Tracker>,
) -> Result<(Channel, tokio::task::JoinHandle<()>), String> {
    let (ch, mut consumer) = consumer_on(conn, queue, prefetch).await?;
    let task = tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            let Ok(d) = d else { break };
            let seq = d
                .properties
                .message_id()
                .as_ref()
                .and_then(|s| s.as_str().parse().ok());
            if d.acker.ack(BasicAckOptions::default()).await.is_err() {
                break;
            }
            tracker.arrived(seq);
        }
    });
    Ok((ch, task))
}

pub(crate) async fn delete_queues(conn: &Connection, queues: &[&str]) {
    if let Ok(ch) = conn.create_channel().await {
        for q in queues {
            let _ = ch
                .queue_delete((*q).into(), QueueDeleteOptions::default())
                .await;
        }
        closed(ch.close(200, "done".into())).await;
    }
}

/// Path 1: a quorum queue, a confirmed pipelined publisher and a manual-ack consumer (prefetch) on one run.
pub async fn raw(
    url: &str,
    queue: &str,
    p: &Publish<'_>,
    prefetch: u16,
    body: impl Fn(u64) -> Vec<u8>,
    tracker: Arc<Tracker>,
    timeout: Duration,
) -> Result<RawRun, String> {
    relayed(url, &[queue], p, prefetch, body, tracker, timeout).await
}

/// Path 1 with the bus's topology: publisher → quorum queue → a relay that republishes each message with a
/// confirm to a second quorum queue and then acks it → the counting consumer. No validation, no state store:
/// what two broker hops cost by themselves.
pub async fn relay(
    url: &str,
    queues: [&str; 2],
    p: &Publish<'_>,
    prefetch: u16,
    body: impl Fn(u64) -> Vec<u8>,
    tracker: Arc<Tracker>,
    timeout: Duration,
) -> Result<RawRun, String> {
    relayed(url, &queues, p, prefetch, body, tracker, timeout).await
}

/// Publishes into `queues[0]`, relays each queue into the next, counts what arrives in the last one.
async fn relayed(
    url: &str,
    queues: &[&str],
    p: &Publish<'_>,
    prefetch: u16,
    body: impl Fn(u64) -> Vec<u8>,
    tracker: Arc<Tracker>,
    timeout: Duration,
) -> Result<RawRun, String> {
    let pub_conn = connect(url, "lienthong-bench raw publisher").await?;
    let sub_conn = connect(url, "lienthong-bench raw consumer").await?;
    let result = async {
        let ch = confirm_channel(&pub_conn).await?;
        for q in queues {
            declare_quorum(&ch, q).await?;
        }
        let mut relays = Vec::new();
        for pair in queues.windows(2) {
            let (from, to) = (pair[0], pair[1].to_owned());
            let (in_ch, mut consumer) = consumer_on(&sub_conn, from, prefetch).await?;
            let out = confirm_channel(&sub_conn).await?;
            relays.push((
                in_ch,
                tokio::spawn(async move {
                    while let Some(d) = consumer.next().await {
                        let Ok(d) = d else { break };
                        let (out, to) = (out.clone(), to.clone());
                        tokio::spawn(async move {
                            let sent = out
                                .basic_publish(
                                    "".into(),
                                    to.as_str().into(),
                                    BasicPublishOptions {
                                        mandatory: true,
                                        ..Default::default()
                                    },
                                    &d.data,
                                    d.properties.clone(),
                                )
                                .await;
                            if let Ok(confirm) = sent
                                && let Ok(Confirmation::Ack(None)) = confirm.await
                            {
                                let _ = d.acker.ack(BasicAckOptions::default()).await;
                            }
                        });
                    }
                }),
            ));
        }
        let last = queues.last().expect("at least one queue");
        let (sub, consuming) =
            counting_consumer(&sub_conn, last, prefetch, tracker.clone()).await?;
        let cpu = crate::sys::CpuMark::now();
        let start = Instant::now();
        let p = Publish {
            exchange: "",
            routing_key: queues[0],
            ..*p
        };
        let published = publish(
            &ch,
            &p,
            body,
            |seq| BasicProperties::default().with_message_id(seq.to_string().into()),
            Some(&tracker),
        )
        .await?;
        let done = tracker.wait(timeout).await;
        let cpu = cpu.since();
        consuming.abort();
        closed(sub.close(200, "done".into())).await;
        for (ch, task) in relays {
            task.abort();
            closed(ch.close(200, "done".into())).await;
        }
        let done = done.ok_or_else(|| {
            format!(
                "only {} of {} messages arrived within {}",
                tracker.count(),
                p.count,
                humantime::format_duration(timeout)
            )
        })?;
        Ok(RawRun {
            elapsed: done.duration_since(start),
            published,
            cpu,
        })
    }
    .await;
    delete_queues(&pub_conn, queues).await;
    closed(pub_conn.close(200, "bye".into())).await;
    closed(sub_conn.close(200, "bye".into())).await;
    result
}

/// Deletes every queue and exchange a bus with this config declares (the core's own derivation).
pub async fn delete_topology(url: &str, config: &Config) {
    let names = Names::new(&config.bus.namespace);
    let mut sinks: Vec<String> = config.adapters.iter().map(|a| a.id.clone()).collect();
    sinks.sort();
    let tiers = topology::retry_tiers(config);
    let ordered = lienthong_bus::order::ordered_adapters(config).0;
    let topo = topology::build(&names, &sinks, &tiers, config.bus.delivery_limit).with_order(
        &names,
        &sinks,
        &ordered,
        config.bus.delivery_limit,
    );
    lienthong_bus::broker::teardown(url, &topo).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_from_url() {
        assert_eq!(
            super::url_user("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "guest"
        );
        assert_eq!(super::url_user("amqp://bob@h/v"), "bob");
        assert_eq!(super::url_user("amqp://127.0.0.1"), "guest");
    }
}
