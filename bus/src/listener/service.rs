//! The service hyper calls for each request of a connection: answers the reader's stand-in requests with their
//! refusal, hands every other request to the axum router, gives any bare refusal the JSON error body, and
//! keeps the connection's count of answers owed (see [`super::conn`]). A verified client certificate goes into
//! every request's extensions.

use super::conn::Conn;
use super::guard::STAND_IN_HEADER;
use crate::http_api::{error_response, json_refusal};
use crate::tls::{CertInfo, ClientCert};
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tower::ServiceExt;

#[derive(Clone)]
pub struct Service {
    router: axum::Router,
    conn: Arc<Conn>,
    /// The client's address, given to handlers as `axum::extract::ConnectInfo<SocketAddr>`.
    peer: std::net::SocketAddr,
    /// The client certificate the TLS handshake verified, given to handlers as [`ClientCert`].
    cert: Option<Arc<CertInfo>>,
}

impl Service {
    pub fn new(
        router: axum::Router,
        conn: Arc<Conn>,
        peer: std::net::SocketAddr,
        cert: Option<Arc<CertInfo>>,
    ) -> Self {
        Self {
            router,
            conn,
            peer,
            cert,
        }
    }
}

/// One answer owed on the connection, until dropped (with the answer's body once it is handed back).
struct Owed(Arc<Conn>);

impl Owed {
    fn new(conn: Arc<Conn>) -> Self {
        conn.request_started();
        Self(conn)
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

/// An answer's body that settles what is owed once the HTTP layer is done with it.
pub struct Answer {
    body: Body,
    _owed: Owed,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

type Answering = Pin<Box<dyn Future<Output = Result<Response<Answer>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Answer>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, mut req: Request<Incoming>) -> Answering {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        if let Some(cert) = &self.cert {
            req.extensions_mut().insert(ClientCert(cert.clone()));
        }
        let owed = Owed::new(self.conn.clone());
        let stand_in = req
            .headers()
            .get(STAND_IN_HEADER)
            .is_some_and(|v| v.as_bytes() == self.conn.stand_in_token.as_bytes());
        let refusal = stand_in.then(|| self.conn.take_refusal()).flatten();
        let router = self.router.clone();
        Box::pin(async move {
            let resp = match refusal {
                Some(e) => {
                    let mut resp = error_response(&e);
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    resp
                }
                None => {
                    let method = req.method().clone();
                    let path = req.uri().path().to_owned();
                    let resp = router
                        .oneshot(req.map(Body::new))
                        .await
                        .unwrap_or_else(|never| match never {});
                    json_refusal(resp, &method, &path).await
                }
            };
            Ok(resp.map(|body| Answer { body, _owed: owed }))
        })
    }
}
