//! Organisation codes and `DocumentId`s in a description, checked before anything is written.
//!
//! Any code of the national network is written (`docs/qcvn102.md`, "Agency codes"): whether the sender may use
//! its code is for whoever receives the package to judge, not for the builder.

use super::dates::parse_date;
use super::invalid;
use crate::edxml::EdxmlError;
use crate::edxml::parse::is_xml_char;

pub(super) fn check_organ_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    if let Err(e) = crate::agency::check_network_code(value.trim()) {
        return Err(invalid(field, &e.to_string()));
    }
    Ok(())
}

/// `<agency code>,<date>,<number/notation>` as the schemas require.
pub(super) fn check_document_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    let bad = || {
        invalid(
            field,
            &format!(
                "`{value}` is not a DocumentId `<issuer code>,<yyyy/MM/dd>,<number/notation>`"
            ),
        )
    };
    let mut parts = value.trim().splitn(3, ',');
    let (Some(organ), Some(date), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    // As the schemas' pattern (`,\S.*$` in ECMA-262 terms): the number/notation starts with no space, and holds
    // no line terminator, which `.` does not match.
    let starts_blank = rest
        .chars()
        .next()
        .is_none_or(|c| c.is_whitespace() || c == '\u{feff}');
    let line_break = rest.contains(['\n', '\r', '\u{2028}', '\u{2029}']);
    if !crate::agency::is_network_code(organ)
        || parse_date(date).is_none()
        || starts_blank
        || line_break
    {
        return Err(bad());
    }
    for c in value.chars() {
        if !is_xml_char(c) {
            return Err(bad());
        }
    }
    Ok(())
}
