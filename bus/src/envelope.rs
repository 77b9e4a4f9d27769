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
    let text = std::str::from_utf8(body).map_err(|e| {
        EnvelopeError::InvalidJson(format!(
            "body is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    check_depth(body, max_depth)?;
    // Deserialized with its path tracked, so a mistyped or unknown field is reported at its JSON pointer.
    // From the already-checked `str`, so serde_json does not validate the UTF-8 a second time.
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let env = Envelope::deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .and_then(|env| de.end().map(|()| env));
    let env: Envelope<'_> = env.map_err(|e| {
        use serde_json::error::Category;
        let message = bounded_message(&e);
        match e.classify() {
            Category::Data => EnvelopeError::InvalidEnvelope {
                path: pointer(&track.path()),
                message,
            },
            _ => EnvelopeError::InvalidJson(message),
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
    if let Err(e) = lienthong_qcvn102::agency::AgencyCode::parse(&env.from) {
        return Err(bad("/from", e.to_string()));
    }
    for (i, t) in env.to.iter().enumerate() {
        if let Err(e) = lienthong_qcvn102::agency::AgencyCode::parse(t) {
            return Err(bad(&format!("/to/{i}"), e.to_string()));
        }
    }
    Ok(env)
}

/// Longest part of a serde message kept: serde quotes the offending value or key, which can be megabytes.
const MAX_MESSAGE_CHARS: usize = 200;

/// serde_json's message, its quoted input cut to [`MAX_MESSAGE_CHARS`], with the position kept.
fn bounded_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    let text = full.strip_suffix(&at).unwrap_or(&full);
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…{at}", &text[..cut]),
        None => full,
    }
}

/// The JSON pointer of a serde path (`""` at the root, or when a key is too long to repeat back).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => return String::new(),
        }
    }
    if out.chars().count() > MAX_MESSAGE_CHARS {
        return String::new();
    }
    out
}

