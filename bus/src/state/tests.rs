//! The same suite against SQLite (a temporary file) and the real PostgreSQL at
//! `LIENTHONG_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Each PostgreSQL test gets its own schema (`lt_test_<uuid>`), selected through
//! `options=-c search_path=<schema>` in the URL, and drops it when done; tests therefore run in parallel
//! and repeat. If PostgreSQL is not reachable the PostgreSQL tests fail; they never skip.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use super::*;

use super::testing::{Fresh, Kind, fresh};

/// A connected store on a fresh database. Field order matters: the store goes before the cleanup.
struct TestDb {
    store: StateStore,
    url: String,
    _fresh: Fresh,
}

async fn db(kind: Kind) -> TestDb {
    let fresh = fresh(kind).await;
    let store = StateStore::connect(&fresh.url, "lienthong")
        .await
        .unwrap_or_else(|e| panic!("connect {kind:?}: {e}"));
    let expected = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    assert_eq!(store.backend(), expected);
    TestDb {
        store,
        url: fresh.url.clone(),
        _fresh: fresh,
    }
}

fn accepted(id: &str, routes: &[&str]) -> Accepted {
    Accepted {
        id: id.to_string(),
        routes: routes.iter().map(|r| r.to_string()).collect(),
    }
}

fn entry(adapter: &str, id: &str, dead_lettered_at: &str) -> DlqEntry {
    DlqEntry {
        id: id.to_string(),
        adapter: adapter.to_string(),
        route: format!("r-{adapter}"),
        kind: "ho-so.trang-thai".to_string(),
        from: "000.00.01.H53".to_string(),
        reason: "permanent_error".to_string(),
        last_error: Some("HTTP 400 from receiver".to_string()),
        status: Some(400),
        body_excerpt: Some("{\"error\":\"bad\"}".to_string()),
        attempts: 1,
        first_attempt_at: Some("2026-01-02T03:04:05.006Z".to_string()),
        last_attempt_at: Some("2026-01-02T03:04:06.007Z".to_string()),
        dead_lettered_at: dead_lettered_at.to_string(),
        state: "parked".to_string(),
        content_type: "application/json".to_string(),
        headers: json!({"x-lt-type": "ho-so.trang-thai", "x-lt-attempt": 1, "traceparent": "00-ab-cd-01"}),
        payload: format!("{{\"id\":\"{id}\",\"to\":\"{adapter}\"}}").into_bytes(),
    }
}

/// Listing leaves the payload out; everything else must match.
fn without_payload(mut e: DlqEntry) -> DlqEntry {
    e.payload.clear();
    e
}

async fn backdate(store: &StateStore, sql: &str, ms: i64, key: &str) {
    let done = sqlx::query(sql)
        .bind(ms)
        .bind(key)
        .execute(&store.pool)
        .await
        .expect("backdate");
    assert_eq!(done.rows_affected(), 1, "{sql}");
}

// ---- the suite ----------------------------------------------------------------------------------------

async fn ingress_first_writer_wins(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    assert_eq!(s.ingress_lookup("agency-a", "c-1").await.unwrap(), None);

    let first = accepted("m-1", &["tax", "police"]);
    s.ingress_record("agency-a", "c-1", "digest", &first)
        .await
        .unwrap();
    assert_eq!(
        s.ingress_lookup("agency-a", "c-1").await.unwrap(),
        Some(first.clone())
    );

    // A second writer for the same key does not replace the answer.
    s.ingress_record("agency-a", "c-1", "digest", &accepted("m-2", &["other"]))
        .await
        .unwrap();
    assert_eq!(
        s.ingress_lookup("agency-a", "c-1").await.unwrap(),
        Some(first.clone())
    );

    // The key is (sender, client id).
    assert_eq!(s.ingress_lookup("agency-b", "c-1").await.unwrap(), None);
    assert_eq!(s.ingress_lookup("agency-a", "c-2").await.unwrap(), None);
    let empty_routes = accepted("m-3", &[]);
    s.ingress_record("agency-b", "c-1", "digest", &empty_routes)
        .await
        .unwrap();
    assert_eq!(
        s.ingress_lookup("agency-b", "c-1").await.unwrap(),
        Some(empty_routes)
    );

    // Survives a restart: a new store on the same database sees it.
    s.close().await;
    let reopened = StateStore::connect(&db.url, "lienthong").await.unwrap();
    assert_eq!(
        reopened.ingress_lookup("agency-a", "c-1").await.unwrap(),
        Some(first)
    );
}

async fn ingress_concurrent_writers_agree(kind: Kind) {
    let db = db(kind).await;
    let other = StateStore::connect(&db.url, "lienthong").await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.ingress_record("a", "same", "digest", &accepted(&format!("m-{i}"), &["r"]))
                .await
                .unwrap();
            s.ingress_lookup("a", "same").await.unwrap().unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every writer must see the one answer that stands: {answers:?}"
    );
}

