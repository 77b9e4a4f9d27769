//! `[bus] quorum_size` added or changed on a namespace whose quorum queues already exist: RabbitMQ refuses a
//! declaration whose `x-quorum-initial-group-size` differs from the queue's, and the bus used to retry that
//! forever, never ready. The setting applies to queues it creates; existing ones are kept as they are.

mod common;

use common::*;
use lienthong_bus::broker::topology::{Names, build};
use lienthong_bus::broker::{Broker, Tuning};
use lienthong_bus::config::BusConfig;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn a_quorum_size_set_or_changed_later_keeps_existing_queues_and_the_bus_starts() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let ns = namespace("qsize");
    let names = Names::new(&ns);
    let plain = build(&names, &["stp".to_owned()], &BTreeSet::new(), 20);
    let tuning = Tuning::from_config(&BusConfig::default());
    // Created without a group size (as before `quorum_size` was set).
    let first = Broker::start(&[AMQP.to_owned()], plain.clone(), tuning);
    assert!(
        first.wait_ready(Duration::from_secs(20)).await,
        "first start"
    );
    first.close().await;
    // Then with 2, and then 1: each start declares what exists already, and becomes ready.
    for size in [2, 1] {
        let sized = plain.clone().with_quorum_size(Some(size));
        let broker = Broker::start(&[AMQP.to_owned()], sized.clone(), tuning);
        assert!(
            broker.wait_ready(Duration::from_secs(20)).await,
            "quorum_size = {size} on existing queues: never ready"
        );
        // And it works: a publish to the adapter's queue is confirmed.
        let envelope = lienthong_bus::broker::Envelope {
            body: bytes::Bytes::from_static(b"{}"),
            ..Default::default()
        };
        broker
            .publish(
                &names.deliver_exchange(),
                "stp",
                &envelope,
                Duration::from_secs(10),
            )
            .await
            .expect("confirmed");
        broker.close().await;
    }
    delete_topology(&plain).await;
}
