//! Parsing the JSON envelope agencies submit (`POST /v1/messages`, AMQP `<namespace>.ingress`).
//!
//! The envelope is parsed once into borrowed parts: its fields are checked strictly (unknown fields are an
//! error, so a typo such as `corelation_id` is caught rather than silently ignored) and the `payload` is kept as
//! the exact bytes sent. Nesting depth and duplicate keys are checked before serde sees the body (see
//! `envelope/scan.rs`), so hostile input cannot exhaust the stack of the parser or of schema validation, and
//! no object anywhere in the body can carry one key twice.

mod scan;

pub use scan::check_structure;

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
    /// An object (in the envelope or anywhere in its payload) has the same key twice; `path` is the JSON
    /// pointer of the second one (empty when too long to repeat back).
    #[error("{message}")]
    DuplicateKey { path: String, message: String },
}

/// Longest `id` / `correlation_id` accepted.
pub const MAX_ID_LEN: usize = 200;

/// Parses `body` as an envelope. `max_depth` bounds JSON nesting.
/// Whether `id` may name a message: 1 to [`MAX_ID_LEN`] bytes, no control character (it travels in HTTP
/// headers and file names). The envelope's `id` and AMQP's `message_id` alike.
pub fn is_message_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(|c| c.is_control())
}

/// Where a missing field belongs: serde names it in the message ("missing field `type`") with the path of
/// the object that lacks it, so the field's own pointer is that path plus its name.
fn missing_at(object: String, message: &str) -> String {
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((field, _)) => format!("{object}/{field}"),
        None => object,
    }
}

pub fn parse(body: &[u8], max_depth: usize) -> Result<Envelope<'_>, EnvelopeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        EnvelopeError::InvalidJson(format!(
            "body is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    check_structure(body, max_depth)?;
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
                path: missing_at(pointer(&track.path()), &message),
                message,
            },
            _ => EnvelopeError::InvalidJson(message),
        }
    })?;
    let bad = |path: &str, message: String| EnvelopeError::InvalidEnvelope {
        path: path.into(),
        message,
    };
    // serde also reads a struct from a JSON array of its fields in order; the envelope is an object.
    if !text.trim_start().starts_with('{') {
        return Err(bad(
            "",
            "the envelope must be a JSON object (`{\"type\": …, \"from\": …, …}`)".into(),
        ));
    }
    if let Some(id) = &env.id
        && !is_message_id(id)
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
    // Party codes are the domain's to judge (`Plugin::check_party`); ingress checks them next.
    Ok(env)
}

/// Longest part of a serde message kept: serde quotes the offending value or key, which can be megabytes.
const MAX_MESSAGE_CHARS: usize = 200;

/// serde_json's message, its quoted input cut to [`MAX_MESSAGE_CHARS`], with the position kept. Public so that
/// other JSON a client writes (file-in's descriptions) is answered the same way.
pub fn bounded_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    let text = full.strip_suffix(&at).unwrap_or(&full);
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…{at}", &text[..cut]),
        None => full,
    }
}