async fn delivered_dedupe(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    assert!(
        !s.was_delivered("tax", "000.00.01.H53", "m-1")
            .await
            .unwrap()
    );
    s.mark_delivered("tax", "000.00.01.H53", "m-1")
        .await
        .unwrap();
    assert!(
        s.was_delivered("tax", "000.00.01.H53", "m-1")
            .await
            .unwrap()
    );
    s.mark_delivered("tax", "000.00.01.H53", "m-1")
        .await
        .unwrap(); // idempotent
    assert!(
        s.was_delivered("tax", "000.00.01.H53", "m-1")
            .await
            .unwrap()
    );
    assert!(
        !s.was_delivered("police", "000.00.01.H53", "m-1")
            .await
            .unwrap()
    );
    assert!(
        !s.was_delivered("tax", "000.00.01.H53", "m-2")
            .await
            .unwrap()
    );
}

async fn dlq_park_list_get_and_state(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    let a1 = entry("tax", "m-1", "2026-01-02T03:05:00.000Z");
    let b1 = entry("police", "m-1", "2026-01-02T03:04:00.000Z");
    let mut a2 = entry("tax", "m-2", "2026-01-02T03:06:00.500Z");
    a2.last_error = None;
    a2.status = None;
    a2.body_excerpt = None;
    a2.first_attempt_at = None;
    a2.last_attempt_at = None;
    a2.content_type = "application/xml".into();
    a2.headers = json!({});
    for e in [&a1, &b1, &a2] {
        s.park(e).await.unwrap();
    }

    let all = s.dlq_list(None).await.unwrap();
    assert_eq!(
        all,
        vec![
            without_payload(b1.clone()),
            without_payload(a1.clone()),
            without_payload(a2.clone())
        ],
        "ordered by dead_lettered_at, payload left empty"
    );
    assert_eq!(
        s.dlq_list(Some("tax")).await.unwrap(),
        vec![without_payload(a1.clone()), without_payload(a2.clone())]
    );
    assert!(s.dlq_list(Some("nobody")).await.unwrap().is_empty());

    // get: one per adapter, with payload.
    assert_eq!(
        s.dlq_get("m-1", None, None).await.unwrap(),
        vec![b1.clone(), a1.clone()]
    );
    assert_eq!(
        s.dlq_get("m-1", Some("tax"), None).await.unwrap(),
        vec![a1.clone()]
    );
    assert!(s.dlq_get("m-404", None, None).await.unwrap().is_empty());

    // CAS: parked -> replayed once.
    assert!(
        s.dlq_set_state("tax", "000.00.01.H53", "m-1", "parked", "replayed")
            .await
            .unwrap()
    );
    assert!(
        !s.dlq_set_state("tax", "000.00.01.H53", "m-1", "parked", "replayed")
            .await
            .unwrap()
    );
    assert!(
        !s.dlq_set_state("tax", "000.00.01.H53", "m-1", "parked", "purged")
            .await
            .unwrap()
    );
    assert!(
        !s.dlq_set_state("tax", "000.00.01.H53", "m-404", "parked", "purged")
            .await
            .unwrap()
    );
    assert_eq!(
        s.dlq_get("m-1", None, None).await.unwrap(),
        vec![b1.clone()],
        "replayed entries are not listed"
    );
    assert_eq!(s.dlq_list(Some("tax")).await.unwrap().len(), 1);

    // Replayed and failed again: the row is parked again with the new details.
    let mut again = a1.clone();
    again.reason = "retries_exhausted".into();
    again.attempts = 7;
    again.last_error = Some("HTTP 503 from receiver".into());
    again.status = Some(503);
    again.first_attempt_at = Some("2026-01-03T00:00:00.000Z".into());
    again.last_attempt_at = Some("2026-01-03T00:10:00.000Z".into());
    again.dead_lettered_at = "2026-01-03T00:10:00.001Z".into();
    again.state = "replayed".into(); // ignored: park always parks
    again.payload = b"new bytes".to_vec();
    s.park(&again).await.unwrap();
    let mut expected = again.clone();
    expected.state = "parked".into();
    assert_eq!(
        s.dlq_get("m-1", Some("tax"), None).await.unwrap(),
        vec![expected.clone()]
    );
    assert_eq!(
        s.dlq_list(None).await.unwrap(),
        vec![
            without_payload(b1.clone()),
            without_payload(a2.clone()),
            without_payload(expected)
        ]
    );

    // Purge.
    assert!(
        s.dlq_set_state("police", "000.00.01.H53", "m-1", "parked", "purged")
            .await
            .unwrap()
    );
    assert_eq!(
        s.dlq_get("m-1", Some("police"), None).await.unwrap(),
        vec![]
    );

    // Bad states and times are refused.
    assert!(matches!(
        s.dlq_set_state("tax", "000.00.01.H53", "m-2", "parked", "deleted")
            .await,
        Err(StateError::InvalidDlqState(_))
    ));
    let mut bad = entry("tax", "m-3", "yesterday");
    assert!(matches!(
        s.park(&bad).await,
        Err(StateError::InvalidTime {
            field: "dead_lettered_at",
            ..
        })
    ));
    bad.dead_lettered_at = "2026-01-02T03:04:05Z".into();
    bad.last_attempt_at = Some("nope".into());
    assert!(matches!(
        s.park(&bad).await,
        Err(StateError::InvalidTime {
            field: "last_attempt_at",
            ..
        })
    ));
}

