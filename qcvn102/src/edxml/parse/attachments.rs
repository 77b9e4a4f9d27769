//! Manifest references and attachments: collected as the package is read, then checked against each other
//! (every reference has its attachment and every attachment its reference, each `ContentId` once).

use super::pending::{PendingAttachment, normalize_cid};
use super::reader::Parser;
use crate::edxml::AttachmentInfo;
use crate::edxml::error::EdxmlError;

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
