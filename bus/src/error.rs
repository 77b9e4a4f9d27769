//! The error every API answers with: a stable code, a message, and where exactly the problem is.
//!
//! Codes are a contract with agencies' systems (they branch on them), so they are one closed enum ([`Code`]) here
//! and nowhere else, each with its wire name and its HTTP status — no fallback. The HTTP rendering is
//! `http_api.rs`'s; sources (folders, the axis) ask only [`ApiError::retry_later`].

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
    pub code: Code,
    pub message: String,
    pub details: Vec<Detail>,
    /// The same message sent again later may be accepted (see [`ApiError::retry_later`]); not part of the
    /// JSON answer.
    pub retryable: bool,
}

/// Every error code the APIs answer with; the wire form is [`Code::as_str`], the HTTP status [`Code::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidJson,
    InvalidEnvelope,
    InvalidXml,
    /// The request itself is malformed at the HTTP level (request line, a header, `Content-Length`, framing).
    BadRequest,
    /// A query parameter of a read endpoint is unknown or malformed (`details[].path` names it).
    InvalidQuery,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// The path exists but not with this method; the `Allow` header lists the ones it has.
    MethodNotAllowed,
    /// The request head or body did not arrive within the listener's timeout.
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnknownType,
    SchemaViolation,
    NoRoute,
    InvalidTransition,
    /// Too many requests from one client; the answer carries `Retry-After`.
    RateLimited,
    /// The request head is larger than the bus reads (64 KiB, or more than 100 header lines).
    HeadersTooLarge,
    /// A config reload found problems; the running config stays (`details[].path`: file and key path).
    InvalidConfig,
    Internal,
    UpstreamError,
    BrokerUnavailable,
    StateUnavailable,
}

impl Code {
    /// The code as agencies' systems see it (`error.code`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::InvalidEnvelope => "invalid_envelope",
            Code::InvalidXml => "invalid_xml",
            Code::BadRequest => "bad_request",
            Code::InvalidQuery => "invalid_query",
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::RequestTimeout => "request_timeout",
            Code::Conflict => "conflict",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::UnknownType => "unknown_type",
            Code::SchemaViolation => "schema_violation",
            Code::NoRoute => "no_route",
            Code::InvalidTransition => "invalid_transition",
            Code::RateLimited => "rate_limited",
            Code::HeadersTooLarge => "headers_too_large",
            Code::InvalidConfig => "invalid_config",
            Code::Internal => "internal",
            Code::UpstreamError => "upstream_error",
            Code::BrokerUnavailable => "broker_unavailable",
            Code::StateUnavailable => "state_unavailable",
        }
    }

    /// The HTTP status that carries this code.
    pub const fn status(self) -> u16 {
        match self {
            Code::InvalidJson
            | Code::InvalidEnvelope
            | Code::InvalidXml
            | Code::BadRequest
            | Code::InvalidQuery => 400,
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::RequestTimeout => 408,
            Code::Conflict => 409,
            Code::PayloadTooLarge => 413,
            Code::UnsupportedMediaType => 415,
            Code::UnknownType
            | Code::SchemaViolation
            | Code::NoRoute
            | Code::InvalidTransition
            | Code::InvalidConfig => 422,
            Code::RateLimited => 429,
            Code::HeadersTooLarge => 431,
            Code::Internal => 500,
            Code::UpstreamError => 502,
            Code::BrokerUnavailable | Code::StateUnavailable => 503,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The codes by their wire names' constants, for call sites (`code::NO_ROUTE`).
pub mod code {
    use super::Code;
    pub const INVALID_JSON: Code = Code::InvalidJson;
    pub const INVALID_ENVELOPE: Code = Code::InvalidEnvelope;
    pub const INVALID_XML: Code = Code::InvalidXml;
    pub const BAD_REQUEST: Code = Code::BadRequest;
    pub const INVALID_QUERY: Code = Code::InvalidQuery;
    pub const UNAUTHENTICATED: Code = Code::Unauthenticated;
    pub const FORBIDDEN: Code = Code::Forbidden;
    pub const NOT_FOUND: Code = Code::NotFound;
    pub const METHOD_NOT_ALLOWED: Code = Code::MethodNotAllowed;
    pub const REQUEST_TIMEOUT: Code = Code::RequestTimeout;
    pub const CONFLICT: Code = Code::Conflict;
    pub const PAYLOAD_TOO_LARGE: Code = Code::PayloadTooLarge;
    pub const UNSUPPORTED_MEDIA_TYPE: Code = Code::UnsupportedMediaType;
    pub const UNKNOWN_TYPE: Code = Code::UnknownType;
    pub const SCHEMA_VIOLATION: Code = Code::SchemaViolation;
    pub const NO_ROUTE: Code = Code::NoRoute;
    pub const INVALID_TRANSITION: Code = Code::InvalidTransition;
    pub const RATE_LIMITED: Code = Code::RateLimited;
    pub const HEADERS_TOO_LARGE: Code = Code::HeadersTooLarge;
    pub const INVALID_CONFIG: Code = Code::InvalidConfig;
    pub const INTERNAL: Code = Code::Internal;
    pub const UPSTREAM_ERROR: Code = Code::UpstreamError;
    pub const BROKER_UNAVAILABLE: Code = Code::BrokerUnavailable;
    pub const STATE_UNAVAILABLE: Code = Code::StateUnavailable;
}

/// The longest message an error carries (and each detail's): a message that quotes what the caller sent
/// (a query value, a code in the path) is cut here, so a 50 KB value is not echoed back, twice.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// `m` cut to [`MAX_MESSAGE_CHARS`] characters, marked with `…` where it was cut.
fn bounded(mut m: String) -> String {
    if let Some((at, _)) = m.char_indices().nth(MAX_MESSAGE_CHARS) {
        m.truncate(at);
        m.push('…');
    }
    m
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: bounded(message.into()),
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
            path: bounded(path.into()),
            message: bounded(message.into()),
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
        self.code.status()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_however_much_the_caller_sent() {
        let huge = "9".repeat(50_000);
        let e = ApiError::new(Code::InvalidQuery, format!("`{huge}` is not a status"))
            .at("status", format!("`{huge}`"));
        let body = e.to_json().to_string();
        assert!(body.len() < 3 * MAX_MESSAGE_CHARS + 200, "{}", body.len());
        assert!(e.message.ends_with('…'));
        assert_eq!(ApiError::new(Code::InvalidQuery, "short").message, "short");
    }
}
