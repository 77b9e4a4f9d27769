//! The large-message publisher against the real RabbitMQ on 127.0.0.1:5672 (connection reuse, replacement of
//! a connection the broker closed, failures, deadlines) and its vectored write on a socket that takes a few
//! bytes at a time.

use super::frames::{FRAME_END, write_all_vectored};
use super::*;
use lapin::types::FieldTable;
use std::io::{IoSlice, Write};

/// A writer that takes at most `max` bytes per call, like a busy socket.
struct Trickle {
    got: Vec<u8>,
    max: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.max);
        self.got.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let mut left = self.max;
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(left);
            self.got.extend_from_slice(&b[..take]);
            n += take;
            left -= take;
            if left == 0 {
                break;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn vectored_write_survives_partial_writes() {
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    for max in [1, 3, 7, 8, 4096, 100_000] {
        let mut w = Trickle {
            got: Vec::new(),
            max,
        };
        write_all_vectored(&mut w, &[b"head123", &body, &[FRAME_END]]).unwrap();
        assert_eq!(&w.got[..7], b"head123", "max {max}");
        assert_eq!(&w.got[7..7 + body.len()], &body[..], "max {max}");
        assert_eq!(w.got.len(), 7 + body.len() + 1, "max {max}");
        assert_eq!(*w.got.last().unwrap(), FRAME_END);
    }
}

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A throw-away queue on the real RabbitMQ (auto-deleted with the declaring connection).
async fn scratch_queue() -> (lapin::Connection, String) {
    let conn = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ at 127.0.0.1:5672");
    let ch = conn.create_channel().await.unwrap();
    let name = format!("lt-large-unit-{}", uuid::Uuid::new_v4().simple());
    ch.queue_declare(
        name.as_str().into(),
        lapin::options::QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    (conn, name)
}

fn message(queue: &str, len: usize) -> Large {
    Large {
        uri: URL.parse().unwrap(),
        connection_name: "lienthong unit test (large message)".into(),
        exchange: String::new(),
        routing_key: queue.to_owned(),
        properties: BasicProperties::default().with_delivery_mode(2),
        body: Bytes::from(vec![42u8; len]),
    }
}

fn soon() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(10)
}

async fn depth(conn: &lapin::Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        queue.into(),
        lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_reused_and_one_the_broker_closed_is_replaced() {
    let (conn, queue) = scratch_queue().await;
    let pool = Pool::new();
    pool.publish(message(&queue, 300_000), soon())
        .await
        .unwrap();
    assert_eq!(pool.idle_count(), 1, "kept for the next large message");
    pool.publish(message(&queue, 300_000), soon())
        .await
        .unwrap();
    assert_eq!(pool.idle_count(), 1, "the same connection served again");
    // Make the broker close the idle connection: a frame on a channel that was never opened is a
    // connection error (504 CHANNEL_ERROR), answered with connection.close.
    {
        let (mut idle, since) = pool.idle.lock().unwrap().pop().unwrap();
        idle.stream
            .write_all(&[1, 0, 9, 0, 0, 0, 4, 0, 20, 0, 10, FRAME_END])
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while idle.quiet() {
            assert!(
                Instant::now() < deadline,
                "the broker answered the bad frame"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pool.idle.lock().unwrap().push((idle, since));
    }
    pool.publish(message(&queue, 300_000), soon())
        .await
        .unwrap();
    assert_eq!(
        pool.idle_count(),
        1,
        "a fresh connection replaced the closed one"
    );
    assert_eq!(depth(&conn, &queue).await, 3, "every publish arrived once");
    pool.reap(true).await;
    assert_eq!(pool.idle_count(), 0);
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_does_not_keep_its_connection() {
    let pool = Pool::new();
    let err = pool
        .publish(message("lt-large-unit-no-such-queue", 200_000), soon())
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unroutable(_)), "{err}");
    assert_eq!(pool.idle_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_accepts_and_says_nothing_cannot_hold_the_thread() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts every connection and never answers a byte (TLS hello or AMQP header alike).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    for scheme in ["amqp", "amqps"] {
        let pool = Pool::new();
        let mut msg = message("q", 10);
        msg.uri = format!("{scheme}://guest:guest@127.0.0.1:{port}/%2f")
            .parse()
            .unwrap();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
        let err = pool.publish(msg, deadline).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{scheme}: the blocking thread gave up at the deadline ({:?})",
            started.elapsed()
        );
        assert!(
            matches!(&err, BrokerError::Unavailable(m) if m.contains("deadline")),
            "{scheme}: {err}"
        );
        assert_eq!(pool.idle_count(), 0);
    }
}

#[test]
fn a_passed_deadline_is_a_clear_unavailable() {
    let err = remaining(Instant::now() - Duration::from_millis(1)).unwrap_err();
    assert!(
        matches!(&err, BrokerError::Unavailable(m) if m.contains("deadline")),
        "{err}"
    );
}
