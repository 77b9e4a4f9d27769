//! Writing edXML packages from the JSON a commune or department system submits.
//!
//! # Document JSON ([`DocumentDescription`])
//! ```json
//! {
//!   "from": {"organ_id": "000.00.01.H41", "organ_name": "UBND xã Hưng Lộc"},
//!   "to": [{"organ_id": "000.00.00.H41", "organ_name": "UBND tỉnh Nghệ An"}],
//!   "document_id": "000.00.01.H41,2025/03/14,125/UBND-VP",
//!   "code": {"number": "125", "notation": "UBND-VP"},
//!   "promulgation": {"place": "Hưng Lộc", "date": "2025-03-14"},
//!   "document_type": {"type": 1, "type_detail": 0, "type_name": "Công văn"},
//!   "subject": "V/v báo cáo tình hình …",
//!   "content": "…",
//!   "signer": {"competence": "TM. UBND", "position": "Chủ tịch", "full_name": "Nguyễn Văn A"},
//!   "due_date": "2025-03-30",
//!   "priority": 0,
//!   "business": {"doc_type": 0, "reason": "Văn bản mới", "paper": 0,
//!                "staff": {"department": "Văn phòng", "staff": "Trần Thị B", "email": "…", "mobile": "…"}}
//! }
//! ```
//! Every field maps to the QCVN 102 element named in its documentation. Required: `from`, `to` (at least
//! one), `code.number`, `promulgation`, `document_type.type` and `.type_name`, `subject`. Numbers and
//! booleans are accepted wherever the package carries them as text (`"type": 1` or `"type": "1"`).
//! Dates are `yyyy/MM/dd` or `yyyy-MM-dd`; timestamps `yyyy/MM/dd HH:mm:ss` or `yyyy-MM-ddTHH:mm:ss`
//! (local Vietnamese time, no zone); both are written in the slash form real packages use. Unknown fields are
//! refused, so a misspelt field is reported instead of silently dropped.
//!
//! # Output
//! The layout real packages use: a root `edXML` in the QCVN 102 default namespace that also binds the
//! `edXML:` prefix, prefixed envelope elements, and `AttachmentEncoded` beside the envelope, unprefixed
//! except `edXML:ContentTransferEncoded`. Manifest and attachments share `ContentId`s `cid:1`, `cid:2`, … .
//! Base64 is written in one line without breaks (a strict decoder such as Java's `Base64.getDecoder()`
//! refuses line breaks), 48 KiB of input at a time, so a 20 MB file is never held twice.
//! Everything that could make the package invalid is checked before the first byte is written: a failed build
//! leaves nothing behind but an I/O error can.
//!
//! Leading and trailing whitespace of values is not preserved by the parser (it trims leaf text); a carriage
//! return inside a value is written as `&#13;` so that it survives XML end-of-line handling.

use super::parse::is_xml_char;
use super::status::StatusCode;
use super::{EdxmlError, NAMESPACE};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// An agency in `From`, `To`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// `OrganId`: QCVN 102 agency code `NNN.NN.NN.Xnn`, e.g. `000.00.00.H41`.
    pub organ_id: String,
    /// `OrganizationInCharge`: the governing body.
    #[serde(default)]
    pub organization_in_charge: Option<String>,
    /// `OrganName`.
    #[serde(default)]
    pub organ_name: Option<String>,
    /// `OrganAdd`: postal address.
    #[serde(default)]
    pub address: Option<String>,
    /// `Email`.
    #[serde(default)]
    pub email: Option<String>,
    /// `Telephone`.
    #[serde(default)]
    pub telephone: Option<String>,
    /// `Fax`.
    #[serde(default)]
    pub fax: Option<String>,
    /// `Website`.
    #[serde(default)]
    pub website: Option<String>,
}

impl Organization {
    /// An agency known only by its code.
    pub fn new(organ_id: impl Into<String>) -> Self {
        Self {
            organ_id: organ_id.into(),
            ..Self::default()
        }
    }
}

/// `Code`: the document's number and notation ("số, ký hiệu"), e.g. `125` / `UBND-VP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentCode {
    /// `CodeNumber`.
    #[serde(deserialize_with = "de::text")]
    pub number: String,
    /// `CodeNotation`.
    #[serde(default)]
    pub notation: String,
}

