//! `[bus]`: where the broker is and how the bus uses it (its own file: the section every deployment sets).

use super::{BrokerUrls, HumanDuration};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[bus]`: where the broker is and how the bus uses it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// AMQP URL of RabbitMQ, e.g. `amqp://user:pass@127.0.0.1:5672/%2f`. `memory://` runs the embedded,
    /// in-process broker: same runtime, but NOT durable (for demos and business-logic tests only).
    /// Default `memory://`. The password part is never logged. The bus opens two connections to it (one
    /// publishes, one consumes) and proposes `frame_max=131072` unless the URL sets `?frame_max=…`;
    /// `?heartbeat=…` and the other lapin URL options are honoured as given.
    ///
    /// A list of URLs names the nodes of one RabbitMQ cluster, e.g.
    /// `["amqp://u:p@rmq1:5672/%2f", "amqp://u:p@rmq2:5672/%2f", "amqp://u:p@rmq3:5672/%2f"]`: the bus
    /// connects to the first node that answers; when that connection is lost it tries the next node (then the
    /// others in turn), declares its topology again there, and publishes that were not confirmed yet are sent
    /// again there within `publish_timeout` (so 202 still means confirmed by the cluster; 503 only when no node
    /// confirmed in time). Large-message connections go to the node the bus is on. Every URL must be
    /// `amqp://` or `amqps://` (`memory://` only alone).
    #[serde(default = "default_broker_url")]
    pub broker_url: BrokerUrls,
    /// Prefix of every exchange and queue the bus declares (`<namespace>.ingress`, `<namespace>.deliver.<adapter>`…).
    /// Default `lienthong`. Two buses with different namespaces can share one vhost.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Folder of JSON Schemas named `<type>.v<version>.schema.json`, relative to this config file.
    /// Default `../schemas`.
    #[serde(default = "default_schemas_dir")]
    pub schemas_dir: PathBuf,
    /// Unacknowledged deliveries each adapter consumer may hold (AMQP prefetch). Bounds memory and in-flight
    /// work per adapter. Default 100.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Publishes awaiting a broker confirm at once across the process (back-pressure on ingress). Default 1024.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How long ingress waits for the broker (reconnecting included) to confirm a message before answering
    /// 503 `broker_unavailable`. Default `"10s"`.
    #[serde(default = "default_publish_timeout")]
    pub publish_timeout: HumanDuration,
    /// Message bodies of at least this many bytes (an XML document with attachments, say) are published on a
    /// short-lived connection of their own, each AMQP body frame written straight from the message's buffer;
    /// smaller ones share the bus's publish connection. Why: the AMQP client copies a whole body before sending
    /// it, so a 27 MB package would be held twice. Same guarantees either way (persistent, confirmed,
    /// unroutable refused). At most 4 such publishes run at once; a connection is kept up to 15 s for the next
    /// large message, so a steady stream of them does not open one per message. `0` turns this off. Default
    /// `1048576` (1 MiB).
    #[serde(default = "default_large_message_bytes")]
    pub large_message_bytes: usize,
    /// Quorum-queue `x-delivery-limit` on adapter queues: a message whose consumer crashes this many times is
    /// dead-lettered (reason `delivery_limit`) instead of looping forever. Default 20.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// On SIGTERM, how long in-flight deliveries may take to finish before they are handed back to the broker.
    /// Default `"20s"`.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// `x-quorum-initial-group-size` of every quorum queue the bus declares: on how many cluster nodes each
    /// queue is replicated when it is first created (e.g. `3` on a three-node cluster; RabbitMQ caps it at the
    /// cluster's size). Unset (the default) leaves it to RabbitMQ, which replicates to every node of the
    /// cluster. Only takes effect when a queue is created: a queue that exists with another group size is kept
    /// as it is (a warning in the log); changing it needs `rabbitmq-queues grow`/`shrink`. Must be at least 1.
    #[serde(default)]
    pub quorum_size: Option<u32>,
    /// Broker layout of new copies (ARCHITECTURE.md, "Message layout"): `2` puts a copy's facts in one JSON
    /// header, cheaper than layout 1's header per fact; builds before 2026-11-30 read only layout 1 (a process
    /// of such a build dead-letters a layout-2 copy, and may park it without its facts). Unset (the default):
    /// 2 with a SQLite state store (one process), 1 with PostgreSQL (several processes, which may run different
    /// builds during a rolling upgrade) — set `2` there once every process runs a build from 2026-11-30 on.
    /// Every build from then reads both; a retried or dead copy keeps its layout. Read at start.
    #[serde(default)]
    pub copy_layout: Option<u8>,
}

fn default_broker_url() -> BrokerUrls {
    BrokerUrls::one("memory://")
}
fn default_namespace() -> String {
    "lienthong".into()
}
fn default_schemas_dir() -> PathBuf {
    PathBuf::from("../schemas")
}
fn default_prefetch() -> u16 {
    100
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_publish_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_large_message_bytes() -> usize {
    1 << 20
}
fn default_delivery_limit() -> u32 {
    20
}
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration::secs(20)
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            broker_url: default_broker_url(),
            namespace: default_namespace(),
            schemas_dir: default_schemas_dir(),
            prefetch: default_prefetch(),
            max_in_flight: default_max_in_flight(),
            publish_timeout: default_publish_timeout(),
            large_message_bytes: default_large_message_bytes(),
            delivery_limit: default_delivery_limit(),
            shutdown_timeout: default_shutdown_timeout(),
            quorum_size: None,
            copy_layout: None,
        }
    }
}
