//! Header elements on their way to JSON: the [`Frame`] of an element being read, and how a finished element is
//! put into its parent's object ([`insert`]: repeated elements, and those that are always lists, as arrays).
//!
//! Why a file of its own: these are plain values the event loop (`reader`) builds as it goes, apart from the
//! parser itself, so the loop and the header's reading (`header`) both take them from here and depend on each
//! other one way only.

use super::chars::is_xml_ws;
use serde_json::{Map, Value};

/// An element of the header being turned into JSON.
pub(super) struct Frame {
    pub(super) name: String,
    pub(super) map: Map<String, Value>,
    pub(super) text: String,
    pub(super) has_children: bool,
    /// The header container itself: its children go to the top level of
    /// [`Package::header`](crate::edxml::Package::header).
    pub(super) is_root: bool,
}

impl Frame {
    pub(super) fn new(name: &str, is_root: bool) -> Self {
        Self {
            name: name.to_owned(),
            map: Map::new(),
            text: String::new(),
            has_children: false,
            is_root,
        }
    }

    pub(super) fn into_value(self) -> Value {
        if self.has_children {
            Value::Object(self.map)
        } else {
            Value::String(self.text.trim_matches(is_xml_ws).to_owned())
        }
    }
}

/// Elements that are lists even when they occur once; `parent` is `None` at the top of the header.
fn always_array(parent: Option<&str>, name: &str) -> bool {
    matches!(
        (parent, name),
        (None, "To" | "ResponseFor")
            | (Some("TraceHeaderList"), "TraceHeader")
            | (Some("Appendixes"), "Appendix")
            | (Some("ToPlaces"), "Place")
            | (Some("ReceiverList"), "Receiver")
            | (Some("ReplacementInfoList"), "ReplacementInfo")
            | (Some("OrganIdList"), "OrganId")
    )
}

pub(super) fn insert(
    map: &mut Map<String, Value>,
    parent: Option<&str>,
    name: String,
    value: Value,
) {
    let list = always_array(parent, &name);
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if list => {
            map.insert(name, Value::Array(vec![value]));
        }
        None => {
            map.insert(name, value);
        }
    }
}
