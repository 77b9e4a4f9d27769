//! The domain's tables against SQLite and the real PostgreSQL, with the core's test databases
//! (`lienthong_bus::state::testing`).

use crate::documents::DocumentStore;
use crate::dossiers::{DossierFacts, DossierStore};
use lienthong_bus::state::StateStore;
use lienthong_bus::state::testing::{Fresh, Kind, fresh, make_version_1_database};
use std::sync::Arc;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(lienthong_bus::state::testing::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(lienthong_bus::state::testing::Kind::Postgres).await
                }
            )*
        }
    };
}

mod tracking;

/// The domain's stores on a fresh database. Field order matters: the stores go before the cleanup.
struct TestDb {
    documents: DocumentStore,
    dossiers: DossierStore,
    url: String,
    _fresh: Fresh,
}

async fn store(url: &str, namespace: &str) -> StateStore {
    StateStore::connect_with(url, namespace, &[crate::tables::TABLES])
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn db(kind: Kind) -> TestDb {
    let fresh = fresh(kind).await;
    let state = store(&fresh.url, "lienthong").await;
    TestDb {
        documents: DocumentStore::new(state.clone()),
        dossiers: DossierStore::start(state),
        url: fresh.url.clone(),
        _fresh: fresh,
    }
}

async fn document_status_cas(kind: Kind) {
    let db = db(kind).await;
    let s = &db.documents;
    assert_eq!(s.status("doc-1", "H53").await.unwrap(), None);
    assert!(
        s.set_status("doc-1", "H53", None, "received")
            .await
            .unwrap()
    );
    assert!(!s.set_status("doc-1", "H53", None, "other").await.unwrap());
    assert!(
        !s.set_status("doc-1", "H53", Some("processing"), "done")
            .await
            .unwrap()
    );
    assert_eq!(
        s.status("doc-1", "H53").await.unwrap().as_deref(),
        Some("received")
    );
    assert!(
        s.set_status("doc-1", "H53", Some("received"), "processing")
            .await
            .unwrap()
    );
    assert_eq!(
        s.status("doc-1", "H53").await.unwrap().as_deref(),
        Some("processing")
    );
    // Per organ.
    assert_eq!(s.status("doc-1", "G01").await.unwrap(), None);
    assert!(
        !s.set_status("doc-1", "G01", Some("received"), "x")
            .await
            .unwrap()
    );

    // Racing transitions from the same previous value: exactly one wins.
    let other = DocumentStore::new(store(&db.url, "lienthong").await);
    let barrier = Arc::new(tokio::sync::Barrier::new(6));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 {
            db.documents.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let next = format!("done-{i}");
            let won = s
                .set_status("doc-1", "H53", Some("processing"), &next)
                .await
                .unwrap();
            won.then_some(next)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        s.status("doc-1", "H53").await.unwrap(),
        Some(winners[0].clone())
    );
}

async fn dossier_tracking_merges_facts(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    let first = DossierFacts {
        code: "000.00.12.H40-261127-00001".into(),
        sender: "000.00.00.H40".into(),
        kind: "dossier.submitted".into(),
        message_id: "m-1".into(),
        status: Some(2),
        received: Some("20261127090000".into()),
        due: Some("20261130170000".into()),
        ..Default::default()
    };
    s.record(first.clone()).await.unwrap();
    let progress = DossierFacts {
        kind: "dossier.status-changed".into(),
        sender: "000.00.12.H40".into(),
        message_id: "m-2".into(),
        status: Some(4),
        due: None,
        received: None,
        note: Some("Chuyển phòng".into()),
        ..first.clone()
    };
    s.record(progress.clone()).await.unwrap();
    s.record(progress.clone()).await.unwrap(); // the same message twice is one event
    let v = s.get(&first.code).await.unwrap().unwrap();
    assert_eq!(v.status, Some(4));
    assert_eq!(
        v.due.as_deref(),
        Some("20261130170000"),
        "absent facts keep the old value"
    );
    assert_eq!(v.received.as_deref(), Some("20261127090000"));
    assert_eq!(v.last_message_id, "m-2");
    assert_eq!(v.events.len(), 2);
    assert_eq!(v.events[1].note.as_deref(), Some("Chuyển phòng"));
    assert!(s.get("nope").await.unwrap().is_none());
}

async fn batched_dossier_facts_answer_each_caller(kind: Kind) {
    let db = db(kind).await;
    let s = Arc::new(db.dossiers.clone());
    // Ten dossiers, sixty facts each, all in flight together: statuses 1..=60 in order per dossier.
    for step in 1..=60i64 {
        let facts = (0..10).map(|d| {
            let s = s.clone();
            async move {
                s.record(DossierFacts {
                    code: format!("H-{d}"),
                    sender: "000.00.00.H40".into(),
                    kind: "dossier.status-changed".into(),
                    message_id: format!("d{d}-{step}"),
                    status: Some(step),
                    due: (step == 1).then(|| "20261130170000".into()),
                    ..Default::default()
                })
                .await
            }
        });
        for r in futures::future::join_all(facts).await {
            r.unwrap();
        }
    }
    for d in 0..10 {
        let v = s.get(&format!("H-{d}")).await.unwrap().unwrap();
        assert_eq!(v.status, Some(60));
        assert_eq!(v.due.as_deref(), Some("20261130170000"));
        assert_eq!(v.events.len(), 60);
    }
}

async fn nul_in_tracked_text_is_stored(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    s.record(DossierFacts {
        code: "H-NUL".into(),
        sender: "000.00.00.H40".into(),
        kind: "dossier.status-changed".into(),
        message_id: "m-nul".into(),
        status: Some(2),
        local_status: Some("a\0b".into()),
        note: Some("x\0y".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = s.get("H-NUL").await.unwrap().expect("tracked");
    assert_eq!(v.local_status.as_deref(), Some("a\u{2400}b"));
    assert_eq!(v.events.len(), 1);
    assert_eq!(v.events[0].note.as_deref(), Some("x\u{2400}y"));
}

/// Two buses of different namespaces on one database never see each other's documents or dossiers.
async fn namespaces_do_not_share_rows(kind: Kind) {
    let db = db(kind).await;
    let two = store(&db.url, "other-ns").await;
    let (docs2, dossiers2) = (DocumentStore::new(two.clone()), DossierStore::start(two));
    assert!(
        db.documents
            .set_status("doc", "org", None, "03")
            .await
            .unwrap()
    );
    db.dossiers
        .record(DossierFacts {
            code: "H-1".into(),
            sender: "000.00.01.H53".into(),
            kind: "dossier.submitted".into(),
            message_id: "m-4".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(docs2.status("doc", "org").await.unwrap(), None);
    assert!(docs2.statuses("doc").await.unwrap().is_empty());
    assert!(dossiers2.get("H-1").await.unwrap().is_none());
    assert!(db.dossiers.get("H-1").await.unwrap().is_some());
}

/// A version-1 database's documents and dossiers move to the namespace of the bus that opens it first.
async fn version_1_tables_are_upgraded(kind: Kind) {
    let fresh = fresh(kind).await;
    make_version_1_database(&fresh.url, kind).await;
    let state = store(&fresh.url, "prov").await;
    let (docs, dossiers) = (
        DocumentStore::new(state.clone()),
        DossierStore::start(state),
    );
    assert_eq!(
        docs.status("doc", "org").await.unwrap().as_deref(),
        Some("03")
    );
    assert_eq!(dossiers.get("H-1").await.unwrap().unwrap().events.len(), 1);
    let other = store(&fresh.url, "another").await;
    assert_eq!(
        DocumentStore::new(other)
            .status("doc", "org")
            .await
            .unwrap(),
        None
    );
}

#[test]
fn party_codes_are_qcvn_102_agency_codes() {
    use lienthong_bus::plugin::Plugin;
    let p = crate::Province;
    assert!(p.check_party("000.00.00.H40").is_ok());
    for bad in [
        "H40",
        "bad",
        "",
        "000.00.00.h40",
        "000.00.00.H40,000.00.00.H41",
    ] {
        let e = p.check_party(bad).unwrap_err();
        assert!(e.contains("QCVN 102"), "{bad}: {e}");
    }
}

#[test]
fn receivers_may_be_any_code_of_the_national_network() {
    use lienthong_bus::plugin::Plugin;
    let p = crate::Province;
    for code in ["000.00.00.G12", "G12", "H37.02.02", "020100107370"] {
        assert!(p.check_receiver(code).is_ok(), "{code}");
    }
    // Only a QCVN 102 code may be a configured agency's own code.
    assert!(p.check_party("G12").is_err());
    for bad in ["", "G12,H40", "Bộ GTVT", "G 12"] {
        let e = p.check_receiver(bad).unwrap_err();
        assert!(e.contains("organisation code"), "{bad}: {e}");
    }
}

/// Every accepted status is recorded once per message, with its judgement, in the order accepted.
async fn status_events_are_recorded_once(kind: Kind) {
    let db = db(kind).await;
    let s = &db.documents;
    let doc = "000.00.00.H40,2019/03/01,7/UBND-VP";
    s.record_status(doc, "000.00.12.H40", "m-05", "05", "taken as reported")
        .await
        .unwrap();
    s.record_status(doc, "000.00.12.H40", "m-06", "06", "checked")
        .await
        .unwrap();
    // A resubmission keeps the first record.
    s.record_status(doc, "000.00.12.H40", "m-05", "05", "checked")
        .await
        .unwrap();
    s.record_status(doc, "000.00.13.H40", "m-03", "03", "checked")
        .await
        .unwrap();
    let events = s.status_events(doc).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.organ.as_str(), e.code.as_str(), e.judged.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("000.00.12.H40", "05", "taken as reported"),
            ("000.00.12.H40", "06", "checked"),
            ("000.00.13.H40", "03", "checked"),
        ]
    );
    assert!(s.status_events("other").await.unwrap().is_empty());
}

on_both_backends!(
    document_status_cas,
    status_events_are_recorded_once,
    dossier_tracking_merges_facts,
    batched_dossier_facts_answer_each_caller,
    nul_in_tracked_text_is_stored,
    namespaces_do_not_share_rows,
    version_1_tables_are_upgraded,
);
