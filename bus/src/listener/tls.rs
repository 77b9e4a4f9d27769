//! The TLS step of a connection on a listener with `[<section>.tls]`: the handshake, bounded by the header
//! timeout (a client that opens a connection and never finishes its handshake holds it no longer than one
//! that never sends a request head), and the verified client certificate, if any.
//!
//! Why before anything HTTP: a client whose certificate fails (unknown CA, expired, revoked) must never reach
//! a handler; the handshake fails, the reason is logged and counted, and the connection is closed.

use crate::config::ListenerLimits;
use crate::tls::CertInfo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The TLS session and the client's verified certificate (None when it presented none).
pub type Session = (TlsStream<TcpStream>, Option<Arc<CertInfo>>);

/// Runs the server side of the handshake; None (logged) when it fails or does not finish by
/// `accepted + header_read_timeout`.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    limits: &ListenerLimits,
    accepted: Instant,
) -> Option<Session> {
    let name = limits.section;
    let refused = |reason: &'static str| {
        metrics::counter!("lienthong_tls_handshake_failures_total", "listener" => name, "reason" => reason)
            .increment(1);
    };
    match tokio::time::timeout_at(accepted + limits.header_read_timeout, acceptor.accept(tcp)).await
    {
        Err(_) => {
            refused("timeout");
            tracing::info!(
                listener = name,
                %peer,
                "TLS handshake did not finish within {name}.header_read_timeout; connection closed"
            );
            None
        }
        Ok(Err(e)) => {
            refused(reason(&e));
            tracing::warn!(
                listener = name,
                %peer,
                reason = %e,
                "TLS handshake refused; connection closed"
            );
            None
        }
        Ok(Ok(session)) => {
            let cert = session
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(CertInfo::from_der(c)));
            Some((session, cert))
        }
    }
}

/// A short label of why a handshake failed, for the metric.
fn reason(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError, Error};
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(c)) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::Revoked => "revoked",
            CertificateError::UnknownIssuer => "unknown_issuer",
            _ => "bad_certificate",
        },
        Some(Error::NoCertificatesPresented) => "no_certificate",
        Some(_) => "protocol",
        None => "io",
    }
}
