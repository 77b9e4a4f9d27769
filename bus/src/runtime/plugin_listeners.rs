//! Serving a plugin's own listeners ([`crate::plugin::PluginListener`]).
//!
//! Why a wrapper around the TCP listener: such a listener may face the internet (a citizens' lookup page), where
//! a client can open connections and never finish a request. A request timeout does not help there, since no
//! request has begun; so the number of open connections is capped (the next client waits in the kernel's
//! backlog) and a connection that sends nothing for a while is closed, which frees its place.

use crate::plugin::PluginListener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// Serves `l` on the bound `tcp` until `stop`, with the client's address available to handlers.
pub(crate) async fn serve(tcp: TcpListener, l: PluginListener, stop: CancellationToken) {
    let capped = Capped {
        inner: tcp,
        permits: Arc::new(Semaphore::new(l.max_connections.max(1))),
        idle: l.idle_timeout,
    };
    let app = l.app.into_make_service_with_connect_info::<SocketAddr>();
    // axum gives the peer's `SocketAddr` as connect info for its own listeners and for any listener wrapped by
    // `tap_io`; the tap itself does nothing.
    let listener = axum::serve::ListenerExt::tap_io(capped, |_: &mut CappedIo| {});
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    {
        tracing::error!(listener = l.key, error = %e, "A plugin listener stopped with an error");
    }
}

/// A TCP listener that holds at most as many connections as it has permits.
struct Capped {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl axum::serve::Listener for Capped {
    type Io = CappedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring only waits.
        let permit = loop {
            if let Ok(p) = self.permits.clone().acquire_owned().await {
                break p;
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let io = CappedIo {
                        stream,
                        _permit: permit,
                        idle: self.idle,
                        deadline: Box::pin(tokio::time::sleep(self.idle)),
                    };
                    return (io, addr);
                }
                // Out of file descriptors, or a connection reset before it was accepted: wait a little
                // rather than spin, as axum does for its own listener.
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One accepted connection: gives its permit back when dropped, and fails a read that waited longer than the
/// idle timeout since the last byte went either way.
struct CappedIo {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl CappedIo {
    fn active(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }
}

impl AsyncRead for CappedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.active();
                Poll::Ready(r)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for CappedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        if r.is_ready() {
            this.active();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            this.active();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(max: usize, idle: Duration) -> (SocketAddr, CancellationToken) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let stop = CancellationToken::new();
        let l = PluginListener {
            key: "test.listen",
            addr: addr.to_string(),
            app:
                axum::Router::new().route(
                    "/",
                    axum::routing::get(
                        |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                            SocketAddr,
                        >| async move { peer.ip().to_string() },
                    ),
                ),
            max_connections: max,
            idle_timeout: idle,
        };
        tokio::spawn(serve(tcp, l, stop.clone()));
        (addr, stop)
    }

    async fn get(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_one_to_close() {
        let (addr, stop) = start(1, Duration::from_secs(30)).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut first).await.contains("127.0.0.1"));
        // The kernel completes the second handshake, but the bus does not take the connection yet.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
        assert!(waited.is_err(), "served beyond the cap");
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
            .await
            .expect("served once the first closed")
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        stop.cancel();
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_and_frees_its_place() {
        let (addr, stop) = start(1, Duration::from_millis(200)).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("closed by the bus")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        let mut next = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut next).await.starts_with("HTTP/1.1 200"));
        stop.cancel();
    }
}
