//! Deleting a topology from RabbitMQ: what a test or a benchmark does when it is done with its namespace, so
//! runs repeat on one broker without leftovers. Never used by the running bus, which only declares.

use super::topology::Topology;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

/// Deletes every queue and exchange of `topo` on the broker at `url`; best effort (what is missing or refused
/// is skipped).
pub async fn teardown(url: &str, topo: &Topology) {
    let connect = lapin::Connection::connect(url, lapin::ConnectionProperties::default());
    let Ok(Ok(conn)) = tokio::time::timeout(std::time::Duration::from_secs(10), connect).await
    else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for q in &topo.queues {
            let _ = ch
                .queue_delete(q.name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for e in &topo.exchanges {
            let _ = ch
                .exchange_delete(e.name.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    super::amqp::closed(conn.close(200, "bye".into())).await;
}
