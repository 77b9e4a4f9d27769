//! HTTP ingress: `POST /v1/messages`.
//!
//! Checks run cheapest-first so hostile input costs little: media type (415), bearer token (401), size (413,
//! from `Content-Length` before reading, and again while reading), then the shared ingress pipeline.

use super::Ingress;
use crate::adapter::{Caller, Submission, Submit};
use crate::error::{ApiError, code};
use crate::message::ContentKind;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;

/// The ingress HTTP app.
pub fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/v1/messages", post(submit))
        .with_state(ingress)
}

/// Renders an [`ApiError`] as its HTTP response.
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e.to_json())).into_response()
}

fn media_type(headers: &HeaderMap) -> Result<ContentKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(ContentKind::Json),
        "application/xml" | "text/xml" => Ok(ContentKind::Xml),
        _ => Err(ApiError::new(
            code::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type `{}` is not accepted; send application/json (envelope) or application/xml (XML document)",
                ct.chars().take(100).collect::<String>()
            ),
        )),
    }
}

fn caller(ingress: &Ingress, headers: &HeaderMap) -> Result<String, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                code::UNAUTHENTICATED,
                "missing `Authorization: Bearer <token>`",
            )
        })?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::new(
                code::UNAUTHENTICATED,
                "Authorization must be `Bearer <token>`",
            )
        })?;
    ingress
        .agency_for_token(token.trim())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::new(code::UNAUTHENTICATED, "unknown bearer token"))
}

async fn submit(State(ingress): State<Arc<Ingress>>, headers: HeaderMap, body: Body) -> Response {
    match handle(&ingress, &headers, body).await {
        Ok(accepted) => (StatusCode::ACCEPTED, axum::Json(accepted)).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn handle(
    ingress: &Ingress,
    headers: &HeaderMap,
    body: Body,
) -> Result<crate::adapter::Accepted, ApiError> {
    let refused = |e: ApiError| {
        // Refusals before the shared pipeline; the pipeline counts its own.
        metrics::counter!("lienthong_ingress_refused_total", "code" => e.code).increment(1);
        e
    };
    let content = media_type(headers).map_err(refused)?;
    let agency = caller(ingress, headers).map_err(refused)?;
    let limit = ingress.shared().config.http.max_body_bytes;
    let too_large = || {
        ApiError::new(
            code::PAYLOAD_TOO_LARGE,
            format!("body larger than http.max_body_bytes = {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(refused(too_large()));
    }
    // Read into one buffer sized from Content-Length: a 20 MB XML document is held once, not as a list of
    // chunks plus a concatenated copy.
    let hint = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(limit);
    let mut buf = bytes::BytesMut::with_capacity(hint);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(code::INVALID_JSON, format!("could not read the body: {e}"))
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(refused(too_large()));
        }
        buf.extend_from_slice(&chunk);
    }
    let bytes = buf.freeze();
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
