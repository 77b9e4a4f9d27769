//! A small writer for the header: `edXML:`-prefixed elements, two-space indentation, escaped and checked text.

use super::invalid;
use crate::edxml::parse::is_xml_char;
use crate::edxml::{EdxmlError, NAMESPACE};

/// A small writer for the header: `edXML:`-prefixed elements, two-space indentation, checked text.
pub(super) struct Xml {
    pub(super) buf: Vec<u8>,
    pub(super) depth: usize,
}

impl Xml {
    pub(super) fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"");
        buf.extend_from_slice(NAMESPACE.as_bytes());
        buf.extend_from_slice(b"\" xmlns:edXML=\"");
        buf.extend_from_slice(NAMESPACE.as_bytes());
        buf.extend_from_slice(b"\">");
        Self { buf, depth: 1 }
    }

    /// A piece to be written inside the package, without declaration and root.
    pub(super) fn fragment() -> Self {
        Self {
            buf: Vec::with_capacity(256),
            depth: 0,
        }
    }

    pub(super) fn finish_head(self) -> Vec<u8> {
        self.buf
    }

    pub(super) fn newline(&mut self) {
        self.buf.push(b'\n');
        for _ in 0..self.depth {
            self.buf.extend_from_slice(b"  ");
        }
    }

    pub(super) fn open(&mut self, name: &str) {
        self.open_with_attributes(name, "");
    }

    /// `attributes` is written as given: only constant, already escaped text.
    pub(super) fn open_with_attributes(&mut self, name: &str, attributes: &str) {
        self.newline();
        self.buf.extend_from_slice(b"<edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(attributes.as_bytes());
        self.buf.push(b'>');
        self.depth += 1;
    }

    pub(super) fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.newline();
        self.buf.extend_from_slice(b"</edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'>');
    }

    pub(super) fn leaf(&mut self, field: &str, name: &str, value: &str) -> Result<(), EdxmlError> {
        self.newline();
        self.buf.extend_from_slice(b"<edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'>');
        self.text(field, value)?;
        self.buf.extend_from_slice(b"</edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'>');
        Ok(())
    }

    pub(super) fn opt_leaf(
        &mut self,
        field: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), EdxmlError> {
        match value {
            Some(v) => self.leaf(field, name, v),
            None => Ok(()),
        }
    }

    /// Escaped character data; refuses characters XML 1.0 cannot carry at all.
    pub(super) fn text(&mut self, field: &str, value: &str) -> Result<(), EdxmlError> {
        let mut last = 0;
        for (i, c) in value.char_indices() {
            let replacement: &[u8] = match c {
                '<' => b"&lt;",
                '>' => b"&gt;",
                '&' => b"&amp;",
                '\r' => b"&#13;",
                c if is_xml_char(c) => continue,
                c => {
                    return Err(invalid(
                        field,
                        &format!(
                            "contains U+{:04X}, a character XML 1.0 cannot carry",
                            c as u32
                        ),
                    ));
                }
            };
            self.buf.extend_from_slice(&value.as_bytes()[last..i]);
            self.buf.extend_from_slice(replacement);
            last = i + c.len_utf8();
        }
        self.buf.extend_from_slice(&value.as_bytes()[last..]);
        Ok(())
    }
}