/// `PromulgationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promulgation {
    /// `Place`.
    pub place: String,
    /// `PromulgationDate`: `yyyy/MM/dd` or `yyyy-MM-dd`.
    pub date: String,
}

/// `DocumentType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentKind {
    /// `Type`: numeric document type code (JSON name `type`).
    #[serde(rename = "type", deserialize_with = "de::text")]
    pub kind: String,
    /// `TypeDetail`: numeric.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub type_detail: Option<String>,
    /// `TypeName`, e.g. "Công văn", "Quyết định".
    pub type_name: String,
}

/// `SignerInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// `Competence`, e.g. "TM. UBND".
    #[serde(default)]
    pub competence: Option<String>,
    /// `Position`.
    #[serde(default)]
    pub position: Option<String>,
    /// `FullName`.
    #[serde(default)]
    pub full_name: Option<String>,
}

/// `ResponseFor`: the document this one (or this status) answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseForDescription {
    /// `OrganId` of the answered document's sender, to whom a status goes back.
    pub organ_id: String,
    /// `Code`: its number/notation as one text, e.g. "125/UBND-VP".
    #[serde(default)]
    pub code: Option<String>,
    /// `PromulgationDate`.
    #[serde(default)]
    pub promulgation_date: Option<String>,
    /// `DocumentId`.
    pub document_id: String,
}

/// `TraceHeader`: one hop the package went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    /// `OrganId`.
    pub organ_id: String,
    /// `Timestamp`.
    pub timestamp: String,
}

/// `StaffInfo`: the clerk responsible.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffInfo {
    /// `Department`.
    #[serde(default)]
    pub department: Option<String>,
    /// `Staff`: full name.
    #[serde(default)]
    pub staff: Option<String>,
    /// `Email`.
    #[serde(default)]
    pub email: Option<String>,
    /// `Mobile`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub mobile: Option<String>,
}

/// `ReplacementInfo`: a document this one replaces, and where that one went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// `DocumentId` of the replaced document.
    pub document_id: String,
    /// `OrganIdList/OrganId`.
    #[serde(default)]
    pub organ_ids: Vec<String>,
}

/// `TraceHeaderList/Bussiness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// `BussinessDocType`: 0 new, 1 revoke, 2 update, 3 replace. Default 0.
    #[serde(default = "zero", deserialize_with = "de::text")]
    pub doc_type: String,
    /// `BussinessDocReason`.
    #[serde(default)]
    pub reason: Option<String>,
    /// `Paper`: whether a paper copy follows (0/1). Default 0.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub paper: Option<String>,
    /// `DocumentId` the business information is about; default the package's `DocumentId`.
    #[serde(default)]
    pub document_id: Option<String>,
    /// `StaffInfo`.
    #[serde(default)]
    pub staff: Option<StaffInfo>,
    /// `ReplacementInfoList/ReplacementInfo` (for doc_type 3).
    #[serde(default)]
    pub replacements: Vec<Replacement>,
}

impl Default for Business {
    fn default() -> Self {
        Self {
            doc_type: zero(),
            reason: None,
            paper: None,
            document_id: None,
            staff: None,
            replacements: Vec::new(),
        }
    }
}

fn zero() -> String {
    "0".into()
}

