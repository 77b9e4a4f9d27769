//! What the parser holds about the manifest and the attachments while it reads them: a [`ManifestRef`], the
//! [`PendingAttachment`] being read, which short text [`Field`] is being collected, and the one way a
//! `ContentId` is compared ([`normalize_cid`]).
//!
//! Why a file of its own: these are plain values the event loop (`reader`) fills in, apart from the parser
//! itself; the loop and the checks of `attachments` both take them from here and depend on each other one way
//! only.

use super::chars::is_xml_ws;
use crate::edxml::b64::Base64Stream;

#[derive(Default)]
pub(super) struct ManifestRef {
    pub(super) content_id: Option<String>,
    pub(super) content_type: String,
}

pub(super) struct PendingAttachment {
    pub(super) depth: usize,
    pub(super) content_id: Option<String>,
    pub(super) name: String,
    pub(super) content_type: String,
    /// Set while inside `ContentTransferEncoded`.
    pub(super) b64: Option<Box<Base64Stream>>,
    /// (encoded, decoded) lengths once `ContentTransferEncoded` has ended.
    pub(super) lengths: Option<(usize, usize)>,
    /// Decoded bytes of this attachment go to the decode target.
    pub(super) decode: bool,
}

/// Which short text field is being collected, at which depth.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    RefContentId,
    RefContentType,
    AttContentId,
    AttName,
    AttContentType,
}

/// `ContentId` without surrounding whitespace and without the `cid:` prefix (any case).
pub(super) fn normalize_cid(id: &str) -> &str {
    let id = id.trim_matches(is_xml_ws);
    match id.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("cid:") => id[4..].trim_matches(is_xml_ws),
        _ => id,
    }
}
