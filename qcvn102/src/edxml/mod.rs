//! edXML (QCVN 102:2016) packages: a streaming parser, a builder, and document status transitions.
//!
//! An edXML package is one XML document:
//!
//! ```text
//! edXML                                   (ns http://www.mic.gov.vn/TBT/QCVN_102_2016)
//!  ├─ edXMLEnvelope
//!  │   ├─ edXMLHeader
//!  │   │   ├─ MessageHeader               From, To*, DocumentId, Code, PromulgationInfo, … (documents)
//!  │   │   │                              ResponseFor, From, StatusCode, Description, Timestamp, StaffInfo (status)
//!  │   │   ├─ TraceHeaderList             TraceHeader*, Bussiness
//!  │   │   └─ Signature                   XML-DSig, ignored here
//!  │   └─ edXMLBody/edXMLManifest/Reference*   ContentId "cid:…", ContentType, AttachmentName, …
//!  └─ AttachmentEncoded/Attachment*       ContentId, AttachmentName, ContentType, ContentTransferEncoded (base64)
//! ```
//!
//! [`parse`] reads a package without building a tree and without copying attachment data: the header becomes
//! JSON ([`Package::header`]) that the bus validates against `schemas/document.edxml.v1.schema.json` (documents)
//! or `schemas/document.status.v1.schema.json` (status packages), exactly like the payload of a JSON message;
//! attachments are only checked (valid base64, every manifest reference present) and measured.
//! [`decode_attachment`] streams one attachment's bytes into any writer. [`build`] / [`build_status`] write
//! packages that this parser and those schemas accept. [`status`] holds the status codes and the transitions
//! the bus allows.
//!
//! # What the parser tolerates (real packages differ)
//! - Elements are matched on their local name: `edXML:From` and `From` are the same element, whatever prefix
//!   or default namespace the producer used.
//! - `AttachmentEncoded` may sit beside the envelope (as in real packages) or inside it.
//! - `ContentId` may carry the `cid:` prefix in the manifest, the attachment, both or neither.
//! - The status header may be called `MessageHeader`, `MessageStatus` or `Status`; a package is a status
//!   package when its header has a `StatusCode`.
//! - Base64 may be broken into lines, contain `&#13;`-style character references or CDATA, and may omit
//!   the final `=` padding.
//! - An empty `<ResponseFor/>` (written by the national SDK on every new document) is taken as absent.
//! - `OrganId`s are organisation codes of any scheme the national network uses, not only QCVN 102
//!   ([`crate::agency::is_network_code`], checked by the schemas); `TraceHeader` hop codes are not checked at
//!   all, since they are transport history.
//!
//! # What it refuses
//! Any `<!DOCTYPE`, DTD or entity declaration (on sight, before anything could be expanded), references to
//! entities other than the five XML ones, nesting deeper than [`Limits::max_depth`], packages over
//! [`Limits::max_bytes`], more than [`Limits::max_attachments`] attachments or
//! [`Limits::max_header_elements`] header elements, malformed XML, encodings other than UTF-8, invalid
//! base64, and a manifest that does not match the attachments.

mod b64;
mod build;
mod error;
mod parse;
pub mod status;

#[cfg(test)]
mod tests;

pub use build::{
    Business, DocumentCode, DocumentDescription, DocumentKind, FileAttachment, Organization,
    Promulgation, Replacement, ResponseForDescription, Signer, StaffInfo, StatusDescription,
    TraceEntry, build, build_status, build_status_to, build_to, in_vietnam,
};
pub use error::{EdxmlError, Position};
pub use parse::{decode_attachment, parse};
pub use status::StatusCode;

/// The QCVN 102:2016 namespace the builder writes (the parser matches local names and ignores namespaces).
pub const NAMESPACE: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

/// Message type of document packages in the schema registry (`document.edxml.v1.schema.json`).
pub const DOCUMENT_MESSAGE_TYPE: &str = "document.edxml";

/// Message type of status packages in the schema registry (`document.status.v1.schema.json`).
pub const STATUS_MESSAGE_TYPE: &str = "document.status";

/// Bounds on what [`parse`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting accepted (the root is depth 1). Real packages stay under 10. Default 32.
    pub max_depth: usize,
    /// Largest package in bytes. Default 64 MiB.
    pub max_bytes: usize,
    /// Most attachments (and most manifest references) in one package. Default 1000.
    pub max_attachments: usize,
    /// Most elements in the header (MessageHeader and TraceHeaderList with everything inside). A real header
    /// has under 100. Default 10 000.
    pub max_header_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_bytes: 64 * 1024 * 1024,
            max_attachments: 1000,
            max_header_elements: 10_000,
        }
    }
}

/// What [`parse`] extracts from a package.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub kind: PackageKind,
    /// The header as JSON, element local names as keys: `MessageHeader`'s (or the status header's) children at
    /// the top level, plus `TraceHeaderList`. Leaf elements become strings (surrounding whitespace trimmed),
    /// elements with children become objects. `To`, `ResponseFor`, `TraceHeader`, `Appendix`, `Place` (in
    /// `ToPlaces`), `Receiver`, `ReplacementInfo` and `OrganId` (in `OrganIdList`) are always arrays; any other
    /// element that repeats becomes an array too (and then fails the schema). `Signature` is left out, and so is
    /// an empty `ResponseFor` (`<ResponseFor/>`, which the national SDK writes on every new document).
    pub header: serde_json::Value,
    /// `From/OrganId`: the agency that sent this package.
    pub from: String,
    /// Where the package goes: every `To/OrganId` of a document (duplicates removed, order kept); for a status
    /// package every `ResponseFor/OrganId`, since a status flows back to the document's sender.
    pub to: Vec<String>,
    /// `DocumentId` of a document; for a status package, the `ResponseFor/DocumentId` it reports on.
    pub document_id: Option<String>,
    /// Attachments in document order.
    pub attachments: Vec<AttachmentInfo>,
}

impl Package {
    /// The registry message type whose schema validates [`Package::header`].
    pub fn message_type(&self) -> &'static str {
        match self.kind {
            PackageKind::Document => DOCUMENT_MESSAGE_TYPE,
            PackageKind::Status { .. } => STATUS_MESSAGE_TYPE,
        }
    }
}

/// A document, or a status report about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageKind {
    Document,
    Status {
        code: StatusCode,
        response_for: ResponseFor,
    },
}

/// The document a status package reports on (its first `ResponseFor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFor {
    /// The agency the status is addressed to (the document's sender).
    pub organ_id: String,
    /// `Code` as written (number/notation); when a producer wrote `CodeNumber`/`CodeNotation` children they
    /// are joined with `/`.
    pub code: Option<String>,
    pub promulgation_date: Option<String>,
    pub document_id: Option<String>,
}

/// One attachment, checked and measured; its data stays in the package (see [`decode_attachment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// `ContentId` without the `cid:` prefix and surrounding whitespace.
    pub content_id: String,
    /// `AttachmentName` (empty when absent).
    pub name: String,
    /// `ContentType` of the attachment, or of its manifest reference when the attachment has none.
    pub content_type: String,
    /// Base64 characters in `ContentTransferEncoded`, padding included, whitespace not counted.
    pub encoded_len: usize,
    /// Bytes the base64 decodes to.
    pub decoded_len: usize,
}
