//! The character classes of XML 1.0 the parser needs: whitespace, and the characters a document may hold.
//!
//! Why a file of its own: the event loop, the text rules, header elements and `ContentId`s all trim or check
//! characters the same way; they take these from here rather than from one another (the builder uses
//! [`is_xml_char`] too).

/// Whitespace as XML 1.0 defines it (`S`): space, tab, carriage return, line feed.
pub(super) fn is_xml_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters XML 1.0 allows in a document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
