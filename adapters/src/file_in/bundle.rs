//! Documents and status reports *described* in JSON, built into edXML packages here.
//!
//! Why: a commune's software that can write a folder can rarely write a QCVN 102 package (namespaces, base64,
//! the header's many parts). It can write a small JSON file. So besides ready-made packages, `file-in` takes:
//!
//! - `<name>.document.json`: `{"document": {…}, "attachments": [{"file": "cv-125.pdf"}, …]}` where `document`
//!   is the builder's document JSON ([`DocumentDescription`], documented in `qcvn102/src/edxml/build/mod.rs`) and each
//!   attachment names a file in `attachments_dir` (with optional `name`, the `AttachmentName` to show, and
//!   `content_type`, guessed from the extension when absent);
//! - `<name>.status.json`: the builder's status JSON ([`StatusDescription`]): a status report (01–06, 15, 16)
//!   or a recall (13).
//!
//! The package is built with [`edxml::build`] and then goes through ingress exactly like a package dropped as
//! `.xml`: parsed, checked against its schema, `From` checked against the folder's agency, routed by `To`.
//! Attachments are written into `attachments_dir` first (which is not watched, so a half-written one is never
//! taken for a message), then the description is renamed into the folder; a description naming a missing
//! attachment is refused. Attachments are moved with their description (to `done_dir` or `rejected_dir`), so
//! an attachment name may be used again once its description has been handled, not before. The id a
//! resubmission after a crash is recognised by covers the description and every attachment's bytes; times a
//! description leaves out (a status's `Timestamp`, a document's trace time) are the description file's
//! modification time, so the package built again after a crash is byte for byte the first one.
//!
//! An attachment is opened the way the description itself is ([`super::folder`]): relative to the handle of
//! `attachments_dir`, never through a link, and only if it is a regular file, because the name is chosen by the
//! writing system and a link or a pipe in its place would hand over a file from elsewhere or block the poll.

use super::folder::{Content, Folder};
use lienthong_bus::envelope;
use lienthong_bus::error::{ApiError, code};
use lienthong_qcvn102::edxml::{
    self, DocumentDescription, FileAttachment, StatusDescription, TraceEntry,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What a description file describes, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    Document,
    Status,
}

impl Described {
    /// `*.document.json` / `*.status.json` (any case); other names are not descriptions.
    pub fn of(file_name: &str) -> Option<Described> {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".document.json") {
            Some(Described::Document)
        } else if lower.ends_with(".status.json") {
            Some(Described::Status)
        } else {
            None
        }
    }
}

/// `*.document.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentFile {
    document: DocumentDescription,
    #[serde(default)]
    attachments: Vec<AttachmentRef>,
}

/// One attachment of a `*.document.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentRef {
    /// File name in `attachments_dir` (a plain name: no folders).
    file: String,
    /// `AttachmentName` in the package; the file name when absent.
    #[serde(default)]
    name: Option<String>,
    /// `ContentType`; guessed from the extension when absent.
    #[serde(default)]
    content_type: Option<String>,
}

/// A package built from a description.
#[derive(Debug)]
pub struct Package {
    pub bytes: Vec<u8>,
    /// SHA-256 over the description and each attachment, for the resubmission id.
    pub digest: [u8; 32],
}

/// Reads `description` (the file's bytes) and its attachments from `attachments`, and builds the package.
/// Blocking (file I/O).
/// Every refusal names the place: a JSON pointer into the description. An I/O error other than a missing
/// attachment (permissions not yet set, too many open files…) is returned as such, so the description stays in
/// the folder and is tried again, instead of being refused for good.
pub fn build(
    kind: Described,
    description: &[u8],
    written: i64,
    attachments: &Folder,
    max_bytes: u64,
) -> std::io::Result<Result<Package, ApiError>> {
    match build_inner(kind, description, written, attachments, max_bytes) {
        Ok(p) => Ok(Ok(p)),
        Err(Failure::Refused(e)) => Ok(Err(e)),
        Err(Failure::Io(e)) => Err(e),
    }
}

/// The attachment files a description names (plain names only), read leniently: a refused description's
/// attachments are moved with it even when the description itself is malformed elsewhere.
pub fn attachment_names(kind: Described, description: &[u8]) -> Vec<String> {
    if kind != Described::Document {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(description) else {
        return Vec::new();
    };
    let items = v.get("attachments").and_then(|a| a.as_array());
    items
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("file").and_then(|f| f.as_str()))
        .filter(|f| plain_name(f))
        .map(str::to_owned)
        .collect()
}

