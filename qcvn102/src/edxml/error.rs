//! Errors of the edXML parser and builder.

use std::fmt;

/// A place in the package: 1-based line and column (in characters), and the 0-based byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

impl Position {
    /// Locates byte `offset` of `input`. Costs a scan of the input up to `offset`, so it is only done for errors.
    pub(crate) fn locate(input: &[u8], offset: usize) -> Self {
        let offset = offset.min(input.len());
        let before = &input[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        let column = 1 + before[line_start..]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count();
        Self {
            line,
            column,
            offset,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {} (byte {})",
            self.line, self.column, self.offset
        )
    }
}

/// Why a package was refused, or could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdxmlError {
    #[error("package is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },

    /// A `<!DOCTYPE …>` (with or without an internal subset) or a stray `<!ENTITY`/`<!ELEMENT`/`<!ATTLIST`
    /// declaration. Refused as soon as it is seen, so nothing is ever expanded or fetched.
    #[error(
        "DOCTYPE / DTD or entity declaration at {position} refused: edXML packages must not carry a DTD \
         (protection against external entities and entity expansion)"
    )]
    ForbiddenDtd { position: Position },

    #[error("unknown entity reference `&{name};` at {position}{}: only &lt; &gt; &amp; &apos; &quot; and character references are allowed", in_path(.path))]
    UnknownEntity {
        name: String,
        position: Position,
        path: String,
    },

    #[error("elements nested deeper than {limit} levels at {position}{}", in_path(.path))]
    TooDeep {
        limit: usize,
        position: Position,
        path: String,
    },

    #[error("header has more than {limit} elements (at {position}{})", in_path(.path))]
    HeaderTooLarge {
        limit: usize,
        position: Position,
        path: String,
    },

    #[error("malformed XML at {position}{}: {message}", in_path(.path))]
    Malformed {
        message: String,
        position: Position,
        path: String,
    },

    #[error(
        "encoding `{encoding}` declared at {position} is not supported: edXML packages must be UTF-8"
    )]
    UnsupportedEncoding {
        encoding: String,
        position: Position,
    },

    #[error("root element is <{found}> at {position}, expected <edXML>")]
    UnexpectedRoot { found: String, position: Position },

    #[error("missing {path}{}", parenthesized(.detail))]
    MissingElement { path: String, detail: String },

    #[error("invalid value at {path}: {message}")]
    InvalidValue { path: String, message: String },

    #[error("{attachment}: ContentTransferEncoded is not valid base64 at {position}: {reason}")]
    InvalidBase64 {
        /// `attachment "<ContentId>"`, or `attachment #n` when its ContentId was not read yet.
        attachment: String,
        reason: String,
        position: Position,
        path: String,
    },

    #[error("more than {limit} attachments or manifest references (at {path})")]
    TooManyAttachments { limit: usize, path: String },

    #[error("the manifest references ContentId `{content_id}`, but no Attachment carries it")]
    MissingAttachment { content_id: String, path: String },

    #[error("Attachment with ContentId `{content_id}` is not referenced by the edXMLManifest")]
    UnreferencedAttachment { content_id: String, path: String },

    #[error("two {what} have ContentId `{content_id}`")]
    DuplicateContentId {
        what: &'static str,
        content_id: String,
        path: String,
    },

    #[error("no attachment with ContentId `{content_id}` in this package")]
    UnknownAttachment { content_id: String },

    /// The builder's input is not something a valid package can carry.
    #[error("invalid {field}: {message}")]
    InvalidDescription { field: String, message: String },

    #[error("writing failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A path too long to repeat back becomes empty (no path), as the envelope does with its pointers.
fn bound_path(path: &mut String) {
    if path.chars().count() > MAX_PATH_CHARS {
        path.clear();
    }
}

fn in_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" in {path}")
    }
}

fn parenthesized(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// Longest quoted part of the input (a name, a value, quick-xml's message) kept in an error.
const MAX_QUOTED_CHARS: usize = 200;

/// Longest element path kept in an error; a longer one (names are as long as a producer makes them) is left out.
const MAX_PATH_CHARS: usize = 1000;

/// `text` cut to [`MAX_QUOTED_CHARS`] characters, ended with `…` when cut.
fn cut(text: &mut String) {
    if let Some((at, _)) = text.char_indices().nth(MAX_QUOTED_CHARS) {
        text.truncate(at);
        text.push('…');
    }
}

impl EdxmlError {
    /// The error with what it quotes from the input bounded: names, values and quick-xml's message (which
    /// quotes the input up to the next `>`) cut to 200 characters, a path over 1000 characters left out. The
    /// parser's errors go back to whoever sent the package, and the package can be megabytes.
    pub(crate) fn bounded(mut self) -> Self {
        match &mut self {
            Self::UnknownEntity { name, path, .. } => {
                cut(name);
                bound_path(path);
            }
            Self::TooDeep { path, .. } | Self::HeaderTooLarge { path, .. } => bound_path(path),
            Self::Malformed { message, path, .. } | Self::InvalidValue { path, message } => {
                cut(message);
                bound_path(path);
            }
            Self::MissingElement { path, detail } => {
                cut(detail);
                bound_path(path);
            }
            Self::UnsupportedEncoding { encoding, .. } => cut(encoding),
            Self::UnexpectedRoot { found, .. } => cut(found),
            Self::InvalidBase64 {
                attachment,
                reason,
                path,
                ..
            } => {
                cut(attachment);
                cut(reason);
                bound_path(path);
            }
            Self::TooManyAttachments { path, .. } => bound_path(path),
            Self::MissingAttachment { content_id, path }
            | Self::UnreferencedAttachment { content_id, path }
            | Self::DuplicateContentId {
                content_id, path, ..
            } => {
                cut(content_id);
                bound_path(path);
            }
            Self::UnknownAttachment { content_id } => cut(content_id),
            Self::TooLarge { .. }
            | Self::ForbiddenDtd { .. }
            | Self::InvalidDescription { .. }
            | Self::Io(_) => {}
        }
        self
    }

    /// The element path the problem is at, e.g. `/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId`.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::UnknownEntity { path, .. }
            | Self::TooDeep { path, .. }
            | Self::HeaderTooLarge { path, .. }
            | Self::Malformed { path, .. }
            | Self::MissingElement { path, .. }
            | Self::InvalidValue { path, .. }
            | Self::InvalidBase64 { path, .. }
            | Self::TooManyAttachments { path, .. }
            | Self::MissingAttachment { path, .. }
            | Self::UnreferencedAttachment { path, .. }
            | Self::DuplicateContentId { path, .. } => (!path.is_empty()).then_some(path.as_str()),
            Self::UnexpectedRoot { .. } => Some("/"),
            _ => None,
        }
    }

    /// Where in the package the problem is, when it is at one place.
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::ForbiddenDtd { position }
            | Self::UnknownEntity { position, .. }
            | Self::TooDeep { position, .. }
            | Self::HeaderTooLarge { position, .. }
            | Self::Malformed { position, .. }
            | Self::UnsupportedEncoding { position, .. }
            | Self::UnexpectedRoot { position, .. }
            | Self::InvalidBase64 { position, .. } => Some(*position),
            _ => None,
        }
    }

    /// True when the package was refused for carrying a DTD or an entity declaration.
    pub fn is_forbidden_dtd(&self) -> bool {
        matches!(self, Self::ForbiddenDtd { .. })
    }
}
