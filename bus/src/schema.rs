//! Schema registry: JSON Schemas per message type and version, compiled once at startup, no network.
//! (stub — being implemented)

use crate::config::Problem;
use crate::error::Detail;
use std::path::Path;

/// Compiled validators for every `<type>.v<version>.schema.json` in the schemas folder.
pub struct SchemaRegistry {}

impl SchemaRegistry {
    /// Loads and compiles every schema in `dir`; every problem names the file.
    pub fn load(dir: &Path) -> Result<Self, Vec<Problem>> {
        let _ = dir;
        Ok(Self {})
    }
    /// Message types that have at least one schema, sorted.
    pub fn types(&self) -> Vec<String> {
        Vec::new()
    }
    /// Versions present for `kind`, ascending.
    pub fn versions(&self, kind: &str) -> Vec<u32> {
        let _ = kind;
        Vec::new()
    }
    /// Highest version present for `kind`.
    pub fn latest_version(&self, kind: &str) -> Option<u32> {
        self.versions(kind).last().copied()
    }
    /// Validates `payload` against `kind` v`version`: every violation, each with its JSON pointer prefixed by
    /// `/payload`. Err(empty vec) never happens.
    pub fn validate(
        &self,
        kind: &str,
        version: u32,
        payload: &serde_json::Value,
    ) -> Result<(), Vec<Detail>> {
        let _ = (kind, version, payload);
        Ok(())
    }
}
