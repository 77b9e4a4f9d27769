//! Gathers progress rows from concurrent deliveries into `CapNhatTienDoHoSoMC` calls.
//!
//! One background task per adapter takes rows from a channel: the first row of a batch waits at most `linger`
//! for more, up to `size` rows, then the batch is sent and every waiting delivery gets the batch's answer.
//! Batches are sent one after another, so rows reach the portal in the order deliveries were made. The task
//! starts with the first progress delivery and ends when the adapter is dropped.

use super::portal::PortalClient;
use super::record::Record;
use lienthong_bus::adapter::{DeliveryError, ErrorClass};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

struct Job {
    ma_ho_so: String,
    row: Value,
    reply: oneshot::Sender<Result<(), DeliveryError>>,
}

pub struct Batcher {
    portal: Arc<PortalClient>,
    size: usize,
    linger: Duration,
    tx: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Batcher {
    pub fn new(portal: Arc<PortalClient>, size: usize, linger: Duration) -> Self {
        Self {
            portal,
            size: size.max(1),
            linger,
            tx: OnceLock::new(),
        }
    }

    /// Queues one row and waits for the answer to the call that carried it.
    pub async fn send(&self, rec: Record) -> Result<(), DeliveryError> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx, self.portal.clone(), self.size, self.linger));
            tx
        });
        let (reply, answer) = oneshot::channel();
        tx.send(Job {
            ma_ho_so: rec.ma_ho_so,
            row: rec.body,
            reply,
        })
        .map_err(|_| DeliveryError::transient("dvcqg progress batcher has stopped"))?;
        answer.await.unwrap_or_else(|_| {
            Err(DeliveryError::transient(
                "dvcqg progress batcher stopped before answering",
            ))
        })
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Job>,
    portal: Arc<PortalClient>,
    size: usize,
    linger: Duration,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + linger;
        let mut jobs = vec![first];
        while jobs.len() < size {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        // A delivery that was given up (shutdown) will be redelivered; don't send its row now.
        jobs.retain(|j| !j.reply.is_closed());
        if !jobs.is_empty() {
            send_batch(&portal, jobs).await;
        }
    }
}

async fn send_batch(portal: &PortalClient, jobs: Vec<Job>) {
    metrics::histogram!("lienthong_dvcqg_progress_batch_size").record(jobs.len() as f64);
    let rows = jobs.iter().map(|j| j.row.clone()).collect();
    match portal.push_progress(rows).await {
        Err(e) if e.class == ErrorClass::Permanent && jobs.len() > 1 => {
            // The portal refused the batch as a whole; find which rows it refuses by sending them one by one.
            tracing::warn!(
                rows = jobs.len(), reason = %e.reason,
                "portal refused a progress batch; re-sending its rows one by one"
            );
            for job in jobs {
                let result = portal.push_progress(vec![job.row]).await;
                if let Err(e) = &result {
                    tracing::debug!(dossier = %job.ma_ho_so, reason = %e.reason, "progress row refused");
                }
                let _ = job.reply.send(result);
            }
        }
        result => {
            for job in jobs {
                let _ = job.reply.send(result.clone());
            }
        }
    }
}
