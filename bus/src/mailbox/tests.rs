//! The mailbox's rules on the embedded broker (the real RabbitMQ ones are in `tests/mailbox.rs`).

use super::*;
use crate::broker::Tuning;
use crate::broker::topology;
use crate::message::{ContentKind, Message, Meta};
use crate::state::testing::{Kind, fresh};
use std::collections::BTreeSet;

const ADAPTER: &str = "nv";

fn copy(id: &str, from: &str) -> AdapterCopy {
    AdapterCopy::new(
        Message {
            meta: Meta {
                id: id.into(),
                kind: "dossier.submitted".into(),
                version: 1,
                from: from.into(),
                to: vec!["000.02.30.H40".into()],
                correlation_id: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            content: ContentKind::Json,
            payload: bytes::Bytes::from_static(b"{\"a\":1}"),
        },
        "r",
        ADAPTER,
        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    )
}

struct Fixture {
    mailbox: Arc<Mailbox>,
    names: Names,
    broker: Broker,
    stop: tokio_util::sync::CancellationToken,
    _db: crate::state::testing::Fresh,
}

async fn fixture(lease: Duration, recycle: Duration) -> Fixture {
    let db = fresh(Kind::Sqlite).await;
    let state = StateStore::connect(&db.url, "mb").await.unwrap();
    let names = Names::new("mb");
    let topo =
        topology::build(&names, &[], &BTreeSet::new(), 5).with_mailboxes(&names, &[ADAPTER.into()]);
    let broker = Broker::start(
        &["memory://".into()],
        topo,
        Tuning {
            max_in_flight: 16,
            large_message_bytes: 0,
        },
    );
    let spec = MailboxSpec {
        agency: "000.02.30.H40".into(),
        lease,
        window: 10,
    };
    let mailbox = Arc::new(
        Mailbox::new(
            ADAPTER,
            spec,
            broker.clone(),
            state,
            names.clone(),
            Duration::from_secs(2),
        )
        .with_recycle_after(recycle),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(hold::run(mailbox.clone(), stop.clone()));
    Fixture {
        mailbox,
        names,
        broker,
        stop,
        _db: db,
    }
}

impl Fixture {
    async fn put(&self, c: &AdapterCopy) {
        self.broker
            .publish(
                &self.names.deliver_exchange(),
                ADAPTER,
                &c.to_envelope(),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
    }

    async fn wait_listed(&self, n: usize) -> Vec<Pending> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let l = self.mailbox.list(100);
            if l.len() == n {
                return l;
            }
            assert!(Instant::now() < deadline, "{} listed, not {n}", l.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test]
async fn fetch_leases_ack_removes_and_a_later_copy_is_dropped() {
    let f = fixture(Duration::from_millis(300), RECYCLE_AFTER).await;
    f.put(&copy("m1", "A")).await;
    f.put(&copy("m2", "A")).await;
    let l = f.wait_listed(2).await;
    assert_eq!((l[0].id.as_str(), l[0].size), ("m1", 7));
    // Fetched: out of the listing for the lease, then offered again.
    let (c, _) = f.mailbox.fetch("m1", None).unwrap();
    assert_eq!(c.message.meta.id, "m1");
    assert_eq!(f.mailbox.list(100).len(), 1);
    f.wait_listed(2).await;
    // Acked: gone, recorded; acking again is the same answer.
    assert_eq!(
        f.mailbox.ack("m1", None).await.unwrap(),
        Settled {
            id: "m1".into(),
            from: "A".into()
        }
    );
    assert_eq!(f.mailbox.ack("m1", None).await.unwrap().id, "m1");
    assert_eq!(f.wait_listed(1).await[0].id, "m2");
    let queue = f.names.deliver_queue(ADAPTER);
    // A copy of the acked message arriving later is dropped, never offered.
    f.put(&copy("m1", "A")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.broker.queue_depth(&queue).await != Some(0) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.wait_listed(1).await[0].id, "m2");
    assert_eq!(f.mailbox.held(), 1);
}

#[tokio::test]
async fn an_id_two_senders_used_needs_from() {
    let f = fixture(Duration::from_secs(60), RECYCLE_AFTER).await;
    f.put(&copy("same", "A")).await;
    f.put(&copy("same", "B")).await;
    f.wait_listed(2).await;
    let e = f.mailbox.fetch("same", None).unwrap_err();
    assert_eq!(e.code, code::CONFLICT);
    assert_eq!(e.details[0].path, "from");
    assert!(e.message.contains("A, B"), "{e}");
    assert_eq!(
        f.mailbox
            .fetch("same", Some("B"))
            .unwrap()
            .0
            .message
            .meta
            .from,
        "B"
    );
    assert_eq!(
        f.mailbox.fetch("nope", None).unwrap_err().code,
        code::NOT_FOUND
    );
    // A second copy of a held message is dropped; the first stands for both.
    f.put(&copy("same", "A")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.mailbox.held(), 2);
}

#[tokio::test]
async fn nack_dead_letters_with_the_reason() {
    let f = fixture(Duration::from_secs(60), RECYCLE_AFTER).await;
    f.put(&copy("bad", "A")).await;
    f.wait_listed(1).await;
    f.mailbox
        .nack("bad", None, "the case code is unknown here")
        .await
        .unwrap();
    assert_eq!(f.mailbox.held(), 0);
    let dead = f.names.dead_queue(ADAPTER);
    assert_eq!(f.broker.queue_depth(&dead).await, Some(1));
    let mut c = f
        .broker
        .consume(&dead, 1, Duration::from_secs(1))
        .await
        .unwrap();
    let d = c.next().await.unwrap().unwrap();
    let row = crate::wire::dead::parked(&d.envelope, ADAPTER, "now");
    assert_eq!(row.reason, "the case code is unknown here");
    assert_eq!(row.id, "bad");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused by 000.02.30.H40")),
        "{:?}",
        row.last_error
    );
}

#[tokio::test]
async fn held_messages_are_recycled_and_keep_their_lease() {
    let f = fixture(Duration::from_secs(60), Duration::from_millis(200)).await;
    f.put(&copy("old", "A")).await;
    f.wait_listed(1).await;
    f.mailbox.fetch("old", None).unwrap();
    // Recycled (put back and held again) a few times: still held, still leased, ack still works.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(f.mailbox.list(100).is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.mailbox.held() != 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f.mailbox.ack("old", None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.mailbox.held() != 0
        || f.broker.queue_depth(&f.names.deliver_queue(ADAPTER)).await != Some(0)
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