/// The RFC 6901 JSON pointer of a serde path (`""` at the root, or when a key is too long to repeat back). Public
/// so that other JSON a client writes (file-in's descriptions) is pointed into the same way.
pub fn pointer(path: &serde_path_to_error::Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"id":"x-1","type":"dossier.submitted","from":"000.00.00.H40","to":["000.00.12.H40"],"payload":{"RecordNo":"A"}}"#;

    #[test]
    fn parses_a_good_envelope_and_keeps_payload_bytes() {
        let e = parse(OK.as_bytes(), 64).unwrap();
        assert_eq!(e.kind, "dossier.submitted");
        assert_eq!(e.version, None);
        assert_eq!(e.payload.get(), r#"{"RecordNo":"A"}"#);
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
        // Party codes are judged by the plugin at ingress (`/from`, `/to/0` there), not by the parser.
        let other_code = OK.replace("000.00.00.H40", "H40");
        assert!(parse(other_code.as_bytes(), 64).is_ok());
    }

    #[test]
    fn refuses_deep_nesting_but_not_brackets_in_strings() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            check_structure(deep.as_bytes(), 64),
            Err(EnvelopeError::InvalidJson(_))
        ));
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(check_structure(s.as_bytes(), 64).is_ok());
        let esc = r#"{"a":"\"[[[[["}"#;
        assert!(check_structure(esc.as_bytes(), 2).is_ok());
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
        // A missing field is reported at its own pointer, as a missing payload field is (`/payload/<field>`).
        assert_eq!(at(r#"{"type":"t","payload":1}"#).0, "/from");
        assert_eq!(at(r#"{"from":"a","payload":1}"#).0, "/type");
        // An array holding the fields in order is not an envelope, though serde would read one from it.
        let (path, message) = at(r#"["x-1","t",1,"000.00.00.H40",[],null,{}]"#);
        assert_eq!(path, "");
        assert!(message.contains("JSON object"), "{message}");
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

    #[test]
    fn refuses_a_key_twice_in_the_envelope_or_anywhere_in_the_payload() {
        let at = |body: &str| match parse(body.as_bytes(), 64) {
            Err(EnvelopeError::DuplicateKey { path, message }) => (path, message),
            other => panic!("{body}: {other:?}"),
        };
        let (path, message) = at(&OK.replace(
            r#"{"RecordNo":"A"}"#,
            r#"{"RecordNo":"A","Status":"evil<script>","Status":2}"#,
        ));
        assert_eq!(path, "/payload/Status");
        assert!(message.contains("Status"), "{message}");
        let deep = OK.replace(
            r#"{"RecordNo":"A"}"#,
            r#"{"RecordNo":"A","Items":[{"Name":"x"},{"Name":"y","Name":"z"}]}"#,
        );
        assert_eq!(at(&deep).0, "/payload/Items/1/Name");
        // In the envelope too: serde would otherwise call it an invalid envelope, or keep the last `from`.
        assert_eq!(
            at(&OK.replace("\"id\":\"x-1\"", "\"id\":\"x-1\",\"id\":\"x-2\"")).0,
            "/id"
        );
        // The same key spelt with an escape is the same key.
        assert_eq!(
            at(&OK.replace(
                r#"{"RecordNo":"A"}"#,
                r#"{"RecordNo":"A","\u0052ecordNo":"B"}"#
            ))
            .0,
            "/payload/RecordNo"
        );
        // The same key in sibling objects is not a duplicate.
        let ok = OK.replace(
            r#"{"RecordNo":"A"}"#,
            r#"{"RecordNo":"A","L":[{"RecordNo":"B"}]}"#,
        );
        assert!(parse(ok.as_bytes(), 64).is_ok());
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

        /// Object keys: short, with the characters JSON and JSON pointers escape.
        fn key_text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                proptest::sample::select(vec![
                    'a', 'K', '"', '\\', '/', '~', '\n', 'é', '😀', '\u{1}',
                ]),
                0..6,
            )
            .prop_map(|c| c.into_iter().collect())
        }

        /// Any JSON value, a few levels deep, with keys from [`key_text`].
        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            use serde_json::Value;
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                key_text().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                    proptest::collection::btree_map(key_text(), inner, 0..12)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
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
                let _ = check_structure(&body, depth);
                match parse(&body, depth) {
                    Ok(e) => check_accepted(&e)?,
                    Err(EnvelopeError::InvalidJson(m)) => prop_assert!(!m.is_empty()),
                    Err(
                        EnvelopeError::InvalidEnvelope { path, message }
                        | EnvelopeError::DuplicateKey { path, message },
                    ) => {
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
                let _ = check_structure(&body, depth);
                if let Ok(e) = parse(&body, depth) {
                    check_accepted(&e)?;
                }
            }

            #[test]
            fn parse_never_panics_on_a_broken_envelope(body in mutated()) {
                match parse(&body, 64) {
                    Ok(e) => check_accepted(&e)?,
                    Err(
                        EnvelopeError::InvalidEnvelope { path, message }
                        | EnvelopeError::DuplicateKey { path, message },
                    ) => {
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
                prop_assert_eq!(check_structure(&body, max).is_ok(), reference_depth(&body) <= max);
            }

            #[test]
            fn valid_json_never_has_a_duplicate_reported(v in json_value()) {
                // serde_json's `Value` keeps one value per key, so its text never repeats a key.
                let text = serde_json::to_string(&v).unwrap();
                prop_assert!(check_structure(text.as_bytes(), 64).is_ok(), "{}", text);
            }

            #[test]
            fn a_repeated_key_is_found_however_it_is_spelt(key in key_text(), v in json_value()) {
                // The second spelling escapes every character, as `\uXXXX` (surrogate pairs included).
                let escaped: String = key
                    .encode_utf16()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect();
                let body = format!(
                    "{{\"a\":[{{{k}:{v},\"{escaped}\":1}}]}}",
                    k = serde_json::to_string(&key).unwrap(),
                );
                let pointer = format!("/a/0/{}", key.replace('~', "~0").replace('/', "~1"));
                match check_structure(body.as_bytes(), 64) {
                    Err(EnvelopeError::DuplicateKey { path, .. }) => prop_assert_eq!(path, pointer),
                    other => prop_assert!(false, "{}: {:?}", body, other),
                }
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
                prop_assert!(check_structure(&s, 1).is_ok(), "{}", String::from_utf8_lossy(&s));
            }
        }
    }
}
