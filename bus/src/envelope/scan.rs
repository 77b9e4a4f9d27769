//! One pass over the body's bytes before serde sees it: nesting depth, and no key twice in one object.
//!
//! Depth: hostile input must not exhaust the stack of the parser or of schema validation. Duplicate keys:
//! JSON leaves `{"a": 1, "a": 2}` to the reader — serde keeps the last value, many receivers keep the first —
//! and the bus forwards the payload's bytes as sent, so a schema checked on one value would vouch for a
//! receiver reading the other. Every object at every depth is checked, envelope and payload alike.
//!
//! The scan builds nothing: keys are compared as the bytes sent (decoded only when they hold an escape, so
//! `"a"` and `"\u0061"` are the same key), a handful per object in a list, more in a hash set. It does not
//! validate JSON — serde does that next — but on valid JSON it never reports a duplicate that is not one.

use super::{EnvelopeError, MAX_MESSAGE_CHARS};
use std::borrow::Cow;
use std::collections::HashSet;

/// Keys are kept in a list up to this many per object, then in a hash set.
const FEW: usize = 8;

/// Refuses JSON nested deeper than `max` arrays/objects, and any object with a key twice (answered with the
/// key's JSON pointer).
pub fn check_structure(body: &[u8], max: usize) -> Result<(), EnvelopeError> {
    let mut levels: Vec<Level<'_>> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => {
                let start = i;
                let mut escaped = false;
                // Jump through the string to its closing quote: strings are most of a large payload's bytes.
                let end = loop {
                    match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) {
                        None => return Ok(()), // unterminated; the parser reports it
                        Some(at) if body[i + at] == b'\\' => {
                            escaped = true;
                            i += at + 2;
                        }
                        Some(at) => {
                            i += at + 1;
                            break i - 1;
                        }
                    }
                };
                if let Some(level) = depth.checked_sub(1).map(|d| &mut levels[d])
                    && level.object
                    && level.want_key
                {
                    level.want_key = false;
                    level.key = (start, end);
                    let raw = &body[start..end];
                    let key = if escaped {
                        Cow::Owned(unescape(raw))
                    } else {
                        Cow::Borrowed(raw)
                    };
                    if !level.keys.insert(key) {
                        return Err(duplicate(body, &levels[..depth]));
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
                let object = b == b'{';
                match levels.get_mut(depth - 1) {
                    Some(level) => level.reset(object),
                    None => levels.push(Level::new(object)),
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => {
                if let Some(level) = depth.checked_sub(1).map(|d| &mut levels[d]) {
                    if level.object {
                        level.want_key = true;
                    } else {
                        level.index += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One open array or object.
struct Level<'a> {
    object: bool,
    /// In an object: the next string is a key.
    want_key: bool,
    /// In an array: the index of the current element.
    index: usize,
    /// In an object: where the current key's bytes are (for the pointer).
    key: (usize, usize),
    keys: Keys<'a>,
}

impl<'a> Level<'a> {
    fn new(object: bool) -> Self {
        let mut level = Level {
            object,
            want_key: false,
            index: 0,
            key: (0, 0),
            keys: Keys::default(),
        };
        level.reset(object);
        level
    }

    /// Reused for the next container at the same depth (keeps the list's allocation).
    fn reset(&mut self, object: bool) {
        self.object = object;
        self.want_key = object;
        self.index = 0;
        self.key = (0, 0);
        self.keys.clear();
    }
}

/// The keys seen so far in one object.
#[derive(Default)]
struct Keys<'a> {
    few: Vec<Cow<'a, [u8]>>,
    many: Option<HashSet<Cow<'a, [u8]>>>,
}

impl<'a> Keys<'a> {
    /// False when `key` was already there.
    fn insert(&mut self, key: Cow<'a, [u8]>) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        if self.few.len() < FEW {
            self.few.push(key);
        } else {
            let mut many: HashSet<_> = self.few.drain(..).collect();
            many.insert(key);
            self.many = Some(many);
        }
        true
    }

    fn clear(&mut self) {
        self.few.clear();
        // A large set is dropped rather than kept: clearing it again for every small object would cost its
        // whole capacity each time.
        self.many = None;
    }
}

/// The error for a duplicate: the current key of the innermost object, under its ancestors' keys and indexes.
fn duplicate(body: &[u8], open: &[Level<'_>]) -> EnvelopeError {
    let key = |l: &Level<'_>| {
        let raw = &body[l.key.0..l.key.1];
        String::from_utf8_lossy(&unescape(raw)).into_owned()
    };
    let mut path = String::new();
    for l in open {
        path.push('/');
        if l.object {
            path.push_str(&key(l).replace('~', "~0").replace('/', "~1"));
        } else {
            path.push_str(&l.index.to_string());
        }
    }
    let name = open.last().map(key).unwrap_or_default();
    let shown: String = name.chars().take(60).collect();
    let cut = if shown.len() < name.len() { "…" } else { "" };
    EnvelopeError::DuplicateKey {
        // A pointer too long to repeat back is left out, as for other errors.
        path: if path.chars().count() > MAX_MESSAGE_CHARS {
            String::new()
        } else {
            path
        },
        message: format!(
            "key `{shown}{cut}` appears more than once in the same object; send each key once"
        ),
    }
}

/// The bytes a JSON string's content stands for (its escapes decoded). Never fails: a broken escape is kept
/// as sent (the parser refuses it next).
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let simple = match raw[i + 1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let hex = |at: usize| {
            raw.get(at..at + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        let (c, used) = match (raw[i + 1], hex(i + 2)) {
            (b'u', Some(hi @ 0xD800..=0xDBFF)) => match (raw.get(i + 6..i + 8), hex(i + 8)) {
                (Some(b"\\u"), Some(lo @ 0xDC00..=0xDFFF)) => (
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                    12,
                ),
                _ => (None, 6),
            },
            (b'u', Some(u)) => (char::from_u32(u), 6),
            _ => (None, 2),
        };
        match c {
            Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            None => out.extend_from_slice(&raw[i..(i + used).min(raw.len())]),
        }
        i += used;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(body: &str) -> Option<String> {
        match check_structure(body.as_bytes(), 64) {
            Err(EnvelopeError::DuplicateKey { path, .. }) => Some(path),
            Ok(()) => None,
            Err(e) => panic!("{body}: {e:?}"),
        }
    }

    #[test]
    fn finds_a_duplicate_key_at_any_depth_with_its_pointer() {
        assert_eq!(
            dup(r#"{"payload":{"Status":"evil<script>","Status":2}}"#).as_deref(),
            Some("/payload/Status")
        );
        assert_eq!(
            dup(r#"{"from":"a","to":[],"from":"b"}"#).as_deref(),
            Some("/from")
        );
        assert_eq!(
            dup(r#"{"p":{"l":[{"a":1},{"a":1,"b":{"x":[0,{"k":1,"k":2}]}}]}}"#).as_deref(),
            Some("/p/l/1/b/x/1/k")
        );
        // Escapes are decoded before comparing, and pointer characters are escaped in the path.
        assert_eq!(dup(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("/a"));
        assert_eq!(
            dup(r#"{"a/b~":{"\"":1,"\u0022":2}}"#).as_deref(),
            Some("/a~1b~0/\"")
        );
        assert_eq!(dup(r#"{"😀":1,"\ud83d\ude00":2}"#).as_deref(), Some("/😀"));
        // Past the small-list size, in the hash set.
        let many: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(
            dup(&format!("{{\"o\":{{{},\"k57\":0}}}}", many.join(","))).as_deref(),
            Some("/o/k57")
        );
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        for ok in [
            r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}],"c":"a","d":["a","a"]}"#,
            r#"{"a":"\"a\":","b":{"x":1},"c":{"x":1}}"#,
            r#"{"a\\":1,"a":2,"a\"":3}"#,
            r#"[{"k":1},{"k":1}]"#,
            r#"{"k\u00e9":1,"ké2":2}"#,
        ] {
            assert_eq!(dup(ok), None, "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
        let many: Vec<String> = (0..1000).map(|i| format!("{{\"k{i}\":{i}}}")).collect();
        assert_eq!(dup(&format!("{{\"a\":[{}]}}", many.join(","))), None);
    }

    #[test]
    fn the_answer_never_echoes_a_huge_key() {
        let huge = "k".repeat(1 << 16);
        match check_structure(format!("{{\"{huge}\":1,\"{huge}\":2}}").as_bytes(), 64) {
            Err(EnvelopeError::DuplicateKey { path, message }) => {
                assert_eq!(path, "");
                assert!(message.len() < 200, "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unescape_decodes_what_json_allows_and_keeps_the_rest() {
        assert_eq!(
            unescape(br#"a\"b\\c\/\n\u0041\u00e9"#),
            "a\"b\\c/\nAé".as_bytes()
        );
        assert_eq!(unescape(br#"\ud83d\ude00"#), "😀".as_bytes());
        assert_eq!(unescape(br#"\ud83d"#), br#"\ud83d"#);
        assert_eq!(unescape(br#"\x\u12"#), br#"\x\u12"#);
        assert_eq!(unescape(b"\\"), b"\\");
    }
}