/// A document to send, as a commune or department system describes it (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDescription {
    /// `From`.
    pub from: Organization,
    /// `To`, at least one.
    pub to: Vec<Organization>,
    /// `DocumentId`; when absent it is made as `<from.organ_id>,<promulgation.date>,<number>/<notation>`.
    #[serde(default)]
    pub document_id: Option<String>,
    /// `Code`.
    pub code: DocumentCode,
    /// `PromulgationInfo`.
    pub promulgation: Promulgation,
    /// `DocumentType`.
    pub document_type: DocumentKind,
    /// `Subject` (trích yếu).
    pub subject: String,
    /// `Content`.
    #[serde(default)]
    pub content: Option<String>,
    /// `SignerInfo`.
    #[serde(default)]
    pub signer: Option<Signer>,
    /// `DueDate`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// `OtherInfo/Priority`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub priority: Option<String>,
    /// `OtherInfo/SphereOfPromulgation`.
    #[serde(default)]
    pub sphere_of_promulgation: Option<String>,
    /// `OtherInfo/TyperNotation`.
    #[serde(default)]
    pub typer_notation: Option<String>,
    /// `OtherInfo/PromulgationAmount`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub promulgation_amount: Option<String>,
    /// `OtherInfo/PageAmount`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub page_amount: Option<String>,
    /// `OtherInfo/Direction` (true/false).
    #[serde(default, deserialize_with = "de::opt_text")]
    pub direction: Option<String>,
    /// `OtherInfo/Appendixes/Appendix`.
    #[serde(default)]
    pub appendixes: Vec<String>,
    /// `SteeringType`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub steering_type: Option<String>,
    /// `ToPlaces/Place`: recipients named in the text ("Nơi nhận").
    #[serde(default)]
    pub to_places: Vec<String>,
    /// `ResponseFor`: documents this one answers.
    #[serde(default)]
    pub response_for: Vec<ResponseForDescription>,
    /// `TraceHeaderList/TraceHeader`; when empty one entry (`from`, now in Vietnamese time) is written.
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
    /// `TraceHeaderList/Bussiness`; always written, with defaults when absent.
    #[serde(default)]
    pub business: Option<Business>,
}

/// A status report about a document, sent back to its sender (or a recall, 13, sent by the sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusDescription {
    /// `ResponseFor`: the document reported on; its `organ_id` is where the status goes.
    pub response_for: ResponseForDescription,
    /// `From`: who reports.
    pub from: Organization,
    /// `StatusCode`, `"01"` … `"16"` (a number is accepted too).
    pub status_code: StatusCode,
    /// `Description`; required for 02 (the reason for rejecting).
    #[serde(default)]
    pub description: Option<String>,
    /// `Timestamp`; now (Vietnamese time) when absent.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// `StaffInfo`.
    #[serde(default)]
    pub staff: Option<StaffInfo>,
    /// `TraceHeaderList/TraceHeader`; when empty one entry (`from`, the timestamp) is written.
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttachment {
    /// `AttachmentName` (and `Description`), e.g. `cong-van-125.pdf`.
    pub name: String,
    /// `ContentType`; `application/octet-stream` when empty.
    pub content_type: String,
    pub bytes: Bytes,
}

impl FileAttachment {
    pub fn new(
        name: impl Into<String>,
        content_type: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }
}

/// Builds a document package in memory. See [`build_to`].
pub fn build(doc: &DocumentDescription, files: &[FileAttachment]) -> Result<Vec<u8>, EdxmlError> {
    let encoded: usize = files
        .iter()
        .map(|f| f.bytes.len().div_ceil(3) * 4 + 512)
        .sum();
    let mut out = Vec::with_capacity(8 * 1024 + encoded);
    build_to(doc, files, &mut out)?;
    Ok(out)
}

/// Writes a document package to `out`, streaming the attachments' base64 in chunks.
pub fn build_to<W: Write>(
    doc: &DocumentDescription,
    files: &[FileAttachment],
    mut out: W,
) -> Result<(), EdxmlError> {
    let (head, attachments) = document_head(doc, files)?;
    out.write_all(&head)?;
    if !files.is_empty() {
        out.write_all(b"\n  <AttachmentEncoded>")?;
        let mut scratch = vec![0u8; ENCODE_CHUNK / 3 * 4];
        for (file, opening) in files.iter().zip(&attachments) {
            out.write_all(opening)?;
            for chunk in file.bytes.chunks(ENCODE_CHUNK) {
                let n = STANDARD
                    .encode_slice(chunk, &mut scratch)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                out.write_all(&scratch[..n])?;
            }
            out.write_all(b"</edXML:ContentTransferEncoded>\n    </Attachment>")?;
        }
        out.write_all(b"\n  </AttachmentEncoded>")?;
    }
    out.write_all(b"\n</edXML>\n")?;
    out.flush()?;
    Ok(())
}

/// Builds a status package in memory.
pub fn build_status(status: &StatusDescription) -> Result<Vec<u8>, EdxmlError> {
    let mut out = Vec::with_capacity(4 * 1024);
    build_status_to(status, &mut out)?;
    Ok(out)
}

