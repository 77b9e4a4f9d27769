//! Issue 16: the bus on a three-node RabbitMQ cluster (scripts/cluster.sh: lt1-lt3@localhost on
//! 127.0.0.1:5681-5683), under node failure. Two bus processes share PostgreSQL and name all three nodes in
//! `broker_url`; a client posts N messages over HTTP, retrying each until 202, while a node is stopped
//! (`rabbitmqctl stop_app`, or its VM killed with SIGKILL) and started again. Checked every time: every id answered 202 reaches the receiver;
//! an id reaches it more than once only as a redelivery carrying the same `Idempotency-Key` (a delivery in
//! flight when its node or process went away); nothing else arrives. What each test saw (accepted, delivered,
//! duplicates, 503s and the longest stretch without a 202) is printed as a `cluster:` line, and appended to
//! `target/test-reports/cluster.txt`, which `scripts/test.sh` prints at the end.
//!
//! N is the 5,000 per failure test, paced at about 250 a second so the load lasts through the
//! failure (each rabbitmqctl call takes seconds).
//!
//! The tests bring the cluster up themselves (`scripts/cluster.sh up`) and fail, never skip, if they cannot.
//! They stop cluster nodes, so they run one at a time (a lock), and each leaves all three nodes running.

mod common;

use common::process::*;
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [(&str, u16); 3] = [("lt1", 5681), ("lt2", 5682), ("lt3", 5683)];
const N: usize = 5_000;
/// Time between two messages' first posts.
const PACE: Duration = Duration::from_millis(4);

fn node_url(port: u16) -> String {
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

/// One cluster test at a time: they stop nodes the others use.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn script(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/cluster.sh"))
        .args(args)
        .output()
        .expect("run scripts/cluster.sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Brings the cluster up (or finishes bringing it up); fails the test if it cannot.
fn cluster_up() {
    let (ok, out) = script(&["up"]);
    assert!(
        ok,
        "the three-node cluster could not be brought up (scripts/cluster.sh up); these tests need it:\n{out}"
    );
}

fn ctl(node: &str, args: &[&str]) -> String {
    let mut a = vec!["ctl", node];
    a.extend_from_slice(args);
    let (ok, out) = script(&a);
    assert!(
        ok,
        "rabbitmqctl -n {node}@localhost {args:?} failed:\n{out}"
    );
    out
}

/// kill -9 of a node's Erlang VM (scripts/cluster.sh kill): a crash, nothing flushed, no goodbye to peers.
fn kill_node(node: &str) {
    let (ok, out) = script(&["kill", node]);
    assert!(ok, "scripts/cluster.sh kill {node} failed:\n{out}");
}

/// The node leading quorum queue `queue`, e.g. `lt3`.
fn leader_of(queue: &str) -> String {
    let out = ctl("lt1", &["list_queues", "name", "leader"]);
    out.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(queue)).then(|| f.next().unwrap_or("").to_owned())
        })
        .and_then(|l| l.split('@').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no leader listed for {queue}:\n{out}"))
}

fn members_of(queue: &str) -> usize {
    let out = ctl("lt1", &["list_queues", "name", "members"]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(queue))
        .unwrap_or_else(|| panic!("{queue} not listed:\n{out}"));
    line.matches("@localhost").count()
}

