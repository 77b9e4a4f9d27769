//! Issue 10 item 5: a broker connection lost while the process has no file descriptor to spare.
//!
//! Seen under attack: 20,000 idle connections used up the bus's descriptors, RabbitMQ dropped the bus's
//! connection, and lapin's I/O thread panicked with `cannot start tokio-1 runtime`; every later connection
//! close then panicked again (`Lazy instance has previously been poisoned`). Reproduced here exactly: the real
//! binary on the real RabbitMQ, its descriptor limit lowered from outside (`prlimit --pid`) so that it can
//! open nothing, its connections closed by RabbitMQ, then the limit restored. The bus must reconnect, answer
//! `/readyz` 200 again, survive a second forced close, and never panic.

mod common;

use common::process::*;
use common::*;
use std::process::Command;
use std::time::Duration;

/// Closes every RabbitMQ connection whose client properties name `ns`; returns how many.
fn close_connections_of(ns: &str) -> usize {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in text.lines().filter(|l| l.contains(ns)) {
        if let Some(pid) = line.split_whitespace().next() {
            let ok = Command::new("rabbitmqctl")
                .args(["-q", "close_connection", pid, "test: forced close"])
                .status()
                .is_ok_and(|s| s.success());
            closed += ok as usize;
        }
    }
    closed
}

/// Ids of the threads of process `pid` whose name starts with `prefix`.
fn threads_named(pid: u32, prefix: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<String> = tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|n| n.starts_with(prefix))
        })
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Sets the soft and hard `RLIMIT_NOFILE` of process `pid` (hard only ever lowered back to what it was).
fn set_nofile(pid: u32, soft: u64, hard: u64) {
    let ok = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={soft}:{hard}"),
        ])
        .status()
        .expect("prlimit (util-linux)")
        .success();
    assert!(ok, "prlimit --pid {pid} --nofile={soft}:{hard} failed");
}

/// `(soft, hard)` `RLIMIT_NOFILE` of process `pid`, from `/proc/<pid>/limits`.
fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

async fn ready(admin: u16) -> bool {
    healthy(&format!("http://127.0.0.1:{admin}/readyz")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lost_with_no_descriptor_left_does_not_panic_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("fdexhaust");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let body = "\n[[adapters]]\nid = \"out\"\ntype = \"file-out\"\npath = \"out\"\n\
                [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"out\"]\n";
    let (cfg, http, admin) = write_config(dir.path(), &ns, &state, body);
    let log = cfg.with_extension(format!("{http}.log"));
    let bus = BusProcess::spawn(&cfg, http, admin).await;
    let pid = bus.child.id();
    let (soft, hard) = nofile(pid);
    let io_threads = threads_named(pid, "lapin-io-loop");
    assert!(
        io_threads.len() >= 2,
        "the bus's two connections each have an I/O thread: {io_threads:?}"
    );

    // No descriptor left: stdin, stdout and stderr are 0-2, so a limit of 3 refuses every new one while the
    // open ones keep working.
    set_nofile(pid, 3, hard);
    let ns2 = ns.clone();
    let closed = tokio::task::spawn_blocking(move || close_connections_of(&ns2))
        .await
        .unwrap();
    assert!(
        closed >= 2,
        "closed the bus's two connections, got {closed}"
    );
    // The connection loss has been handled to the end once the I/O threads of the closed connections are
    // gone: each drops its socket as it exits, which is where the runtime used to be started.
    wait_for(
        "the closed connections' I/O threads to finish",
        Duration::from_secs(30),
        || async {
            let now = threads_named(pid, "lapin-io-loop");
            (!io_threads.iter().any(|t| now.contains(t))).then_some(())
        },
    )
    .await;
    // Reconnecting fails while nothing can be opened; that is expected and logged, not a crash.
    wait_for(
        "a reconnect attempt refused for want of a descriptor",
        Duration::from_secs(30),
        || async {
            std::fs::read_to_string(&log)
                .is_ok_and(|t| t.contains("Too many open files"))
                .then_some(())
        },
    )
    .await;
    set_nofile(pid, soft, hard);
    wait_for(
        "/readyz 200 after the descriptors came back",
        Duration::from_secs(60),
        || async { ready(admin).await.then_some(()) },
    )
    .await;

    // A second loss, with descriptors to spare: a poisoned global would panic here on every close.
    let io_threads = threads_named(pid, "lapin-io-loop");
    let ns2 = ns.clone();
    let closed = tokio::task::spawn_blocking(move || close_connections_of(&ns2))
        .await
        .unwrap();
    assert!(
        closed >= 2,
        "closed the bus's two connections, got {closed}"
    );
    wait_for(
        "the second closed connections' I/O threads to finish",
        Duration::from_secs(30),
        || async {
            let now = threads_named(pid, "lapin-io-loop");
            (!io_threads.iter().any(|t| now.contains(t))).then_some(())
        },
    )
    .await;
    wait_for(
        "/readyz 200 after the second forced close",
        Duration::from_secs(60),
        || async { ready(admin).await.then_some(()) },
    )
    .await;

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("panicked") && !text.contains("poisoned"),
        "the bus panicked:\n{text}"
    );
    // Nothing started a runtime of its own on the side (async-compat's fallback names its thread so).
    assert_eq!(
        threads_named(pid, "async-compat"),
        Vec::<String>::new(),
        "a second tokio runtime was started in the bus process"
    );
    drop(bus);
    let names = lienthong_bus::broker::topology::Names::new(&ns);
    let tiers = lienthong_bus::config::RetryPolicy::default()
        .backoff
        .iter()
        .map(|d| d.get())
        .collect();
    common::delete_topology(&lienthong_bus::broker::topology::build(
        &names,
        &["out".into()],
        &tiers,
        1,
    ))
    .await;
}
