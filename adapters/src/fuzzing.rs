//! Entry points for the fuzz targets in `fuzz/` (hidden from the docs; not an API, may change with them).
//!
//! Why: what the adapters read from the outside — the portal's and the axis's answers, a description dropped
//! into a folder — is parsed by code private to each adapter, and a fuzz target is another crate. These thin
//! wrappers call exactly that code, so nothing is fuzzed through a copy that could drift from it.

use crate::dvcqg::portal::{self, Answer, Codes};
use crate::file_in::bundle::{self, Described};
use crate::file_in::folder::Opener;
use crate::vxp::{axis, pull};
use lienthong_bus::adapter::DeliveryError;
use lienthong_bus::error::ApiError;
use std::path::Path;

/// What the national portal adapter makes of one answer body.
#[derive(Debug)]
pub struct PortalAnswer {
    /// `error_code` as the adapter prints it.
    pub code: String,
    pub message: String,
    /// An insert's "already there", which turns it into an update.
    pub already_exists: bool,
    /// The answer says the session is gone (by its message; no codes are configured here).
    pub session_signal: bool,
    /// The error-code rules with the default code lists, as `DongBoHoSoMC` is judged.
    pub judged: Result<(), DeliveryError>,
}

/// The portal's answer to a service call, or `None` when it is not JSON with an `error_code`.
pub fn dvcqg_answer(raw: &[u8]) -> Option<PortalAnswer> {
    let a = Answer::from_body(bytes::Bytes::copy_from_slice(raw))?;
    Some(PortalAnswer {
        code: a.code.to_string(),
        message: a.message.clone(),
        already_exists: a.says_already_exists(),
        session_signal: !a.code.is_success() && portal::mentions_session(&a.message),
        judged: Codes::defaults().judge("DongBoHoSoMC", &a),
    })
}

/// A non-2xx portal answer with this `Retry-After`, as the adapter classifies it.
pub fn dvcqg_http_error(status: u16, retry_after: Option<&[u8]>, raw: &[u8]) -> DeliveryError {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(v) = retry_after.and_then(|v| reqwest::header::HeaderValue::from_bytes(v).ok()) {
        headers.insert(reqwest::header::RETRY_AFTER, v);
    }
    portal::http_error("DongBoHoSoMC", status, &headers, raw)
}

/// One document the axis lists: its id and sender as the adapter reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisListed {
    pub doc_id: String,
    pub from: Option<String>,
}

/// The axis's answer to `getReceivedEdocList` with HTTP `status`, as the adapter reads it; `None` for a status
/// HTTP cannot carry.
pub fn vxp_list(status: u16, raw: &[u8]) -> Option<Result<Vec<AxisListed>, String>> {
    let status = reqwest::StatusCode::from_u16(status).ok()?;
    Some(axis::axis_json(status, raw).and_then(|v| {
        let listed = axis::listed(&v, "eDoc")?;
        Ok(listed
            .into_iter()
            .map(|l| AxisListed {
                doc_id: l.doc_id,
                from: l.from,
            })
            .collect())
    }))
}

/// Why a `getEdoc` answer with HTTP `status` (an error, or JSON) is not a package; also what `updateStatus`
/// answers are judged by.
pub fn vxp_not_a_package(status: u16, raw: &[u8]) -> Option<String> {
    let status = reqwest::StatusCode::from_u16(status).ok()?;
    Some(axis::not_a_package(status, raw))
}

/// `MessageHeader/From/OrganId` of a fetched package, as the adapter reads it before submitting.
pub fn vxp_package_sender(body: &[u8]) -> Option<String> {
    pull::package_sender(body)
}

/// A package built from a description dropped into the folder as `file_name` (`*.document.json` or
/// `*.status.json`), its attachments read from the folder `attachments`; `None` when the name is not a
/// description's. Ok(Ok(package bytes)), a refusal, or an I/O error (the file would stay and be retried).
pub fn file_in_description(
    file_name: &str,
    description: &[u8],
    attachments: &Path,
    max_bytes: u64,
) -> Option<std::io::Result<Result<Vec<u8>, ApiError>>> {
    let kind = Described::of(file_name)?;
    let folder = match Opener::default().open(attachments) {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    Some(
        bundle::build(kind, description, 0, &folder, max_bytes)
            .map(|built| built.map(|package| package.bytes)),
    )
}

/// The attachment files a description names, moved with it whatever becomes of it.
pub fn file_in_attachment_names(file_name: &str, description: &[u8]) -> Vec<String> {
    Described::of(file_name)
        .map(|kind| bundle::attachment_names(kind, description))
        .unwrap_or_default()
}

/// The name the `n`th copy of a dropped file is stored under in `done`/`rejected`.
pub fn file_in_stored_name(name: &str, n: u32) -> String {
    crate::file_in::folder::stored_name(name, n)
}