enum Failure {
    Refused(ApiError),
    Io(std::io::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Refused(e)
    }
}

fn build_inner(
    kind: Described,
    description: &[u8],
    written: i64,
    attachments: &Folder,
    max_bytes: u64,
) -> Result<Package, Failure> {
    let mut digest = Sha256::new().chain_update(description);
    let bytes = match kind {
        Described::Status => {
            let mut status: StatusDescription = parse(description)?;
            status.timestamp.get_or_insert_with(|| in_vietnam(written));
            edxml::build_status(&status).map_err(|e| refusal(e, field_pointer))?
        }
        Described::Document => {
            let mut doc: DocumentFile = parse(description)?;
            if doc.document.trace.is_empty() {
                doc.document.trace.push(TraceEntry {
                    organ_id: doc.document.from.organ_id.trim().to_owned(),
                    timestamp: in_vietnam(written),
                });
            }
            let mut files = Vec::with_capacity(doc.attachments.len());
            let mut total: u64 = 0;
            for (i, a) in doc.attachments.iter().enumerate() {
                let at = format!("/attachments/{i}/file");
                if a.file.len() > MAX_NAME {
                    // Not quoted: it can be as long as the description.
                    return Err(ApiError::new(
                        code::INVALID_JSON,
                        format!(
                            "attachment {i}'s file name is {} bytes; a file name has at most {MAX_NAME}",
                            a.file.len()
                        ),
                    )
                    .at(at, format!("at most {MAX_NAME} bytes"))
                    .into());
                }
                if !plain_name(&a.file) {
                    return Err(ApiError::new(
                        code::INVALID_JSON,
                        format!("attachment `{}` must be a plain file name", a.file),
                    )
                    .at(at, "no folders, no leading dot")
                    .into());
                }
                // Opened relative to the folder's handle, never following a link, and checked on the handle:
                // a link could hand another agency any file the bus can read, and a pipe would block the
                // folder's poll for good (see `folder.rs`).
                let bytes = match attachments.read(&a.file, max_bytes - total) {
                    Ok(Content::Bytes(bytes, _)) => bytes,
                    Ok(Content::TooLarge) => return Err(too_large(max_bytes).into()),
                    Ok(Content::NotAFile(what)) => {
                        return Err(ApiError::new(
                            code::INVALID_JSON,
                            format!(
                                "attachment `{}` is not a regular file: it is {what}",
                                a.file
                            ),
                        )
                        .at(at, "a plain file: not a link, a folder or a pipe")
                        .into());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(ApiError::new(
                            code::INVALID_JSON,
                            format!(
                                "attachment `{}` is not in {}",
                                a.file,
                                attachments.path().display()
                            ),
                        )
                        .at(
                            at,
                            "write the attachment before renaming the description into the folder",
                        )
                        .into());
                    }
                    Err(e) => return Err(Failure::Io(e)),
                };
                total += bytes.len() as u64;
                digest.update([0]);
                digest.update(a.file.as_bytes());
                digest.update([0]);
                digest.update(Sha256::digest(&bytes));
                files.push(FileAttachment::new(
                    a.name.clone().unwrap_or_else(|| a.file.clone()),
                    a.content_type
                        .clone()
                        .unwrap_or_else(|| guess_type(&a.file).to_owned()),
                    bytes,
                ));
            }
            edxml::build(&doc.document, &files)
                .map_err(|e| refusal(e, |f| document_field(&doc, f)))?
        }
    };
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes).into());
    }
    Ok(Package {
        bytes,
        digest: digest.finalize().into(),
    })
}

/// The description as `T`: one JSON value and nothing after it, refused at the RFC 6901 pointer of the field at
/// fault (the envelope's pointer, so keys with `/`, `~` or `.` are escaped as everywhere else), with serde's
/// message cut as the envelope cuts it (it quotes the offending key or value, which can be megabytes).
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let value = T::deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        let message = envelope::bounded_message(&e);
        ApiError::new(code::INVALID_JSON, format!("description: {message}"))
            .at(envelope::pointer(&track.path()), message)
    })
}

/// A builder field (`to[0].organ_id`, the builder's own names) as a JSON pointer.
fn field_pointer(field: &str) -> String {
    let mut out = String::new();
    for part in field.split(['.', '[']) {
        let part = part.trim_end_matches(']');
        if !part.is_empty() {
            out.push('/');
            out.push_str(part);
        }
    }
    out
}

