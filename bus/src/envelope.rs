//! Parsing the JSON envelope agencies submit (`POST /v1/messages`, AMQP `<namespace>.ingress`).
//!
//! The envelope is parsed once into borrowed parts: its fields are checked strictly (unknown fields are an
//! error, so a typo such as `corelation_id` is caught rather than silently ignored) and the `payload` is kept as
//! the exact bytes sent. Nesting depth is checked before serde sees the body, so hostile input cannot exhaust
//! the stack of the parser or of schema validation.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A parsed envelope, borrowing from the request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<'a> {
    /// Client-chosen id; makes the submission idempotent. Absent = the bus assigns one.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    /// Schema version; absent = the highest the registry has for `type`.
    #[serde(default)]
    pub version: Option<u32>,
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(borrow)]
    pub payload: &'a RawValue,
}

/// Why a body is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON at all (syntax, truncation, invalid UTF-8, nesting too deep).
    #[error("{0}")]
    InvalidJson(String),
    /// JSON, but not an envelope (missing or extra fields, wrong types, bad values).
    #[error("{message}")]
    InvalidEnvelope { path: String, message: String },
}

/// Longest `id` / `correlation_id` accepted.
pub const MAX_ID_LEN: usize = 200;

/// Parses `body` as an envelope. `max_depth` bounds JSON nesting.
pub fn parse(body: &[u8], max_depth: usize) -> Result<Envelope<'_>, EnvelopeError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(EnvelopeError::InvalidJson(format!(
            "body is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        )));
    }
    check_depth(body, max_depth)?;
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => EnvelopeError::InvalidEnvelope {
                path: String::new(),
                message: e.to_string(),
            },
            _ => EnvelopeError::InvalidJson(e.to_string()),
        }
    })?;
    let bad = |path: &str, message: String| EnvelopeError::InvalidEnvelope {
        path: path.into(),
        message,
    };
    if let Some(id) = &env.id
        && (id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control()))
    {
        return Err(bad(
            "/id",
            format!("must be 1–{MAX_ID_LEN} printable characters (a UUID is recommended)"),
        ));
    }
    if env.kind.is_empty() || env.kind.len() > 100 {
        return Err(bad(
            "/type",
            "must be a message type such as `dossier.submitted`".into(),
        ));
    }
    if let Some(0) = env.version {
        return Err(bad("/version", "must be 1 or more".into()));
    }
    if let Some(c) = &env.correlation_id
        && (c.len() > MAX_ID_LEN || c.chars().any(|c| c.is_control()))
    {
        return Err(bad(
            "/correlation_id",
            format!("must be at most {MAX_ID_LEN} printable characters"),
        ));
    }
    if let Err(e) = crate::agency::AgencyCode::parse(&env.from) {
        return Err(bad("/from", e.to_string()));
    }
    for (i, t) in env.to.iter().enumerate() {
        if let Err(e) = crate::agency::AgencyCode::parse(t) {
            return Err(bad(&format!("/to/{i}"), e.to_string()));
        }
    }
    Ok(env)
}

/// Refuses JSON nested deeper than `max` arrays/objects, scanning bytes without building anything.
pub fn check_depth(body: &[u8], max: usize) -> Result<(), EnvelopeError> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for &b in body {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(EnvelopeError::InvalidJson(format!(
                        "JSON nested deeper than {max} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"id":"x-1","type":"dossier.submitted","from":"000.00.00.H40","to":["000.00.12.H40"],"payload":{"MaHoSo":"A"}}"#;

    #[test]
    fn parses_a_good_envelope_and_keeps_payload_bytes() {
        let e = parse(OK.as_bytes(), 64).unwrap();
        assert_eq!(e.kind, "dossier.submitted");
        assert_eq!(e.version, None);
        assert_eq!(e.payload.get(), r#"{"MaHoSo":"A"}"#);
    }

    #[test]
    fn classifies_broken_input() {
        for bad in ["", "{", "{\"type\":", "nope", "\u{0}"] {
            assert!(
                matches!(
                    parse(bad.as_bytes(), 64),
                    Err(EnvelopeError::InvalidJson(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(b"{\"a\":\"\xff\xfe\"}", 64),
            Err(EnvelopeError::InvalidJson(_))
        ));
        let extra = OK.replace("\"payload\"", "\"extra\":1,\"payload\"");
        assert!(matches!(
            parse(extra.as_bytes(), 64),
            Err(EnvelopeError::InvalidEnvelope { .. })
        ));
        let missing = r#"{"type":"dossier.submitted","from":"000.00.00.H40"}"#;
        assert!(matches!(
            parse(missing.as_bytes(), 64),
            Err(EnvelopeError::InvalidEnvelope { .. })
        ));
        let bad_from = OK.replace("000.00.00.H40", "H40");
        match parse(bad_from.as_bytes(), 64) {
            Err(EnvelopeError::InvalidEnvelope { path, .. }) => assert_eq!(path, "/from"),
            other => panic!("{other:?}"),
        }
        let bad_to = OK.replace("000.00.12.H40", "bad");
        match parse(bad_to.as_bytes(), 64) {
            Err(EnvelopeError::InvalidEnvelope { path, .. }) => assert_eq!(path, "/to/0"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_deep_nesting_but_not_brackets_in_strings() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            check_depth(deep.as_bytes(), 64),
            Err(EnvelopeError::InvalidJson(_))
        ));
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(check_depth(s.as_bytes(), 64).is_ok());
        let esc = r#"{"a":"\"[[[[["}"#;
        assert!(check_depth(esc.as_bytes(), 2).is_ok());
    }
}
