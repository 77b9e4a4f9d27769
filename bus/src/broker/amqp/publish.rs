//! Publishing with publisher confirms, retried across reconnects until the caller's deadline.
//!
//! Why the retry lives here: a publish cut off by a lost connection is tried again on the next one, within the
//! caller's deadline, so ingress answers 202 only after a real confirm and 503 when the deadline passes, never
//! a guess. A nack is retried the same way, on a new channel (see `publish_once`). Several publish channels are used in turn so one channel's confirms do not serialize every
//! publish.

use super::connection::{broker_uri, publish_channel};
use super::{AmqpBroker, Link};
use crate::broker::{BrokerError, Envelope, HeaderValue, Headers};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

impl AmqpBroker {
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
        // Whether an attempt was refused with a nack (answered as `Nacked` when nothing is confirmed by the deadline).
        let mut nacked = false;
        loop {
            let Some(link) = self.wait_link(deadline).await else {
                if nacked {
                    return Err(BrokerError::Nacked);
                }
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
                // A nack is retried too: the broker did not take the message, and a nack can be about the
                // moment rather than the queue (see `publish_once`), so another try may be confirmed.
                Ok(Err(e @ (BrokerError::Unavailable(_) | BrokerError::Nacked))) => {
                    nacked |= matches!(e, BrokerError::Nacked);
                    // An attempt cut short by the deadline does not hide why the earlier ones failed.
                    if !tried || Instant::now() < deadline {
                        last = match e {
                            BrokerError::Unavailable(why) => why,
                            other => other.to_string(),
                        };
                    }
                    tried = true;
                    link.repair().await;
                    let pause = Instant::now() + Duration::from_millis(100);
                    tokio::time::sleep_until(pause.min(deadline)).await;
                }
                Ok(Err(other)) => return Err(other),
                Err(_) if nacked => return Err(BrokerError::Nacked),
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

    /// One attempt through [`crate::broker::large`]: its own connection, body frames written from our buffer.
    async fn publish_large(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: &Envelope,
        properties: BasicProperties,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let uri = broker_uri(self.inner.current_url()).map_err(BrokerError::Unavailable)?;
        metrics::counter!("lienthong_broker_large_publishes_total").increment(1);
        self.inner
            .large
            .publish(
                crate::broker::large::Large {
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
}

impl Link {
    fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.publishers.len();
        self.publishers[i].lock().expect("lock").clone()
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
            lapin::Confirmation::Nack(_) => {
                // When a quorum queue's leader dies with its node (kill -9), a channel opened before the new
                // leader was elected can go on nacking every publish to that queue (RabbitMQ 3.10 keeps the
                // channel's view of the old leader; seen in tests/cluster.rs, minutes long). A new channel
                // asks again, so this one is retired; `repair` replaces it before the retry.
                if channel.status().connected() {
                    super::closed(channel.close(200, "renewed after a nack".into())).await;
                }
                metrics::counter!("lienthong_broker_channels_renewed_total").increment(1);
                Err(BrokerError::Nacked)
            }
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

fn properties(e: &Envelope) -> BasicProperties {
    let mut p = BasicProperties::default().with_delivery_mode(2);
    if let Some(id) = &e.message_id {
        p = p.with_message_id(id.as_str().into());
    }
    if let Some(ct) = &e.content_type {
        p = p.with_content_type(ct.as_str().into());
    }
    p.with_headers(table_of(&e.headers))
}

/// The bus's headers as an AMQP field table: strings as long strings, integers as 64-bit.
pub(crate) fn table_of(headers: &Headers) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in headers {
        let v = match v {
            HeaderValue::Str(s) => AMQPValue::LongString(s.as_str().into()),
            HeaderValue::Int(i) => AMQPValue::LongLongInt(*i),
        };
        table.insert(k.as_str().into(), v);
    }
    table
}
