//! Loading the schemas folder: walking it, naming its files, compiling each one with the bus's options.
//!
//! Why apart from the registry: everything here runs once at startup and exists to turn an operator's mistake
//! (a bad file name, invalid JSON, a schema that does not compile, a `$ref` to a missing file) into a
//! [`Problem`] that names the file, all of them at once, instead of a bus that starts and then refuses every
//! message of a type.

use super::refs::{check_refs, rel_of, uri_of};
use super::{DATE_TIME_14, SchemaRegistry, is_date_time_14};
use crate::config::Problem;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ReferencingError, Registry, Validator};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Suffix of the files that define a message type version.
const SCHEMA_SUFFIX: &str = ".schema.json";

/// Longest message type name accepted (the envelope allows no more).
const MAX_TYPE_LEN: usize = 100;

/// Deepest sub-folder read (symlinks are followed, so this also stops loops).
const MAX_DEPTH: usize = 8;

/// A JSON file found under the schemas folder.
struct SourceFile {
    /// Path relative to the folder, `/`-separated: also the key of every problem about it.
    rel: String,
    path: PathBuf,
    /// `(type, version)` for `<type>.v<version>.schema.json`, `None` for shared definitions.
    id: Option<(String, u32)>,
}

impl SchemaRegistry {
    /// Loads and compiles every schema in `dir`; every problem names the file.
    pub fn load(dir: &Path) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        walk(dir, "", &mut files, &mut problems);
        files.sort_by(|a, b| a.rel.cmp(&b.rel));

        // Every JSON file counts as present for the first `$ref` check, even one with problems of its own, so a
        // `$ref` to it is not reported as dangling.
        let present: Arc<HashSet<String>> =
            Arc::new(files.iter().map(|f| uri_of(&f.rel)).collect());

        let mut docs: Vec<(SourceFile, Value)> = Vec::new();
        for file in files {
            match read_schema(&file.path) {
                Ok(doc) => docs.push((file, doc)),
                Err(msg) => problems.push(Problem::new(file.rel, msg)),
            }
        }

        // Two files answering to one URI: both named, neither loaded.
        let clashes = super::ids::collisions(
            &docs
                .iter()
                .map(|(f, doc)| (f.rel.as_str(), doc))
                .collect::<Vec<_>>(),
        );
        if !clashes.is_empty() {
            let bad: HashSet<String> = clashes.iter().map(|p| p.path.clone()).collect();
            docs.retain(|(f, _)| !bad.contains(&f.rel));
            problems.extend(clashes);
        }

        // Dangling `$ref`s, attributed to the file that holds them.
        docs.retain(|(file, doc)| match check_refs(&file.rel, doc, &present) {
            Ok(()) => true,
            Err(ReferencingError::Unretrievable { uri, .. }) => {
                problems.push(Problem::new(
                    file.rel.clone(),
                    format!(
                        "$ref target `{}` does not exist: it is not a file in the schemas folder (schemas are \
                         never fetched from the network)",
                        rel_of(&uri)
                    ),
                ));
                false
            }
            Err(e) => {
                problems.push(Problem::new(file.rel.clone(), format!("cannot resolve its $refs: {e}")));
                false
            }
        });
        // Files that use a file left out for its problems cannot load either: say so, until nothing changes.
        loop {
            let usable: Arc<HashSet<String>> =
                Arc::new(docs.iter().map(|(f, _)| uri_of(&f.rel)).collect());
            let before = docs.len();
            docs.retain(|(file, doc)| match check_refs(&file.rel, doc, &usable) {
                Ok(()) => true,
                Err(e) => {
                    let target = match &e {
                        ReferencingError::Unretrievable { uri, .. } => rel_of(uri).to_owned(),
                        other => other.to_string(),
                    };
                    problems.push(Problem::new(
                        file.rel.clone(),
                        format!("cannot load: its $ref target `{target}` has problems of its own (listed for that file)"),
                    ));
                    false
                }
            });
            if docs.len() == before {
                break;
            }
        }

        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .extend(docs.iter().map(|(file, doc)| (uri_of(&file.rel), doc)))
            .and_then(|builder| builder.prepare());
        let registry = match registry {
            Ok(registry) => registry,
            Err(e) => {
                // Not expected: every `$ref` was checked above. Kept as a safety net.
                problems.push(Problem::new(
                    "",
                    format!("cannot build the schema registry: {e}"),
                ));
                problems.sort_by(|a, b| a.path.cmp(&b.path));
                return Err(problems);
            }
        };

        let mut kinds: BTreeMap<String, BTreeMap<u32, Validator>> = BTreeMap::new();
        for (file, doc) in &docs {
            // Shared definition files are compiled too (and dropped): that checks them against the meta-schema
            // even where no message schema uses them yet.
            match compile(&registry, &file.rel, doc) {
                Ok(validator) => {
                    if let Some((kind, version)) = &file.id {
                        kinds
                            .entry(kind.clone())
                            .or_default()
                            .insert(*version, validator);
                    }
                }
                Err(msg) => problems.push(Problem::new(file.rel.clone(), msg)),
            }
        }

