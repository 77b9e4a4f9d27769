//! What several targets check: JSON pointers (RFC 6901) and bounded messages.
#![allow(dead_code)]

/// An RFC 6901 pointer: empty, or `/`-led with every `~` escaping `0` or `1`.
pub fn is_pointer(p: &str) -> bool {
    if !(p.is_empty() || p.starts_with('/')) {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, &c)| c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// Asserts `p` is a JSON pointer, naming what it came from.
pub fn assert_pointer(p: &str, what: &dyn std::fmt::Debug) {
    assert!(is_pointer(p), "not a JSON pointer: {p:?} (from {what:?})");
}

/// Asserts `text` has at most `max` characters.
pub fn assert_bounded(text: &str, max: usize) {
    let n = text.chars().count();
    assert!(
        n <= max,
        "{n} characters, over {max}: {:?}…",
        text.chars().take(200).collect::<String>()
    );
}