/// Refuses JSON nested deeper than `max` arrays/objects, scanning bytes without building anything.
pub fn check_depth(body: &[u8], max: usize) -> Result<(), EnvelopeError> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => {
                // Jump through the string to its closing quote: strings are most of a large payload's bytes.
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) {
                        None => return Ok(()), // unterminated; the parser reports it
                        Some(at) if body[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                    }
                }
            }
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

    #[test]
    fn points_at_the_field_at_fault_and_does_not_echo_it_at_length() {
        let at = |body: &str| match parse(body.as_bytes(), 64) {
            Err(EnvelopeError::InvalidEnvelope { path, message }) => (path, message),
            other => panic!("{body}: {other:?}"),
        };
        for (from, to, want) in [
            ("\"type\":\"dossier.submitted\"", "\"type\":42", "/type"),
            (
                "\"to\":[\"000.00.12.H40\"]",
                "\"to\":\"000.00.12.H40\"",
                "/to",
            ),
            (
                "\"to\":[\"000.00.12.H40\"]",
                "\"to\":[\"000.00.12.H40\",null]",
                "/to/1",
            ),
            ("\"id\":\"x-1\"", "\"id\":{}", "/id"),
            ("\"id\":\"x-1\"", "\"version\":-1", "/version"),
            ("\"id\":\"x-1\"", "\"a/b~c\":1", "/a~1b~0c"),
        ] {
            assert_eq!(at(&OK.replace(from, to)).0, want, "{to}");
        }
        // A missing field is reported at the envelope, i.e. without a pointer.
        assert_eq!(at(r#"{"type":"t","payload":1}"#).0, "");
        // serde quotes the offending value or key; a megabyte of it is cut, the position kept.
        let huge = "v".repeat(1 << 20);
        let (path, message) = at(&OK.replace("\"id\":\"x-1\"", &format!("\"version\":\"{huge}\"")));
        assert_eq!(path, "/version");
        assert!(
            message.len() < 400 && message.contains(" at line 1 column "),
            "{message}"
        );
        let (path, message) = at(&OK.replace("\"id\":\"x-1\"", &format!("\"{huge}\":1")));
        assert_eq!(path, "", "a pointer that long is not repeated back");
        assert!(message.len() < 400, "{message}");
    }

    mod properties {
        //! `parse` and `check_depth` never panic, whatever the bytes, and what `parse` accepts keeps the
        //! envelope's promises.

        use super::super::*;
        use super::OK;
        use proptest::prelude::*;

        /// The deepest nesting of a string of brackets only (unbalanced closers ignored, as the scanner does).
        fn reference_depth(b: &[u8]) -> usize {
            let (mut depth, mut max) = (0usize, 0usize);
            for &c in b {
                match c {
                    b'[' | b'{' => {
                        depth += 1;
                        max = max.max(depth);
                    }
                    _ => depth = depth.saturating_sub(1),
                }
            }
            max
        }

        /// What an accepted envelope promises.
        fn check_accepted(e: &Envelope<'_>) -> Result<(), TestCaseError> {
            prop_assert!(lienthong_qcvn102::agency::is_valid(&e.from));
            prop_assert!(e.to.iter().all(|t| lienthong_qcvn102::agency::is_valid(t)));
            if let Some(id) = &e.id {
                prop_assert!(!id.is_empty() && id.len() <= MAX_ID_LEN);
                prop_assert!(!id.chars().any(char::is_control));
            }
            prop_assert!(!e.kind.is_empty() && e.kind.len() <= 100);
            prop_assert_ne!(e.version, Some(0));
            // Syntactically JSON, but not necessarily a `Value` (1e999999 is out of range): ingress parses
            // the payload again and answers `invalid_json` then. Found by the fuzz target.
            prop_assert!(!e.payload.get().is_empty());
            Ok(())
        }

        /// Bytes biased towards JSON: structural characters, quotes, escapes, digits, letters, and a
        /// few bytes that are not UTF-8.
        fn jsonish() -> impl Strategy<Value = Vec<u8>> {
            let alphabet: Vec<u8> = br#"{}[]:,"\ ntrufalse0123456789.-+eE/u"#
                .iter()
                .copied()
                .chain([0x00, 0x1f, 0x7f, 0xc3, 0xa9, 0xff, 0xed, 0xa0, 0x80])
                .collect();
            proptest::collection::vec(proptest::sample::select(alphabet), 0..400)
        }

        /// A valid envelope, then broken by a few random edits (overwrite, insert, delete, truncate).
        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let edits = proptest::collection::vec(
                (0usize..4, any::<prop::sample::Index>(), any::<u8>()),
                0..6,
            );
            (edits, any::<prop::sample::Index>()).prop_map(|(edits, cut)| {
                let mut b = OK.as_bytes().to_vec();
                for (op, at, byte) in edits {
                    let i = at.index(b.len() + 1);
                    match op {
                        0 if i < b.len() => b[i] = byte,
                        1 => b.insert(i, byte),
                        2 if i < b.len() => {
                            b.remove(i);
                        }
                        _ => {}
                    }
                }
                if cut.index(4) == 0 {
                    b.truncate(cut.index(b.len() + 1));
                }
                b
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn parse_never_panics_on_arbitrary_bytes(
                body in proptest::collection::vec(any::<u8>(), 0..600),
                depth in 0usize..80,
            ) {
                let _ = check_depth(&body, depth);
                match parse(&body, depth) {
                    Ok(e) => check_accepted(&e)?,
                    Err(EnvelopeError::InvalidJson(m)) => prop_assert!(!m.is_empty()),
                    Err(EnvelopeError::InvalidEnvelope { path, message }) => {
                        prop_assert!(!message.is_empty());
                        prop_assert!(path.is_empty() || path.starts_with('/'));
                    }
                }
                if std::str::from_utf8(&body).is_err() {
                    prop_assert!(matches!(parse(&body, depth), Err(EnvelopeError::InvalidJson(_))));
                }
            }

            #[test]
            fn parse_never_panics_on_json_like_bytes(body in jsonish(), depth in 0usize..80) {
                let _ = check_depth(&body, depth);
                if let Ok(e) = parse(&body, depth) {
                    check_accepted(&e)?;
                }
            }

            #[test]
            fn parse_never_panics_on_a_broken_envelope(body in mutated()) {
                match parse(&body, 64) {
                    Ok(e) => check_accepted(&e)?,
                    Err(EnvelopeError::InvalidEnvelope { path, message }) => {
                        prop_assert!(path.is_empty() || path.starts_with('/'), "{}", path);
                        prop_assert!(message.chars().count() < 400, "{}", message);
                    }
                    Err(EnvelopeError::InvalidJson(m)) => prop_assert!(m.chars().count() < 400, "{}", m),
                }
            }

            #[test]
            fn check_depth_matches_the_nesting_of_brackets(
                body in proptest::collection::vec(proptest::sample::select(b"[]{}".to_vec()), 0..300),
                max in 0usize..40,
            ) {
                prop_assert_eq!(check_depth(&body, max).is_ok(), reference_depth(&body) <= max);
            }

            #[test]
            fn brackets_inside_strings_do_not_count(
                inner in proptest::collection::vec(proptest::sample::select(b"[]{}\\\"ab".to_vec()), 0..300),
            ) {
                // Escape every quote and backslash so the string stays one string.
                let mut s = b"{\"a\":\"".to_vec();
                for c in inner {
                    if c == b'\\' || c == b'"' {
                        s.push(b'\\');
                    }
                    s.push(c);
                }
                s.extend_from_slice(b"\"}");
                prop_assert!(check_depth(&s, 1).is_ok(), "{}", String::from_utf8_lossy(&s));
            }
        }
    }
}
