//! The streaming parser.
//!
//! One pass over quick-xml's pull events, borrowing from the input: `Reader<&[u8]>::read_event` hands out
//! events that point into the package itself, so no event is ever copied (the buffered `read_event_into`
//! would copy a 27 MB base64 text event into its buffer). Only a stack of element names, the header and the
//! short attachment fields are owned; base64 is checked in place through a 4 KiB scratch buffer.

use super::b64::{Base64Stream, Problem};
use super::error::{EdxmlError, Position};
use super::status::StatusCode;
use super::{AttachmentInfo, Limits, Package, PackageKind, ResponseFor};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Map, Value};
use std::io::Write;

/// Parses and checks one edXML package. See the module documentation for what is accepted.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Package, EdxmlError> {
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

/// An element of the header being turned into JSON.
struct Frame {
    name: String,
    map: Map<String, Value>,
    text: String,
    has_children: bool,
    /// The header container itself: its children go to the top level of [`Package::header`].
    is_root: bool,
}

#[derive(Default)]
struct ManifestRef {
    content_id: Option<String>,
    content_type: String,
}

struct PendingAttachment {
    depth: usize,
    content_id: Option<String>,
    name: String,
    content_type: String,
    /// Set while inside `ContentTransferEncoded`.
    b64: Option<Box<Base64Stream>>,
    /// (encoded, decoded) lengths once `ContentTransferEncoded` has ended.
    lengths: Option<(usize, usize)>,
    /// Decoded bytes of this attachment go to the decode target.
    decode: bool,
}

/// Which short text field is being collected, at which depth.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    RefContentId,
    RefContentType,
    AttContentId,
    AttName,
    AttContentType,
}

struct Parser<'a, 'w> {
    input: &'a [u8],
    limits: &'a Limits,
    reader: Reader<&'a [u8]>,
    stack: Vec<String>,
    root_seen: bool,
    root_closed: bool,
    envelope_seen: bool,
    container: Option<&'static str>,
    header: Map<String, Value>,
    header_elements: usize,
    frames: Vec<Frame>,
    refs: Vec<ManifestRef>,
    cur_ref: Option<ManifestRef>,
    attachments: Vec<AttachmentInfo>,
    cur_att: Option<PendingAttachment>,
    field: Option<(Field, usize, String)>,
    target: Option<DecodeTarget<'w>>,
}

