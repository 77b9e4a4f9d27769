//! Manifest references and attachments: collected as the package is read, then checked against each other
//! (every reference has its attachment and every attachment its reference, each `ContentId` once).

use super::reader::Parser;
use super::text::is_xml_ws;
use crate::edxml::AttachmentInfo;
use crate::edxml::b64::Base64Stream;
use crate::edxml::error::EdxmlError;

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

impl<'a, 'w> Parser<'a, 'w> {
    pub(super) fn finish_attachment(&mut self, att: PendingAttachment) -> Result<(), EdxmlError> {
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

    /// Every manifest reference must have its attachment, and every attachment its reference; an attachment
    /// without its own `ContentType` takes its reference's.
    pub(super) fn check_manifest(&mut self) -> Result<(), EdxmlError> {
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
}

/// `ContentId` without surrounding whitespace and without the `cid:` prefix (any case).
pub(super) fn normalize_cid(id: &str) -> &str {
    let id = id.trim_matches(is_xml_ws);
    match id.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("cid:") => id[4..].trim_matches(is_xml_ws),
        _ => id,
    }
}