        if problems.is_empty() {
            Ok(Self { kinds })
        } else {
            // Stable: a file's own problems keep their order.
            problems.sort_by(|a, b| a.path.cmp(&b.path));
            Err(problems)
        }
    }
}

/// Collects the JSON files under `dir` (hidden entries skipped); `prefix` is `dir` relative to the root.
fn walk(dir: &Path, prefix: &str, files: &mut Vec<SourceFile>, problems: &mut Vec<Problem>) {
    if prefix.matches('/').count() > MAX_DEPTH {
        problems.push(Problem::new(
            prefix.trim_end_matches('/'),
            format!("folders nested deeper than {MAX_DEPTH} levels (a symlink loop?): not read"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let what = if prefix.is_empty() {
                format!("cannot read the schemas folder {}: {e}", dir.display())
            } else {
                format!("cannot read this folder: {e}")
            };
            problems.push(Problem::new(prefix.trim_end_matches('/'), what));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(Problem::new(
                    prefix.trim_end_matches('/'),
                    format!("cannot list this folder: {e}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            problems.push(Problem::new(
                format!("{prefix}{}", entry.file_name().to_string_lossy()),
                "file name is not valid UTF-8",
            ));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        // Follows symlinks, so a linked folder of shared definitions works.
        if path.is_dir() {
            walk(&path, &format!("{rel}/"), files, problems);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        if let Err(msg) = check_uri_safe(&name) {
            problems.push(Problem::new(rel, msg));
            continue;
        }
        let id = if name.ends_with(SCHEMA_SUFFIX) {
            if !prefix.is_empty() {
                problems.push(Problem::new(
                    rel,
                    format!(
                        "message type schemas (`*{SCHEMA_SUFFIX}`) must sit directly in the schemas folder; \
                         shared definitions in sub-folders must not end in `{SCHEMA_SUFFIX}`"
                    ),
                ));
                continue;
            }
            match parse_schema_file_name(&name) {
                Ok(id) => Some(id),
                Err(msg) => {
                    problems.push(Problem::new(rel, msg));
                    continue;
                }
            }
        } else {
            None
        };
        files.push(SourceFile { rel, path, id });
    }
}

/// File names end up in URIs: keep them to characters that need no escaping.
fn check_uri_safe(name: &str) -> Result<(), String> {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Ok(())
    } else {
        Err("file name may only use ASCII letters, digits, `.`, `_` and `-` (it is referenced by `$ref` URIs)".into())
    }
}

/// Splits `<type>.v<version>.schema.json` into the message type and the version.
fn parse_schema_file_name(name: &str) -> Result<(String, u32), String> {
    let expected = "expected `<type>.v<version>.schema.json` with a lower-case type such as `dossier.submitted` \
                    and a positive version without leading zeros, e.g. `dossier.submitted.v1.schema.json`";
    let bad = |why: &str| Err(format!("bad schema file name: {why}; {expected}"));
    let Some(stem) = name.strip_suffix(SCHEMA_SUFFIX) else {
        return bad("it does not end in `.schema.json`");
    };
    let Some((kind, version)) = stem.rsplit_once(".v") else {
        return bad("no `.v<version>` before `.schema.json`");
    };
    if version.is_empty()
        || !version.bytes().all(|b| b.is_ascii_digit())
        || version.starts_with('0')
    {
        return bad(&format!("`v{version}` is not a version"));
    }
    let Ok(version) = version.parse::<u32>() else {
        return bad(&format!("version {version} is too large"));
    };
    if !is_type_name(kind) {
        return bad(&format!("`{kind}` is not a message type name"));
    }
    Ok((kind.to_owned(), version))
}

/// Dot-separated segments, each a lower-case letter followed by lower-case letters, digits, `-` or `_`.
fn is_type_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_TYPE_LEN
        && kind.split('.').all(|segment| {
            let mut chars = segment.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        })
}

/// Reads and parses one file; a schema is a JSON object (or a boolean).
fn read_schema(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    if doc.is_object() || doc.is_boolean() {
        Ok(doc)
    } else {
        Err("not a JSON Schema: the document must be a JSON object".into())
    }
}

/// Compiles one file against the shared registry with the bus's options.
fn compile(registry: &Registry<'_>, rel: &str, doc: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .with_registry(registry)
        .with_base_uri(uri_of(rel))
        .offline()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_format(DATE_TIME_14, is_date_time_14)
        .build(doc)
        .map_err(|e| {
            let at = e.instance_path().as_str();
            let what = match e.kind() {
                ValidationErrorKind::Referencing(ReferencingError::Unretrievable { uri, .. }) => {
                    format!("$ref target `{}` is missing or has problems of its own", rel_of(uri))
                }
                // The library's hint ("adjust configuration") is not something an operator can do here.
                ValidationErrorKind::Custom { .. } if at.ends_with("/format") => match e.instance().as_str() {
                    Some(name) => format!(
                        "unknown format `{name}` (the bus checks the standard JSON Schema formats and \
                         `{DATE_TIME_14}`)"
                    ),
                    None => e.to_string(),
                },
                _ => e.to_string(),
            };
            if at.is_empty() {
                format!("schema does not compile: {what}")
            } else {
                format!("schema does not compile: at {at}: {what}")
            }
        })
}
