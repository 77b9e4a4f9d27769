//! Per-key order (`[[routes]] order_by = "/payload/MaHoSo"`) against the real RabbitMQ and the portal
//! stand-in (`lienthong_adapters::dvcqg::standin`, which, like the real portal, refuses a progress row for a
//! dossier it does not hold with error 4 "không tồn tại").
//!
//! The stand-in answers 503 to one dossier's insert twice while 20 progress rows for it and 200 messages for
//! 50 other dossiers (an insert and three rows each) stream in. Checked: the portal takes every dossier's
//! insert before any of its rows, and each dossier's rows in the order they were accepted; the other dossiers
//! are not held up (all of them are through before the held insert's retries end); nothing is dead-lettered.
//! The same with one bus in this process, with two bus processes sharing PostgreSQL, and with one of those
//! two killed with SIGKILL mid-stream (then a row in flight at the kill may be repeated — the documented
//! window — but never out of order).

mod common;

use common::process::*;
use common::*;
use lienthong_adapters::dvcqg::standin::Portal;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const STATUS_MAP: &str = r#"{ "moi-dang-ky" = 1, "da-tiep-nhan" = 2, "khong-tiep-nhan" = 3, "dang-xu-ly" = 4,
  "cho-bo-sung" = 5, "cho-nghia-vu-tai-chinh" = 6, "rut-ho-so" = 7, "dung-xu-ly" = 8, "da-xu-ly" = 9,
  "da-tra-ket-qua" = 10 }"#;
const HELD_ROWS: usize = 20;
const OTHERS: usize = 50;
const OTHER_ROWS: usize = 3;

/// The portal stand-in with the account the buses are given, refusing progress for unknown dossiers.
async fn portal(held: &str) -> Portal {
    let p = Portal::start().await;
    p.with(|s| {
        s.user = "tok-DVCQG_USER".into();
        s.password = "tok-DVCQG_PASSWORD".into();
        s.progress_needs_dossier = true;
        s.fail_inserts_of.insert(held.to_owned(), (2, 503));
    });
    p
}

fn body(portal: &Portal) -> String {
    format!(
        r#"
[[adapters]]
id = "dvcqg"
type = "dvcqg"
base_url = "{}"
username_env = "DVCQG_USER"
password_env = "DVCQG_PASSWORD"
madonvi = "000.00.00.H40"
timeout = "5s"
progress_batch_linger = "5ms"
status_map = {STATUS_MAP}

[[routes]]
id = "portal"
types = ["dossier.submitted", "dossier.status-changed"]
deliver = ["dvcqg"]
order_by = "/payload/MaHoSo"
order_partitions = 8
retry = {{ attempts = 5, backoff = ["4s"] }}
"#,
        portal.url()
    )
}

fn code(n: usize) -> String {
    format!("{STP}-261128-{n:05}")
}

fn insert(code: &str) -> Value {
    let mut d = dossier(code);
    d["MaHoSo"] = json!(code);
    envelope(Some(&new_id()), H40, &[STP], d)
}

fn row(code: &str, n: usize) -> Value {
    json!({
        "id": new_id(),
        "type": "dossier.status-changed",
        "version": 1,
        "from": H40,
        "to": [STP],
        "payload": {
            "MaHoSo": code,
            "NguoiXuLy": "Trần Thị B",
            "ThoiDiemXuLy": format!("2026112809{:02}{:02}", n / 60, n % 60),
            "NoiDungXuLy": format!("Bước {n}"),
            "TrangThai": 4,
        }
    })
}

