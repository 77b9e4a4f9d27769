//! The attachments' side of the package: one manifest `Reference` per file in the body, and the opening of
//! each `Attachment` up to where its base64 starts (the base64 itself is streamed by `build_to`).

use super::description::FileAttachment;
use super::required;
use super::xml::Xml;
use crate::edxml::EdxmlError;

/// Writes `edXMLBody` with its manifest (`cid:1`, `cid:2`, … in file order) and returns each attachment's
/// opening.
pub(super) fn manifest_body(
    x: &mut Xml,
    files: &[FileAttachment],
) -> Result<Vec<Vec<u8>>, EdxmlError> {
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
    Ok(openings)
}
