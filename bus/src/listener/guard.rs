//! The socket as the HTTP layer sees it: bytes pass only once [`super::head::Reader`] has looked at them, and a
//! refused head never reaches the HTTP layer at all.
//!
//! A refused head (or one that did not arrive in time) is replaced by a stand-in request — `GET` with
//! `Connection: close` and a header carrying this connection's random token — and then end of input. The
//! service recognises the stand-in by its token and answers it with the refusal as JSON. So hyper itself
//! writes the answer, in order after any earlier requests on the connection, and closes the connection after
//! it; no refusal is ever answered with hyper's empty body.
//!
//! Writes pass straight through; a write that must wait for the client to read starts the connection's
//! write clock (see [`super::conn`]).

use super::conn::{Conn, Expired};
use super::head::{Phase, Reader, Step};
use crate::error::{ApiError, code};
use bytes::{Buf, BytesMut};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The header that marks a stand-in request; its value is the connection's token.
pub const STAND_IN_HEADER: &str = "x-lienthong-refusal";

/// Whether more is read from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    No,
    /// The client closed its side: the HTTP layer sees the end of input.
    ClientClosed,
    /// A refusal was stood in. The HTTP layer is then never given the end of input, only nothing more: it
    /// would take an end of input in the middle of a request for a client gone away and drop the answer. It
    /// closes the connection itself after answering (`Connection: close`).
    Refused,
}

/// `S` is the client's byte stream: the TCP socket, or the TLS session on it.
pub struct Guarded<S = TcpStream> {
    tcp: S,
    conn: Arc<Conn>,
    reader: Reader,
    /// Read from the socket and not yet handed on; the first `cleared` bytes may be.
    unread: BytesMut,
    cleared: usize,
    /// The stand-in request still to hand on, after `cleared`.
    stand_in: Option<bytes::Bytes>,
    ended: Ended,
}

impl<S> Guarded<S> {
    pub fn new(tcp: S, conn: Arc<Conn>) -> Self {
        Self {
            tcp,
            conn,
            reader: Reader::new(),
            unread: BytesMut::new(),
            cleared: 0,
            stand_in: None,
            ended: Ended::No,
        }
    }

    /// Stands a request in for everything not yet cleared, to be answered with `e`.
    fn refuse(&mut self, e: ApiError) {
        self.unread.truncate(self.cleared);
        self.conn.set_refusal(e);
        // The stand-in is a whole head without a body, as far as the connection's clock goes.
        self.conn.head_passed(false, Instant::now());
        let head = format!(
            "GET / HTTP/1.1\r\nhost: refused\r\nconnection: close\r\n{STAND_IN_HEADER}: {}\r\n\r\n",
            self.conn.stand_in_token
        );
        self.stand_in = Some(head.into());
        self.ended = Ended::Refused;
    }

    /// Tells the connection's clock what the step that just passed bytes meant.
    fn after_step(&self, heads_before: u64, phase_before: Phase) {
        let now = Instant::now();
        let phase = self.reader.phase();
        if self.reader.heads() != heads_before {
            self.conn.head_passed(phase == Phase::Body, now);
        } else if phase_before == Phase::Body && phase == Phase::Head {
            self.conn.body_done(now);
        }
        self.note_head_bytes();
    }

    fn note_head_bytes(&self) {
        if self.reader.phase() == Phase::Head && self.unread.len() > self.cleared {
            self.conn.head_bytes(Instant::now());
        }
    }

    /// Lets the reader look at everything read and not yet cleared.
    fn scan(&mut self) {
        self.note_head_bytes();
        while self.ended == Ended::No && self.cleared < self.unread.len() {
            let (heads, phase) = (self.reader.heads(), self.reader.phase());
            match self.reader.step(&self.unread[self.cleared..]) {
                Step::Pass(n) => {
                    self.cleared += n;
                    self.after_step(heads, phase);
                }
                Step::More => break,
                Step::Refuse(e) => {
                    let listener = self.conn.limits.section;
                    metrics::counter!("lienthong_http_refused_total", "listener" => listener, "code" => e.code.as_str())
                        .increment(1);
                    self.refuse(e);
                }
            }
        }
    }

    fn timeout_message(&self, what: &str, key: &str, d: std::time::Duration) -> String {
        format!(
            "the request {what} did not arrive within {}.{key} ({})",
            self.conn.limits.section,
            humantime::format_duration(d)
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.cleared > 0 {
                let n = this.cleared.min(out.remaining());
                out.put_slice(&this.unread[..n]);
                this.unread.advance(n);
                this.cleared -= n;
                return Poll::Ready(Ok(()));
            }
            if let Some(stand_in) = &mut this.stand_in {
                let n = stand_in.len().min(out.remaining());
                out.put_slice(&stand_in[..n]);
                stand_in.advance(n);
                if stand_in.is_empty() {
                    this.stand_in = None;
                }
                return Poll::Ready(Ok(()));
            }
            match this.ended {
                Ended::No => {}
                Ended::ClientClosed => return Poll::Ready(Ok(())),
                Ended::Refused => return Poll::Pending,
            }
            let limits = this.conn.limits;
            match this.conn.expired() {
                Some(Expired::Head) => {
                    let m = this.timeout_message(
                        "head",
                        "header_read_timeout",
                        limits.header_read_timeout,
                    );
                    this.refuse(ApiError::new(code::REQUEST_TIMEOUT, m));
                    continue;
                }
                Some(Expired::Body) => {
                    let m =
                        this.timeout_message("body", "body_read_timeout", limits.body_read_timeout);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, m)));
                }
                None => {}
            }
            // Body bytes that need no look go straight into the HTTP layer's buffer.
            let ahead = this.reader.body_bytes_ahead();
            if this.unread.is_empty() && ahead > 0 && ahead >= out.remaining() as u64 {
                let before = out.filled().len();
                ready!(Pin::new(&mut this.tcp).poll_read(cx, out))?;
                let read = &out.filled()[before..];
                if read.is_empty() {
                    this.ended = Ended::ClientClosed;
                } else {
                    let (heads, phase) = (this.reader.heads(), this.reader.phase());
                    let step = this.reader.step(read);
                    debug_assert_eq!(step, Step::Pass(read.len()));
                    this.after_step(heads, phase);
                }
                return Poll::Ready(Ok(()));
            }
            // Left uninitialised: zeroing 8 KiB on every read was ~8 % of a 1 KB message's instructions.
            let mut chunk = [MaybeUninit::<u8>::uninit(); 8192];
            let mut into = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut into))?;
            if into.filled().is_empty() {
                // The client closed: a partial head it left is dropped, and the HTTP layer sees the end.
                this.ended = Ended::ClientClosed;
                this.unread.truncate(this.cleared);
                continue;
            }
            this.unread.extend_from_slice(into.filled());
            this.scan();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.conn.write_blocked(r.is_pending(), Instant::now());
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.conn.write_blocked(r.is_pending(), Instant::now());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_flush(cx);
        this.conn.write_blocked(r.is_pending(), Instant::now());
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