/// The stream, in the order it is posted: the held dossier's insert, then its 20 rows spread among the
/// other dossiers' inserts and rows.
fn stream(held: &str) -> Vec<Value> {
    let mut others: Vec<Value> = Vec::new();
    for k in 0..OTHER_ROWS + 1 {
        for d in 0..OTHERS {
            let c = code(d + 1);
            others.push(if k == 0 { insert(&c) } else { row(&c, k) });
        }
    }
    let mut out = vec![insert(held)];
    let every = others.len() / HELD_ROWS;
    let mut held_rows = (1..=HELD_ROWS).map(|n| row(held, n));
    for (i, m) in others.into_iter().enumerate() {
        out.push(m);
        if (i + 1) % every == 0
            && let Some(r) = held_rows.next()
        {
            out.push(r);
        }
    }
    out.extend(held_rows);
    out
}

/// Posts every message in order (each accepted before the next is sent), spread over `urls`; retries a
/// message whose bus is unreachable (killed) on the next URL.
async fn post_all(urls: &[String], messages: &[Value], on_half: impl FnOnce()) {
    let client = reqwest::Client::new();
    let mut on_half = Some(on_half);
    for (i, m) in messages.iter().enumerate() {
        if i == messages.len() / 2
            && let Some(f) = on_half.take()
        {
            f();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut via = i;
        loop {
            let r = client
                .post(&urls[via % urls.len()])
                .bearer_auth("tok-H40")
                .header("content-type", "application/json")
                .body(m.to_string())
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 202 => break,
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    assert!(status.as_u16() == 503, "{status}: {text}");
                }
                Err(_) => {}
            }
            assert!(Instant::now() < deadline, "message {i} not accepted");
            via += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the portal holds everything, then checks the order. `held_up` also checks that the other
/// dossiers were all through before the held dossier's insert got in.
async fn check_portal(portal: &Portal, held: &str, repeats_allowed: bool, held_up: bool) {
    let want = |taken: &[(String, &'static str, Value)]| {
        let mut per: HashMap<&str, (usize, usize)> = HashMap::new();
        for (c, what, _) in taken {
            let e = per.entry(c.as_str()).or_default();
            if *what == "progress" {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
        per.get(held).is_some_and(|e| e.0 >= 1 && e.1 >= HELD_ROWS)
            && (1..=OTHERS).all(|d| {
                per.get(code(d).as_str())
                    .is_some_and(|e| e.0 >= 1 && e.1 >= OTHER_ROWS)
            })
    };
    let taken = wait_for(
        "the portal to hold every dossier and row",
        Duration::from_secs(90),
        || async {
            let taken = portal.with(|s| s.taken.clone());
            want(&taken).then_some(taken)
        },
    )
    .await;
    let mut seen: HashMap<&str, Vec<(&str, String)>> = HashMap::new();
    for (c, what, r) in &taken {
        let step = r["NoiDungXuLy"].as_str().unwrap_or_default().to_owned();
        seen.entry(c.as_str()).or_default().push((what, step));
    }
    for (c, events) in &seen {
        assert_eq!(events[0].0, "insert", "{c}: the portal took {events:?}");
        let mut rows: Vec<&str> = events
            .iter()
            .filter(|(w, _)| *w == "progress")
            .map(|(_, s)| s.as_str())
            .collect();
        if repeats_allowed {
            rows.dedup();
        }
        let n = if *c == held { HELD_ROWS } else { OTHER_ROWS };
        let expected: Vec<String> = (1..=n).map(|k| format!("Bước {k}")).collect();
        assert_eq!(rows, expected, "{c}: rows out of order or repeated");
    }
    if held_up {
        let held_insert = taken
            .iter()
            .position(|(c, w, _)| c == held && *w == "insert")
            .unwrap();
        let last_other = taken.iter().rposition(|(c, _, _)| c != held).unwrap();
        assert!(
            last_other < held_insert,
            "the other dossiers waited for the held one: last other at {last_other}, held insert at {held_insert}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_dossier_retried_keeps_its_rows_behind_its_insert_and_holds_no_one_else() {
    let held = code(90_001);
    let portal = portal(&held).await;
    let bus = TestBus::start("order-one", &body(&portal)).await;
    post_all(&[bus.url("/v1/messages")], &stream(&held), || {}).await;
    check_portal(&portal, &held, false, true).await;
    let inserts = portal.calls("DongBoHoSoMC");
    assert!(
        inserts
            .iter()
            .filter(|c| c.body.to_string().contains(&held))
            .count()
            >= 3,
        "the held insert was tried three times"
    );
    let parked = bus.admin_json("/v1/dlq").await.unwrap();
    assert_eq!(parked, json!([]), "nothing is dead-lettered");
    bus.stop().await;
}

/// Two processes on one PostgreSQL, one namespace; returns them and what to clean up.
struct Pair {
    dir: tempfile::TempDir,
    ns: String,
    pg: PgSchema,
    files: Vec<(std::path::PathBuf, u16, u16)>,
}

impl Pair {
    async fn new(test: &str, body: &str) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let ns = namespace(test);
        let pg = PgSchema::create(test).await;
        let files = (0..2)
            .map(|_| write_config(dir.path(), &ns, &pg.url, body))
            .collect();
        Pair { dir, ns, pg, files }
    }

    async fn spawn(&self, i: usize) -> BusProcess {
        let (f, http, admin) = &self.files[i];
        BusProcess::spawn_with_env(
            f,
            *http,
            *admin,
            &[
                ("DVCQG_USER", "tok-DVCQG_USER"),
                ("DVCQG_PASSWORD", "tok-DVCQG_PASSWORD"),
            ],
        )
        .await
    }

    async fn finish(self, buses: Vec<BusProcess>) {
        for mut b in buses {
            b.terminate(Duration::from_secs(15)).await;
        }
        let names = lienthong_bus::broker::topology::Names::new(&self.ns);
        let sinks = vec!["dvcqg".to_string()];
        let topo = lienthong_bus::broker::topology::build(
            &names,
            &sinks,
            &[Duration::from_secs(4)].into_iter().collect(),
            1,
        )
        .with_order(&names, &sinks, &[("dvcqg".into(), 8)].into(), 1);
        delete_topology(&topo).await;
        self.pg.drop_now().await;
        drop(self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_bus_processes_keep_each_dossiers_order() {
    let held = code(90_002);
    let portal = portal(&held).await;
    let pair = Pair::new("order-two", &body(&portal)).await;
    let a = pair.spawn(0).await;
    let b = pair.spawn(1).await;
    post_all(&[a.url(), b.url()], &stream(&held), || {}).await;
    check_portal(&portal, &held, false, true).await;
    pair.finish(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bus_process_killed_mid_stream_loses_no_order() {
    let held = code(90_003);
    let portal = portal(&held).await;
    let pair = Pair::new("order-kill", &body(&portal)).await;
    // A subscribes first, so it is the active consumer of every partition until it dies.
    let a = std::sync::Arc::new(std::sync::Mutex::new(pair.spawn(0).await));
    let b = pair.spawn(1).await;
    let killer = a.clone();
    post_all(&[b.url()], &stream(&held), move || {
        killer.lock().unwrap().kill9();
    })
    .await;
    check_portal(&portal, &held, true, false).await;
    let a = std::sync::Arc::try_unwrap(a)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    pair.finish(vec![a, b]).await;
}

/// Without `order_by`, a progress row can overtake its dossier's insert; the portal's "does not exist" is then
/// taken as transient because this bus has not delivered that insert yet (its delivery records and the
/// dossier's messages, in the state store), so the row is retried and arrives after the insert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_order_a_row_refused_as_missing_waits_for_its_insert() {
    let held = code(90_004);
    let portal = portal(&held).await;
    let unordered = body(&portal)
        .replace("order_by = \"/payload/MaHoSo\"\norder_partitions = 8\n", "")
        .replace("backoff = [\"4s\"]", "backoff = [\"1s\"]");
    assert!(!unordered.contains("order_by"));
    let bus = TestBus::start("order-none", &unordered).await;
    let messages = [insert(&held), row(&held, 1)];
    post_all(&[bus.url("/v1/messages")], &messages, || {}).await;
    let taken = wait_for(
        "the insert and the row",
        Duration::from_secs(30),
        || async {
            let t = portal.with(|s| s.taken.clone());
            (t.len() == 2).then_some(t)
        },
    )
    .await;
    assert_eq!(
        taken.iter().map(|(_, w, _)| *w).collect::<Vec<_>>(),
        ["insert", "progress"]
    );
    // The row was refused at least once as "does not exist" and retried, not dead-lettered.
    assert!(portal.calls("CapNhatTienDoHoSoMC").len() >= 2);
    assert_eq!(bus.admin_json("/v1/dlq").await.unwrap(), json!([]));
    bus.stop().await;
}

/// A message without a key where its ordered route looks is refused at ingress, naming the pointer; with
/// one it is accepted and delivered (here on the embedded broker: the same partition queues in memory).
#[tokio::test]
async fn a_message_without_its_order_key_is_refused_naming_the_pointer() {
    let rx = Receiver::start().await;
    let body = format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[routes]]\nid = \"by-case\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\norder_by = \"/correlation_id\"\n",
        rx.url()
    );
    let bus = TestBus::start_with("order-key", "memory://", &body).await;
    let mut m = envelope(Some(&new_id()), H40, &[STP], dossier("k"));
    let (status, answer) = bus.post("H40", &m).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "schema_violation");
    assert_eq!(answer["error"]["details"][0]["path"], "/correlation_id");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("route `by-case` keeps its messages in order by `/correlation_id`"),
        "{answer}"
    );
    m["correlation_id"] = json!("case-1");
    let (status, answer) = bus.post("H40", &m).await;
    assert_eq!(status, 202, "{answer}");
    let calls = rx.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(calls.len(), 1);
    bus.stop().await;
}

/// A dead-lettered message releases its key: the next one of the key is delivered, the parked entry says
/// so, and a replay puts it back into its partition (delivered after what came meanwhile).
#[tokio::test]
async fn a_dead_letter_releases_its_key_says_so_and_replays_into_its_partition() {
    let rx = Receiver::scripted(&[400], 200).await;
    let body = format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[routes]]\nid = \"by-dossier\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n\
         order_by = \"/payload/MaHoSo\"\norder_partitions = 4\nretry = {{ attempts = 2, backoff = [\"1s\"] }}\n",
        rx.url()
    );
    let bus = TestBus::start("order-dlq", &body).await;
    let (first, second) = (insert(&code(7)), insert(&code(7)));
    let (s, a) = bus.post("H40", &first).await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = bus.post("H40", &second).await;
    assert_eq!(s, 202, "{a}");
    let ids = |calls: &[Call]| -> Vec<String> {
        calls
            .iter()
            .map(|c| c.header("idempotency-key").unwrap_or_default())
            .collect()
    };
    let calls = rx.wait_calls(2, Duration::from_secs(15)).await;
    let (id1, id2) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    assert_eq!(
        ids(&calls),
        [id1, id2],
        "the 400 first, then the next of its key"
    );
    let parked = bus.first_parked(Duration::from_secs(10)).await;
    assert_eq!(parked["id"], id1);
    assert_eq!(parked["reason"], "permanent_error");
    let entry = bus
        .admin_json(&format!("/v1/dlq/{id1}"))
        .await
        .unwrap_or_default();
    let note = entry[0]["headers"]["lt-order-note"]
        .as_str()
        .unwrap_or_default();
    assert!(note.contains(&format!("`{}` released", code(7))), "{entry}");
    let r = reqwest::Client::new()
        .post(bus.admin(&format!("/v1/dlq/{id1}/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let calls = rx.wait_calls(3, Duration::from_secs(15)).await;
    assert_eq!(ids(&calls), [id1, id2, id1]);
    bus.stop().await;
}
