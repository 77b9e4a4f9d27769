//! Human messages for schema violations, one per failed keyword, with the value quoted only when it is short.
//!
//! Why: the messages go back to the client that sent the payload and into logs. The library's default text
//! quotes the whole offending value, which can be a large object or carry personal data (identity numbers,
//! addresses); short scalars are quoted because they tell the client exactly what to fix.

use super::DATE_TIME_14;
use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// Longest instance value quoted in a violation message; longer values, objects and arrays are not echoed.
const MAX_QUOTED_LEN: usize = 64;

/// Where a violation is: the instance's JSON pointer, and for a missing required property the pointer the
/// property should have (`/MaHoSo`, not the object holding it), so the client is told which field to add.
pub(super) fn pointer(e: &ValidationError<'_>) -> String {
    let at = e.instance_path().as_str().to_owned();
    match e.kind() {
        ValidationErrorKind::Required { property } => match property.as_str() {
            Some(name) => format!("{at}/{}", name.replace('~', "~0").replace('/', "~1")),
            None => at,
        },
        _ => at,
    }
}

/// A human message for one violation. Short scalar values are quoted; objects, arrays and long strings are not
/// echoed back (they can be large and carry personal data).
pub(super) fn violation_message(e: &ValidationError<'_>) -> String {
    let instance = e.instance();
    let quotable = match &**instance {
        Value::Object(_) | Value::Array(_) => false,
        Value::String(s) => s.chars().count() <= MAX_QUOTED_LEN,
        _ => true,
    };
    let value = || {
        if quotable {
            instance.to_string()
        } else {
            "the value".into()
        }
    };
    match e.kind() {
        ValidationErrorKind::Format { format } if format == DATE_TIME_14 => format!(
            "{} is not a real date-time in the {DATE_TIME_14} format (14 digits, e.g. 20261127083000)",
            value()
        ),
        ValidationErrorKind::Format { format } => format!("{} is not a valid {format}", value()),
        // `propertyNames` reports the offending name at the object. The name is the instance of the inner
        // error: masking the outer one does not mask it (its message is the inner one's, unmasked).
        _ if e.schema_path().as_str().contains("/propertyNames/") => {
            let inner = match e.kind() {
                ValidationErrorKind::PropertyNames { error } => error.as_ref(),
                _ => e,
            };
            let short = matches!(&**inner.instance(), Value::String(s) if s.chars().count() <= MAX_QUOTED_LEN);
            format!(
                "property name {}",
                if short {
                    inner.to_string()
                } else {
                    inner
                        .masked_with(format!("of over {MAX_QUOTED_LEN} characters"))
                        .to_string()
                }
            )
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|o| o.iter().map(Value::to_string).collect())
                .unwrap_or_default();
            format!(
                "{} is not one of the allowed values: {}",
                value(),
                allowed.join(", ")
            )
        }
        _ if quotable => e.to_string(),
        _ => e.masked_with("the value").to_string(),
    }
}
