//! Schema registry: JSON Schemas per message type and version, compiled once at startup, no network.
//!
//! # Layout of the schemas folder
//!
//! - `<type>.v<version>.schema.json` directly in the folder: the payload schema of one message type version,
//!   e.g. `order.placed.v1.schema.json`.
//! - Any other `*.json` file anywhere below it (e.g. `common/defs.json`): shared definitions, reached with
//!   relative `$ref`s such as `common/defs.json#/$defs/date14`.
//! - Everything else (README.md, hidden files) is ignored.
//!
//! Every JSON file is preloaded into one [`jsonschema::Registry`] under
//! `https://schemas.lienthong.invalid/<relative path>`, so relative `$ref`s between local files resolve and
//! nothing is ever fetched: a `$ref` to a file that is not in the folder is a load problem, not a runtime
//! surprise. The default dialect is JSON Schema 2020-12; a `$schema` in a file wins. Formats are asserted, and
//! the custom format [`DATE_TIME_14`] checks compact `yyyyMMddHHmmss` date-times.
//!
//! Validators are compiled once in [`SchemaRegistry::load`]; [`SchemaRegistry::validate`] only runs them
//! (`is_valid` first, and the error iterator only for payloads that fail).
//!
//! The work is split by what can go wrong where: [`load`](SchemaRegistry::load) (folder walk, file names,
//! compiling) reports an operator's mistakes at startup, `refs` keeps `$ref` resolution offline and names the
//! file at fault, `format` holds the custom format, and `violation` turns a failed validation into messages
//! a client can act on without echoing their data back. This file holds the registry a running bus queries.

mod format;
mod ids;
mod load;
mod refs;
mod violation;

#[cfg(test)]
mod tests;

pub use format::{DATE_TIME_14, is_date_time_14};

use crate::error::Detail;
use jsonschema::Validator;
use serde_json::Value;
use std::collections::BTreeMap;
use violation::violation_message;

/// Base URI every file in the schemas folder is registered under (`.invalid` can never resolve).
pub const BASE_URI: &str = "https://schemas.lienthong.invalid/";

/// Compiled validators for every `<type>.v<version>.schema.json` in the schemas folder.
pub struct SchemaRegistry {
    kinds: BTreeMap<String, BTreeMap<u32, Validator>>,
}

impl SchemaRegistry {
    /// Message types that have at least one schema, sorted.
    pub fn types(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }

    /// Versions present for `kind`, ascending.
    pub fn versions(&self, kind: &str) -> Vec<u32> {
        self.kinds
            .get(kind)
            .map(|versions| versions.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Highest version present for `kind`.
    pub fn latest_version(&self, kind: &str) -> Option<u32> {
        self.kinds.get(kind)?.keys().next_back().copied()
    }

    /// Validates `payload` against `kind` v`version`: every violation, each with its JSON pointer prefixed by
    /// `/payload` (a missing required property at the pointer it should have, `/payload/MaHoSo`), sorted by
    /// pointer. Err(empty vec) never happens. An unknown type or version is one detail
    /// at `/type`.
    pub fn validate(&self, kind: &str, version: u32, payload: &Value) -> Result<(), Vec<Detail>> {
        let Some(versions) = self.kinds.get(kind) else {
            return Err(vec![Detail {
                path: "/type".into(),
                message: format!("unknown message type `{kind}`: no schema for it"),
            }]);
        };
        let Some(validator) = versions.get(&version) else {
            let known: Vec<String> = versions.keys().map(u32::to_string).collect();
            return Err(vec![Detail {
                path: "/type".into(),
                message: format!(
                    "message type `{kind}` has no version {version} (known versions: {})",
                    known.join(", ")
                ),
            }]);
        };
        if validator.is_valid(payload) {
            return Ok(());
        }
        let mut details: Vec<Detail> = validator
            .iter_errors(payload)
            .map(|e| Detail {
                path: format!("/payload{}", violation::pointer(&e)),
                message: violation_message(&e),
            })
            .collect();
        details.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
        details.dedup();
        if details.is_empty() {
            details.push(Detail {
                path: "/payload".into(),
                message: format!("does not match the schema of `{kind}` v{version}"),
            });
        }
        Err(details)
    }
}

// ---- as the APIs answer: the version to use, and every violation as one `ApiError` ----

use crate::error::{ApiError, code};

/// The schema version to use: the one asked for, or the highest present.
pub fn resolve_version(
    registry: &SchemaRegistry,
    kind: &str,
    asked: Option<u32>,
) -> Result<u32, ApiError> {
    let versions = registry.versions(kind);
    if versions.is_empty() {
        return Err(ApiError::new(
            code::UNKNOWN_TYPE,
            format!("no schema for message type `{kind}`"),
        )
        .at(
            "/type",
            format!("known types: {}", registry.types().join(", ")),
        ));
    }
    match asked {
        None => Ok(*versions.last().expect("non-empty")),
        Some(v) if versions.contains(&v) => Ok(v),
        Some(v) => Err(
            ApiError::new(code::UNKNOWN_TYPE, format!("`{kind}` has no version {v}")).at(
                "/version",
                format!(
                    "known versions: {}",
                    versions
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ),
    }
}

/// Validates `value` as `kind` v`version`: every violation with its JSON pointer.
pub fn validate(
    registry: &SchemaRegistry,
    what: &str,
    kind: &str,
    version: u32,
    value: &serde_json::Value,
) -> Result<(), ApiError> {
    registry.validate(kind, version, value).map_err(|details| {
        let n = details.len();
        ApiError {
            code: code::SCHEMA_VIOLATION,
            message: format!("{what} violates {kind} v{version}: {n} problem(s)"),
            details,
            retryable: false,
        }
    })
}
