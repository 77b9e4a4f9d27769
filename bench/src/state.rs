//! The bus's state store alone: the four calls path 2 makes per message (idempotency lookup and record at
//! ingress, delivery check and mark in the worker), from as many concurrent tasks as the bus has deliveries in
//! hand, against a fresh SQLite file — to see how much of path 2's time the state store accounts for.

use lienthong_bus::adapter::Accepted;
use lienthong_bus::state::StateStore;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct StateRun {
    pub messages: u64,
    pub concurrency: usize,
    pub elapsed: Duration,
}

impl StateRun {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(dir: Option<&Path>, n: u64, concurrency: usize) -> Result<StateRun, String> {
    let tmp = match dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let url = format!("sqlite://{}/state.db?mode=rwc", tmp.path().display());
    let store = StateStore::connect(&url, "bench")
        .await
        .map_err(|e| format!("state store: {e}"))?;
    let accepted = Accepted {
        id: String::new(),
        routes: vec!["dossiers".into()],
    };
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (store, next, accepted) = (store.clone(), next.clone(), accepted.clone());
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    return Ok::<(), String>(());
                }
                let id = format!("bench-state-{seq:09}");
                let e = |e: lienthong_bus::state::StateError| e.to_string();
                store
                    .ingress_claim(crate::payload::FROM, &id, "digest")
                    .await
                    .map_err(e)?;
                let accepted = Accepted {
                    id: id.clone(),
                    ..accepted.clone()
                };
                store
                    .ingress_record(crate::payload::FROM, &id, "digest", &accepted)
                    .await
                    .map_err(e)?;
                store
                    .was_delivered("sink", crate::payload::FROM, &id)
                    .await
                    .map_err(e)?;
                store
                    .mark_delivered("sink", crate::payload::FROM, &id)
                    .await
                    .map_err(e)?;
            }
        });
    }
    let mut failed = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => failed = failed.or(Some(e.to_string())),
        }
    }
    let elapsed = start.elapsed();
    store.close().await;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(StateRun {
        messages: n,
        concurrency,
        elapsed,
    })
}
