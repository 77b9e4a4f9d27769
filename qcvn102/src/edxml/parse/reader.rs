//! The event loop: one pass over quick-xml's events, each routed by where it sits in the package.

use super::chars::is_xml_ws;
use super::frame::{Frame, insert};
use super::pending::{Field, ManifestRef, PendingAttachment, normalize_cid};
use super::{DecodeTarget, ENVELOPE, HEADER, HEADER_CONTAINERS, ROOT};
use crate::edxml::b64::{Base64Stream, Problem};
use crate::edxml::error::{EdxmlError, Position};
use crate::edxml::{AttachmentInfo, Limits};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Map, Value};

pub(super) struct Parser<'a, 'w> {
    pub(super) input: &'a [u8],
    pub(super) limits: &'a Limits,
    pub(super) reader: Reader<&'a [u8]>,
    pub(super) stack: Vec<String>,
    pub(super) root_seen: bool,
    pub(super) root_closed: bool,
    pub(super) envelope_seen: bool,
    pub(super) container: Option<&'static str>,
    pub(super) header: Map<String, Value>,
    pub(super) header_elements: usize,
    pub(super) frames: Vec<Frame>,
    pub(super) refs: Vec<ManifestRef>,
    pub(super) cur_ref: Option<ManifestRef>,
    pub(super) attachments: Vec<AttachmentInfo>,
    pub(super) cur_att: Option<PendingAttachment>,
    pub(super) field: Option<(Field, usize, String)>,
    pub(super) target: Option<DecodeTarget<'w>>,
}

impl<'a, 'w> Parser<'a, 'w> {
    pub(super) fn new(
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

    pub(super) fn run(&mut self) -> Result<(), EdxmlError> {
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
                path: format!("{}/{}", self.path(), segment(name)),
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

    // === end of document ===

    pub(super) fn check_end(&mut self) -> Result<(), EdxmlError> {
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
        self.check_manifest()
    }

    // === helpers ===

    /// The open elements as a JSON pointer (ingress answers with it as one): `/edXML/edXMLEnvelope/…`.
    pub(super) fn path(&self) -> String {
        let mut path = String::new();
        for name in &self.stack {
            path.push('/');
            path.push_str(&segment(name));
        }
        path
    }

    pub(super) fn attachment_parent(&self) -> &'static str {
        if self.stack.get(1).is_some_and(|n| n == ENVELOPE) {
            "/edXML/edXMLEnvelope/AttachmentEncoded"
        } else {
            "/edXML/AttachmentEncoded"
        }
    }

    pub(super) fn pos(&self, offset: usize) -> Position {
        Position::locate(self.input, offset)
    }

    /// Byte offset of a piece of text borrowed from the input, or `fallback` if it is not borrowed.
    pub(super) fn offset_of(&self, piece: &str, fallback: usize) -> usize {
        let base = self.input.as_ptr() as usize;
        let at = piece.as_ptr() as usize;
        if at >= base && at + piece.len() <= base + self.input.len() {
            at - base
        } else {
            fallback
        }
    }

    pub(super) fn malformed(&self, offset: usize, message: String) -> EdxmlError {
        EdxmlError::Malformed {
            message,
            position: self.pos(offset),
            path: self.path(),
        }
    }

    pub(super) fn base64_error(&self, problem: Problem, offset: usize) -> EdxmlError {
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

    pub(super) fn xml_error(&self, e: quick_xml::Error) -> EdxmlError {
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

/// An element name as one segment of a JSON pointer (RFC 6901): quick-xml does not check the characters of a
/// name, so a `~` (or `/`) in one is escaped like in any pointer.
fn segment(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(['~', '/']) {
        name.replace('~', "~0").replace('/', "~1").into()
    } else {
        name.into()
    }
}