impl<'a, 'w> Parser<'a, 'w> {
    fn new(
        input: &'a [u8],
        limits: &'a Limits,
        target: Option<DecodeTarget<'w>>,
    ) -> Result<Self, EdxmlError> {
        if input.len() > limits.max_bytes {
            return Err(EdxmlError::TooLarge {
                size: input.len(),
                limit: limits.max_bytes,
            });
        }
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self {
            input,
            limits,
            reader,
            stack: Vec::with_capacity(16),
            root_seen: false,
            root_closed: false,
            envelope_seen: false,
            container: None,
            header: Map::new(),
            header_elements: 0,
            frames: Vec::new(),
            refs: Vec::new(),
            cur_ref: None,
            attachments: Vec::new(),
            cur_att: None,
            field: None,
            target,
        })
    }

    fn run(&mut self) -> Result<(), EdxmlError> {
        let mut first = true;
        loop {
            let start = self.reader.buffer_position() as usize;
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(self.xml_error(e)),
            };
            let was_first = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(_) if !was_first => {
                    return Err(self.malformed(
                        start,
                        "an XML declaration is only allowed at the very start".into(),
                    ));
                }
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding()
                        && !encoding.eq_ignore_ascii_case("utf-8")
                        && !encoding.eq_ignore_ascii_case("utf8")
                    {
                        return Err(EdxmlError::UnsupportedEncoding {
                            encoding: encoding.into_owned(),
                            position: self.pos(start),
                        });
                    }
                }
                Event::DocType(_) => {
                    return Err(EdxmlError::ForbiddenDtd {
                        position: self.pos(start),
                    });
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Start(e) => self.start(&e, start)?,
                Event::Empty(e) => {
                    self.start(&e, start)?;
                    self.end(start)?;
                }
                Event::End(_) => self.end(start)?,
                Event::Text(t) => {
                    let raw: &str = &t;
                    let offset = self.offset_of(raw, start);
                    self.text(raw, offset, false)?;
                }
                Event::CData(c) => {
                    let raw: &str = &c;
                    let offset = self.offset_of(raw, start);
                    self.text(raw, offset, false)?;
                }
                Event::GeneralRef(r) => {
                    let ch = self.resolve_ref(&r, start)?;
                    let mut buf = [0u8; 4];
                    self.text(ch.encode_utf8(&mut buf), start, true)?;
                }
                Event::Eof => break,
            }
        }
        self.check_end()
    }

    // === events ===

    fn start(&mut self, e: &BytesStart<'_>, offset: usize) -> Result<(), EdxmlError> {
        let local = e.local_name();
        let name: &str = local.as_ref();
        if self.root_closed {
            return Err(self.malformed(
                offset,
                format!("element <{name}> after the end of the root element"),
            ));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(EdxmlError::TooDeep {
                limit: self.limits.max_depth,
                position: self.pos(offset),
                path: format!("{}/{name}", self.path()),
            });
        }
        self.check_attributes(e, offset)?;
        if self.cur_att.as_ref().is_some_and(|a| a.b64.is_some()) {
            return Err(self.base64_error(
                Problem::BadEnd(format!("element <{name}> inside ContentTransferEncoded")),
                offset,
            ));
        }
        if self.field.is_some() {
            // A child inside a short text field: keep it out of the field's text.
            self.field = None;
        }
        self.stack.push(name.to_owned());
        let depth = self.stack.len();

        if depth == 1 {
            if name != ROOT {
                return Err(EdxmlError::UnexpectedRoot {
                    found: name.to_owned(),
                    position: self.pos(offset),
                });
            }
            self.root_seen = true;
            return Ok(());
        }

        if let Some(parent) = self.frames.last_mut() {
            parent.has_children = true;
            return self.push_frame(Frame::new(name, false), offset);
        }

        let s: Vec<&str> = self.stack.iter().map(String::as_str).collect();
        match s.as_slice() {
            [ROOT, ENVELOPE] => self.envelope_seen = true,
            [ROOT, ENVELOPE, HEADER, container] if HEADER_CONTAINERS.contains(container) => {
                if self.container.is_none() {
                    self.container = HEADER_CONTAINERS.iter().copied().find(|c| c == container);
                }
                let mut frame = Frame::new(name, true);
                frame.map = std::mem::take(&mut self.header);
                self.push_frame(frame, offset)?;
            }
            [ROOT, ENVELOPE, HEADER, "TraceHeaderList"] => {
                self.push_frame(Frame::new(name, false), offset)?
            }
            [ROOT, ENVELOPE, "edXMLBody", "edXMLManifest", "Reference"] => {
                if self.refs.len() >= self.limits.max_attachments {
                    return Err(EdxmlError::TooManyAttachments {
                        limit: self.limits.max_attachments,
                        path: self.path(),
                    });
                }
                self.cur_ref = Some(ManifestRef::default());
            }
            [
                ROOT,
                ENVELOPE,
                "edXMLBody",
                "edXMLManifest",
                "Reference",
                field,
            ] => {
                let field = match *field {
                    "ContentId" => Some(Field::RefContentId),
                    "ContentType" => Some(Field::RefContentType),
                    _ => None,
                };
                self.field = field.map(|f| (f, depth, String::new()));
            }
            [ROOT, "AttachmentEncoded", "Attachment"]
            | [ROOT, ENVELOPE, "AttachmentEncoded", "Attachment"] => {
                if self.attachments.len() >= self.limits.max_attachments {
                    return Err(EdxmlError::TooManyAttachments {
                        limit: self.limits.max_attachments,
                        path: self.path(),
                    });
                }
                let decode = self
                    .target
                    .as_ref()
                    .is_some_and(|t| t.index == Some(self.attachments.len()));
                self.cur_att = Some(PendingAttachment {
                    depth,
                    content_id: None,
                    name: String::new(),
                    content_type: String::new(),
                    b64: None,
                    lengths: None,
                    decode,
                });
            }
            _ => {
                if let Some(att) = &mut self.cur_att
                    && depth == att.depth + 1
                {
                    let field = match name {
                        "ContentId" => Some(Field::AttContentId),
                        "AttachmentName" => Some(Field::AttName),
                        "ContentType" => Some(Field::AttContentType),
                        "ContentTransferEncoded" => {
                            if let Some(t) = &self.target
                                && t.index.is_none()
                                && att
                                    .content_id
                                    .as_deref()
                                    .is_some_and(|id| normalize_cid(id) == t.wanted)
                            {
                                att.decode = true;
                            }
                            if att.lengths.is_some() {
                                let path = self.path();
                                return Err(EdxmlError::InvalidValue {
                                    path,
                                    message:
                                        "an Attachment has more than one ContentTransferEncoded"
                                            .into(),
                                });
                            }
                            att.b64 = Some(Base64Stream::new());
                            None
                        }
                        _ => None,
                    };
                    self.field = field.map(|f| (f, depth, String::new()));
                }
            }
        }
        Ok(())
    }

    /// Starts a header element, within [`Limits::max_header_elements`]: the JSON of a header element costs far
    /// more memory than its XML, so their number is bounded separately from the package size.
    fn push_frame(&mut self, frame: Frame, offset: usize) -> Result<(), EdxmlError> {
        self.header_elements += 1;
        if self.header_elements > self.limits.max_header_elements {
            return Err(EdxmlError::HeaderTooLarge {
                limit: self.limits.max_header_elements,
                position: self.pos(offset),
                path: self.path(),
            });
        }
        self.frames.push(frame);
        Ok(())
    }

    fn end(&mut self, offset: usize) -> Result<(), EdxmlError> {
        let depth = self.stack.len();
        if let Some(frame) = self.frames.pop() {
            if frame.is_root {
                self.header = frame.map;
            } else {
                let name = frame.name.clone();
                let value = frame.into_value();
                match self.frames.last_mut() {
                    Some(parent) => {
                        let parent_name = (!parent.is_root).then_some(parent.name.as_str());
                        insert(&mut parent.map, parent_name, name, value);
                    }
                    None => insert(&mut self.header, None, name, value),
                }
            }
        } else if let Some((field, field_depth, _)) = &self.field
            && *field_depth == depth
        {
            let field = *field;
            let text = self.field.take().map(|(_, _, t)| t).unwrap_or_default();
            let text = text.trim_matches(is_xml_ws).to_owned();
            match field {
                Field::RefContentId => self.cur_ref.get_or_insert_default().content_id = Some(text),
                Field::RefContentType => self.cur_ref.get_or_insert_default().content_type = text,
                Field::AttContentId => {
                    if let Some(a) = &mut self.cur_att {
                        a.content_id = Some(text);
                    }
                }
                Field::AttName => {
                    if let Some(a) = &mut self.cur_att {
                        a.name = text;
                    }
                }
                Field::AttContentType => {
                    if let Some(a) = &mut self.cur_att {
                        a.content_type = text;
                    }
                }
            }
        } else if self
            .cur_att
            .as_ref()
            .is_some_and(|a| a.b64.is_some() && depth == a.depth + 1)
        {
            let att = self.cur_att.as_mut().expect("checked above");
            let stream = att.b64.take().expect("checked above");
            let out = match &mut self.target {
                Some(t) if att.decode => Some(&mut *t.out),
                _ => None,
            };
            match stream.finish(out) {
                Ok(lengths) => att.lengths = Some(lengths),
                Err(problem) => return Err(self.base64_error(problem, offset)),
            }
        } else if self.cur_att.as_ref().is_some_and(|a| a.depth == depth) {
            let att = self.cur_att.take().expect("checked above");
            self.finish_attachment(att)?;
        } else if depth == 5
            && self.cur_ref.is_some()
            && self.stack.last().is_some_and(|n| n == "Reference")
        {
            let r = self.cur_ref.take().expect("checked above");
            self.refs.push(r);
        }
        self.stack.pop();
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        Ok(())
    }

    /// Routes a piece of character data. `from_reference` pieces come from a character reference and are taken
    /// literally (`&#13;` stays a carriage return, while a literal CR LF in the text becomes LF). Base64 is fed
    /// as it is (whitespace is skipped there anyway), so it is never copied.
    fn text(&mut self, raw: &str, offset: usize, from_reference: bool) -> Result<(), EdxmlError> {
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

    fn resolve_ref(&self, r: &BytesRef<'_>, offset: usize) -> Result<char, EdxmlError> {
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
    fn check_attributes(&self, e: &BytesStart<'_>, offset: usize) -> Result<(), EdxmlError> {
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

    // === end of document ===

    fn finish_attachment(&mut self, att: PendingAttachment) -> Result<(), EdxmlError> {
        let base = format!("{}/Attachment", self.attachment_parent());
        let number = self.attachments.len() + 1;
        let content_id = match att.content_id.as_deref().map(normalize_cid) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                return Err(EdxmlError::MissingElement {
                    path: format!("{base}/ContentId"),
                    detail: format!("attachment #{number}"),
                });
            }
        };
        let Some((encoded_len, decoded_len)) = att.lengths else {
            return Err(EdxmlError::MissingElement {
                path: format!("{base}/ContentTransferEncoded"),
                detail: format!("attachment `{content_id}`"),
            });
        };
        if self.attachments.iter().any(|a| a.content_id == content_id) {
            return Err(EdxmlError::DuplicateContentId {
                what: "Attachments",
                content_id,
                path: format!("{base}/ContentId"),
            });
        }
        if let Some(t) = &mut self.target
            && t.index.is_none()
            && t.wanted == content_id
        {
            t.found = Some((self.attachments.len(), att.decode));
        }
        self.attachments.push(AttachmentInfo {
            content_id,
            name: att.name,
            content_type: att.content_type,
            encoded_len,
            decoded_len,
        });
        Ok(())
    }

    fn check_end(&mut self) -> Result<(), EdxmlError> {
        let end = self.input.len();
        if let Some(open) = self.stack.last() {
            return Err(self.malformed(end, format!("the document ends before </{open}>")));
        }
        if !self.root_seen {
            return Err(self.malformed(end, "no root element".into()));
        }
        if !self.envelope_seen {
            return Err(EdxmlError::MissingElement {
                path: "/edXML/edXMLEnvelope".into(),
                detail: String::new(),
            });
        }
        if self.container.is_none() {
            return Err(EdxmlError::MissingElement {
                path: "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader".into(),
                detail: String::new(),
            });
        }
        // Every manifest reference must have its attachment, and every attachment its reference.
        let ref_path = "/edXML/edXMLEnvelope/edXMLBody/edXMLManifest/Reference/ContentId";
        let mut referenced: Vec<&str> = Vec::with_capacity(self.refs.len());
        for r in &self.refs {
            let id = match r.content_id.as_deref().map(normalize_cid) {
                Some(id) if !id.is_empty() => id,
                _ => {
                    return Err(EdxmlError::MissingElement {
                        path: ref_path.into(),
                        detail: format!("manifest reference #{}", referenced.len() + 1),
                    });
                }
            };
            if referenced.contains(&id) {
                return Err(EdxmlError::DuplicateContentId {
                    what: "manifest references",
                    content_id: id.to_owned(),
                    path: ref_path.into(),
                });
            }
            if !self.attachments.iter().any(|a| a.content_id == id) {
                return Err(EdxmlError::MissingAttachment {
                    content_id: id.to_owned(),
                    path: ref_path.into(),
                });
            }
            referenced.push(id);
        }
        if let Some(a) = self
            .attachments
            .iter()
            .find(|a| !referenced.contains(&a.content_id.as_str()))
        {
            return Err(EdxmlError::UnreferencedAttachment {
                content_id: a.content_id.clone(),
                path: format!("{}/Attachment/ContentId", self.attachment_parent()),
            });
        }
        // An attachment without its own ContentType takes the manifest's.
        for r in &self.refs {
            let id = r
                .content_id
                .as_deref()
                .map(normalize_cid)
                .unwrap_or_default();
            if let Some(a) = self.attachments.iter_mut().find(|a| a.content_id == id)
                && a.content_type.is_empty()
            {
                a.content_type = r.content_type.clone();
            }
        }
        Ok(())
    }

    fn into_package(self) -> Result<Package, EdxmlError> {
        let container = self.container.unwrap_or("MessageHeader");
        let base = format!("/edXML/edXMLEnvelope/edXMLHeader/{container}");
        let header = self.header;

        let from = single_object(&header, "From", &base)?
            .and_then(|from| from.get("OrganId"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EdxmlError::MissingElement {
                path: format!("{base}/From/OrganId"),
                detail: String::new(),
            })?
            .to_owned();

        let status_code = match header.get("StatusCode") {
            None => None,
            Some(Value::String(s)) => {
                Some(
                    StatusCode::parse(s).ok_or_else(|| EdxmlError::InvalidValue {
                        path: format!("{base}/StatusCode"),
                        message: format!(
                            "`{s}` is not a status code (01, 02, 03, 04, 05, 06, 13, 15, 16)"
                        ),
                    })?,
                )
            }
            Some(_) => {
                return Err(EdxmlError::InvalidValue {
                    path: format!("{base}/StatusCode"),
                    message: "StatusCode must appear once and hold text".into(),
                });
            }
        };

        let (kind, to, document_id) = match status_code {
            Some(code) => {
                let items = organ_ids(&header, "ResponseFor", &base)?;
                let first = header
                    .get("ResponseFor")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_object)
                    .expect("organ_ids checked ResponseFor");
                let text = |key: &str| first.get(key).and_then(Value::as_str).map(str::to_owned);
                let code_text = match first.get("Code") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => {
                        let part = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
                        let (n, nt) = (part("CodeNumber"), part("CodeNotation"));
                        Some(if nt.is_empty() {
                            n.to_owned()
                        } else {
                            format!("{n}/{nt}")
                        })
                    }
                    _ => None,
                };
                let response_for = ResponseFor {
                    organ_id: items[0].clone(),
                    code: code_text,
                    promulgation_date: text("PromulgationDate"),
                    document_id: text("DocumentId"),
                };
                let document_id = response_for.document_id.clone().filter(|s| !s.is_empty());
                (
                    PackageKind::Status { code, response_for },
                    items,
                    document_id,
                )
            }
            None => {
                let to = organ_ids(&header, "To", &base)?;
                let document_id = header
                    .get("DocumentId")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                (PackageKind::Document, to, document_id)
            }
        };

        Ok(Package {
            kind,
            header: Value::Object(header),
            from,
            to,
            document_id,
            attachments: self.attachments,
        })
    }

    // === helpers ===

    fn path(&self) -> String {
        let mut path = String::new();
        for name in &self.stack {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    fn attachment_parent(&self) -> &'static str {
        if self.stack.get(1).is_some_and(|n| n == ENVELOPE) {
            "/edXML/edXMLEnvelope/AttachmentEncoded"
        } else {
            "/edXML/AttachmentEncoded"
        }
    }

    fn pos(&self, offset: usize) -> Position {
        Position::locate(self.input, offset)
    }

    /// Byte offset of a piece of text borrowed from the input, or `fallback` if it is not borrowed.
    fn offset_of(&self, piece: &str, fallback: usize) -> usize {
        let base = self.input.as_ptr() as usize;
        let at = piece.as_ptr() as usize;
        if at >= base && at + piece.len() <= base + self.input.len() {
            at - base
        } else {
            fallback
        }
    }

    fn malformed(&self, offset: usize, message: String) -> EdxmlError {
        EdxmlError::Malformed {
            message,
            position: self.pos(offset),
            path: self.path(),
        }
    }

    fn base64_error(&self, problem: Problem, offset: usize) -> EdxmlError {
        let attachment = match self.cur_att.as_ref().and_then(|a| a.content_id.as_deref()) {
            Some(id) => format!("attachment `{}`", normalize_cid(id)),
            None => format!("attachment #{}", self.attachments.len() + 1),
        };
        if let Problem::Io(e) = problem {
            return EdxmlError::Io(e);
        }
        EdxmlError::InvalidBase64 {
            attachment,
            reason: problem.describe(),
            position: self.pos(offset),
            path: self.path(),
        }
    }

    fn xml_error(&self, e: quick_xml::Error) -> EdxmlError {
        let offset = self.reader.error_position() as usize;
        // quick-xml reports a stray `<!ENTITY …>` as bad `<!` markup: name it for what it is.
        let rest = &self.input[offset.min(self.input.len())..];
        let declaration = [
            &b"<!ENTITY"[..],
            b"<!ELEMENT",
            b"<!ATTLIST",
            b"<!NOTATION",
            b"<!DOCTYPE",
        ]
        .iter()
        .any(|d| rest.len() >= d.len() && rest[..d.len()].eq_ignore_ascii_case(d));
        if declaration {
            return EdxmlError::ForbiddenDtd {
                position: self.pos(offset),
            };
        }
        self.malformed(offset, e.to_string())
    }
}

