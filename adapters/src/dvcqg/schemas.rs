//! Best-effort scan of the message schemas for the local statuses senders may use.
//!
//! Looks at `<type>.v<N>.schema.json` for the given types, finds every property named `TrangThaiNoiBo` and
//! collects the strings of its `enum` / `const`, following `$ref`s to local files under the schemas folder (and
//! JSON pointers inside them) and `allOf` / `anyOf` / `oneOf`. Files that cannot be read or parsed are skipped:
//! the schema registry reports those.

use super::record::LOCAL_STATUS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Local status → schema files declaring it, sorted.
pub fn declared_local_statuses(dir: &Path, types: &[&str]) -> Vec<(String, Vec<String>)> {
    let Ok(root) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| types.iter().any(|t| is_schema_file_of(n, t)))
        })
        .collect();
    files.sort();
    let mut walker = Walker {
        root,
        cache: HashMap::new(),
        found: BTreeMap::new(),
        origin: String::new(),
        seen: HashSet::new(),
    };
    for file in files {
        let Some(doc) = walker.load(&file) else {
            continue;
        };
        walker.origin = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        walker.seen.clear();
        walker.visit(&file, &doc, false, 0);
    }
    walker
        .found
        .into_iter()
        .map(|(status, files)| (status, files.into_iter().collect()))
        .collect()
}

/// `dossier.submitted.v12.schema.json` for `dossier.submitted`.
fn is_schema_file_of(name: &str, kind: &str) -> bool {
    name.strip_prefix(kind)
        .and_then(|r| r.strip_prefix(".v"))
        .and_then(|r| r.strip_suffix(".schema.json"))
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

struct Walker {
    root: PathBuf,
    cache: HashMap<PathBuf, Option<Value>>,
    found: BTreeMap<String, BTreeSet<String>>,
    /// The top-level schema file being scanned (what problems name).
    origin: String,
    /// (file, JSON pointer, inside TrangThaiNoiBo) already visited through a `$ref`, against cycles.
    seen: HashSet<(PathBuf, String, bool)>,
}

const MAX_DEPTH: usize = 64;

impl Walker {
    fn load(&mut self, file: &Path) -> Option<Value> {
        self.cache
            .entry(file.to_owned())
            .or_insert_with(|| {
                let text = std::fs::read(file).ok()?;
                serde_json::from_slice(&text).ok()
            })
            .clone()
    }

    fn visit(&mut self, file: &Path, v: &Value, in_status: bool, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    self.follow(file, r, in_status, depth);
                }
                if in_status {
                    if let Some(Value::Array(values)) = m.get("enum") {
                        for s in values.iter().filter_map(Value::as_str) {
                            self.add(s);
                        }
                    }
                    if let Some(Value::String(s)) = m.get("const") {
                        self.add(s);
                    }
                }
                for (k, child) in m {
                    match k.as_str() {
                        "properties" => {
                            if let Value::Object(props) = child {
                                for (name, sub) in props {
                                    self.visit(file, sub, name == LOCAL_STATUS, depth + 1);
                                }
                            }
                        }
                        "allOf" | "anyOf" | "oneOf" => {
                            self.visit(file, child, in_status, depth + 1)
                        }
                        "$ref" | "enum" | "const" => {}
                        _ => self.visit(file, child, false, depth + 1),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.visit(file, item, in_status, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn follow(&mut self, from: &Path, reference: &str, in_status: bool, depth: usize) {
        let (path_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if path_part.is_empty() {
            from.to_owned()
        } else {
            // Absolute `$id`-style URIs: try their last segment as a file next to the others.
            let rel = if path_part.contains("://") {
                path_part.rsplit('/').next().unwrap_or_default()
            } else {
                path_part
            };
            let base = from.parent().unwrap_or(&self.root);
            match base.join(rel).canonicalize() {
                Ok(p) if p.starts_with(&self.root) => p,
                _ => return,
            }
        };
        if !(fragment.is_empty() || fragment.starts_with('/')) {
            return; // named anchors: not followed
        }
        if !self
            .seen
            .insert((target.clone(), fragment.to_owned(), in_status))
        {
            return;
        }
        let Some(doc) = self.load(&target) else {
            return;
        };
        let Some(sub) = (if fragment.is_empty() {
            Some(&doc)
        } else {
            doc.pointer(fragment)
        }) else {
            return;
        };
        let sub = sub.clone();
        self.visit(&target, &sub, in_status, depth + 1);
    }

    fn add(&mut self, status: &str) {
        self.found
            .entry(status.to_owned())
            .or_default()
            .insert(self.origin.clone());
    }
}
