//! The header as JSON: every element of `MessageHeader` (or the status header) and `TraceHeaderList` becomes
//! a key, and the fields the bus routes on (`From`, `To`, `ResponseFor`, `DocumentId`, `StatusCode`) are
//! read from that JSON into [`Package`].

use super::frame::Frame;
use super::reader::Parser;
use crate::edxml::error::EdxmlError;
use crate::edxml::status::StatusCode;
use crate::edxml::{Package, PackageKind, ResponseFor};
use serde_json::{Map, Value};

impl<'a, 'w> Parser<'a, 'w> {
    /// Starts a header element, within [`Limits::max_header_elements`]: the JSON of a header element costs far
    /// more memory than its XML, so their number is bounded separately from the package size.
    ///
    /// [`Limits::max_header_elements`]: crate::edxml::Limits::max_header_elements
    pub(super) fn push_frame(&mut self, frame: Frame, offset: usize) -> Result<(), EdxmlError> {
        self.header_elements += 1;
        if self.header_elements > self.limits.max_header_elements {
            return Err(EdxmlError::HeaderTooLarge {
                limit: self.limits.max_header_elements,
                position: self.pos(offset),
                path: self.path(),
            });
        }
        self.frames.push(frame);
        Ok(())
    }

    pub(super) fn into_package(self) -> Result<Package, EdxmlError> {
        let container = self.container.unwrap_or("MessageHeader");
        let base = format!("/edXML/edXMLEnvelope/edXMLHeader/{container}");
        let mut header = self.header;
        drop_empty_response_for(&mut header);

        let from = single_object(&header, "From", &base)?
            .and_then(|from| from.get("OrganId"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EdxmlError::MissingElement {
                path: format!("{base}/From/OrganId"),
                detail: String::new(),
            })?
            .to_owned();

        let status_code = match header.get("StatusCode") {
            None => None,
            Some(Value::String(s)) => {
                Some(
                    StatusCode::parse(s).ok_or_else(|| EdxmlError::InvalidValue {
                        path: format!("{base}/StatusCode"),
                        message: format!(
                            "`{s}` is not a status code (01, 02, 03, 04, 05, 06, 13, 15, 16)"
                        ),
                    })?,
                )
            }
            Some(_) => {
                return Err(EdxmlError::InvalidValue {
                    path: format!("{base}/StatusCode"),
                    message: "StatusCode must appear once and hold text".into(),
                });
            }
        };

        let (kind, to, document_id) = match status_code {
            Some(code) => {
                let items = organ_ids(&header, "ResponseFor", &base)?;
                let first = header
                    .get("ResponseFor")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_object)
                    .expect("organ_ids checked ResponseFor");
                let text = |key: &str| first.get(key).and_then(Value::as_str).map(str::to_owned);
                let code_text = match first.get("Code") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => {
                        let part = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
                        let (n, nt) = (part("CodeNumber"), part("CodeNotation"));
                        Some(if nt.is_empty() {
                            n.to_owned()
                        } else {
                            format!("{n}/{nt}")
                        })
                    }
                    _ => None,
                };
                let response_for = ResponseFor {
                    organ_id: items[0].clone(),
                    code: code_text,
                    promulgation_date: text("PromulgationDate"),
                    document_id: text("DocumentId"),
                };
                let document_id = response_for.document_id.clone().filter(|s| !s.is_empty());
                (
                    PackageKind::Status { code, response_for },
                    items,
                    document_id,
                )
            }
            None => {
                let to = organ_ids(&header, "To", &base)?;
                let document_id = header
                    .get("DocumentId")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                (PackageKind::Document, to, document_id)
            }
        };

        Ok(Package {
            kind,
            header: Value::Object(header),
            from,
            to,
            document_id,
            attachments: self.attachments,
        })
    }
}

/// An empty `ResponseFor` is absent: the national SDK writes `<ResponseFor/>` on every new document, answering
/// nothing (`docs/qcvn102.md`, "The edXML package"). A `ResponseFor` whose elements are all empty is the same.
/// A status package still needs a non-empty one ([`organ_ids`] refuses the package without).
fn drop_empty_response_for(header: &mut Map<String, Value>) {
    fn is_empty(v: &Value) -> bool {
        match v {
            Value::String(s) => s.is_empty(),
            Value::Object(o) => o.values().all(is_empty),
            Value::Array(a) => a.iter().all(is_empty),
            _ => false,
        }
    }
    if let Some(Value::Array(items)) = header.get_mut("ResponseFor") {
        items.retain(|item| !is_empty(item));
        if items.is_empty() {
            header.remove("ResponseFor");
        }
    }
}

/// The object at `header[key]`, refusing a repeated element; `None` when absent.
fn single_object<'h>(
    header: &'h Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Option<&'h Map<String, Value>>, EdxmlError> {
    match header.get(key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(Value::Array(_)) => Err(EdxmlError::InvalidValue {
            path: format!("{base}/{key}"),
            message: format!("{key} appears more than once"),
        }),
        Some(_) => Ok(None),
    }
}

/// `OrganId` of every `header[key]` item, duplicates removed; at least one is required.
fn organ_ids(
    header: &Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Vec<String>, EdxmlError> {
    let missing = |detail: String| EdxmlError::MissingElement {
        path: format!("{base}/{key}/OrganId"),
        detail,
    };
    let items = header
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.is_empty() {
        return Err(missing(String::new()));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = item
            .get("OrganId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(format!("{key} #{}", i + 1)))?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}