/// Writes a status package to `out`.
pub fn build_status_to<W: Write>(status: &StatusDescription, mut out: W) -> Result<(), EdxmlError> {
    let head = status_head(status)?;
    out.write_all(&head)?;
    out.write_all(b"\n</edXML>\n")?;
    out.flush()?;
    Ok(())
}

/// Input bytes base64-encoded at a time (a multiple of 3, so chunks concatenate without padding).
const ENCODE_CHUNK: usize = 48 * 1024;

/// Everything up to the end of the envelope, plus each attachment's opening up to its base64.
fn document_head(
    doc: &DocumentDescription,
    files: &[FileAttachment],
) -> Result<(Vec<u8>, Vec<Vec<u8>>), EdxmlError> {
    let mut x = Xml::new();
    x.open("edXMLEnvelope");
    x.open("edXMLHeader");
    x.open("MessageHeader");
    x.organization("From", "from", &doc.from)?;
    if doc.to.is_empty() {
        return Err(invalid("to", "at least one recipient is required"));
    }
    for (i, to) in doc.to.iter().enumerate() {
        x.organization("To", &format!("to[{i}]"), to)?;
    }
    for (i, r) in doc.response_for.iter().enumerate() {
        x.response_for(&format!("response_for[{i}]"), r)?;
    }
    let date = norm_date("promulgation.date", &doc.promulgation.date)?;
    required("code.number", &doc.code.number)?;
    let document_id = match &doc.document_id {
        Some(id) => {
            check_document_id("document_id", id)?;
            id.trim().to_owned()
        }
        None => {
            let notation = doc.code.notation.trim();
            let code = if notation.is_empty() {
                doc.code.number.trim().to_owned()
            } else {
                format!("{}/{notation}", doc.code.number.trim())
            };
            let id = format!("{},{date},{code}", doc.from.organ_id.trim());
            check_document_id(
                "document_id (made from from.organ_id, promulgation.date and code)",
                &id,
            )?;
            id
        }
    };
    x.leaf("document_id", "DocumentId", &document_id)?;
    x.open("Code");
    x.leaf("code.number", "CodeNumber", doc.code.number.trim())?;
    x.leaf("code.notation", "CodeNotation", doc.code.notation.trim())?;
    x.close("Code");
    x.open("PromulgationInfo");
    required("promulgation.place", &doc.promulgation.place)?;
    x.leaf("promulgation.place", "Place", &doc.promulgation.place)?;
    x.leaf("promulgation.date", "PromulgationDate", &date)?;
    x.close("PromulgationInfo");
    x.open("DocumentType");
    digits("document_type.type", &doc.document_type.kind)?;
    x.leaf("document_type.type", "Type", doc.document_type.kind.trim())?;
    if let Some(detail) = &doc.document_type.type_detail {
        digits("document_type.type_detail", detail)?;
        x.leaf("document_type.type_detail", "TypeDetail", detail.trim())?;
    }
    required("document_type.type_name", &doc.document_type.type_name)?;
    x.leaf(
        "document_type.type_name",
        "TypeName",
        &doc.document_type.type_name,
    )?;
    x.close("DocumentType");
    required("subject", &doc.subject)?;
    x.leaf("subject", "Subject", &doc.subject)?;
    x.opt_leaf("content", "Content", doc.content.as_deref())?;
    if let Some(s) = &doc.signer {
        x.open("SignerInfo");
        x.opt_leaf("signer.competence", "Competence", s.competence.as_deref())?;
        x.opt_leaf("signer.position", "Position", s.position.as_deref())?;
        x.opt_leaf("signer.full_name", "FullName", s.full_name.as_deref())?;
        x.close("SignerInfo");
    }
    if let Some(due) = &doc.due_date {
        x.leaf("due_date", "DueDate", &norm_date("due_date", due)?)?;
    }
    let has_other = doc.priority.is_some()
        || doc.sphere_of_promulgation.is_some()
        || doc.typer_notation.is_some()
        || doc.promulgation_amount.is_some()
        || doc.page_amount.is_some()
        || doc.direction.is_some()
        || !doc.appendixes.is_empty();
    if has_other {
        for (field, value) in [
            ("priority", &doc.priority),
            ("promulgation_amount", &doc.promulgation_amount),
            ("page_amount", &doc.page_amount),
        ] {
            if let Some(v) = value
                && !v.trim().bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(field, &format!("`{v}` must be a number")));
            }
        }
        x.open("OtherInfo");
        x.opt_leaf(
            "priority",
            "Priority",
            doc.priority.as_deref().map(str::trim),
        )?;
        x.opt_leaf(
            "sphere_of_promulgation",
            "SphereOfPromulgation",
            doc.sphere_of_promulgation.as_deref(),
        )?;
        x.opt_leaf(
            "typer_notation",
            "TyperNotation",
            doc.typer_notation.as_deref(),
        )?;
        x.opt_leaf(
            "promulgation_amount",
            "PromulgationAmount",
            doc.promulgation_amount.as_deref().map(str::trim),
        )?;
        x.opt_leaf(
            "page_amount",
            "PageAmount",
            doc.page_amount.as_deref().map(str::trim),
        )?;
        x.opt_leaf("direction", "Direction", doc.direction.as_deref())?;
        if !doc.appendixes.is_empty() {
            x.open("Appendixes");
            for (i, a) in doc.appendixes.iter().enumerate() {
                x.leaf(&format!("appendixes[{i}]"), "Appendix", a)?;
            }
            x.close("Appendixes");
        }
        x.close("OtherInfo");
    }
    x.opt_leaf(
        "steering_type",
        "SteeringType",
        doc.steering_type.as_deref(),
    )?;
    if !doc.to_places.is_empty() {
        x.open("ToPlaces");
        for (i, p) in doc.to_places.iter().enumerate() {
            x.leaf(&format!("to_places[{i}]"), "Place", p)?;
        }
        x.close("ToPlaces");
    }
    x.close("MessageHeader");

    let default_business = Business::default();
    let business = doc.business.as_ref().unwrap_or(&default_business);
    x.trace_header_list(&doc.trace, &doc.from.organ_id, None, &document_id, business)?;
    x.close("edXMLHeader");

    x.open("edXMLBody");
    x.open_with_attributes("edXMLManifest", " version=\"1.0\"");
    let mut openings = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let field = format!("files[{i}]");
        required(&format!("{field}.name"), &file.name)?;
        let content_type = match file.content_type.trim() {
            "" => "application/octet-stream",
            t => t,
        };
        let cid = format!("cid:{}", i + 1);
        x.open("Reference");
        x.leaf(&field, "ContentId", &cid)?;
        x.leaf(
            &format!("{field}.content_type"),
            "ContentType",
            content_type,
        )?;
        x.leaf(&format!("{field}.name"), "Description", &file.name)?;
        x.leaf(&format!("{field}.name"), "AttachmentName", &file.name)?;
        x.close("Reference");

        let mut a = Xml::fragment();
        a.buf
            .extend_from_slice(b"\n    <Attachment>\n      <ContentId>");
        a.text(&field, &cid)?;
        a.buf
            .extend_from_slice(b"</ContentId>\n      <AttachmentName>");
        a.text(&field, &file.name)?;
        a.buf
            .extend_from_slice(b"</AttachmentName>\n      <Description>");
        a.text(&field, &file.name)?;
        a.buf
            .extend_from_slice(b"</Description>\n      <ContentType>");
        a.text(&field, content_type)?;
        a.buf
            .extend_from_slice(b"</ContentType>\n      <edXML:ContentTransferEncoded>");
        openings.push(a.buf);
    }
    x.close("edXMLManifest");
    x.close("edXMLBody");
    x.close("edXMLEnvelope");
    Ok((x.finish_head(), openings))
}

