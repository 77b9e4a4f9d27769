//! HTTP ingress: `POST /v1/messages`, and the pull mailboxes' `/v1/inbox` endpoints (handlers in
//! [`crate::mailbox::http`], sharing [`caller`]).
//!
//! Checks run cheapest-first so hostile input costs little: media type (415), client certificate and/or
//! bearer token (401, [`caller`]), size (413,
//! from `Content-Length` before reading, and again while reading), then the ctx ingress pipeline. The
//! connection itself (head checks, timeouts, the connection cap) is the listener's: [`crate::listener`].

use super::Ingress;
use crate::adapter::{Caller, Submission, Submit};
use crate::error::{ApiError, code};
use crate::http_api::error_response;
use crate::message::ContentKind;
use crate::tls::{CertInfo, ClientCert};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The ingress HTTP app.
pub fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/v1/messages", post(submit))
        .route("/v1/inbox", get(crate::mailbox::http::list))
        .route("/v1/inbox/{id}", get(crate::mailbox::http::fetch))
        .route("/v1/inbox/{id}/ack", post(crate::mailbox::http::ack))
        .route("/v1/inbox/{id}/nack", post(crate::mailbox::http::nack))
        .route("/openapi.json", get(openapi))
        .with_state(ingress)
}

/// `GET /openapi.json`: the document of the ingress and admin APIs, as the plugin that assembled this build
/// describes them (404 `not_found` when it describes none).
async fn openapi(State(ingress): State<Arc<Ingress>>) -> Response {
    match ingress.openapi() {
        Some(doc) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        None => {
            ApiError::new(code::NOT_FOUND, "this build has no OpenAPI document").into_response()
        }
    }
}

fn media_type(headers: &HeaderMap) -> Result<ContentKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ContentKind::of_media_type(ct) {
        Some(kind) => Ok(kind),
        None => Err(ApiError::new(
            code::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type `{}` is not accepted; send application/json (envelope) or application/xml (XML document)",
                ct.chars().take(100).collect::<String>()
            ),
        )),
    }
}

async fn submit(
    State(ingress): State<Arc<Ingress>>,
    cert: Option<axum::Extension<ClientCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cert = cert.map(|axum::Extension(ClientCert(c))| c);
    match handle(&ingress, &headers, cert.as_deref(), body).await {
        Ok(accepted) => (StatusCode::ACCEPTED, axum::Json(accepted)).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn handle(
    ingress: &Ingress,
    headers: &HeaderMap,
    cert: Option<&CertInfo>,
    body: Body,
) -> Result<crate::adapter::Accepted, ApiError> {
    // Refusals before the shared pipeline; the pipeline counts its own.
    let refused = super::counted;
    let content = media_type(headers).map_err(refused)?;
    let agency = ingress.caller(headers, cert).map_err(refused)?;
    let limit = ingress.ctx().config.http.max_body_bytes;
    let too_large = || {
        ApiError::new(
            code::PAYLOAD_TOO_LARGE,
            format!("body larger than http.max_body_bytes = {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(refused(too_large()));
    }
    let bytes = collect_body(body.into_data_stream(), declared, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => refused(too_large()),
            BodyError::Read(e) => refused(read_error(&e)),
        })?
        .into();
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ingress
        .submit(Submission {
            caller: Caller::Agency(agency),
            content,
            body: bytes,
            traceparent,
            fallback_id: None,
        })
        .await
}

/// Why a body could not be collected.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The connection failed or timed out while the body was arriving.
    Read(axum::Error),
}

/// Reads a whole body of at most `limit` bytes into one buffer.
///
/// The buffer grows as bytes arrive, never ahead of them: a client declaring `Content-Length: 10485760` and
/// sending 1 KB holds about 1 KB here, not 10 MiB (a thousand such connections would otherwise reserve 10
/// GB). Growth doubles what has arrived but never passes the declared length, so a truthful large body
/// (a 20 MB XML document) still ends in a buffer of exactly its size, held once: not a list of chunks plus a
/// concatenated copy.
pub async fn collect_body(
    mut stream: impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin,
    declared: Option<u64>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    /// The first allocation, so small bodies are not grown byte by byte.
    const FIRST: usize = 8 * 1024;
    let expected = declared.map_or(limit, |d| (d as usize).min(limit));
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(BodyError::Read)?;
        let needed = buf.len() + chunk.len();
        if needed > limit {
            return Err(BodyError::TooLarge);
        }
        if needed > buf.capacity() {
            let grown = (buf.capacity() * 2).max(FIRST).min(expected).max(needed);
            buf.reserve_exact(grown - buf.len());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The answer to a body that could not be read: 408 when it did not arrive within `body_read_timeout` (the
/// listener's message says so), else 400.
fn read_error(e: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return ApiError::new(code::REQUEST_TIMEOUT, io.to_string());
        }
        source = s.source();
    }
    ApiError::new(code::BAD_REQUEST, format!("could not read the body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunks(
        parts: Vec<Vec<u8>>,
    ) -> impl futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p))))
    }

    #[tokio::test]
    async fn a_large_declared_length_reserves_nothing_ahead_of_the_bytes() {
        let ten_mib = 10 * 1024 * 1024;
        let buf = collect_body(
            chunks(vec![vec![b'x'; 1024]]),
            Some(ten_mib as u64),
            ten_mib,
        )
        .await
        .unwrap();
        assert_eq!(buf.len(), 1024);
        assert!(buf.capacity() <= 8 * 1024, "reserved {}", buf.capacity());
        // Without a declared length, the limit does not size the buffer either.
        let buf = collect_body(chunks(vec![vec![b'x'; 100]; 3]), None, ten_mib)
            .await
            .unwrap();
        assert!(buf.capacity() <= 8 * 1024, "reserved {}", buf.capacity());
    }

    #[tokio::test]
    async fn a_truthful_body_ends_in_a_buffer_of_its_size() {
        let size = 3 * 1024 * 1024 + 17;
        let parts: Vec<Vec<u8>> = vec![b'x'; size]
            .chunks(64 * 1024)
            .map(<[u8]>::to_vec)
            .collect();
        let buf = collect_body(chunks(parts), Some(size as u64), 10 << 20)
            .await
            .unwrap();
        assert_eq!((buf.len(), buf.capacity()), (size, size));
    }

    #[tokio::test]
    async fn more_than_the_limit_is_too_large_whatever_was_declared() {
        let r = collect_body(chunks(vec![vec![b'x'; 600]; 2]), Some(10), 1000).await;
        assert!(matches!(r, Err(BodyError::TooLarge)), "{r:?}");
        let r = collect_body(chunks(vec![vec![b'x'; 1000]]), None, 1000).await;
        assert_eq!(r.unwrap().len(), 1000);
    }

    #[test]
    fn a_timed_out_body_is_408_and_names_the_setting() {
        let io = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive within http.body_read_timeout (1s)",
        );
        let e = read_error(&axum::Error::new(io));
        assert_eq!((e.code, e.status()), (code::REQUEST_TIMEOUT, 408));
        assert!(e.message.contains("http.body_read_timeout"), "{e}");
        let e = read_error(&axum::Error::new(std::io::Error::other("reset")));
        assert_eq!(e.code, code::BAD_REQUEST);
    }
}
