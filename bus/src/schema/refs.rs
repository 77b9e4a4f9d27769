//! Offline `$ref` resolution: every `$ref` must name a file of the schemas folder, and none is ever fetched.
//!
//! Why a retriever of our own: a `$ref` may only reach the files of the folder, whatever the library would
//! otherwise try, and a dangling one must be reported against the file an operator has to fix, not as a URI
//! deep in another file's compile error. Checking each file alone against the set of files present does both.

use super::BASE_URI;
use jsonschema::{Draft, ReferencingError, Registry, Retrieve, Uri};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

pub(super) fn uri_of(rel: &str) -> String {
    format!("{BASE_URI}{rel}")
}

/// A registry URI back as the path an operator knows, when it is one of ours.
pub(super) fn rel_of(uri: &str) -> &str {
    uri.strip_prefix(BASE_URI).unwrap_or(uri)
}

/// Serves each file of a set as an empty schema and nothing else. Checking one file alone with it reports a
/// `$ref` *in that file* whose target file is not in the set (targets are not crawled further, and pointers
/// inside targets are checked when the message schemas compile).
struct Present(Arc<HashSet<String>>);

#[derive(Debug)]
struct NotInFolder;

impl std::fmt::Display for NotInFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a usable file in the schemas folder")
    }
}

impl std::error::Error for NotInFolder {}

impl Retrieve for Present {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if self.0.contains(uri.as_str()) {
            Ok(Value::Object(Default::default()))
        } else {
            Err(Box::new(NotInFolder))
        }
    }
}

/// Checks that every `$ref` in `doc` (the file `rel`) names a file of `present`.
pub(super) fn check_refs(
    rel: &str,
    doc: &Value,
    present: &Arc<HashSet<String>>,
) -> Result<(), ReferencingError> {
    Registry::new()
        .draft(Draft::Draft202012)
        .retriever(Present(Arc::clone(present)))
        .add(uri_of(rel), doc)?
        .prepare()
        .map(drop)
}