fn status_head(s: &StatusDescription) -> Result<Vec<u8>, EdxmlError> {
    let timestamp = match &s.timestamp {
        Some(t) => norm_timestamp("timestamp", t)?,
        None => now_in_vietnam(),
    };
    let mut x = Xml::new();
    x.open("edXMLEnvelope");
    x.open("edXMLHeader");
    x.open("MessageHeader");
    x.response_for("response_for", &s.response_for)?;
    x.organization("From", "from", &s.from)?;
    x.leaf("status_code", "StatusCode", s.status_code.as_str())?;
    if s.status_code == StatusCode::Rejected02
        && s.description.as_deref().is_none_or(|d| d.trim().is_empty())
    {
        return Err(invalid(
            "description",
            "a rejection (02) must give its reason",
        ));
    }
    x.opt_leaf("description", "Description", s.description.as_deref())?;
    x.leaf("timestamp", "Timestamp", &timestamp)?;
    if let Some(staff) = &s.staff {
        x.staff("staff", staff)?;
    }
    x.close("MessageHeader");
    let business = Business::default();
    x.trace_header_list(
        &s.trace,
        &s.from.organ_id,
        Some(&timestamp),
        s.response_for.document_id.trim(),
        &business,
    )?;
    x.close("edXMLHeader");
    x.open("edXMLBody");
    x.open_with_attributes("edXMLManifest", " version=\"1.0\"");
    x.close("edXMLManifest");
    x.close("edXMLBody");
    x.close("edXMLEnvelope");
    Ok(x.finish_head())
}

