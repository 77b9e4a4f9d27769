//! Large bodies go out on a connection of their own (bus/src/broker/large/), written frame by frame from the
//! message's buffer. Against the real RabbitMQ: what arrives is exactly what the ordinary (lapin) path
//! delivers, byte for byte and header for header; an unroutable message is refused; a broker nack is a nack;
//! a missing exchange is a clear error within the deadline.

mod common;

use bytes::Bytes;
use common::{AMQP, namespace, wait_for};
use lienthong_bus::broker::topology::{BindingDecl, ExchangeDecl, QueueDecl, Topology};
use lienthong_bus::broker::{
    Broker, BrokerError, Envelope, ExchangeKind, HeaderValue, Headers, Incoming, Tuning,
};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn topology(ns: &str) -> Topology {
    Topology {
        exchanges: vec![ExchangeDecl {
            name: format!("{ns}.x"),
            kind: ExchangeKind::Direct,
        }],
        queues: vec![QueueDecl {
            name: format!("{ns}.q"),
            quorum: true,
            ..Default::default()
        }],
        bindings: vec![BindingDecl {
            queue: format!("{ns}.q"),
            exchange: format!("{ns}.x"),
            routing_key: "q".into(),
        }],
    }
}

async fn broker(ns: &str, large_message_bytes: usize) -> Broker {
    let b = Broker::start(
        &[AMQP.to_owned()],
        topology(ns),
        Tuning {
            max_in_flight: 16,
            large_message_bytes,
        },
    );
    assert!(b.wait_ready(T).await, "broker ready");
    b
}

fn envelope(body: Bytes) -> Envelope {
    let mut headers = Headers::new();
    headers.insert(
        "x-lt-type".into(),
        HeaderValue::Str("document.edxml".into()),
    );
    headers.insert("x-lt-from".into(), HeaderValue::Str("000.00.12.H40".into()));
    headers.insert("x-lt-attempts".into(), HeaderValue::Int(3));
    Envelope {
        message_id: Some(uuid::Uuid::new_v4().to_string()),
        content_type: Some("application/xml".into()),
        user_id: None,
        headers,
        body,
    }
}

/// A body that is not the same byte repeated, so a misplaced frame would show.
fn body(len: usize) -> Bytes {
    let mut x: u32 = 2_463_534_242;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn receive(b: &Broker, queue: &str) -> Incoming {
    let mut c = b.consume(queue, 4, T).await.expect("consume");
    let got = tokio::time::timeout(T, c.next())
        .await
        .expect("a delivery within 10 s")
        .expect("consumer open")
        .expect("delivery");
    got.acker.ack().await.expect("ack");
    c.close().await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_body_arrives_exactly_as_the_ordinary_path_delivers_it() {
    let ns = namespace("large-same");
    let large = broker(&ns, 1).await; // every body is "large"
    let ordinary = broker(&ns, 0).await; // never
    // Sizes around the frame boundary (131,064 payload bytes per frame) and a multi-frame body.
    for len in [0usize, 1, 131_063, 131_064, 131_065, 3 * 1024 * 1024 + 17] {
        let env = envelope(body(len));
        large
            .publish(&format!("{ns}.x"), "q", &env, T)
            .await
            .unwrap_or_else(|e| panic!("large publish of {len} bytes: {e}"));
        let via_large = receive(&large, &format!("{ns}.q")).await.envelope;
        ordinary
            .publish(&format!("{ns}.x"), "q", &env, T)
            .await
            .expect("ordinary publish");
        let via_lapin = receive(&ordinary, &format!("{ns}.q")).await.envelope;
        assert_eq!(via_large.body.len(), len, "length of {len}");
        assert!(via_large.body == env.body, "bytes of {len} differ");
        assert_eq!(via_large.message_id, env.message_id);
        assert_eq!(via_large.content_type, env.content_type);
        assert_eq!(via_large.headers, env.headers, "headers of {len}");
        assert_eq!(via_large.headers, via_lapin.headers);
        assert_eq!(via_large.message_id, via_lapin.message_id);
        assert!(via_lapin.body == via_large.body);
    }
    large.close().await;
    ordinary.close().await;
    common::delete_topology(&topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_large_body_is_refused_not_dropped() {
    let ns = namespace("large-unroutable");
    let b = broker(&ns, 1024).await;
    let err = b
        .publish(&format!("{ns}.x"), "nobody", &envelope(body(200_000)), T)
        .await
        .expect_err("no queue is bound to `nobody`");
    assert!(
        matches!(&err, BrokerError::Unroutable(m) if m.contains("nobody")),
        "{err}"
    );
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_nacks_the_large_body() {
    use lapin::options::{QueueBindOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let ns = namespace("large-nack");
    let b = broker(&ns, 1024).await;
    // A queue that takes nothing and rejects the publish (the broker answers basic.nack).
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(0));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let full = format!("{ns}.full");
    ch.queue_declare(full.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    ch.queue_bind(
        full.as_str().into(),
        format!("{ns}.x").as_str().into(),
        "full".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = b
        .publish(&format!("{ns}.x"), "full", &envelope(body(300_000)), T)
        .await
        .expect_err("the queue rejects publishes");
    assert!(matches!(err, BrokerError::Nacked), "{err}");
    let _ = ch
        .queue_delete(full.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_exchange_is_a_clear_error_within_the_deadline() {
    let ns = namespace("large-noexchange");
    let b = broker(&ns, 1024).await;
    let started = std::time::Instant::now();
    let err = b
        .publish(
            &format!("{ns}.nope"),
            "q",
            &envelope(body(200_000)),
            Duration::from_secs(2),
        )
        .await
        .expect_err("the exchange does not exist");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up in time"
    );
    let text = err.to_string();
    assert!(
        matches!(err, BrokerError::Unavailable(_)) && text.contains("404"),
        "the broker's reason is kept: {text}"
    );
    // The bus's own connections are untouched by the failed side connection.
    wait_for("broker still ready", T, || async {
        b.is_ready().then_some(())
    })
    .await;
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}
