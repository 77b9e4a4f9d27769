//! AMQP frames on a large-message connection: the publish itself (method, content header, body frames written
//! from the caller's buffer with one vectored write each), the wait for its confirm, and frame I/O with the
//! socket's timeouts kept to the publish deadline.
//!
//! The connection itself ([`Conn`]: the socket and what was agreed for its frames) is defined here, with the
//! frame I/O everything else is built on; `conn` opens one and walks the handshake with these frames, so it
//! depends on this file and not the other way round.
//!
//! Why the body frames are written by hand: amq-protocol's encoder would copy each chunk into a new frame
//! buffer; writing the 7-byte header, the slice of the body and the end byte together avoids that copy.

use super::{Large, io_error, remaining, unavailable};
use crate::broker::BrokerError;
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use lapin::protocol::{AMQPClass, basic, channel, connection};
use lapin::tcp::TcpStream;
use std::io::{IoSlice, Read, Write};
use std::time::Instant;

/// The channel the publishes go out on.
pub(super) const CHANNEL: u16 = 1;
/// Largest frame proposed to the broker, and (with slack for the frame's own header) accepted from it.
pub(super) const FRAME_MAX: u32 = 131_072;
const FRAME_BODY: u8 = 3;
pub(super) const FRAME_END: u8 = 0xCE;

/// One connection with its channel [`CHANNEL`] in confirm mode.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    /// Agreed with the broker in the handshake.
    pub(super) frame_max: u32,
    /// Reused for every frame read.
    pub(super) read_buf: Vec<u8>,
    /// `host:port` of the node this connection is to: after the bus moves to another cluster node, idle
    /// connections to the old one are not reused.
    pub(super) node: String,
}

impl Conn {
    /// basic.publish + content header + body frames written from `msg.body`, then waits for the confirm.
    pub(super) fn publish(&mut self, msg: &Large, deadline: Instant) -> Result<(), BrokerError> {
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

    /// Socket timeouts set to what is left before `deadline`.
    pub(super) fn arm(&mut self, deadline: Instant) -> Result<(), BrokerError> {
        let left = remaining(deadline)?;
        self.stream
            .set_read_timeout(Some(left))
            .and_then(|()| self.stream.set_write_timeout(Some(left)))
            .map_err(|e| io_error("socket", e))
    }

    pub(super) fn send_method(
        &mut self,
        channel: u16,
        method: AMQPClass,
    ) -> Result<(), BrokerError> {
        self.send_frame(&AMQPFrame::Method(channel, method))
    }

    pub(super) fn send_frame(&mut self, frame: &AMQPFrame) -> Result<(), BrokerError> {
        let bytes = gen_frame(frame)(WriteContext::from(Vec::with_capacity(256)))
            .map_err(|e| unavailable("encoding a frame", format!("{e:?}")))?
            .write;
        self.stream
            .write_all(&bytes)
            .map_err(|e| io_error("sending", e))
    }

    /// The next method frame, answering a broker-side close (which carries the reason) as an error.
    pub(super) fn read_method(
        &mut self,
        deadline: Instant,
    ) -> Result<(u16, AMQPClass), BrokerError> {
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

    pub(super) fn read_frame(&mut self, deadline: Instant) -> Result<AMQPFrame, BrokerError> {
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

/// The error for a method other than the one the conversation expects next.
pub(super) fn unexpected(wanted: &str, (channel, got): (u16, AMQPClass)) -> BrokerError {
    unavailable(
        "protocol",
        format!("expected {wanted}, got {got:?} on channel {channel}"),
    )
}

/// Writes every byte of `parts` with as few system calls as the socket allows.
pub(super) fn write_all_vectored(stream: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
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