/// A small writer for the header: `edXML:`-prefixed elements, two-space indentation, checked text.
struct Xml {
    buf: Vec<u8>,
    depth: usize,
}

impl Xml {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"");
        buf.extend_from_slice(NAMESPACE.as_bytes());
        buf.extend_from_slice(b"\" xmlns:edXML=\"");
        buf.extend_from_slice(NAMESPACE.as_bytes());
        buf.extend_from_slice(b"\">");
        Self { buf, depth: 1 }
    }

    /// A piece to be written inside the package, without declaration and root.
    fn fragment() -> Self {
        Self {
            buf: Vec::with_capacity(256),
            depth: 0,
        }
    }

    fn finish_head(self) -> Vec<u8> {
        self.buf
    }

    fn newline(&mut self) {
        self.buf.push(b'\n');
        for _ in 0..self.depth {
            self.buf.extend_from_slice(b"  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.open_with_attributes(name, "");
    }

    /// `attributes` is written as given: only constant, already escaped text.
    fn open_with_attributes(&mut self, name: &str, attributes: &str) {
        self.newline();
        self.buf.extend_from_slice(b"<edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(attributes.as_bytes());
        self.buf.push(b'>');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.newline();
        self.buf.extend_from_slice(b"</edXML:");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'>');
    }

    fn leaf(&mut self, field: &str, name: &str, value: &str) -> Result<(), EdxmlError> {
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

    fn opt_leaf(&mut self, field: &str, name: &str, value: Option<&str>) -> Result<(), EdxmlError> {
        match value {
            Some(v) => self.leaf(field, name, v),
            None => Ok(()),
        }
    }

    /// Escaped character data; refuses characters XML 1.0 cannot carry at all.
    fn text(&mut self, field: &str, value: &str) -> Result<(), EdxmlError> {
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

    fn organization(
        &mut self,
        name: &str,
        field: &str,
        o: &Organization,
    ) -> Result<(), EdxmlError> {
        check_organ_id(&format!("{field}.organ_id"), &o.organ_id)?;
        self.open(name);
        self.leaf(field, "OrganId", o.organ_id.trim())?;
        let f = |suffix: &str| format!("{field}.{suffix}");
        self.opt_leaf(
            &f("organization_in_charge"),
            "OrganizationInCharge",
            o.organization_in_charge.as_deref(),
        )?;
        self.opt_leaf(&f("organ_name"), "OrganName", o.organ_name.as_deref())?;
        self.opt_leaf(&f("address"), "OrganAdd", o.address.as_deref())?;
        self.opt_leaf(&f("email"), "Email", o.email.as_deref())?;
        self.opt_leaf(&f("telephone"), "Telephone", o.telephone.as_deref())?;
        self.opt_leaf(&f("fax"), "Fax", o.fax.as_deref())?;
        self.opt_leaf(&f("website"), "Website", o.website.as_deref())?;
        self.close(name);
        Ok(())
    }

    fn response_for(&mut self, field: &str, r: &ResponseForDescription) -> Result<(), EdxmlError> {
        check_organ_id(&format!("{field}.organ_id"), &r.organ_id)?;
        check_document_id(&format!("{field}.document_id"), &r.document_id)?;
        self.open("ResponseFor");
        self.leaf(field, "OrganId", r.organ_id.trim())?;
        self.opt_leaf(&format!("{field}.code"), "Code", r.code.as_deref())?;
        if let Some(date) = &r.promulgation_date {
            let f = format!("{field}.promulgation_date");
            let date = norm_date(&f, date)?;
            self.leaf(&f, "PromulgationDate", &date)?;
        }
        self.leaf(field, "DocumentId", r.document_id.trim())?;
        self.close("ResponseFor");
        Ok(())
    }

    fn staff(&mut self, field: &str, s: &StaffInfo) -> Result<(), EdxmlError> {
        self.open("StaffInfo");
        self.opt_leaf(
            &format!("{field}.department"),
            "Department",
            s.department.as_deref(),
        )?;
        self.opt_leaf(&format!("{field}.staff"), "Staff", s.staff.as_deref())?;
        self.opt_leaf(&format!("{field}.email"), "Email", s.email.as_deref())?;
        self.opt_leaf(&format!("{field}.mobile"), "Mobile", s.mobile.as_deref())?;
        self.close("StaffInfo");
        Ok(())
    }

    fn trace_header_list(
        &mut self,
        trace: &[TraceEntry],
        from: &str,
        timestamp: Option<&str>,
        document_id: &str,
        business: &Business,
    ) -> Result<(), EdxmlError> {
        self.open("TraceHeaderList");
        if trace.is_empty() {
            let now;
            let timestamp = match timestamp {
                Some(t) => t,
                None => {
                    now = now_in_vietnam();
                    &now
                }
            };
            self.open("TraceHeader");
            self.leaf("from.organ_id", "OrganId", from.trim())?;
            self.leaf("timestamp", "Timestamp", timestamp)?;
            self.close("TraceHeader");
        }
        for (i, t) in trace.iter().enumerate() {
            let field = format!("trace[{i}]");
            check_organ_id(&format!("{field}.organ_id"), &t.organ_id)?;
            let ts = norm_timestamp(&format!("{field}.timestamp"), &t.timestamp)?;
            self.open("TraceHeader");
            self.leaf(&field, "OrganId", t.organ_id.trim())?;
            self.leaf(&field, "Timestamp", &ts)?;
            self.close("TraceHeader");
        }
        self.open("Bussiness");
        let business_id = match &business.document_id {
            Some(id) => {
                check_document_id("business.document_id", id)?;
                id.trim()
            }
            None => document_id,
        };
        self.leaf("business.document_id", "DocumentId", business_id)?;
        let doc_type = business.doc_type.trim();
        if !matches!(doc_type, "0" | "1" | "2" | "3") {
            return Err(invalid(
                "business.doc_type",
                "must be 0 (new), 1 (revoke), 2 (update) or 3 (replace)",
            ));
        }
        self.leaf("business.doc_type", "BussinessDocType", doc_type)?;
        self.opt_leaf(
            "business.reason",
            "BussinessDocReason",
            business.reason.as_deref(),
        )?;
        self.leaf(
            "business.paper",
            "Paper",
            business.paper.as_deref().unwrap_or("0"),
        )?;
        if !business.replacements.is_empty() {
            self.open("ReplacementInfoList");
            for (i, r) in business.replacements.iter().enumerate() {
                let field = format!("business.replacements[{i}]");
                check_document_id(&format!("{field}.document_id"), &r.document_id)?;
                self.open("ReplacementInfo");
                self.leaf(&field, "DocumentId", r.document_id.trim())?;
                self.open("OrganIdList");
                for (j, id) in r.organ_ids.iter().enumerate() {
                    let f = format!("{field}.organ_ids[{j}]");
                    check_organ_id(&f, id)?;
                    self.leaf(&f, "OrganId", id.trim())?;
                }
                self.close("OrganIdList");
                self.close("ReplacementInfo");
            }
            self.close("ReplacementInfoList");
        }
        if let Some(staff) = &business.staff {
            self.staff("business.staff", staff)?;
        }
        self.close("Bussiness");
        self.close("TraceHeaderList");
        Ok(())
    }
}

fn invalid(field: &str, message: &str) -> EdxmlError {
    EdxmlError::InvalidDescription {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn required(field: &str, value: &str) -> Result<(), EdxmlError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "is required and must not be empty"));
    }
    Ok(())
}

fn digits(field: &str, value: &str) -> Result<(), EdxmlError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, &format!("`{value}` must be a number")));
    }
    Ok(())
}

