//! Declaring the bus's [`Topology`] on RabbitMQ: exchanges, queues with their arguments, bindings.
//!
//! Why on every (re)connect: declarations are idempotent, and a broker that lost its definitions (a node
//! replaced, a vhost recreated) gets them back before the first publish; a queue that exists with other
//! arguments is refused by RabbitMQ, and the error says what to do about it.

use crate::broker::topology::{ExchangeKind, Topology};
use lapin::Connection;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

pub(super) async fn declare(conn: &Connection, t: &Topology) -> Result<(), String> {
    let mut ch = conn.create_channel().await.map_err(|e| e.to_string())?;
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
        if q.single_active_consumer {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        if let (true, Some(n)) = (q.quorum, q.initial_group_size) {
            args.insert(
                "x-quorum-initial-group-size".into(),
                AMQPValue::LongLongInt(n as i64),
            );
        }
        let declared = ch
            .queue_declare(q.name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await;
        match declared {
            Ok(_) => {}
            // `bus.quorum_size` applies to queues it creates: one that exists with another initial group size
            // (the setting added or changed since) is the operator's to grow or shrink, not a reason never to
            // start. The refusal closed the channel; the queue is checked on a new one without arguments.
            Err(err) if err.to_string().contains("x-quorum-initial-group-size") => {
                ch = conn.create_channel().await.map_err(|e| e.to_string())?;
                ch.queue_declare(
                    q.name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|err| format!("declaring queue `{}`: {err}", q.name))?;
                tracing::warn!(
                    queue = %q.name,
                    "Queue exists with another initial group size than bus.quorum_size; kept as it is (change its \
                     replicas with `rabbitmq-queues grow` / `shrink`)"
                );
            }
            Err(err) => {
                return Err(format!(
                    "declaring queue `{}`: {err} (if it exists with other arguments, e.g. after changing \
                     bus.delivery_limit, delete it while empty or use another bus.namespace)",
                    q.name
                ));
            }
        }
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
    super::closed(ch.close(200, "declared".into())).await;
    Ok(())
}
