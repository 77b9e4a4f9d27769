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
//!
//! The input types are in [`description`]; [`document`] and [`status`] write the two kinds of header through the
//! small checked writer in [`xml`] (with the parts both share in [`header`]); [`attachments`] writes the
//! manifest and each attachment's opening; [`ids`] and [`dates`] check and normalize the values.

mod attachments;
mod dates;
mod description;
mod document;
mod header;
mod ids;
mod status;
mod xml;

pub use dates::in_vietnam;
pub use description::{
    Business, DocumentCode, DocumentDescription, DocumentKind, FileAttachment, Organization,
    Promulgation, Replacement, ResponseForDescription, Signer, StaffInfo, StatusDescription,
    TraceEntry,
};

use super::EdxmlError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use document::document_head;
use status::status_head;
use std::io::Write;

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
