//! `[[rights]]` and `[[groups]]`: which agency may send which message type to whom.
//!
//! Why in the config and not in routes: a route says where a message goes, a right says who may send it. An
//! agency holding a token could otherwise send any type to any receiver a route serves. As soon as one right
//! is written, everything not granted is refused (see [`crate::rights`]).

use serde::{Deserialize, Serialize};

/// `[[rights]]`: one grant. A message is allowed when, for each of its receivers, some right matches its
/// sender, its type and that receiver.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RightConfig {
    /// Position in `[[rights]]` (for key paths), set by the loader.
    #[serde(skip)]
    pub index: usize,
    /// Senders: agency codes, with `*` standing for one whole dot-separated part (`"000.*.*.H40"`: every
    /// agency of the province), `"*"` alone for any agency, or `"group:<name>"` for a `[[groups]]` entry.
    /// Required, not empty.
    pub from: Vec<String>,
    /// Message types, with `*` allowed as the last character (`"dossier.*"`; `"*"` = every type). Required,
    /// not empty.
    pub types: Vec<String>,
    /// Receivers, in the same forms as `from`. Absent = any receiver.
    #[serde(default)]
    pub to: Option<Vec<String>>,
}

/// `[[groups]]`: a named set of agencies for `[[rights]]` (`"group:<name>"`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Position in `[[groups]]` (for key paths), set by the loader.
    #[serde(skip)]
    pub index: usize,
    /// The group's name, used as `"group:<name>"`. Required, unique.
    pub name: String,
    /// Members, in the same forms as `[[rights]] from` (codes, `*` parts, other groups).
    pub members: Vec<String>,
}
