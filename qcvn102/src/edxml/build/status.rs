//! The header of a status package: `ResponseFor` (the document reported on), `From`, `StatusCode` and
//! `Description`, then the trace list.

use super::dates::{norm_timestamp, now_in_vietnam};
use super::description::{Business, StatusDescription};
use super::invalid;
use super::xml::Xml;
use crate::edxml::EdxmlError;
use crate::edxml::status::StatusCode;

pub(super) fn status_head(s: &StatusDescription) -> Result<Vec<u8>, EdxmlError> {
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
