//! Character data, character and entity references, and attributes, by the rules of XML 1.0.

use super::chars::{is_xml_char, is_xml_ws};
use super::reader::Parser;
use crate::edxml::b64::Problem;
use crate::edxml::error::EdxmlError;
use quick_xml::events::{BytesRef, BytesStart};

impl<'a, 'w> Parser<'a, 'w> {
    /// Routes a piece of character data. `from_reference` pieces come from a character reference and are taken
    /// literally (`&#13;` stays a carriage return, while a literal CR LF in the text becomes LF). Base64 is fed
    /// as it is (whitespace is skipped there anyway), so it is never copied.
    pub(super) fn text(
        &mut self,
        raw: &str,
        offset: usize,
        from_reference: bool,
    ) -> Result<(), EdxmlError> {
        let push = |buf: &mut String| {
            if from_reference {
                buf.push_str(raw);
            } else {
                push_normalized(buf, raw);
            }
        };
        if let Some(frame) = self.frames.last_mut() {
            if !frame.has_children {
                push(&mut frame.text);
            }
            return Ok(());
        }
        if let Some(att) = &mut self.cur_att
            && let Some(stream) = &mut att.b64
        {
            let out = match &mut self.target {
                Some(t) if att.decode => Some(&mut *t.out),
                _ => None,
            };
            return match stream.feed(raw, out) {
                Ok(()) => Ok(()),
                Err(problem) => {
                    let at = match problem {
                        Problem::InvalidChar { at, .. } | Problem::AfterPadding { at, .. } => {
                            offset + at
                        }
                        _ => offset,
                    };
                    Err(self.base64_error(problem, at))
                }
            };
        }
        if let Some((_, depth, buf)) = &mut self.field
            && *depth == self.stack.len()
        {
            push(buf);
            return Ok(());
        }
        if self.stack.is_empty() && !raw.trim_matches(is_xml_ws).is_empty() {
            return Err(self.malformed(offset, "text outside the root element".into()));
        }
        Ok(())
    }

    pub(super) fn resolve_ref(&self, r: &BytesRef<'_>, offset: usize) -> Result<char, EdxmlError> {
        let name: &str = r;
        let ch = if r.is_char_ref() {
            match r.resolve_char_ref() {
                Ok(Some(ch)) if is_xml_char(ch) => ch,
                _ => {
                    return Err(
                        self.malformed(offset, format!("invalid character reference `&{name};`"))
                    );
                }
            }
        } else {
            match name {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "apos" => '\'',
                "quot" => '"',
                _ => {
                    return Err(EdxmlError::UnknownEntity {
                        name: name.to_owned(),
                        position: self.pos(offset),
                        path: self.path(),
                    });
                }
            }
        };
        Ok(ch)
    }

    /// Attribute values are not used, but an unknown entity or a broken attribute is refused there too.
    pub(super) fn check_attributes(
        &self,
        e: &BytesStart<'_>,
        offset: usize,
    ) -> Result<(), EdxmlError> {
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| self.malformed(offset, format!("bad attribute: {err}")))?;
            if let Err(err) = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                if let quick_xml::Error::Escape(
                    quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                ) = &err
                {
                    return Err(EdxmlError::UnknownEntity {
                        name: name.clone(),
                        position: self.pos(offset),
                        path: self.path(),
                    });
                }
                return Err(self.malformed(offset, format!("bad attribute value: {err}")));
            }
        }
        Ok(())
    }
}

/// Appends `raw` with XML end-of-line handling: `\r\n` and a lone `\r` in literal text become `\n`.
fn push_normalized(buf: &mut String, raw: &str) {
    let mut rest = raw;
    while let Some(i) = rest.find('\r') {
        buf.push_str(&rest[..i]);
        buf.push('\n');
        rest = rest[i + 1..].strip_prefix('\n').unwrap_or(&rest[i + 1..]);
    }
    buf.push_str(rest);
}