fn check_organ_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    if !crate::agency::is_valid(value.trim()) {
        return Err(invalid(
            field,
            &format!("`{value}` is not a QCVN 102 agency code (NNN.NN.NN.Xnn, e.g. 000.00.00.H41)"),
        ));
    }
    Ok(())
}

/// `<agency code>,<date>,<number/notation>` as the schemas require.
fn check_document_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    let bad = || {
        invalid(
            field,
            &format!(
                "`{value}` is not a DocumentId `<agency code>,<yyyy/MM/dd>,<number/notation>`"
            ),
        )
    };
    let mut parts = value.trim().splitn(3, ',');
    let (Some(organ), Some(date), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !crate::agency::is_valid(organ) || parse_date(date).is_none() || rest.is_empty() {
        return Err(bad());
    }
    for c in value.chars() {
        if !is_xml_char(c) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `yyyy/MM/dd` or `yyyy-MM-dd` → (y, m, d).
fn parse_date(s: &str) -> Option<(u16, u8, u8)> {
    let b = s.as_bytes();
    if b.len() != 10 || !matches!(b[4], b'/' | b'-') || b[7] != b[4] {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m as u8, d as u8))
}

fn norm_date(field: &str, value: &str) -> Result<String, EdxmlError> {
    match parse_date(value.trim()) {
        Some((y, m, d)) => Ok(format!("{y:04}/{m:02}/{d:02}")),
        None => Err(invalid(
            field,
            &format!("`{value}` is not a date yyyy/MM/dd or yyyy-MM-dd"),
        )),
    }
}

/// `yyyy/MM/dd HH:mm:ss` or `yyyy-MM-ddTHH:mm:ss` (optionally with fractional seconds, which are dropped).
fn norm_timestamp(field: &str, value: &str) -> Result<String, EdxmlError> {
    let bad = || {
        invalid(
            field,
            &format!(
                "`{value}` is not a local timestamp yyyy/MM/dd HH:mm:ss or yyyy-MM-ddTHH:mm:ss (no time zone)"
            ),
        )
    };
    let v = value.trim();
    if v.len() < 19 || !v.is_char_boundary(10) || !v.is_char_boundary(19) {
        return Err(bad());
    }
    let (y, m, d) = parse_date(&v[..10]).ok_or_else(bad)?;
    let t = &v.as_bytes()[10..19];
    let two = |i: usize| -> Option<u8> {
        (t[i].is_ascii_digit() && t[i + 1].is_ascii_digit())
            .then(|| (t[i] - b'0') * 10 + (t[i + 1] - b'0'))
    };
    let ok_shape = matches!(t[0], b' ' | b'T') && t[3] == b':' && t[6] == b':';
    let (Some(hh), Some(mm), Some(ss)) = (two(1), two(4), two(7)) else {
        return Err(bad());
    };
    let rest = &v[19..];
    let fraction_ok = rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with('.')
            && rest[1..].bytes().all(|c| c.is_ascii_digit()));
    if !ok_shape || hh > 23 || mm > 59 || ss > 59 || !fraction_ok {
        return Err(bad());
    }
    Ok(format!("{y:04}/{m:02}/{d:02} {hh:02}:{mm:02}:{ss:02}"))
}

/// Now in Vietnamese time (UTC+7, no daylight saving), as `yyyy/MM/dd HH:mm:ss`.
fn now_in_vietnam() -> String {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let t = time::OffsetDateTime::now_utc().to_offset(offset);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Fields the package carries as text but JSON writers may send as numbers or booleans.
mod de {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Bool(bool),
    }

    impl Scalar {
        fn into_text(self) -> String {
            match self {
                Scalar::Text(s) => s,
                Scalar::Unsigned(n) => n.to_string(),
                Scalar::Signed(n) => n.to_string(),
                Scalar::Float(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
            }
        }
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Scalar::deserialize(d).map(Scalar::into_text)
    }

    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<Scalar>::deserialize(d).map(|s| s.map(Scalar::into_text))
    }
}