/// A builder refusal, at the description field it names: `at` turns the builder's field into the pointer of
/// that field in the description.
fn refusal(e: edxml::EdxmlError, at: impl Fn(&str) -> String) -> ApiError {
    match &e {
        edxml::EdxmlError::InvalidDescription { field, message } => {
            ApiError::new(code::INVALID_JSON, format!("description: {e}"))
                .at(at(field), message.clone())
        }
        _ => ApiError::new(code::INVALID_JSON, format!("description: {e}")),
    }
}

/// Where a document builder field is in a `*.document.json`: the builder's `files[i]` are the description's
/// `attachments[i]` (their `name` and `content_type` when given, else the `file` they default to); everything
/// else is under `document`.
fn document_field(doc: &DocumentFile, field: &str) -> String {
    let Some(rest) = field.strip_prefix("files[") else {
        return format!("/document{}", field_pointer(field));
    };
    let (index, key) = rest.split_once(']').unwrap_or((rest, ""));
    let Some(a) = index
        .parse::<usize>()
        .ok()
        .and_then(|i| doc.attachments.get(i))
    else {
        return "/attachments".into();
    };
    let given = match key.trim_start_matches('.') {
        "name" => a.name.is_some().then_some("name"),
        "content_type" => a.content_type.is_some().then_some("content_type"),
        _ => None,
    };
    format!("/attachments/{index}/{}", given.unwrap_or("file"))
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        code::PAYLOAD_TOO_LARGE,
        format!(
            "the package built from this description is larger than max_file_bytes ({max} bytes)"
        ),
    )
}

/// Longest file name (in bytes) the usual file systems allow: a longer attachment name can never be opened.
const MAX_NAME: usize = 255;

/// `unix_seconds` in Vietnamese time (UTC+7), as `yyyy/MM/dd HH:mm:ss`: the time a description leaves out (a
/// status's `Timestamp`, a document's trace time) is when its file was written, not when it was read, so
/// reading the same file again after a crash builds the very same package, which ingress then knows (the same
/// id and bytes: the first 202, nothing delivered twice).
fn in_vietnam(unix_seconds: i64) -> String {
    edxml::in_vietnam(
        time::OffsetDateTime::from_unix_timestamp(unix_seconds)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|f| f == name)
}