async fn dlq_times_are_normalised_to_utc_millis(kind: Kind) {
    let db = db(kind).await;
    let mut e = entry("tax", "m-tz", "2026-01-02T10:04:05.123456+07:00");
    e.first_attempt_at = Some("2026-01-02T03:04:05Z".into());
    db.store.park(&e).await.unwrap();
    let got = db.store.dlq_get("m-tz", None, None).await.unwrap();
    assert_eq!(got[0].dead_lettered_at, "2026-01-02T03:04:05.123Z");
    assert_eq!(
        got[0].first_attempt_at.as_deref(),
        Some("2026-01-02T03:04:05.000Z")
    );
}

async fn dlq_concurrent_replay_one_wins(kind: Kind) {
    let db = db(kind).await;
    let other = StateStore::connect(&db.url, "lienthong").await.unwrap();
    for round in 0..5 {
        let id = format!("m-{round}");
        db.store
            .park(&entry("tax", &id, "2026-01-02T03:04:05.000Z"))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            let to = if i % 3 == 0 { "purged" } else { "replayed" };
            let (barrier, id) = (barrier.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.dlq_set_state("tax", "000.00.01.H53", &id, "parked", to)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}: exactly one operator wins");
        assert!(db.store.dlq_get(&id, None, None).await.unwrap().is_empty());
    }
}

async fn audit_newest_first(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    assert!(s.audit_list(10).await.unwrap().is_empty());
    s.audit(
        "alice",
        "replay",
        "tax",
        "000.00.01.H53",
        "m-1",
        "from admin UI",
    )
    .await
    .unwrap();
    s.audit("bob", "purge", "police", "000.00.01.H53", "m-2", "")
        .await
        .unwrap();
    s.audit("alice", "replay", "tax", "000.00.01.H53", "m-3", "bulk")
        .await
        .unwrap();

    let all = s.audit_list(10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["m-3", "m-2", "m-1"]);
    assert_eq!(
        (
            all[1].actor.as_str(),
            all[1].action.as_str(),
            all[1].adapter.as_str(),
            all[1].detail.as_str()
        ),
        ("bob", "purge", "police", "")
    );
    let before = crate::message::now_millis();
    for e in &all {
        let at = millis_from_rfc3339(&e.at).expect("RFC 3339");
        assert!((before - 60_000..=before).contains(&at), "{}", e.at);
        assert!(e.at.ends_with('Z'));
    }
    let two = s.audit_list(2).await.unwrap();
    assert_eq!(two, all[..2].to_vec());
    assert!(s.audit_list(0).await.unwrap().is_empty());
}

async fn prune_keeps_parked_and_audit(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    let old = crate::message::now_millis() - 2 * 3600 * 1000;
    s.ingress_record("a", "old", "digest", &accepted("m-old", &["r"]))
        .await
        .unwrap();
    s.ingress_record("a", "new", "digest", &accepted("m-new", &["r"]))
        .await
        .unwrap();
    s.mark_delivered("tax", "000.00.01.H53", "old")
        .await
        .unwrap();
    s.mark_delivered("tax", "000.00.01.H53", "new")
        .await
        .unwrap();
    let parked = entry("tax", "parked-old", "2020-01-01T00:00:00.000Z");
    s.park(&parked).await.unwrap();
    s.park(&entry("tax", "replayed-old", "2020-01-01T00:00:00.000Z"))
        .await
        .unwrap();
    s.park(&entry("tax", "replayed-new", "2020-01-01T00:00:00.000Z"))
        .await
        .unwrap();
    assert!(
        s.dlq_set_state("tax", "000.00.01.H53", "replayed-old", "parked", "replayed")
            .await
            .unwrap()
    );
    assert!(
        s.dlq_set_state("tax", "000.00.01.H53", "replayed-new", "parked", "replayed")
            .await
            .unwrap()
    );
    s.audit(
        "alice",
        "replay",
        "tax",
        "000.00.01.H53",
        "replayed-old",
        "",
    )
    .await
    .unwrap();

    backdate(
        s,
        "UPDATE lt_ingress SET created_ms = $1 WHERE client_id = $2",
        old,
        "old",
    )
    .await;
    backdate(
        s,
        "UPDATE lt_delivered SET delivered_ms = $1 WHERE message_id = $2",
        old,
        "old",
    )
    .await;
    for id in ["parked-old", "replayed-old"] {
        backdate(
            s,
            "UPDATE lt_dlq SET updated_ms = $1 WHERE message_id = $2",
            old,
            id,
        )
        .await;
    }
    sqlx::query("UPDATE lt_audit SET at_ms = $1")
        .bind(old)
        .execute(&s.pool)
        .await
        .unwrap();

    assert_eq!(s.prune(Duration::from_secs(3600)).await.unwrap(), 3);

    assert_eq!(s.ingress_lookup("a", "old").await.unwrap(), None);
    assert!(s.ingress_lookup("a", "new").await.unwrap().is_some());
    assert!(
        !s.was_delivered("tax", "000.00.01.H53", "old")
            .await
            .unwrap()
    );
    assert!(
        s.was_delivered("tax", "000.00.01.H53", "new")
            .await
            .unwrap()
    );
    assert_eq!(
        s.dlq_get("parked-old", None, None).await.unwrap(),
        vec![parked],
        "parked rows are never pruned"
    );
    let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM lt_dlq")
        .fetch_one(&s.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(left, 2, "parked-old and replayed-new stay");
    assert_eq!(s.audit_list(10).await.unwrap().len(), 1);

    // Nothing more to do.
    assert_eq!(s.prune(Duration::from_secs(3600)).await.unwrap(), 0);
}

async fn payload_bytes_round_trip(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;

    let mut every_byte: Vec<u8> = (0..=255u8).collect();
    every_byte.extend_from_slice(&[0xc3, 0x28, 0xff, 0xfe, 0x00, 0x00, 0xed, 0xa0, 0x80]);
    let mut seed: u32 = 0x1234_5678;
    let big: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect();
    assert!(std::str::from_utf8(&big).is_err());

    for (id, payload) in [
        ("bytes", every_byte),
        ("big", big),
        ("empty", Vec::new()),
        (
            "vietnamese",
            "Sở Tư pháp tỉnh — hồ sơ số 12".as_bytes().to_vec(),
        ),
    ] {
        let mut e = entry("tax", id, "2026-01-02T03:04:05.000Z");
        e.payload = payload.clone();
        s.park(&e).await.unwrap();
        let got = s.dlq_get(id, Some("tax"), None).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].payload == payload, "payload {id} differs");
        assert_eq!(got[0], e);
    }
}

