//! The runtime lapin is given: the bus's own tokio runtime, for everything lapin does — including dropping a
//! socket on lapin's I/O thread, which is where a second runtime used to be started.
//!
//! Why this exists: lapin drives each connection from a plain thread of its own (`lapin-io-loop`), outside
//! any tokio context. Its tokio socket is async-rs's `async_compat::Compat<TcpStream>`, and `Compat`'s `Drop`
//! needs a tokio context: on a thread without one it builds a process-global fallback runtime (thread
//! `async-compat/tokio-1`) on first use. So the first lost connection started a second tokio runtime in the
//! bus, and under file-descriptor exhaustion building it failed — `cannot start tokio-1 runtime` panicked on
//! the I/O thread and poisoned the global, so every later connection close panicked again (`Lazy instance
//! has previously been poisoned`). Passing lapin `Runtime::tokio_current()` does not help: that runtime is
//! already what lapin uses, and it is not consulted when the socket is dropped. Here the socket carries the
//! bus's runtime handle and enters it before it is dropped, so the fallback is never reached.

use async_rs::traits::Reactor;
use async_rs::util::RuntimeParts;
use async_rs::{Runtime, Tokio};
use futures::io::{AsyncRead, AsyncWrite};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Opens a lapin connection on the bus's runtime, named `name` (shown in the RabbitMQ management UI), giving
/// up after 10 s. Call from inside the runtime.
pub(crate) async fn open(uri: AMQPUri, name: String) -> Result<Connection, String> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect_uri_with_runtime(uri, props, current()),
    )
    .await
    .map_err(|_| "connection attempt timed out".to_string())?
    .map_err(|e| e.to_string())
}

/// What lapin runs on: tokio's executor bound to the bus's runtime, and [`BusReactor`].
pub(crate) type Kit = RuntimeParts<Tokio, BusReactor>;

/// The bus's current tokio runtime, for `lapin::Connection::connect_uri_with_runtime`. Call from inside it.
fn current() -> Runtime<Kit> {
    let handle = Handle::current();
    Runtime::new(RuntimeParts::new(
        Tokio::default().with_handle(handle.clone()),
        BusReactor {
            tokio: Tokio::default().with_handle(handle.clone()),
            handle,
        },
    ))
}

/// async-rs's tokio reactor, bound to the bus's runtime, whose sockets are [`InRuntime`].
#[derive(Clone, Debug)]
pub(crate) struct BusReactor {
    tokio: Tokio,
    handle: Handle,
}

impl Reactor for BusReactor {
    type TcpStream = InRuntime<<Tokio as Reactor>::TcpStream>;
    type Sleep = <Tokio as Reactor>::Sleep;

    // async-rs's bound is its unexported `AsSysFd`, which is exactly `AsFd + AsRawFd`.
    fn register<H: Read + Write + AsFd + AsRawFd + Send + 'static>(
        &self,
        socket: H,
    ) -> io::Result<impl AsyncRead + AsyncWrite + Send + Unpin + 'static> {
        self.tokio.register(socket)
    }

    fn sleep(&self, dur: Duration) -> Self::Sleep {
        self.tokio.sleep(dur)
    }

    fn interval(&self, dur: Duration) -> impl futures::Stream<Item = Instant> + Send + 'static {
        self.tokio.interval(dur)
    }

    fn tcp_connect_addr(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        let handle = self.handle.clone();
        let connect = self.tokio.tcp_connect_addr(addr);
        async move { Ok(InRuntime::new(handle, connect.await?)) }
    }
}

/// A socket that is dropped inside the runtime it was made in, whichever thread drops it.
pub(crate) struct InRuntime<S> {
    handle: Handle,
    /// Always `Some` until dropped.
    inner: Option<S>,
}

impl<S> InRuntime<S> {
    fn new(handle: Handle, inner: S) -> Self {
        Self {
            handle,
            inner: Some(inner),
        }
    }

    fn pin(self: Pin<&mut Self>) -> Pin<&mut S>
    where
        S: Unpin,
    {
        Pin::new(
            self.get_mut()
                .inner
                .as_mut()
                .expect("present until dropped"),
        )
    }
}

impl<S> Drop for InRuntime<S> {
    fn drop(&mut self) {
        let _inside = self.handle.enter();
        drop(self.inner.take());
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InRuntime<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.pin().poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.pin().poll_read_vectored(cx, bufs)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InRuntime<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pin().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.pin().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pin().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pin().poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records whether a tokio runtime was entered when it was dropped.
    struct Probe(Arc<Mutex<Option<bool>>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(Handle::try_current().is_ok());
        }
    }

    #[test]
    fn a_socket_dropped_on_a_plain_thread_is_dropped_inside_the_bus_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(None));
        let socket = InRuntime::new(rt.handle().clone(), Probe(seen.clone()));
        // lapin's I/O thread: a plain thread, no tokio context.
        std::thread::spawn(move || {
            assert!(Handle::try_current().is_err());
            drop(socket);
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), Some(true));
    }

    #[test]
    fn lapin_gets_sockets_that_carry_the_bus_runtime() {
        // Multi-threaded, so its I/O driver runs while a plain thread polls the socket.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let kit = rt.block_on(async { current() });
        let socket = rt.block_on(kit.tcp_connect_addr(addr)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        // Used from a plain thread, as lapin does, then dropped there.
        let got = std::thread::spawn(move || {
            let mut socket = socket;
            futures::executor::block_on(futures::AsyncWriteExt::write_all(&mut socket, b"AMQP"))
                .unwrap();
            drop(socket);
            Handle::try_current().is_err()
        })
        .join()
        .unwrap();
        assert!(got, "the thread had no runtime of its own");
        let mut buf = [0u8; 4];
        std::io::Read::read_exact(&mut peer, &mut buf).unwrap();
        assert_eq!(&buf, b"AMQP");
        // Closed by the drop: the peer reads end of stream.
        assert_eq!(std::io::Read::read(&mut peer, &mut buf).unwrap(), 0);
    }
}