/// A content type for common office and image files; `application/octet-stream` otherwise.
fn guess_type(file: &str) -> &'static str {
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "tif" | "tiff" => "image/tiff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pointers() {
        assert_eq!(
            Described::of("cv125.document.json"),
            Some(Described::Document)
        );
        assert_eq!(Described::of("X.STATUS.JSON"), Some(Described::Status));
        assert_eq!(Described::of("envelope.json"), None);
        assert_eq!(field_pointer("to[0].organ_id"), "/to/0/organ_id");
        assert!(plain_name("cv-125.pdf"));
        for bad in ["", ".hidden", "../x.pdf", "a/b.pdf", "a\\b.pdf", ".."] {
            assert!(!plain_name(bad), "{bad}");
        }
        assert_eq!(guess_type("A.PDF"), "application/pdf");
        assert_eq!(guess_type("noext"), "application/octet-stream");
    }

    /// A minimal valid document description (the builder's document JSON).
    fn document_description() -> serde_json::Value {
        serde_json::json!({
            "from": {"organ_id": "000.00.00.H40"},
            "to": [{"organ_id": "000.00.12.H40"}],
            "code": {"number": "125", "notation": "UBND-VP"},
            "promulgation": {"place": "Mỹ Lộc", "date": "2026-11-20"},
            "document_type": {"type": 1, "type_name": "Công văn"},
            "subject": "s"
        })
    }

    fn status_description() -> serde_json::Value {
        serde_json::json!({
            "response_for": {"organ_id": "000.00.01.H41", "code": "125/UBND-VP",
                "promulgation_date": "2025-03-14", "document_id": "000.00.01.H41,2025/03/14,125/UBND-VP"},
            "from": {"organ_id": "000.00.00.H41"},
            "status_code": "03",
            "timestamp": "2025/03/15 08:00:00"
        })
    }

    /// 2025-11-20 08:30:00 in Vietnam.
    const WRITTEN: i64 = 1_763_602_200;

    /// What a crash in the middle needs: the same description file read again builds the same package (a
    /// "now" in it made a status a new message, delivered twice, and a document a different one under the
    /// same id, refused 409).
    #[test]
    fn times_left_out_are_the_files_so_a_rebuild_is_the_same_package() {
        let mut status = status_description();
        status.as_object_mut().unwrap().remove("timestamp");
        let status = serde_json::to_vec(&status).unwrap();
        let doc =
            serde_json::to_vec(&serde_json::json!({"document": document_description()})).unwrap();
        for (kind, description) in [(Described::Status, &status), (Described::Document, &doc)] {
            let first = built(kind, description).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let again = built(kind, description).unwrap();
            assert!(first.bytes == again.bytes, "{kind:?}: rebuilt differently");
            let xml = String::from_utf8(first.bytes).unwrap();
            assert!(xml.contains("2025/11/20 08:30:00"), "{xml}");
        }
    }

    fn built(kind: Described, description: &[u8]) -> Result<Package, ApiError> {
        let dir = tempfile::tempdir().unwrap();
        let folder = super::super::folder::Opener::default()
            .open(dir.path())
            .unwrap();
        build(kind, description, WRITTEN, &folder, 1 << 20).expect("no I/O error")
    }

    fn refused_at(kind: Described, description: &[u8]) -> String {
        let e = built(kind, description).expect_err("refused");
        assert_eq!(e.code, code::INVALID_JSON, "{e:?}");
        e.details
            .first()
            .map(|d| d.path.clone())
            .unwrap_or_default()
    }

    /// An oracle of `fuzz/fuzz_targets/file_in_description.rs`; before this fix anything after the description's JSON was ignored.
    #[test]
    fn trailing_junk_after_the_description_is_invalid_json() {
        let good = serde_json::to_vec(&status_description()).unwrap();
        assert!(built(Described::Status, &good).is_ok());
        for junk in [&b" {}"[..], b"x", b"\n]"] {
            let mut bad = good.clone();
            bad.extend_from_slice(junk);
            refused_at(Described::Status, &bad);
        }
        // Whitespace after it is fine.
        let mut ok = good;
        ok.extend_from_slice(b" \n");
        assert!(built(Described::Status, &ok).is_ok());
    }

    /// An oracle of `fuzz/fuzz_targets/file_in_description.rs`; before this fix an attachment name longer than a file name can be was
    /// an I/O error (`File name too long`), so the description stayed in the folder and was retried forever.
    #[test]
    fn an_attachment_name_over_255_bytes_is_refused_at_its_pointer() {
        let doc = serde_json::json!({
            "document": document_description(),
            "attachments": [{"file": "ok.pdf"}, {"file": format!("{}.pdf", "a".repeat(252))}]
        });
        let bytes = serde_json::to_vec(&doc).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.pdf"), b"%PDF").unwrap();
        let folder = super::super::folder::Opener::default()
            .open(dir.path())
            .unwrap();
        let mut fits = doc.clone();
        fits["attachments"].as_array_mut().unwrap().pop();
        let fits = serde_json::to_vec(&fits).unwrap();
        assert!(
            build(Described::Document, &fits, WRITTEN, &folder, 1 << 20)
                .unwrap()
                .is_ok()
        );
        let e = build(Described::Document, &bytes, WRITTEN, &folder, 1 << 20)
            .expect("no I/O error")
            .expect_err("refused");
        assert_eq!(e.code, code::INVALID_JSON);
        assert_eq!(e.details[0].path, "/attachments/1/file");
    }

    /// An oracle of `fuzz/fuzz_targets/file_in_description.rs`; before this fix refusal pointers were made by splitting serde's path
    /// on `.` and `[`, so a key with `/`, `~` or `.` pointed elsewhere; a status description's builder refusals
    /// pointed under `/document`, which it does not have.
    #[test]
    fn refusal_pointers_are_json_pointers_into_the_description() {
        let mut d = status_description();
        d["a/b~c"] = 1.into();
        assert_eq!(
            refused_at(Described::Status, &serde_json::to_vec(&d).unwrap()),
            "/a~1b~0c"
        );
        let mut d = status_description();
        d["from"]["x.y"] = 1.into();
        assert_eq!(
            refused_at(Described::Status, &serde_json::to_vec(&d).unwrap()),
            "/from/x.y"
        );
        let mut d = status_description();
        d["from"]["organ_id"] = "not a code".into();
        assert_eq!(
            refused_at(Described::Status, &serde_json::to_vec(&d).unwrap()),
            "/from/organ_id"
        );
    }
}