async fn two_instances_share_state(kind: Kind) {
    let db = db(kind).await;
    let one = &db.store;
    let two = StateStore::connect(&db.url, "lienthong").await.unwrap();

    one.ingress_record("a", "c", "digest", &accepted("m", &["r"]))
        .await
        .unwrap();
    assert_eq!(
        two.ingress_lookup("a", "c").await.unwrap(),
        Some(accepted("m", &["r"]))
    );
    two.mark_delivered("tax", "000.00.01.H53", "m")
        .await
        .unwrap();
    assert!(
        one.was_delivered("tax", "000.00.01.H53", "m")
            .await
            .unwrap()
    );
    let e = entry("tax", "m", "2026-01-02T03:04:05.000Z");
    one.park(&e).await.unwrap();
    assert_eq!(two.dlq_get("m", None, None).await.unwrap(), vec![e]);
    assert!(
        two.dlq_set_state("tax", "000.00.01.H53", "m", "parked", "replayed")
            .await
            .unwrap()
    );
    assert!(one.dlq_list(None).await.unwrap().is_empty());
    two.audit("ops", "replay", "tax", "000.00.01.H53", "m", "")
        .await
        .unwrap();
    assert_eq!(one.audit_list(5).await.unwrap()[0].actor, "ops");
}

async fn concurrent_connects_create_schema_once(kind: Kind) {
    let fresh = fresh(kind).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = fresh.url.clone();
        tasks.push(tokio::spawn(async move {
            StateStore::connect(&url, "lienthong").await
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap().expect("every concurrent connect succeeds"));
    }
    stores[0]
        .mark_delivered("a", "000.00.01.H53", "m")
        .await
        .unwrap();
    assert!(
        stores[3]
            .was_delivered("a", "000.00.01.H53", "m")
            .await
            .unwrap()
    );
    // And again on an existing schema.
    let again = StateStore::connect(&fresh.url, "lienthong").await.unwrap();
    assert!(
        again
            .was_delivered("a", "000.00.01.H53", "m")
            .await
            .unwrap()
    );
    for s in stores {
        s.close().await;
    }
    again.close().await;
}

async fn newer_schema_is_refused(kind: Kind) {
    let db = db(kind).await;
    sqlx::query("UPDATE lt_meta SET value = '99' WHERE name = 'schema_version'")
        .execute(&db.store.pool)
        .await
        .unwrap();
    match StateStore::connect(&db.url, "lienthong").await {
        Err(StateError::IncompatibleSchema {
            found: 99,
            supported: 2,
            ..
        }) => {}
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
}

async fn deliveries_of_lists_adapters(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    s.mark_delivered("stp", "000.00.01.H53", "m-1")
        .await
        .unwrap();
    let d = s.deliveries_of("000.00.01.H53", "m-1").await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, "stp");
}

/// Hundreds of operations at once (so the lanes answer them in multi-row batches) get the same answers as
/// one at a time: every mark is seen, no unmarked id is, every dossier ends with its latest facts.
async fn batched_operations_answer_each_caller(kind: Kind) {
    let db = db(kind).await;
    let s = Arc::new(db.store.clone());
    let n = 600;
    let marks = (0..n).map(|i| {
        let s = s.clone();
        async move {
            let adapter = if i % 2 == 0 { "tax" } else { "police" };
            s.mark_delivered(adapter, "000.00.01.H53", &format!("m-{i}"))
                .await
        }
    });
    for r in futures::future::join_all(marks).await {
        r.unwrap();
    }
    let checks = (0..2 * n).map(|i| {
        let s = s.clone();
        async move {
            let adapter = if i % 2 == 0 { "tax" } else { "police" };
            (
                i,
                s.was_delivered(adapter, "000.00.01.H53", &format!("m-{i}"))
                    .await
                    .unwrap(),
            )
        }
    });
    for (i, seen) in futures::future::join_all(checks).await {
        assert_eq!(seen, i < n, "m-{i}");
    }
    let records = (0..n).map(|i| {
        let s = s.clone();
        async move {
            let accepted = Accepted {
                id: format!("id-{i}"),
                routes: vec!["r".into()],
            };
            s.ingress_record("000.00.00.H40", &format!("c-{i}"), "digest", &accepted)
                .await
        }
    });
    for r in futures::future::join_all(records).await {
        r.unwrap();
    }
    let lookups = (0..n + 10).map(|i| {
        let s = s.clone();
        async move {
            let got = s
                .ingress_lookup("000.00.00.H40", &format!("c-{i}"))
                .await
                .unwrap();
            (i, got.map(|a| a.id))
        }
    });
    for (i, got) in futures::future::join_all(lookups).await {
        assert_eq!(got, (i < n).then(|| format!("id-{i}")), "c-{i}");
    }
}

// ---- scoping: ids by sender, rows by namespace, content by digest ------------------------------------

/// Two agencies choosing the same id send two messages: delivered, parked, replayed and audited apart.
async fn same_id_from_two_senders_is_two_messages(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    let (a, c) = ("000.00.00.H40", "000.00.01.H53");
    s.mark_delivered("tax", c, "collide-1").await.unwrap();
    assert!(s.was_delivered("tax", c, "collide-1").await.unwrap());
    assert!(
        !s.was_delivered("tax", a, "collide-1").await.unwrap(),
        "A's message with C's id must not count as delivered"
    );
    let mut mine = entry("tax", "collide-1", "2026-01-02T03:04:05.000Z");
    mine.from = a.into();
    mine.payload = b"A's payload".to_vec();
    let mut theirs = entry("tax", "collide-1", "2026-01-02T03:04:06.000Z");
    theirs.from = c.into();
    theirs.payload = b"C's payload".to_vec();
    s.park(&mine).await.unwrap();
    s.park(&theirs).await.unwrap();
    let both = s.dlq_get("collide-1", None, None).await.unwrap();
    assert_eq!(both.len(), 2, "two parked messages, not one overwritten");
    let only_a = s.dlq_get("collide-1", None, Some(a)).await.unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].payload, b"A's payload");
    assert!(
        s.dlq_set_state("tax", c, "collide-1", "parked", "purged")
            .await
            .unwrap()
    );
    let left = s.dlq_get("collide-1", None, None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].from, a, "purging C's message left A's parked");
    s.audit("ops", "purge", "tax", c, "collide-1", "")
        .await
        .unwrap();
    assert_eq!(s.audit_list(1).await.unwrap()[0].from, c);
    assert_eq!(s.deliveries_of(c, "collide-1").await.unwrap().len(), 1);
    assert!(s.deliveries_of(a, "collide-1").await.unwrap().is_empty());
}

