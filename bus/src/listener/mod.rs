//! Serves an axum router on a TCP listener with the limits of `[http]` / `[admin]`: a cap on open
//! connections, and header, body and idle timeouts, so no client — however many connections it opens, however
//! slowly it sends — can hold the bus's file descriptors or keep a connection for ever.
//!
//! Why not `axum::serve`: it accepts every connection and never closes an idle or half-sent one; 20,000 idle
//! connections used up the process's file descriptors and the bus stopped answering, admin API included.
//!
//! At the cap the accept loop stops accepting (it does not accept-and-close): further connections wait in the
//! operating system's listen queue ([`LISTEN_QUEUE`]), costing no descriptor, and are taken in order as served
//! ones close; beyond the queue, the operating system drops connection attempts and clients retry. Each
//! connection runs hyper's HTTP/1.1 server on [`guard::Guarded`] (the socket seen through
//! [`head::Reader`], which checks every head and follows every body) with a watchdog that acts on
//! [`conn::Conn`]'s deadlines. Graceful shutdown stops accepting, lets requests in progress finish, and closes
//! idle connections.
//!
//! With `[<section>.tls]` each accepted connection first goes through the TLS handshake ([`tls`]); a verified
//! client certificate is handed to handlers in every request's extensions as [`crate::tls::ClientCert`].

mod conn;
pub mod fds;
mod guard;
pub mod head;
mod service;
mod tls;

use crate::config::ListenerLimits;
use conn::{Action, Conn};
use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often "at the cap" and accept errors are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Connections the operating system queues for a listener at its cap (bounded by `net.core.somaxconn`).
pub const LISTEN_QUEUE: u32 = 1024;

/// Binds `addr` (`host:port`) with a listen queue of [`LISTEN_QUEUE`]: while a listener is at its cap, this
/// many clients wait their turn instead of seeing their connection attempts dropped (the usual 128 is
/// soon full).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_QUEUE)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Serves `router` on `listener` until `stop` is cancelled, then finishes the requests in progress.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenerLimits,
    stop: CancellationToken,
) {
    serve_tls(listener, router, limits, None, stop).await
}

/// As [`serve`]; with `tls`, every connection is a TLS one (see [`crate::tls::server_config`]).
pub async fn serve_tls(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenerLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let name = limits.section;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    let mut logged_full: Option<Instant> = None;
    let mut logged_error: Option<Instant> = None;
    let due = |last: Option<Instant>| last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
    loop {
        while conns.try_join_next().is_some() {}
        if slots.available_permits() == 0 && due(logged_full) {
            logged_full = Some(Instant::now());
            tracing::warn!(
                listener = name,
                max_connections = limits.max_connections,
                "Listener at its connection cap ({name}.max_connections): new connections wait in the listen queue"
            );
        }
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break, // never closed
            },
            _ = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                conns.spawn(accept_connection(
                    tcp,
                    peer,
                    acceptor.clone(),
                    router.clone(),
                    limits,
                    stop.clone(),
                    slot,
                ));
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before it was taken: wait a little
                // rather than spin; the slot is free again.
                if due(logged_error) {
                    logged_error = Some(Instant::now());
                    tracing::error!(listener = name, error = %e, "accept failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Why the watchdog woke.
enum Woke {
    Done(Result<(), hyper::Error>),
    Stop,
    Deadline,
}

/// One accepted connection: the TLS handshake when the listener has one, then [`serve_connection`]. The
/// handshake and the first request head share the head's deadline, counted from the accept.
async fn accept_connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    limits: ListenerLimits,
    stop: CancellationToken,
    slot: OwnedSemaphorePermit,
) {
    let accepted = Instant::now();
    let gauge = metrics::gauge!("lienthong_http_connections", "listener" => limits.section);
    gauge.increment(1.0);
    match acceptor {
        None => {
            let service = |conn| service::Service::new(router, conn, peer, None);
            serve_connection(tcp, service, limits, accepted, stop).await
        }
        Some(acceptor) => {
            let handshake = tokio::select! {
                h = tls::handshake(&acceptor, tcp, peer, &limits, accepted) => h,
                _ = stop.cancelled() => None,
            };
            if let Some((session, cert)) = handshake {
                let service = |conn| service::Service::new(router, conn, peer, cert);
                serve_connection(session, service, limits, accepted, stop).await
            }
        }
    }
    gauge.decrement(1.0);
    drop(slot);
}

/// One connection: hyper's HTTP/1.1 server over the guarded stream, and the watchdog acting on its deadlines.
async fn serve_connection<S>(
    stream: S,
    service: impl FnOnce(Arc<Conn>) -> service::Service,
    limits: ListenerLimits,
    accepted: Instant,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let name = limits.section;
    let conn = Arc::new(Conn::new(limits, accepted));
    let io = hyper_util::rt::TokioIo::new(guard::Guarded::new(stream, conn.clone()));
    let http = hyper::server::conn::http1::Builder::new()
        // The deadlines are the watchdog's (hyper's own header timer also runs while a kept-alive
        // connection waits, so it cannot tell idle from slow).
        .header_read_timeout(None)
        .max_headers(head::MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, service(conn.clone()));
    let mut http = pin!(http);
    let mut stopped = pin!(stop.cancelled());
    let mut alarm = pin!(tokio::time::sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    let mut stopping = false;
    loop {
        let woke = poll_fn(|cx| {
            if let Poll::Ready(r) = http.as_mut().poll(cx) {
                return Poll::Ready(Woke::Done(r));
            }
            if !stopping && stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woke::Stop);
            }
            // Every change of phase happens while the connection is polled, just above.
            let deadline = conn.deadline();
            if deadline != armed {
                armed = deadline;
                if let Some(d) = deadline {
                    alarm.as_mut().reset(d);
                }
            }
            if armed.is_some() && alarm.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woke::Deadline);
            }
            Poll::Pending
        })
        .await;
        match woke {
            Woke::Done(r) => {
                if let Err(e) = r {
                    tracing::debug!(listener = name, error = %e, "connection ended with an error");
                }
                break;
            }
            Woke::Stop => {
                stopping = true;
                http.as_mut().graceful_shutdown();
            }
            Woke::Deadline => {
                let action = conn.expire(Instant::now());
                let (Action::Close(what) | Action::Answer(what)) = action;
                if what != "grace" {
                    metrics::counter!("lienthong_http_timeouts_total", "listener" => name, "timeout" => what)
                        .increment(1);
                }
                if let Action::Close(_) = action {
                    break;
                }
                // Cleared so the grace deadline is armed even should it equal the one that just passed.
                armed = None;
            }
        }
    }
}
