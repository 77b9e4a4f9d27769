//! Agency codes and `DocumentId`s in a description, checked before anything is written.

use super::dates::parse_date;
use super::invalid;
use crate::edxml::EdxmlError;
use crate::edxml::parse::is_xml_char;

pub(super) fn check_organ_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    if !crate::agency::is_valid(value.trim()) {
        return Err(invalid(
            field,
            &format!("`{value}` is not a QCVN 102 agency code (NNN.NN.NN.Xnn, e.g. 000.00.00.H41)"),
        ));
    }
    Ok(())
}

/// `<agency code>,<date>,<number/notation>` as the schemas require.
pub(super) fn check_document_id(field: &str, value: &str) -> Result<(), EdxmlError> {
    let bad = || {
        invalid(
            field,
            &format!(
                "`{value}` is not a DocumentId `<agency code>,<yyyy/MM/dd>,<number/notation>`"
            ),
        )
    };
    let mut parts = value.trim().splitn(3, ',');
    let (Some(organ), Some(date), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !crate::agency::is_valid(organ) || parse_date(date).is_none() || rest.is_empty() {
        return Err(bad());
    }
    for c in value.chars() {
        if !is_xml_char(c) {
            return Err(bad());
        }
    }
    Ok(())
}