/// Two buses of different namespaces on one database never see each other's rows.
async fn namespaces_do_not_share_rows(kind: Kind) {
    let db = db(kind).await;
    let one = &db.store;
    let two = StateStore::connect(&db.url, "other-ns").await.unwrap();
    let sender = "000.00.01.H53";
    one.park(&entry("tax", "m-1", "2026-01-02T03:04:05.000Z"))
        .await
        .unwrap();
    one.mark_delivered("tax", sender, "m-2").await.unwrap();
    one.ingress_record(sender, "c-1", "d", &accepted("m-3", &["r"]))
        .await
        .unwrap();
    one.audit("ops", "replay", "tax", sender, "m-1", "")
        .await
        .unwrap();
    assert!(two.dlq_list(None).await.unwrap().is_empty());
    assert!(two.dlq_get("m-1", None, None).await.unwrap().is_empty());
    assert!(
        !two.dlq_set_state("tax", sender, "m-1", "parked", "replayed")
            .await
            .unwrap()
    );
    assert!(!two.was_delivered("tax", sender, "m-2").await.unwrap());
    assert_eq!(two.ingress_lookup(sender, "c-1").await.unwrap(), None);
    assert!(two.audit_list(10).await.unwrap().is_empty());
    // …and the first bus still has all of it.
    assert_eq!(one.dlq_list(None).await.unwrap().len(), 1);
    assert!(one.was_delivered("tax", sender, "m-2").await.unwrap());
}

