//! Opening a large-message connection: TCP (and TLS for `amqps://`) within the publish deadline, then the
//! AMQP 0-9-1 handshake up to a channel in confirm mode; and leaving it politely.
//!
//! Why by hand: this client exists to write body frames from the caller's buffer, which lapin cannot do, so
//! it speaks the few methods one confirmed publish needs (amq-protocol encodes and decodes the frames) and
//! nothing else: no heartbeats, one channel, closed at the first error.

use super::frames::{CHANNEL, Conn, FRAME_MAX, unexpected};
use super::{io_error, remaining, unavailable};
use crate::broker::BrokerError;
use amq_protocol::auth::Credentials;
use amq_protocol::frame::AMQPFrame;
use lapin::protocol::{AMQPClass, channel, confirm, connection};
use lapin::tcp::{HandshakeError, TLSConfig, TcpStream};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPScheme, AMQPUri};
use std::io::Write;
use std::time::{Duration, Instant};

impl Conn {
    /// TCP connect, then TLS for `amqps://`, every step bounded by `deadline` (the socket's timeouts are set
    /// before the TLS handshake, so a peer that accepts and then says nothing cannot hold the thread).
    pub(super) fn open(uri: &AMQPUri, name: &str, deadline: Instant) -> Result<Conn, BrokerError> {
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
            node: node_of(uri),
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

    /// Nothing arrived while idle and the socket is open: a broker that closed the connection (restart,
    /// operator) has sent a close or reset it.
    pub(super) fn quiet(&mut self) -> bool {
        let mut probe = [0u8; 1];
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let quiet = matches!(self.stream.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && quiet
    }

    /// Polite close, best effort and brief: the outcome is already known.
    pub(super) fn close(&mut self) {
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
}

/// `host:port` of the node `uri` points at.
pub(super) fn node_of(uri: &AMQPUri) -> String {
    format!("{}:{}", uri.authority.host, uri.authority.port)
}
