//! Consuming: a consumer on its own channel of the consume connection, and what a delivery carries.
//!
//! Why apart: consumers use the second connection (flow control on the publish connection must not stop
//! acknowledgements), and the AMQP field tables of a delivery are turned into the bus's [`Headers`] here,
//! including the broker's `x-death` record reduced to its latest reason and queue.

use super::AmqpBroker;
use crate::broker::{Acker, BrokerError, Envelope, HeaderValue, Headers, Incoming};
use bytes::Bytes;
use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use std::time::Duration;
use tokio::time::Instant;

impl AmqpBroker {
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
        Ok(AmqpConsumer {
            channel,
            consumer,
            settler: super::settle::Settler::start(),
        })
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
        super::closed(ch.close(200, "done".into())).await;
        Some(q.message_count())
    }
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

/// A delivery's AMQP headers as the bus's: strings and integers kept, `x-death` reduced to its latest reason
/// and queue, anything else dropped.
pub(crate) fn headers_from(table: Option<&FieldTable>) -> Headers {
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
    /// Acks this channel's deliveries in batches (see [`super::settle`]).
    settler: super::settle::Settler,
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
            acker: Acker::Amqp(self.settler.open(d.delivery_tag, d.acker)),
        }))
    }

    pub async fn close(self) {
        // What handlers settled goes out before the channel does; the rest RabbitMQ gives back.
        self.settler.close().await;
        super::closed(self.channel.close(200, "consumer closed".into())).await;
    }
}