/// A claim fixes the content of (sender, id): the same content is answered as before, different content is
/// refused; of many different bodies claimed at once exactly one wins.
async fn claims_fix_the_content_of_an_id(kind: Kind) {
    let db = db(kind).await;
    let s = Arc::new(db.store.clone());
    let sender = "000.00.00.H40";
    assert_eq!(
        s.ingress_claim(sender, "c-1", "aaa").await.unwrap(),
        Claim::Won
    );
    assert_eq!(
        s.ingress_claim(sender, "c-1", "aaa").await.unwrap(),
        Claim::Same(None),
        "still being published: the same content waits for its answer"
    );
    assert_eq!(
        s.ingress_claim(sender, "c-1", "bbb").await.unwrap(),
        Claim::Different
    );
    let first = accepted("m-1", &["r"]);
    s.ingress_record(sender, "c-1", "aaa", &first)
        .await
        .unwrap();
    assert_eq!(
        s.ingress_claim(sender, "c-1", "aaa").await.unwrap(),
        Claim::Same(Some(first.clone()))
    );
    assert_eq!(
        s.ingress_claim(sender, "c-1", "bbb").await.unwrap(),
        Claim::Different
    );
    assert_eq!(
        s.ingress_claim("000.00.01.H53", "c-1", "bbb")
            .await
            .unwrap(),
        Claim::Won,
        "another sender's id is another message"
    );
    // Claims made at once (mostly one statement of one batch) where some keys exist and some are new: each
    // learns its own key's standing, not the statement's.
    let mixed = [("c-1", "aaa"), ("c-1", "bbb"), ("n-1", "x"), ("n-2", "y")];
    let answers = futures::future::join_all(
        mixed
            .iter()
            .map(|(id, digest)| s.ingress_claim(sender, id, digest)),
    )
    .await;
    let answers: Vec<Claim> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        answers,
        [
            Claim::Same(Some(first.clone())),
            Claim::Different,
            Claim::Won,
            Claim::Won
        ]
    );
    assert_eq!(
        s.ingress_claim(sender, "n-2", "other").await.unwrap(),
        Claim::Different,
        "a key first claimed among existing ones holds its digest"
    );
    let tasks = (0..50).map(|i| {
        let s = s.clone();
        async move {
            s.ingress_claim(sender, "race", &format!("digest-{i}"))
                .await
        }
    });
    let results = futures::future::join_all(tasks).await;
    let winners = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::Won)))
        .count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Claim::Won) | Ok(Claim::Different))),
        "{results:?}"
    );
    // The same content asked for at once, many times: one wins, the others learn it is being published.
    let tasks = (0..20).map(|_| {
        let s = s.clone();
        async move { s.ingress_claim(sender, "same", "one-digest").await }
    });
    let results = futures::future::join_all(tasks).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::Won)))
        .count();
    let pending = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::Same(None))))
        .count();
    assert_eq!((won, pending), (1, 19), "{results:?}");
}

/// PostgreSQL's TEXT cannot hold NUL; a peer's answer with `\u0000` is still parked.
async fn nul_in_parked_text_is_stored(kind: Kind) {
    let db = db(kind).await;
    let s = &db.store;
    let mut e = entry("tax", "m-nul", "2026-01-02T03:04:05.000Z");
    e.body_excerpt = Some("bad\0answer".into());
    s.park(&e).await.unwrap();
    assert_eq!(s.dlq_get("m-nul", None, None).await.unwrap().len(), 1);
}

/// A version-1 database (no namespaces, ids not scoped by sender) is upgraded in place: its rows are given
/// the namespace of the bus that opens it, parked messages keep their payload.
async fn version_1_database_is_upgraded(kind: Kind) {
    let fresh = fresh(kind).await;
    super::testing::make_version_1_database(&fresh.url, kind).await;
    let s = StateStore::connect(&fresh.url, "prov").await.unwrap();
    let parked = s.dlq_get("m-9", None, None).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].payload, b"old payload");
    assert_eq!(parked[0].from, "000.00.01.H53");
    assert_eq!(
        s.ingress_lookup("000.00.00.H40", "c-1").await.unwrap(),
        Some(accepted("m-1", &["r"]))
    );
    assert_eq!(
        s.ingress_claim("000.00.00.H40", "c-1", "any")
            .await
            .unwrap(),
        Claim::Same(Some(accepted("m-1", &["r"]))),
        "an answer kept without a digest is answered as before"
    );
    let other = StateStore::connect(&fresh.url, "another").await.unwrap();
    assert!(other.dlq_list(None).await.unwrap().is_empty());
    drop((s, other));
}

/// A plugin writer for [`a_failing_plugin_writer_fails_only_its_own_callers`]: marks each item (an id) delivered
/// to adapter `plugin-<name>` inside the batch's transaction, then, when `fail`, runs a statement that fails.
struct MarkingWriter {
    name: &'static str,
    fail: bool,
}

#[async_trait::async_trait]
impl GroupWriter for MarkingWriter {
    async fn write(
        &self,
        conn: &mut dyn GroupConn,
        ns: &str,
        items: Vec<GroupItem>,
    ) -> Result<(), GroupError> {
        let marks = match conn.dialect() {
            Backend::Postgres => "($1, $2, $3, $4, $5)",
            Backend::Sqlite => "(?, ?, ?, ?, ?)",
        };
        for item in items {
            let id = item.downcast::<String>().expect("a String item");
            conn.execute(
                &format!(
                    "INSERT INTO lt_delivered (ns, adapter, sender, message_id, delivered_ms) VALUES {marks}"
                ),
                vec![
                    ns.into(),
                    format!("plugin-{}", self.name).into(),
                    "000.00.01.H53".into(),
                    (*id).into(),
                    0_i64.into(),
                ],
            )
            .await?;
        }
        if self.fail {
            conn.execute("INSERT INTO lt_no_such_table (x) VALUES (1)", Vec::new())
                .await?;
        }
        Ok(())
    }
}

