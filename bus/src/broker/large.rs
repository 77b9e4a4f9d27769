//! Large messages published without a second copy of the body.
//!
//! Why: lapin's `basic_publish` turns the whole body into owned frames before it sends the first byte, so a
//! 27 MB edXML package is held twice at the moment it is published, and lapin's 4 MiB send ring stays
//! resident once a large message has passed through it. A body of `bus.large_message_bytes` or more is
//! published here instead: on a connection of its own (a small AMQP client on amq-protocol's frame codec), from
//! a blocking thread, each body frame written straight from the caller's buffer. The promise is the lapin path's: persistent, `mandatory`, a
//! success only on the broker's publisher confirm, and failures reported with the same [`BrokerError`]s so the
//! caller's retry-until-deadline loop applies unchanged.
//!
//! At most [`CONCURRENT`] such publishes run at once. A connection that published successfully is kept for the
//! next large message for [`IDLE`] at most (RabbitMQ warns against connection churn, and a steady stream of
//! 1 MiB messages would otherwise open hundreds a second); one that saw any error is closed, and an idle one
//! is checked before reuse. The idle limit is short because these connections run without heartbeats: a
//! middlebox that silently drops an idle connection would otherwise turn the next publish into a timeout.

use super::BrokerError;
use amq_protocol::auth::Credentials;
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::protocol::{AMQPClass, basic, channel, confirm, connection};
use lapin::tcp::{HandshakeError, TLSConfig, TcpStream};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPScheme, AMQPUri};
use std::io::{IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Large publishes in flight at once across the process (each holds a connection and a blocking thread).
pub(super) const CONCURRENT: usize = 4;

/// How long a connection may wait idle for the next large message before it is closed.
pub(super) const IDLE: Duration = Duration::from_secs(15);

/// The channel the publishes go out on.
const CHANNEL: u16 = 1;
/// Largest frame proposed to the broker, and (with slack for the frame's own header) accepted from it.
const FRAME_MAX: u32 = 131_072;
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;

/// One large message and where it goes.
pub(super) struct Large {
    pub uri: AMQPUri,
    /// Shown in the RabbitMQ management UI, so an operator can tell these connections apart.
    pub connection_name: String,
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Bytes,
}

/// The large-message connections of one broker client: a bound on concurrent publishes, and idle connections.
pub(super) struct Pool {
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<(Conn, Instant)>>,
    /// Set at shutdown: a publish that finishes afterwards closes its connection instead of keeping it.
    closed: AtomicBool,
}

impl Pool {
    pub(super) fn new() -> Arc<Pool> {
        Arc::new(Pool {
            slots: Arc::new(Semaphore::new(CONCURRENT)),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Publishes `msg` and waits for its confirm, giving up at `deadline`.
    pub(super) async fn publish(
        self: &Arc<Self>,
        msg: Large,
        deadline: tokio::time::Instant,
    ) -> Result<(), BrokerError> {
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                unavailable(
                    "publish",
                    "too many large publishes at once until the deadline",
                )
            })?
            .map_err(|_| unavailable("publish", "closed"))?;
        let pool = self.clone();
        let deadline = deadline.into_std();
        // The slot goes with the thread: if our caller gives up first (its own deadline, a client gone), the
        // publish still running keeps counting against [`CONCURRENT`].
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut conn = match pool.take() {
                Some(c) => c,
                None => Conn::open(&msg.uri, &msg.connection_name, deadline)?,
            };
            let outcome = conn.publish(&msg, deadline);
            match outcome {
                Ok(()) => pool.put(conn),
                Err(_) => conn.close(),
            }
            outcome
        })
        .await
        .map_err(|e| BrokerError::Unavailable(format!("large-message publisher stopped: {e}")))?
    }

    /// An idle connection still fit for use; stale or broken ones met on the way are closed.
    fn take(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.idle.lock().expect("lock").pop()?;
            if since.elapsed() < IDLE && conn.quiet() {
                return Some(conn);
            }
            conn.close();
        }
    }

    fn put(&self, mut conn: Conn) {
        let mut idle = self.idle.lock().expect("lock");
        if idle.len() < CONCURRENT && !self.closed.load(Ordering::SeqCst) {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            conn.close();
        }
    }

    /// Closes connections idle longer than [`IDLE`]; `all` closes every idle one (shutdown).
    pub(super) async fn reap(self: &Arc<Self>, all: bool) {
        if all {
            self.closed.store(true, Ordering::SeqCst);
        }
        let stale: Vec<Conn> = {
            let mut idle = self.idle.lock().expect("lock");
            let (old, keep): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(_, since)| all || since.elapsed() >= IDLE);
            *idle = keep;
            old.into_iter().map(|(c, _)| c).collect()
        };
        if !stale.is_empty() {
            let _ =
                tokio::task::spawn_blocking(move || stale.into_iter().for_each(|mut c| c.close()))
                    .await;
        }
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().expect("lock").len()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("large-message connection: {what}: {e}"))
}

