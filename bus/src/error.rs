//! The error every API answers with: a stable code, a message, and where exactly the problem is.
//!
//! Codes are a contract with agencies' systems (they branch on them), so they are `&'static str` constants
//! here and nowhere else; the HTTP status is derived from the code.

use serde::Serialize;

/// One located problem: a JSON pointer (or key path) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub path: String,
    pub message: String,
}

/// An API error: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Detail>,
    /// The same message sent again later may be accepted (see [`ApiError::retry_later`]); not part of the
    /// JSON answer.
    pub retryable: bool,
}

pub mod code {
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_ENVELOPE: &str = "invalid_envelope";
    pub const INVALID_XML: &str = "invalid_xml";
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    /// A query parameter of a read endpoint is unknown or malformed (`details[].path` names it).
    pub const INVALID_QUERY: &str = "invalid_query";
    /// Too many requests from one client; the answer carries `Retry-After`.
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    pub const SCHEMA_VIOLATION: &str = "schema_violation";
    pub const NO_ROUTE: &str = "no_route";
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    pub const CONFLICT: &str = "conflict";
    pub const BROKER_UNAVAILABLE: &str = "broker_unavailable";
    pub const STATE_UNAVAILABLE: &str = "state_unavailable";
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    pub const INTERNAL: &str = "internal";
    /// The request itself is malformed at the HTTP level (request line, a header, `Content-Length`, framing).
    pub const BAD_REQUEST: &str = "bad_request";
    /// The path exists but not with this method; the `Allow` header lists the ones it has.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The request head or body did not arrive within the listener's timeout.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// The request head is larger than the bus reads (64 KiB, or more than 100 header lines).
    pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            retryable: false,
        }
    }

    /// Marks a refusal that is about this moment, not about the message (e.g. a concurrent status for the
    /// same document won a race): sources try the same message again later.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    pub fn at(mut self, path: impl Into<String>, message: impl Into<String>) -> Self {
        self.details.push(Detail {
            path: path.into(),
            message: message.into(),
        });
        self
    }

    /// Not a verdict on the message: the same message sent again later can be accepted (the bus or a
    /// dependency was unavailable, or a concurrent status for the same document won a race). A `conflict`
    /// because the id already names a different message is a verdict: it is not retried.
    /// Sources keep such a message where it is (queued, in its folder, pending at the axis) and try again.
    pub fn retry_later(&self) -> bool {
        self.status() >= 500 || self.retryable
    }

    /// HTTP status for this code.
    pub fn status(&self) -> u16 {
        use code::*;
        match self.code {
            INVALID_JSON | INVALID_ENVELOPE | INVALID_XML | BAD_REQUEST | INVALID_QUERY => 400,
            UNAUTHENTICATED => 401,
            FORBIDDEN => 403,
            NOT_FOUND => 404,
            METHOD_NOT_ALLOWED => 405,
            REQUEST_TIMEOUT => 408,
            CONFLICT => 409,
            PAYLOAD_TOO_LARGE => 413,
            UNSUPPORTED_MEDIA_TYPE => 415,
            HEADERS_TOO_LARGE => 431,
            UNKNOWN_TYPE | SCHEMA_VIOLATION | NO_ROUTE | INVALID_TRANSITION => 422,
            RATE_LIMITED => 429,
            UPSTREAM_ERROR => 502,
            BROKER_UNAVAILABLE | STATE_UNAVAILABLE => 503,
            _ => 500,
        }
    }

    /// The JSON body: `{"error": {...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details,
            }
        })
    }
}

/// The HTTP rendering of every error: its status and the JSON body, in one place.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.to_json())).into_response()
    }
}