/// group.rs promises that a failing plugin writer rolls back only its own rows and fails only its own callers:
/// the core's marks and another plugin's rows written beside it (in the same batch or not) are committed.
async fn a_failing_plugin_writer_fails_only_its_own_callers(kind: Kind) {
    use sqlx::Connection as _;
    let db = db(kind).await;
    let s = &db.store;
    let good: Arc<dyn GroupWriter> = Arc::new(MarkingWriter {
        name: "good",
        fail: false,
    });
    let bad: Arc<dyn GroupWriter> = Arc::new(MarkingWriter {
        name: "bad",
        fail: true,
    });
    // Issued together so that most land in shared batches; what is asserted holds however they are batched.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (s, good, bad) = (s.clone(), good.clone(), bad.clone());
        calls.spawn(async move {
            let id = format!("m-{i}");
            let core = s.mark_delivered("core", "000.00.01.H53", &id).await;
            let good = s.group_write(good, Box::new(id.clone())).await;
            let bad = s.group_write(bad, Box::new(id.clone())).await;
            (id, core, good, bad)
        });
    }
    let mut answered = 0;
    while let Some(done) = calls.join_next().await {
        let (id, core, good, bad) = done.expect("task");
        core.unwrap_or_else(|e| panic!("{id}: the core's mark failed: {e}"));
        good.unwrap_or_else(|e| panic!("{id}: the good writer's item failed: {e}"));
        assert!(
            bad.is_err(),
            "{id}: the failing writer's caller was answered Ok"
        );
        answered += 1;
    }
    assert_eq!(answered, 40);
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let sql = match kind {
        Kind::Postgres => "SELECT COUNT(*) FROM lt_delivered WHERE adapter = $1",
        Kind::Sqlite => "SELECT COUNT(*) FROM lt_delivered WHERE adapter = ?",
    };
    let mut rows = std::collections::BTreeMap::new();
    for adapter in ["core", "plugin-good", "plugin-bad"] {
        let row = sqlx::query(sql)
            .bind(adapter)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        rows.insert(adapter, row.try_get::<i64, _>(0).unwrap());
    }
    assert_eq!(
        rows,
        [("core", 40), ("plugin-bad", 0), ("plugin-good", 40)].into(),
        "the core's marks and the good writer's rows stand; the failing writer's rows were rolled back"
    );
    conn.close().await.unwrap();
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await
                }
            )*
        }
    };
}

on_both_backends!(
    ingress_first_writer_wins,
    ingress_concurrent_writers_agree,
    delivered_dedupe,
    dlq_park_list_get_and_state,
    dlq_times_are_normalised_to_utc_millis,
    dlq_concurrent_replay_one_wins,
    audit_newest_first,
    prune_keeps_parked_and_audit,
    payload_bytes_round_trip,
    two_instances_share_state,
    concurrent_connects_create_schema_once,
    newer_schema_is_refused,
    batched_operations_answer_each_caller,
    same_id_from_two_senders_is_two_messages,
    namespaces_do_not_share_rows,
    claims_fix_the_content_of_an_id,
    nul_in_parked_text_is_stored,
    deliveries_of_lists_adapters,
    version_1_database_is_upgraded,
    a_failing_plugin_writer_fails_only_its_own_callers,
);

// ---- backend-specific ---------------------------------------------------------------------------------

#[tokio::test]
async fn unreachable_postgres_fails_without_leaking_the_password() {
    for url in [
        "postgres://lienthong:Sup3r-S3cret%21@127.0.0.1:1/lienthong",
        "postgresql://127.0.0.1:1/lienthong?user=lienthong&password=Sup3r-S3cret%21",
    ] {
        let err = StateStore::connect(url, "lienthong")
            .await
            .expect_err("port 1 is closed");
        assert!(matches!(err, StateError::Connect { .. }), "{err:?}");
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            texts.push(s.to_string());
            source = s.source();
        }
        for text in texts {
            assert!(
                !text.contains("Sup3r") && !text.contains("S3cret"),
                "leaks the password: {text}"
            );
            assert!(text.contains("127.0.0.1:1"), "names the server: {text}");
        }
    }
}

#[tokio::test]
async fn unsupported_url_is_refused_without_leaking_the_password() {
    let err = StateStore::connect("mysql://u:hunter2@db/lt", "lienthong")
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn sqlite_creates_the_file_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-less.db");
    // No `mode=` in the URL: the file is still created.
    let store = StateStore::connect(&format!("sqlite://{}", path.display()), "lienthong")
        .await
        .unwrap();
    assert!(path.exists());
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(sync, 1, "synchronous = NORMAL");
    store.close().await;
}