/// What went wrong on the socket; a timeout says so in the words the lapin path uses.
fn io_error(what: &str, e: std::io::Error) -> BrokerError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            unavailable(what, "not confirmed before the publish deadline")
        }
        _ => unavailable(what, e),
    }
}

struct Conn {
    stream: TcpStream,
    frame_max: u32,
    read_buf: Vec<u8>,
}

impl Conn {
    /// TCP connect, then TLS for `amqps://`, every step bounded by `deadline` (the socket's timeouts are set
    /// before the TLS handshake, so a peer that accepts and then says nothing cannot hold the thread).
    fn open(uri: &AMQPUri, name: &str, deadline: Instant) -> Result<Conn, BrokerError> {
        use std::net::ToSocketAddrs;
        let host = uri.authority.host.as_str();
        let addrs = (host, uri.authority.port)
            .to_socket_addrs()
            .map_err(|e| io_error("resolving the broker's host", e))?;
        let mut last = None;
        let mut plain = None;
        for addr in addrs {
            let mut left = remaining(deadline)?;
            if let Some(ms) = uri.query.connection_timeout {
                left = left.min(Duration::from_millis(ms.max(1)));
            }
            match std::net::TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    plain = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let plain = plain.ok_or_else(|| match last {
            Some(e) => unavailable(&format!("connect to {host}:{}", uri.authority.port), e),
            None => unavailable("connect", format!("`{host}` resolves to no address")),
        })?;
        let left = remaining(deadline)?;
        plain
            .set_read_timeout(Some(left))
            .and_then(|()| plain.set_write_timeout(Some(left)))
            .map_err(|e| io_error("socket", e))?;
        let stream = TcpStream::try_from(plain).map_err(|e| io_error("socket", e))?;
        let stream = match uri.scheme {
            AMQPScheme::AMQP => stream,
            AMQPScheme::AMQPS => match stream.into_tls(host, TLSConfig::default()) {
                Ok(s) => s,
                Err(HandshakeError::Failure(e)) => return Err(io_error("TLS handshake", e)),
                Err(HandshakeError::WouldBlock(_)) => {
                    return Err(unavailable(
                        "TLS handshake",
                        "not finished before the publish deadline",
                    ));
                }
            },
        };
        let mut conn = Conn {
            stream,
            frame_max: FRAME_MAX,
            read_buf: Vec::new(),
        };
        conn.handshake(uri, name, deadline)?;
        Ok(conn)
    }

    /// Connection.Start … Open, then a channel in confirm mode.
    fn handshake(
        &mut self,
        uri: &AMQPUri,
        name: &str,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        self.arm(deadline)?;
        self.stream
            .write_all(b"AMQP\x00\x00\x09\x01")
            .map_err(|e| io_error("protocol header", e))?;
        let start = match self.read_method(deadline)? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Start(s))) => s,
            other => return Err(unexpected("connection.start", other)),
        };
        let mechanism = uri.query.auth_mechanism.unwrap_or_default();
        if !start
            .mechanisms
            .to_string()
            .split_whitespace()
            .any(|m| m == mechanism.name())
        {
            return Err(unavailable(
                "login",
                format!(
                    "the broker does not offer {} (offers: {})",
                    mechanism.name(),
                    start.mechanisms
                ),
            ));
        }
        let credentials = Credentials::new(
            uri.authority.userinfo.username.clone().into(),
            uri.authority.userinfo.password.clone().into(),
        );
        let mut capabilities = FieldTable::default();
        for cap in [
            "publisher_confirms",
            "basic.nack",
            "authentication_failure_close",
        ] {
            capabilities.insert(cap.into(), AMQPValue::Boolean(true));
        }
        let mut client = FieldTable::default();
        client.insert("product".into(), AMQPValue::LongString("lienthong".into()));
        client.insert("connection_name".into(), AMQPValue::LongString(name.into()));
        client.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client,
                mechanism: mechanism.name().into(),
                response: credentials.sasl_auth_string(mechanism),
                locale: "en_US".into(),
            })),
        )?;
        let tune = match self.read_method(deadline)? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
            other => return Err(unexpected("connection.tune", other)),
        };
        let wanted = uri.query.frame_max.unwrap_or(FRAME_MAX).min(FRAME_MAX);
        self.frame_max = match tune.frame_max {
            0 => wanted,
            server => server.min(wanted),
        }
        .max(4096);
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 1,
                frame_max: self.frame_max,
                // One publish and its confirm: nothing for heartbeats to keep alive.
                heartbeat: 0,
            })),
        )?;
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: uri.vhost.as_str().into(),
            })),
        )?;
        match self.read_method(deadline)? {
            (0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => {}
            other => return Err(unexpected("connection.open-ok", other)),
        }
        self.send_method(
            CHANNEL,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )?;
        match self.read_method(deadline)? {
            (CHANNEL, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) => {}
            other => return Err(unexpected("channel.open-ok", other)),
        }
        self.send_method(
            CHANNEL,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
                nowait: false,
            })),
        )?;
        match self.read_method(deadline)? {
            (CHANNEL, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))) => Ok(()),
            other => Err(unexpected("confirm.select-ok", other)),
        }
    }

    /// basic.publish + content header + body frames written from `msg.body`, then waits for the confirm.
    fn publish(&mut self, msg: &Large, deadline: Instant) -> Result<(), BrokerError> {
        self.send_method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: msg.exchange.as_str().into(),
                routing_key: msg.routing_key.as_str().into(),
                mandatory: true,
                immediate: false,
            })),
        )?;
        self.send_frame(&AMQPFrame::Header(
            CHANNEL,
            AMQPContentHeader {
                class_id: 60,
                body_size: msg.body.len() as u64,
                properties: msg.properties.clone(),
            },
        ))?;
        // A body frame's header and end byte take 8 bytes of `frame_max`.
        let chunk = self.frame_max as usize - 8;
        for part in msg.body.chunks(chunk) {
            self.arm(deadline)?;
            let mut head = [0u8; 7];
            head[0] = FRAME_BODY;
            head[1..3].copy_from_slice(&CHANNEL.to_be_bytes());
            head[3..7].copy_from_slice(&(part.len() as u32).to_be_bytes());
            write_all_vectored(&mut self.stream, &[&head, part, &[FRAME_END]])
                .map_err(|e| io_error("sending the body", e))?;
        }
        self.stream
            .flush()
            .map_err(|e| io_error("sending the body", e))?;
        let mut returned: Option<String> = None;
        loop {
            match self.read_frame(deadline)? {
                AMQPFrame::Method(CHANNEL, AMQPClass::Basic(basic::AMQPMethod::Ack(_))) => {
                    return match returned {
                        None => Ok(()),
                        Some(why) => Err(BrokerError::Unroutable(format!(
                            "exchange `{}` routing key `{}`: {why}",
                            msg.exchange, msg.routing_key
                        ))),
                    };
                }
                AMQPFrame::Method(CHANNEL, AMQPClass::Basic(basic::AMQPMethod::Nack(_))) => {
                    return Err(BrokerError::Nacked);
                }
                AMQPFrame::Method(CHANNEL, AMQPClass::Basic(basic::AMQPMethod::Return(r))) => {
                    returned = Some(r.reply_text.to_string());
                }
                // The returned message's header and body, which we already hold.
                AMQPFrame::Header(..) | AMQPFrame::Body(..) | AMQPFrame::Heartbeat => {}
                AMQPFrame::Method(ch, method) => return Err(unexpected("basic.ack", (ch, method))),
                other => {
                    return Err(unavailable(
                        "waiting for the confirm",
                        format!("unexpected frame {other:?}"),
                    ));
                }
            }
        }
    }

    /// Nothing arrived while idle and the socket is open: a broker that closed the connection (restart,
    /// operator) has sent a close or reset it.
    fn quiet(&mut self) -> bool {
        let mut probe = [0u8; 1];
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let quiet = matches!(self.stream.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && quiet
    }

    /// Polite close, best effort and brief: the outcome is already known.
    fn close(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "done".into(),
            class_id: 0,
            method_id: 0,
        }));
        if self.arm(deadline).is_ok() && self.send_method(0, close).is_ok() {
            while let Ok(frame) = self.read_frame(deadline) {
                if matches!(
                    frame,
                    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))
                ) {
                    break;
                }
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Socket timeouts set to what is left before `deadline`.
    fn arm(&mut self, deadline: Instant) -> Result<(), BrokerError> {
        let left = remaining(deadline)?;
        self.stream
            .set_read_timeout(Some(left))
            .and_then(|()| self.stream.set_write_timeout(Some(left)))
            .map_err(|e| io_error("socket", e))
    }

    fn send_method(&mut self, channel: u16, method: AMQPClass) -> Result<(), BrokerError> {
        self.send_frame(&AMQPFrame::Method(channel, method))
    }

    fn send_frame(&mut self, frame: &AMQPFrame) -> Result<(), BrokerError> {
        let bytes = gen_frame(frame)(WriteContext::from(Vec::with_capacity(256)))
            .map_err(|e| unavailable("encoding a frame", format!("{e:?}")))?
            .write;
        self.stream
            .write_all(&bytes)
            .map_err(|e| io_error("sending", e))
    }

    /// The next method frame, answering a broker-side close (which carries the reason) as an error.
    fn read_method(&mut self, deadline: Instant) -> Result<(u16, AMQPClass), BrokerError> {
        loop {
            match self.read_frame(deadline)? {
                AMQPFrame::Method(ch, m) => return Ok((ch, m)),
                AMQPFrame::Heartbeat => continue,
                other => {
                    return Err(unavailable(
                        "handshake",
                        format!("unexpected frame {other:?}"),
                    ));
                }
            }
        }
    }

    fn read_frame(&mut self, deadline: Instant) -> Result<AMQPFrame, BrokerError> {
        self.arm(deadline)?;
        let mut head = [0u8; 7];
        self.stream
            .read_exact(&mut head)
            .map_err(|e| io_error("reading", e))?;
        if &head[..4] == b"AMQP" {
            return Err(unavailable(
                "handshake",
                "the broker does not speak AMQP 0-9-1 on this port",
            ));
        }
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if size > FRAME_MAX as usize {
            return Err(unavailable(
                "reading",
                format!("frame of {size} bytes is larger than the {FRAME_MAX} agreed"),
            ));
        }
        self.read_buf.clear();
        self.read_buf.extend_from_slice(&head);
        self.read_buf.resize(7 + size + 1, 0);
        self.stream
            .read_exact(&mut self.read_buf[7..])
            .map_err(|e| io_error("reading", e))?;
        let frame = parse_frame(self.read_buf.as_slice())
            .map(|(_, f)| f)
            .map_err(|e| unavailable("reading", format!("unreadable frame: {e}")))?;
        // A close from the broker ends this publish with the broker's reason; acknowledge it first.
        let reason = match &frame {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                let _ = self.send_method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                );
                Some(format!(
                    "connection closed by the broker: {} {}",
                    c.reply_code, c.reply_text
                ))
            }
            AMQPFrame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                let _ = self.send_method(
                    *ch,
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                );
                Some(format!(
                    "channel closed by the broker: {} {}",
                    c.reply_code, c.reply_text
                ))
            }
            _ => None,
        };
        match reason {
            Some(r) => Err(BrokerError::Unavailable(r)),
            None => Ok(frame),
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, BrokerError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(unavailable(
            "publish",
            "not confirmed before the publish deadline",
        ))
    } else {
        Ok(left)
    }
}

fn unexpected(wanted: &str, (channel, got): (u16, AMQPClass)) -> BrokerError {
    unavailable(
        "protocol",
        format!("expected {wanted}, got {got:?} on channel {channel}"),
    )
}

/// Writes every byte of `parts` with as few system calls as the socket allows.
fn write_all_vectored(stream: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = slices.as_mut_slice();
    while !bufs.is_empty() {
        match stream.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
