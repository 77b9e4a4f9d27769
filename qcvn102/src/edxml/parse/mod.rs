//! The streaming parser.
//!
//! One pass over quick-xml's pull events, borrowing from the input: `Reader<&[u8]>::read_event` hands out
//! events that point into the package itself, so no event is ever copied (the buffered `read_event_into`
//! would copy a 27 MB base64 text event into its buffer). Only a stack of element names, the header and the
//! short attachment fields are owned; base64 is checked in place through a 4 KiB scratch buffer.
//!
//! [`reader`] runs the loop and routes each event: header elements become JSON ([`header`]), manifest references
//! and attachments are collected and checked against each other ([`attachments`]), and character data and
//! references are handled by the rules of XML 1.0 ([`text`]).
//!
//! The plain values the loop fills in live in files that know nothing of the parser: header elements on their
//! way to JSON ([`frame`]), manifest references and attachments being read ([`pending`]), and XML's character
//! classes ([`chars`]). The files that add to the parser (`header`, `attachments`, `text`) take from those and
//! from `reader`, and `reader` takes only from those, so the imports run one way.

mod attachments;
mod chars;
mod frame;
mod header;
mod pending;
mod reader;
mod text;

use super::error::EdxmlError;
use super::{Limits, Package};
use pending::normalize_cid;
use reader::Parser;
use std::io::Write;

pub(crate) use chars::is_xml_char;

/// Parses and checks one edXML package. See the module documentation for what is accepted.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Package, EdxmlError> {
    parse_unbounded(bytes, limits).map_err(EdxmlError::bounded)
}

fn parse_unbounded(bytes: &[u8], limits: &Limits) -> Result<Package, EdxmlError> {
    let mut parser = Parser::new(bytes, limits, None)?;
    parser.run()?;
    parser.into_package()
}

/// Streams the decoded bytes of the attachment whose `ContentId` is `content_id` (with or without `cid:`)
/// into `out`, checking the whole package like [`parse`]. Memory use is the same as for [`parse`]: the
/// attachment is decoded 3 KiB at a time. Returns the number of bytes written.
///
/// One pass over the package when the attachment's `ContentId` comes before its data (as in real packages),
/// two otherwise. If an error is returned, `out` may already hold part of the attachment.
pub fn decode_attachment<W: Write>(
    bytes: &[u8],
    limits: &Limits,
    content_id: &str,
    out: &mut W,
) -> Result<u64, EdxmlError> {
    decode_unbounded(bytes, limits, content_id, out).map_err(EdxmlError::bounded)
}

fn decode_unbounded<W: Write>(
    bytes: &[u8],
    limits: &Limits,
    content_id: &str,
    out: &mut W,
) -> Result<u64, EdxmlError> {
    let wanted = normalize_cid(content_id).to_owned();
    let mut parser = Parser::new(
        bytes,
        limits,
        Some(DecodeTarget {
            wanted: wanted.clone(),
            index: None,
            out: &mut *out,
            found: None,
        }),
    )?;
    parser.run()?;
    let found = parser.target.as_ref().and_then(|t| t.found);
    let package = parser.into_package()?;
    let (index, decoded) = found.ok_or(EdxmlError::UnknownAttachment { content_id: wanted })?;
    if !decoded {
        // The ContentId came after the data: decode by position this time.
        let target = DecodeTarget {
            wanted: String::new(),
            index: Some(index),
            out,
            found: None,
        };
        Parser::new(bytes, limits, Some(target))?.run()?;
    }
    Ok(package.attachments[index].decoded_len as u64)
}

const ROOT: &str = "edXML";
const ENVELOPE: &str = "edXMLEnvelope";
const HEADER: &str = "edXMLHeader";
/// Names the header container has been seen under; a status header is recognised by its `StatusCode`.
const HEADER_CONTAINERS: [&str; 3] = ["MessageHeader", "MessageStatus", "Status"];

/// Where [`decode_attachment`] wants an attachment's bytes to go.
struct DecodeTarget<'w> {
    /// Normalized `ContentId` to decode when `index` is `None`.
    wanted: String,
    /// Decode the attachment at this position instead.
    index: Option<usize>,
    out: &'w mut dyn Write,
    /// (position, whether its bytes were written) of the attachment with the wanted ContentId.
    found: Option<(usize, bool)>,
}
