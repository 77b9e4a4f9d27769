//! A config problem: which file, which key path, what is wrong.
//!
//! `lienthong check` must list *every* problem, not stop at the first, so loading collects these instead of
//! returning early. The key path uses the TOML shape an operator reads (`routes[1].deliver[0]`).

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Key path inside the file, e.g. `routes[1].deliver[0]`; empty for whole-file problems.
    pub path: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
    /// The file the key path is in, when it is not the main config file (an `include`d one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            file: None,
        }
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem(s) in the config",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            let file = p.file.as_ref().unwrap_or(&self.file);
            if p.path.is_empty() {
                writeln!(f, "{}: {}", file.display(), p.message)?;
            } else {
                writeln!(f, "{}: {}: {}", file.display(), p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// Joins a parent key path and a child (`routes[1]` + `deliver[0]` → `routes[1].deliver[0]`).
pub fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_owned(),
        (_, true) => parent.to_owned(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

/// Deserializes one TOML value into `T`, turning serde's error into a [`Problem`] at the exact key path.
pub fn deserialize_at<T: serde::de::DeserializeOwned>(
    path: &str,
    value: toml::Value,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.path().to_string();
        let inner = if inner == "." { String::new() } else { inner };
        Problem::new(
            join(path, &inner),
            clean_serde_message(&e.inner().to_string()),
        )
    })
}

pub(crate) fn clean_serde_message(m: &str) -> String {
    // toml's messages sometimes end with a newline or carry a "TOML parse error" prefix; keep the reason only.
    m.trim()
        .trim_start_matches("TOML parse error")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths_the_way_operators_read_them() {
        assert_eq!(join("routes[1]", "deliver[0]"), "routes[1].deliver[0]");
        assert_eq!(join("routes", "[1]"), "routes[1]");
        assert_eq!(join("", "bus"), "bus");
        assert_eq!(join("bus", ""), "bus");
    }
}
