//! A consumer's deliveries are acknowledged in batches (bus/src/broker/amqp/settle.rs). Against the real
//! RabbitMQ: deliveries settled out of order, some rejected and requeued, all end acked with nothing left on
//! the queue; a delivery dropped without being settled is never covered by a later `multiple` ack (it comes
//! back when the channel closes); a delivery still being handled does not hold back the acks behind it.

mod common;

use bytes::Bytes;
use common::{AMQP, namespace, wait_for};
use lienthong_bus::broker::topology::{QueueDecl, Topology};
use lienthong_bus::broker::{Broker, Consumer, Envelope, Headers, Incoming, Tuning};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn topology(ns: &str) -> Topology {
    Topology {
        queues: vec![QueueDecl {
            name: format!("{ns}.q"),
            quorum: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn broker(ns: &str) -> Broker {
    let b = Broker::start(
        &[AMQP.to_owned()],
        topology(ns),
        Tuning {
            max_in_flight: 64,
            large_message_bytes: 0,
        },
    );
    assert!(b.wait_ready(T).await, "broker ready");
    b
}

async fn publish(b: &Broker, ns: &str, n: usize) {
    for i in 0..n {
        let env = Envelope {
            message_id: Some(i.to_string()),
            content_type: None,
            user_id: None,
            headers: Headers::new(),
            body: Bytes::from(format!("message {i}")),
        };
        b.publish("", &format!("{ns}.q"), &env, T)
            .await
            .expect("publish confirmed");
    }
}

fn seq(d: &Incoming) -> usize {
    d.envelope
        .message_id
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("numbered message")
}

/// The consumer's next delivery within [`T`]; `what` names it when none comes.
async fn next(c: &mut Consumer, what: &str) -> Incoming {
    tokio::time::timeout(T, c.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery within {T:?}: {what}"))
        .expect("consumer open")
        .expect("delivery")
}

async fn depth_becomes(b: &Broker, ns: &str, want: u32) {
    let queue = format!("{ns}.q");
    wait_for(&format!("{queue} to hold {want} ready"), T, || async {
        (b.queue_depth(&queue).await == Some(want)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_settles_with_requeues_leave_nothing_behind() {
    let ns = namespace("acks-order");
    let b = broker(&ns).await;
    const N: usize = 300;
    publish(&b, &ns, N).await;
    let mut c = b.consume(&format!("{ns}.q"), 50, T).await.expect("consume");
    // Every 7th message is rejected with requeue the first time it is seen; handlers finish in a scrambled
    // order (delays from the sequence number), as concurrent handlers do.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, bool)>();
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut acked = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + T;
    while acked.len() < N {
        tokio::select! {
            d = c.next() => {
                let d = d.expect("consumer open").expect("delivery");
                let n = seq(&d);
                let times = seen.entry(n).or_default();
                *times += 1;
                let requeue = n.is_multiple_of(7) && *times == 1;
                let done = done_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis((n * 37 % 11) as u64)).await;
                    if requeue {
                        d.acker.reject(true).await.expect("reject");
                    } else {
                        d.acker.ack().await.expect("ack");
                    }
                    let _ = done.send((n, requeue));
                });
            }
            Some((n, requeued)) = done_rx.recv() => {
                if !requeued {
                    assert!(acked.insert(n), "message {n} acked twice");
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                panic!("only {} of {N} messages acked within {T:?}", acked.len());
            }
        }
    }
    assert_eq!(
        seen.iter().filter(|(_, t)| **t == 2).count(),
        N.div_ceil(7),
        "each rejected message came back once"
    );
    c.close().await;
    // Nothing unacked went back to the queue when the channel closed.
    depth_becomes(&b, &ns, 0).await;
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_dropped_unsettled_is_not_covered_by_later_acks() {
    let ns = namespace("acks-drop");
    let b = broker(&ns).await;
    publish(&b, &ns, 6).await;
    let mut c = b.consume(&format!("{ns}.q"), 10, T).await.expect("consume");
    let mut got = Vec::new();
    for i in 0..6 {
        got.push(next(&mut c, &format!("delivery {i}")).await);
    }
    let second = got.remove(1);
    assert_eq!(seq(&second), 1);
    // Acked before and after the drop: the oldest is acked, then the one let go of, then the rest.
    got.remove(0).acker.ack().await.expect("ack 0");
    drop(second);
    for d in got {
        d.acker.ack().await.expect("ack");
    }
    c.close().await;
    // Only the dropped message is back; every ack went out, none covered it.
    depth_becomes(&b, &ns, 1).await;
    let mut again = b.consume(&format!("{ns}.q"), 10, T).await.expect("consume");
    let d = next(&mut again, "the dropped message again").await;
    assert_eq!(seq(&d), 1, "the message that comes back is the one dropped");
    assert!(d.redelivered);
    d.acker.ack().await.expect("ack");
    again.close().await;
    depth_becomes(&b, &ns, 0).await;
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_delivery_does_not_hold_back_the_acks_behind_it() {
    let ns = namespace("acks-slow");
    let b = broker(&ns).await;
    const N: usize = 20;
    publish(&b, &ns, N).await;
    // Prefetch 3: if the acks behind the held first delivery waited for it, no fourth delivery would come.
    let mut c = b.consume(&format!("{ns}.q"), 3, T).await.expect("consume");
    let first = next(&mut c, "the first delivery").await;
    assert_eq!(seq(&first), 0);
    let mut rest = BTreeSet::new();
    while rest.len() < N - 1 {
        let what = format!(
            "stalled after {} deliveries behind the held one",
            rest.len()
        );
        let d = next(&mut c, &what).await;
        rest.insert(seq(&d));
        d.acker.ack().await.expect("ack");
    }
    assert_eq!(rest, (1..N).collect::<BTreeSet<_>>());
    first.acker.ack().await.expect("ack the held one");
    c.close().await;
    depth_becomes(&b, &ns, 0).await;
    b.close().await;
    common::delete_topology(&topology(&ns)).await;
}
