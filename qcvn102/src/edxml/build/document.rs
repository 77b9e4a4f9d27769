//! The header of a document package: `MessageHeader` with everything the description gives, then the trace
//! list with the business information.

use super::attachments::manifest_body;
use super::dates::norm_date;
use super::description::{Business, DocumentDescription, FileAttachment, Signer};
use super::ids::check_document_id;
use super::xml::Xml;
use super::{digits, invalid, required};
use crate::edxml::EdxmlError;

/// Everything up to the end of the envelope, plus each attachment's opening up to its base64.
pub(super) fn document_head(
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
            // Made from `code` (the sender's code and the date are checked where they are read).
            check_document_id("code", &id)?;
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
    // An empty `{}` writes nothing: an empty element would read as "" and fail the schema (an object).
    if let Some(s) = doc.signer.as_ref().filter(|s| **s != Signer::default()) {
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

    let openings = manifest_body(&mut x, files)?;
    x.close("edXMLEnvelope");
    Ok((x.finish_head(), openings))
}
