//! What the two HTTP APIs (ingress and admin) share: how an error is answered, how a bearer token is read, and
//! the rule that every refusal — ours, the router's or the HTTP layer's — carries the documented JSON error.
//!
//! Why one place: agencies' systems and operators' scripts branch on `error.code`; an empty 404 or a plain-text
//! 405 from the router gives them nothing to branch on, and two copies of the bearer rule had already drifted
//! (ingress took `bearer`, admin only `Bearer`).

use crate::error::{ApiError, code};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Renders an [`ApiError`] as its HTTP response: its code's status and the JSON body. The one rendering.
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e.to_json())).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

/// Why a request carries no usable bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBearer {
    /// No `Authorization` header at all.
    Missing,
    /// An `Authorization` header, but not `Bearer <token>`.
    NotBearer,
}

/// The token of `Authorization: Bearer <token>`. The scheme is matched without regard to case (RFC 7235: an
/// auth-scheme is case-insensitive, so `bearer` and `BEARER` are `Bearer` too) and is separated from the token
/// by one or more spaces; the token is taken without surrounding white space. The one rule of both APIs.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, NoBearer> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(NoBearer::Missing)?
        .to_str()
        .map_err(|_| NoBearer::NotBearer)?;
    let (scheme, token) = value
        .trim_start()
        .split_once(' ')
        .ok_or(NoBearer::NotBearer)?;
    let token = token.trim_matches([' ', '\t']);
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Ok(token)
    } else {
        Err(NoBearer::NotBearer)
    }
}

/// The error code of a refusal that came with a bare HTTP status (from the router or the HTTP layer).
pub fn code_for_status(status: StatusCode) -> crate::error::Code {
    match status.as_u16() {
        400 => code::BAD_REQUEST,
        401 => code::UNAUTHENTICATED,
        403 => code::FORBIDDEN,
        404 => code::NOT_FOUND,
        405 => code::METHOD_NOT_ALLOWED,
        408 => code::REQUEST_TIMEOUT,
        409 => code::CONFLICT,
        413 => code::PAYLOAD_TOO_LARGE,
        415 => code::UNSUPPORTED_MEDIA_TYPE,
        431 => code::HEADERS_TOO_LARGE,
        s if s >= 500 => code::INTERNAL,
        _ => code::BAD_REQUEST,
    }
}

/// The longest text of a router's own refusal kept as the message (they are one line, e.g. axum's
/// "Failed to deserialize query string: …").
const MAX_REFUSAL_TEXT: usize = 1024;

/// Gives a refusal that is not already our JSON error the documented body, keeping its status and headers
/// (`Allow` on a 405). The router answers unknown paths (404), wrong methods (405) and unparsable path or
/// query parameters (400) with an empty or plain-text body; this makes them `{"error": {"code", "message",
/// "details": []}}` with a message naming the method and path. HTML pages (the console's under `/ui/`: a
/// refused form, a record not found; the public lookup page's "not found" and 429) are left as they are:
/// people read them, not scripts.
pub async fn json_refusal(resp: Response, method: &Method, path: &str) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    // The operator console (`/ui/`) and the public lookup page (`/public/`) answer people, with pages of
    // their own: a refusal there stays a page. The router's own refusals are never HTML.
    let is_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_page {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_REFUSAL_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let path: String = path.chars().take(200).collect();
    let message = match status {
        StatusCode::NOT_FOUND => format!("no endpoint {method} {path}"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("{path} does not take {method}; it takes: {allow}")
        }
        _ if !text.is_empty() => text,
        _ => format!(
            "{method} {path}: {}",
            status.canonical_reason().unwrap_or("refused")
        ),
    };
    let body = ApiError::new(code_for_status(status), message).to_json();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_trimmed() {
        for v in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "bEaReR   tok ",
            " Bearer tok",
        ] {
            assert_eq!(bearer_token(&auth(v)), Ok("tok"), "{v:?}");
        }
    }

    #[test]
    fn anything_else_is_not_a_bearer_token() {
        assert_eq!(bearer_token(&HeaderMap::new()), Err(NoBearer::Missing));
        for v in [
            "Basic dG9rOg==",
            "Bearer",
            "Bearer ",
            "Bearertok",
            "Token tok",
            "",
        ] {
            assert_eq!(bearer_token(&auth(v)), Err(NoBearer::NotBearer), "{v:?}");
        }
    }

    #[tokio::test]
    async fn bare_refusals_become_json_and_keep_their_headers() {
        let resp = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "",
        )
            .into_response();
        let resp = json_refusal(resp, &Method::GET, "/v1/messages").await;
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[header::ALLOW], "POST");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
        assert_eq!(v["error"]["details"], serde_json::json!([]));
        assert!(
            v["error"]["message"].as_str().unwrap().contains("POST"),
            "{v}"
        );

        let text = (
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string",
        )
            .into_response();
        let resp = json_refusal(text, &Method::GET, "/v1/dlq").await;
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        assert_eq!(v["error"]["message"], "Failed to deserialize query string");

        let ok = json_refusal("fine".into_response(), &Method::GET, "/healthz").await;
        let body = axum::body::to_bytes(ok.into_body(), 4096).await.unwrap();
        assert_eq!(&body[..], b"fine");
    }
}