fn webhook_body(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\nretry = {{ attempts = 10, backoff = [\"1s\"] }}\n"
    )
}

fn ns_topology(ns: &str) -> lienthong_bus::broker::Topology {
    let names = lienthong_bus::broker::topology::Names::new(ns);
    lienthong_bus::broker::topology::build(
        &names,
        &["stp".into()],
        &[Duration::from_secs(1)].into_iter().collect(),
        20, // the default `delivery_limit`, so a declaration here matches the buses' own
    )
}

/// Two bus processes, one namespace, one PostgreSQL schema, `broker_url` listing `nodes` in that order.
struct Pair {
    dir: tempfile::TempDir,
    ns: String,
    pg: PgSchema,
    a: (PathBuf, u16, u16),
    b: (PathBuf, u16, u16),
}

impl Pair {
    async fn new(test: &str, rx: &Receiver, nodes: &[u16], bus_extra: &str) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let ns = namespace(test);
        let pg = PgSchema::create(test).await;
        let list = nodes
            .iter()
            .map(|p| format!("\"{}\"", node_url(*p)))
            .collect::<Vec<_>>()
            .join(", ");
        let body = webhook_body(&rx.url());
        let mk = || {
            let c = write_config(dir.path(), &ns, &pg.url, &body);
            let text = std::fs::read_to_string(&c.0).unwrap();
            let text = text.replace(
                &format!("broker_url = \"{AMQP}\""),
                &format!("broker_url = [{list}]{bus_extra}"),
            );
            assert!(text.contains("broker_url = ["), "{text}");
            std::fs::write(&c.0, text).unwrap();
            c
        };
        let (a, b) = (mk(), mk());
        Pair { dir, ns, pg, a, b }
    }

    async fn spawn_a(&self) -> BusProcess {
        BusProcess::spawn(&self.a.0, self.a.1, self.a.2).await
    }

    async fn spawn_b(&self) -> BusProcess {
        BusProcess::spawn(&self.b.0, self.b.1, self.b.2).await
    }

    async fn finish(self, buses: Vec<BusProcess>) {
        for mut b in buses {
            b.terminate(Duration::from_secs(15)).await;
        }
        lienthong_bus::broker::teardown(&node_url(NODES[0].1), &ns_topology(&self.ns)).await;
        self.pg.drop_now().await;
        drop(self.dir);
    }
}

/// Every answer the client got: when, and the status (0 = no HTTP answer).
#[derive(Default)]
struct Seen {
    answers: Vec<(Instant, u16)>,
    accepted: Vec<String>,
}

/// Posts a dossier for each of `ids` to `urls` (the message's index picks the first URL, the next failure
/// the next), 16 at a time, each retried every 100 ms until 202 for up to three minutes.
fn load(
    urls: Vec<String>,
    ids: Vec<String>,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let start = Instant::now();
        futures::stream::iter(ids.into_iter().enumerate())
            .for_each_concurrent(16, |(i, id)| {
                let (client, urls, seen) = (client.clone(), urls.clone(), seen.clone());
                async move {
                    // Paced (PACE apart), so the load lasts through the failure.
                    tokio::time::sleep_until((start + PACE * i as u32).into()).await;
                    let deadline = Instant::now() + Duration::from_secs(180);
                    // A dossier code of its own per message (`dossier()` derives one from a hash of the
                    // label, and two messages about one dossier would be a different test).
                    let mut payload = dossier("CL");
                    payload["MaHoSo"] = format!("{STP}-261127-{i:05}").into();
                    let body = envelope(Some(&id), H40, &[STP], payload).to_string();
                    for posts in 1.. {
                        if Instant::now() >= deadline {
                            return;
                        }
                        let via = (i + posts - 1) % urls.len();
                        let r = client
                            .post(&urls[via])
                            .bearer_auth("tok-H40")
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                        {
                            let mut s = seen.lock().unwrap();
                            s.answers.push((Instant::now(), status));
                            if status == 202 {
                                s.accepted.push(id);
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
            .await;
    })
}

fn accepted(seen: &Mutex<Seen>) -> usize {
    seen.lock().unwrap().accepted.len()
}

/// Waits until `more` further messages were accepted than now.
async fn wait_accepted(what: &str, seen: &Mutex<Seen>, more: usize) {
    let target = (accepted(seen) + more).min(N);
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted(seen) < target {
        if Instant::now() > deadline {
            let s = seen.lock().unwrap();
            let mut last: HashMap<u16, usize> = HashMap::new();
            for a in s.answers.iter().rev().take(200) {
                *last.entry(a.1).or_default() += 1;
            }
            panic!(
                "timed out waiting for {what}: {} of {target} accepted; the last answers by status: {last:?}",
                s.accepted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a test saw, checked and printed.
struct Report {
    accepted: usize,
    delivered: usize,
    duplicates: usize,
    refused_503: usize,
    other: usize,
    longest_without_202: Duration,
}

/// Waits until every accepted id reached the receiver, then checks what arrived and prints the report.
async fn verify(name: &str, rx: &Receiver, seen: &Mutex<Seen>) -> Report {
    let (ids, answers) = {
        let s = seen.lock().unwrap();
        (s.accepted.clone(), s.answers.clone())
    };
    assert_eq!(
        ids.len(),
        N,
        "{name}: a retrying client gets every message accepted"
    );
    let want: HashSet<&String> = ids.iter().collect();
    wait_for(
        &format!("{name}: every accepted id at the receiver"),
        Duration::from_secs(180),
        || async {
            let got: HashSet<String> = rx
                .calls()
                .iter()
                .filter_map(|c| c.header("idempotency-key"))
                .collect();
            want.iter().all(|id| got.contains(*id)).then_some(())
        },
    )
    .await;
    // Redeliveries of what was in flight settle within seconds; give them a moment before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for c in rx.calls() {
        let key = c
            .header("idempotency-key")
            .unwrap_or_else(|| panic!("{name}: a delivery without Idempotency-Key"));
        *per_id.entry(key).or_default() += 1;
    }
    let strangers: Vec<&String> = per_id.keys().filter(|k| !want.contains(k)).collect();
    assert!(
        strangers.is_empty(),
        "{name}: delivered but never accepted: {strangers:?}"
    );
    let duplicates = per_id.values().filter(|n| **n > 1).count();
    assert!(
        per_id.values().all(|n| *n <= 3),
        "{name}: an id delivered more than three times: {:?}",
        per_id.iter().filter(|(_, n)| **n > 3).collect::<Vec<_>>()
    );
    // The longest stretch in which the client got answers but no 202.
    let mut sorted = answers.clone();
    sorted.sort_by_key(|a| a.0);
    let (mut longest, mut since) = (Duration::ZERO, None::<Instant>);
    for (at, status) in &sorted {
        if *status == 202 {
            if let Some(s) = since.take() {
                longest = longest.max(at.duration_since(s));
            }
        } else if since.is_none() {
            since = Some(*at);
        }
    }
    let report = Report {
        accepted: ids.len(),
        delivered: per_id.len(),
        duplicates,
        refused_503: answers.iter().filter(|a| a.1 == 503).count(),
        other: answers.iter().filter(|a| a.1 != 503 && a.1 != 202).count(),
        longest_without_202: longest,
    };
    let line = format!(
        "cluster: {name}: accepted {}, delivered {} (every accepted id), ids delivered more than once {} \
         (each with its own Idempotency-Key), 503 answers {}, other non-202 answers {}, longest stretch \
         without a 202 {} ms",
        report.accepted,
        report.delivered,
        report.duplicates,
        report.refused_503,
        report.other,
        report.longest_without_202.as_millis()
    );
    eprintln!("{line}");
    // Also kept for the test command to print at the end (a passing test's output is captured).
    let reports = repo().join("target/test-reports");
    std::fs::create_dir_all(&reports).unwrap();
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(reports.join("cluster.txt"))
        .unwrap();
    writeln!(f, "{line}").unwrap();
    report
}

/// Two buses on the cluster (connected to `nodes[0]`), N messages; `during` runs the failure once a sixth
/// of them was accepted. With `declare_via`, the topology is declared through that node first (so its
/// queues are led there), before the buses start.
async fn under_load<F, Fut>(
    name: &str,
    nodes: &[u16],
    declare_via: Option<u16>,
    bus_extra: &str,
    during: F,
) -> Report
where
    F: FnOnce(Arc<Mutex<Seen>>, Vec<BusProcess>, Pair) -> Fut,
    Fut: std::future::Future<Output = (Vec<BusProcess>, Pair)>,
{
    let rx = Receiver::start().await;
    let pair = Pair::new(name, &rx, nodes, bus_extra).await;
    if let Some(port) = declare_via {
        let b = lienthong_bus::broker::Broker::start(
            &[node_url(port)],
            ns_topology(&pair.ns),
            lienthong_bus::broker::Tuning::from_config(&Default::default()),
        );
        assert!(
            b.wait_ready(Duration::from_secs(30)).await,
            "{name}: topology declared through port {port}"
        );
        b.close().await;
    }
    let (a, b) = tokio::join!(pair.spawn_a(), pair.spawn_b());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ids: Vec<String> = (0..N).map(|_| new_id()).collect();
    let loader = load(vec![a.url(), b.url()], ids, seen.clone());
    wait_accepted(&format!("{name}: N/6 accepted"), &seen, N / 6).await;
    let (buses, pair) = during(seen.clone(), vec![a, b], pair).await;
    loader.await.unwrap();
    let report = verify(name, &rx, &seen).await;
    pair.finish(buses).await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_urls_takes_the_first_node_that_answers_and_quorum_size_sets_the_replicas() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("cl-list");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let (file, http, admin) = write_config(dir.path(), &ns, &state, &webhook_body(&rx.url()));
    // A node that is down (port 1) first: the bus goes on to the next.
    let text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("broker_url = \"{AMQP}\""),
        &format!(
            "broker_url = [\"amqp://guest:guest@127.0.0.1:1/%2f\", \"{}\"]\nquorum_size = 2",
            node_url(5682)
        ),
    );
    std::fs::write(&file, text).unwrap();
    let bus = BusProcess::spawn(&file, http, admin).await;
    let id = new_id();
    let (s, ans) = post_raw(
        &bus.url(),
        Some("H40"),
        "application/json",
        envelope(Some(&id), H40, &[STP], dossier("CL-LIST"))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 202, "{ans}");
    wait_for(
        "the message at the receiver",
        Duration::from_secs(30),
        || async {
            rx.calls()
                .iter()
                .any(|c| c.header("idempotency-key").as_deref() == Some(id.as_str()))
                .then_some(())
        },
    )
    .await;
    let names = lienthong_bus::broker::topology::Names::new(&ns);
    assert_eq!(
        members_of(&names.ingress_queue()),
        2,
        "quorum_size = 2 on a 3-node cluster"
    );
    assert_eq!(members_of(&names.deliver_queue("stp")), 2);
    drop(bus);
    lienthong_bus::broker::teardown(&node_url(5682), &ns_topology(&ns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_both_buses_are_on_stops_and_starts_under_load() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    let r = under_load(
        "cl-stop",
        &[5681, 5682, 5683],
        None,
        "",
        |seen, buses, pair| async move {
            ctl("lt1", &["stop_app"]);
            wait_accepted("accepted again with lt1 stopped", &seen, N / 6).await;
            ctl("lt1", &["start_app"]);
            (buses, pair)
        },
    )
    .await;
    assert_eq!(r.other, 0, "only 202 and 503 answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_both_buses_are_on_is_killed_with_sigkill_under_load() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    let r = under_load(
        "cl-sigkill",
        &[5681, 5682, 5683],
        None,
        "",
        |seen, buses, pair| async move {
            kill_node("lt1");
            wait_accepted("accepted again with lt1 killed", &seen, N / 6).await;
            // Restarts the killed node from its data; it rejoins the cluster and its queue replicas catch up.
            cluster_up();
            (buses, pair)
        },
    )
    .await;
    assert_eq!(r.other, 0, "only 202 and 503 answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_leading_the_adapter_queue_stops_under_load() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    // The buses are on lt1; the adapter queue is first declared through lt3, so lt3 leads it.
    let r = under_load(
        "cl-leader",
        &[5681, 5682, 5683],
        Some(5683),
        "",
        |seen, buses, pair| async move {
            let q = lienthong_bus::broker::topology::Names::new(&pair.ns).deliver_queue("stp");
            let leader = leader_of(&q);
            eprintln!("cluster: cl-leader: {q} led by {leader}; the buses are on lt1");
            assert_ne!(
                leader, "lt1",
                "the adapter queue is led by another node than the buses'"
            );
            ctl(&leader, &["stop_app"]);
            wait_accepted("accepted again with the leader stopped", &seen, N / 6).await;
            ctl(&leader, &["start_app"]);
            (buses, pair)
        },
    )
    .await;
    assert_eq!(r.other, 0, "only 202 and 503 answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bus_process_is_killed_during_the_node_failure() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    let r = under_load(
        "cl-kill",
        &[5681, 5682, 5683],
        None,
        "",
        |seen, mut buses, pair| async move {
            ctl("lt1", &["stop_app"]);
            wait_accepted("accepted again with lt1 stopped", &seen, 30).await;
            buses[0].kill9();
            wait_accepted("accepted by the other process", &seen, N / 10).await;
            ctl("lt1", &["start_app"]);
            buses[0] = pair.spawn_a().await;
            (buses, pair)
        },
    )
    .await;
    assert_eq!(r.accepted, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_node_reachable_ingress_answers_503_and_resumes_after() {
    let _one = CLUSTER.lock().await;
    cluster_up();
    let r = under_load(
        "cl-none",
        &[5681, 5682, 5683],
        None,
        "",
        |seen, buses, pair| async move {
            let before = seen.lock().unwrap().answers.len();
            for (n, _) in NODES {
                ctl(n, &["stop_app"]);
            }
            wait_for(
                "a 503 while no node runs",
                Duration::from_secs(60),
                || async {
                    seen.lock().unwrap().answers[before..]
                        .iter()
                        .any(|a| a.1 == 503)
                        .then_some(())
                },
            )
            .await;
            // The last node stopped starts first; the others wait for it in their own start_app.
            let starts: Vec<_> = NODES
                .iter()
                .rev()
                .map(|(n, _)| std::thread::spawn(move || ctl(n, &["start_app"])))
                .collect();
            for s in starts {
                s.join().unwrap();
            }
            (buses, pair)
        },
    )
    .await;
    assert!(r.refused_503 > 0, "503 while no node was reachable");
    assert_eq!(r.other, 0, "only 202 and 503 answers");
}