#[tokio::test]
async fn postgres_search_path_is_honoured() {
    let db = db(Kind::Postgres).await;
    let schema: String = sqlx::query("SELECT CAST(current_schema() AS TEXT) AS s")
        .fetch_one(&db.store.pool)
        .await
        .unwrap()
        .try_get("s")
        .unwrap();
    assert!(schema.starts_with("lt_test_"), "{schema}");
    let tables: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'lt\\_%'",
    )
    .bind(&schema)
    .fetch_one(&db.store.pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(
        tables, 8,
        "lt_meta, lt_ingress, lt_delivered, lt_dlq, lt_audit, lt_evidence, lt_evidence_head, lt_evidence_tip \
         (a plugin adds its own)"
    );
}

#[test]
fn rfc3339_helpers() {
    assert_eq!(rfc3339_from_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339_from_millis(1_767_323_045_006),
        "2026-01-02T03:04:05.006Z"
    );
    assert_eq!(
        millis_from_rfc3339("2026-01-02T10:04:05.006+07:00"),
        Some(1_767_323_045_006)
    );
    assert_eq!(millis_from_rfc3339("2026-01-02"), None);
}

#[test]
fn store_is_cheap_shareable() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<StateStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lanes_of_a_sqlite_file_have_their_own_connections() {
    let file = db(Kind::Sqlite).await;
    assert!(file.store.lanes_own_connections());
    let pg = db(Kind::Postgres).await;
    assert!(!pg.store.lanes_own_connections());
    // Only a database file that exists gets them (the schema is made through sqlx first).
    let path = file
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        sqlite_file(&file.url),
        Some(std::path::PathBuf::from(&path))
    );
    assert_eq!(sqlite_file("sqlite::memory:"), None);
    assert_eq!(sqlite_file(&format!("sqlite://{path}?mode=memory")), None);
    assert_eq!(sqlite_file(&format!("sqlite://{path}?mode=ro")), None);
    assert_eq!(
        sqlite_file("sqlite:///no/such/folder/state.db?mode=rwc"),
        None
    );
}

/// The lanes' own connections and the sqlx pool write the same file at once: every write lands, none fails
/// with "database is locked", and each side reads what the other committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lane_and_pool_writers_share_a_sqlite_file_under_load() {
    let db = db(Kind::Sqlite).await;
    let store = db.store.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let s = store.clone();
        tasks.spawn(async move {
            let id = format!("m{i}");
            s.ingress_claim("000.00.01.H53", &id, "digest").await?;
            s.ingress_record("000.00.01.H53", &id, "digest", &accepted(&id, &["r"]))
                .await?;
            s.mark_delivered("tax", "000.00.01.H53", &id).await
        });
    }
    for i in 0..60 {
        let s = store.clone();
        tasks.spawn(async move {
            s.park(&entry("tax", &format!("p{i}"), "2026-01-02T03:04:05.000Z"))
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(store.dlq_list(None).await.unwrap().len(), 60);
    for i in [0, 150, 299] {
        let id = format!("m{i}");
        // Written by the lanes, read through the pool and through the read lane.
        assert_eq!(
            store
                .deliveries_of("000.00.01.H53", &id)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .was_delivered("tax", "000.00.01.H53", &id)
                .await
                .unwrap()
        );
        assert_eq!(
            store.ingress_lookup("000.00.01.H53", &id).await.unwrap(),
            Some(accepted(&id, &["r"]))
        );
        assert_eq!(
            store
                .ingress_claim("000.00.01.H53", &id, "other")
                .await
                .unwrap(),
            Claim::Different
        );
    }
    // A row the pool writes is seen by the read lane's own connection.
    sqlx::query(
        "INSERT INTO lt_delivered (ns, adapter, sender, message_id, delivered_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind("lienthong")
    .bind("tax")
    .bind("000.00.01.H53")
    .bind("from-the-pool")
    .bind(1_i64)
    .execute(store.pool())
    .await
    .unwrap();
    assert!(
        store
            .was_delivered("tax", "000.00.01.H53", "from-the-pool")
            .await
            .unwrap()
    );
}

/// A plugin writer that panics.
struct PanickingWriter;

#[async_trait::async_trait]
impl GroupWriter for PanickingWriter {
    async fn write(
        &self,
        _conn: &mut dyn GroupConn,
        _ns: &str,
        _items: Vec<GroupItem>,
    ) -> Result<(), GroupError> {
        panic!("a plugin's bug");
    }
}

/// A writer that panics on the lane's own connection fails its callers, and the lane goes on: later claims and
/// marks are written and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_writer_does_not_stop_the_lanes_own_connection() {
    let db = db(Kind::Sqlite).await;
    let s = &db.store;
    assert!(s.lanes_own_connections());
    let bad: Arc<dyn GroupWriter> = Arc::new(PanickingWriter);
    assert!(s.group_write(bad, Box::new(())).await.is_err());
    s.mark_delivered("tax", "000.00.01.H53", "after")
        .await
        .unwrap();
    assert!(
        s.was_delivered("tax", "000.00.01.H53", "after")
            .await
            .unwrap()
    );
    assert_eq!(
        s.ingress_claim("000.00.01.H53", "k", "d").await.unwrap(),
        Claim::Won
    );
}