impl Frame {
    fn new(name: &str, is_root: bool) -> Self {
        Self {
            name: name.to_owned(),
            map: Map::new(),
            text: String::new(),
            has_children: false,
            is_root,
        }
    }

    fn into_value(self) -> Value {
        if self.has_children {
            Value::Object(self.map)
        } else {
            Value::String(self.text.trim_matches(is_xml_ws).to_owned())
        }
    }
}

/// Elements that are lists even when they occur once; `parent` is `None` at the top of the header.
fn always_array(parent: Option<&str>, name: &str) -> bool {
    matches!(
        (parent, name),
        (None, "To" | "ResponseFor")
            | (Some("TraceHeaderList"), "TraceHeader")
            | (Some("Appendixes"), "Appendix")
            | (Some("ToPlaces"), "Place")
            | (Some("ReceiverList"), "Receiver")
            | (Some("ReplacementInfoList"), "ReplacementInfo")
            | (Some("OrganIdList"), "OrganId")
    )
}

fn insert(map: &mut Map<String, Value>, parent: Option<&str>, name: String, value: Value) {
    let list = always_array(parent, &name);
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if list => {
            map.insert(name, Value::Array(vec![value]));
        }
        None => {
            map.insert(name, value);
        }
    }
}

/// The object at `header[key]`, refusing a repeated element; `None` when absent.
fn single_object<'h>(
    header: &'h Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Option<&'h Map<String, Value>>, EdxmlError> {
    match header.get(key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(Value::Array(_)) => Err(EdxmlError::InvalidValue {
            path: format!("{base}/{key}"),
            message: format!("{key} appears more than once"),
        }),
        Some(_) => Ok(None),
    }
}

/// `OrganId` of every `header[key]` item, duplicates removed; at least one is required.
fn organ_ids(
    header: &Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Vec<String>, EdxmlError> {
    let missing = |detail: String| EdxmlError::MissingElement {
        path: format!("{base}/{key}/OrganId"),
        detail,
    };
    let items = header
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.is_empty() {
        return Err(missing(String::new()));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = item
            .get("OrganId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(format!("{key} #{}", i + 1)))?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// `ContentId` without surrounding whitespace and without the `cid:` prefix (any case).
pub(crate) fn normalize_cid(id: &str) -> &str {
    let id = id.trim_matches(is_xml_ws);
    match id.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("cid:") => id[4..].trim_matches(is_xml_ws),
        _ => id,
    }
}

fn is_xml_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters XML 1.0 allows in a document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
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
