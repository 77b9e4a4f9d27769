//! Counting arrivals at a sink, knowing when the last one came, and end-to-end latency per message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Shared between the publisher (which stamps send times) and the sink (which counts and measures).
pub struct Tracker {
    target: u64,
    count: AtomicU64,
    done: Notify,
    finished: OnceLock<Instant>,
    base: Instant,
    /// Send time of message `seq` in ns since `base`, plus one (0 = not sent); only when measuring latency.
    sent: Vec<AtomicU64>,
    /// End-to-end latencies in µs.
    latencies: Mutex<Vec<u64>>,
}

impl Tracker {
    /// Waits for `target` arrivals; `latency` = also measure each message's latency.
    pub fn new(target: u64, latency: bool) -> Tracker {
        let slots = if latency { target as usize } else { 0 };
        Tracker {
            target,
            count: AtomicU64::new(0),
            done: Notify::new(),
            finished: OnceLock::new(),
            base: Instant::now(),
            sent: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            latencies: Mutex::new(Vec::with_capacity(slots)),
        }
    }

    /// Counts arrivals without end (soak).
    pub fn unbounded() -> Tracker {
        Tracker::new(u64::MAX, false)
    }

    /// Records that message `seq` is being sent now.
    pub fn sent(&self, seq: u64) {
        if let Some(slot) = self.sent.get(seq as usize) {
            let ns = self.base.elapsed().as_nanos() as u64 + 1;
            slot.store(ns, Ordering::Release);
        }
    }

    /// Records an arrival of message `seq` (if known).
    pub fn arrived(&self, seq: Option<u64>) {
        if let Some(slot) = seq.and_then(|s| self.sent.get(s as usize)) {
            let sent = slot.load(Ordering::Acquire);
            if sent > 0 {
                let now = self.base.elapsed().as_nanos() as u64 + 1;
                let us = now.saturating_sub(sent) / 1000;
                self.latencies.lock().expect("lock").push(us);
            }
        }
        let n = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target {
            let _ = self.finished.set(Instant::now());
            self.done.notify_waiters();
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until `target` messages arrived; returns when the last one did, or None after `timeout`.
    pub async fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.done.notified();
            if let Some(at) = self.finished.get() {
                return Some(*at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.finished.get().copied();
            }
        }
    }

    /// Latencies recorded so far, sorted, in µs.
    pub fn sorted_latencies(&self) -> Vec<u64> {
        let mut v = self.latencies.lock().expect("lock").clone();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_measures_and_wakes() {
        let t = std::sync::Arc::new(Tracker::new(3, true));
        for s in 0..3 {
            t.sent(s);
        }
        let t2 = t.clone();
        tokio::spawn(async move {
            for s in 0..3 {
                t2.arrived(Some(s));
            }
        });
        assert!(t.wait(Duration::from_secs(5)).await.is_some());
        assert_eq!(t.count(), 3);
        assert_eq!(t.sorted_latencies().len(), 3);
    }
}
