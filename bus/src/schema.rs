//! Schema registry: JSON Schemas per message type and version, compiled once at startup, no network.
//!
//! # Layout of the schemas folder
//!
//! - `<type>.v<version>.schema.json` directly in the folder: the payload schema of one message type version,
//!   e.g. `dossier.submitted.v1.schema.json`.
//! - Any other `*.json` file anywhere below it (e.g. `common/dossier-defs.json`): shared definitions, reached
//!   with relative `$ref`s such as `common/dossier-defs.json#/$defs/date14`.
//! - Everything else (README.md, hidden files) is ignored.
//!
//! Every JSON file is preloaded into one [`jsonschema::Registry`] under
//! `https://schemas.lienthong.invalid/<relative path>`, so relative `$ref`s between local files resolve and
//! nothing is ever fetched: a `$ref` to a file that is not in the folder is a load problem, not a runtime
//! surprise. The default dialect is JSON Schema 2020-12; a `$schema` in a file wins. Formats are asserted, and
//! the custom format [`DATE_TIME_14`] checks the portal's `yyyyMMddHHmmss` date-times.
//!
//! Validators are compiled once in [`SchemaRegistry::load`]; [`SchemaRegistry::validate`] only runs them
//! (`is_valid` first, and the error iterator only for payloads that fail).

use crate::config::Problem;
use crate::error::Detail;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ReferencingError, Registry, Retrieve, Uri, ValidationError, Validator};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Base URI every file in the schemas folder is registered under (`.invalid` can never resolve).
pub const BASE_URI: &str = "https://schemas.lienthong.invalid/";

/// Name of the custom format for `yyyyMMddHHmmss` date-times.
pub const DATE_TIME_14: &str = "yyyyMMddHHmmss";

/// Suffix of the files that define a message type version.
const SCHEMA_SUFFIX: &str = ".schema.json";

/// Longest message type name accepted (the envelope allows no more).
const MAX_TYPE_LEN: usize = 100;

/// Deepest sub-folder read (symlinks are followed, so this also stops loops).
const MAX_DEPTH: usize = 8;

/// Longest instance value quoted in a violation message; longer values, objects and arrays are not echoed.
const MAX_QUOTED_LEN: usize = 64;

/// Compiled validators for every `<type>.v<version>.schema.json` in the schemas folder.
pub struct SchemaRegistry {
    kinds: BTreeMap<String, BTreeMap<u32, Validator>>,
}

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
    /// `/payload`, sorted by pointer. Err(empty vec) never happens. An unknown type or version is one detail
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
                path: format!("/payload{}", e.instance_path().as_str()),
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

// === loading ===

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

fn uri_of(rel: &str) -> String {
    format!("{BASE_URI}{rel}")
}

/// A registry URI back as the path an operator knows, when it is one of ours.
fn rel_of(uri: &str) -> &str {
    uri.strip_prefix(BASE_URI).unwrap_or(uri)
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
fn check_refs(
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

// === formats and messages ===

/// `yyyyMMddHHmmss`: 14 ASCII digits forming a real calendar date-time (Gregorian, leap years included).
pub fn is_date_time_14(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(4, 6), num(6, 8));
    let (hour, minute, second) = (num(8, 10), num(10, 12), num(12, 14));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60
}

/// A human message for one violation. Short scalar values are quoted; objects, arrays and long strings are not
/// echoed back (they can be large and carry personal data).
fn violation_message(e: &ValidationError<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    fn repo_schemas() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
    }

    fn repo_registry() -> SchemaRegistry {
        SchemaRegistry::load(&repo_schemas())
            .unwrap_or_else(|p| panic!("repo schemas have problems: {p:#?}"))
    }

    fn sample(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/samples")
            .join(name);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn valid_dossier() -> Value {
        sample("01-dossier-submitted.json")["payload"].clone()
    }

    fn paths(details: &[Detail]) -> Vec<&str> {
        details.iter().map(|d| d.path.as_str()).collect()
    }

    /// Writes `files` (relative path → contents) into a fresh folder.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    fn problems(files: &[(&str, &str)]) -> Vec<Problem> {
        match SchemaRegistry::load(folder(files).path()) {
            Ok(_) => panic!("expected load problems"),
            Err(p) => p,
        }
    }

    const OBJECT: &str = r#"{"type": "object"}"#;

    #[test]
    fn registry_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<SchemaRegistry>();
    }

    #[test]
    fn loads_the_repository_schemas() {
        let reg = repo_registry();
        assert_eq!(
            reg.types(),
            [
                "document.edxml",
                "document.status",
                "dossier.status-changed",
                "dossier.submitted",
                "feedback.answered",
                "feedback.submitted",
                "rating.submitted"
            ]
        );
        assert_eq!(reg.versions("dossier.submitted"), [1]);
        assert_eq!(reg.latest_version("dossier.submitted"), Some(1));
        assert_eq!(reg.latest_version("dossier.teleported"), None);
        assert!(reg.versions("dossier.teleported").is_empty());
    }

    #[test]
    fn samples_are_well_formed_envelopes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "01-dossier-submitted.json",
                "02-dossier-status-changed.json",
                "03-dossier-invalid.json",
                "04-unknown-type.json"
            ]
        );
        for name in names {
            let body = fs::read(dir.join(&name)).unwrap();
            let env = crate::envelope::parse(&body, 64).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(env.from, "000.00.00.H40", "{name}");
            assert_eq!(env.to, ["000.00.12.H40"], "{name}");
        }
    }

    #[test]
    fn valid_samples_pass() {
        let reg = repo_registry();
        for name in [
            "01-dossier-submitted.json",
            "02-dossier-status-changed.json",
        ] {
            let env = sample(name);
            let kind = env["type"].as_str().unwrap();
            let version = env["version"].as_u64().unwrap() as u32;
            assert_eq!(
                reg.validate(kind, version, &env["payload"]),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn invalid_sample_reports_each_violation() {
        let reg = repo_registry();
        let env = sample("03-dossier-invalid.json");
        let details = reg
            .validate("dossier.submitted", 1, &env["payload"])
            .unwrap_err();
        assert_eq!(
            paths(&details),
            ["/payload", "/payload/NgayHenTra", "/payload/TrangThaiHoSo"],
            "{details:#?}"
        );
        assert!(
            details[0]
                .message
                .contains("\"ChuHoSo\" is a required property"),
            "{details:#?}"
        );
        assert!(
            details[1].message.contains("yyyyMMddHHmmss"),
            "{details:#?}"
        );
        assert!(
            details[2]
                .message
                .contains("12 is greater than the maximum of 10"),
            "{details:#?}"
        );
        let mut payload = env["payload"].clone();
        payload["TrangThaiNoiBo"] = json!("dang-lam");
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        let local = details
            .iter()
            .find(|d| d.path == "/payload/TrangThaiNoiBo")
            .unwrap();
        assert!(
            local
                .message
                .starts_with("\"dang-lam\" is not one of the allowed values: \"moi-dang-ky\", ")
        );
        assert!(
            local.message.ends_with(", \"da-tra-ket-qua\""),
            "{}",
            local.message
        );
    }

    #[test]
    fn unknown_type_sample_is_unknown() {
        let reg = repo_registry();
        let env = sample("04-unknown-type.json");
        let kind = env["type"].as_str().unwrap();
        assert!(reg.latest_version(kind).is_none());
        let details = reg.validate(kind, 1, &env["payload"]).unwrap_err();
        assert_eq!(paths(&details), ["/type"]);
        assert!(details[0].message.contains("dossier.teleported"));
    }

    #[test]
    fn unknown_version_is_reported_at_type() {
        let details = repo_registry()
            .validate("dossier.submitted", 7, &valid_dossier())
            .unwrap_err();
        assert_eq!(paths(&details), ["/type"]);
        assert!(
            details[0].message.contains("no version 7"),
            "{}",
            details[0].message
        );
    }

    #[test]
    fn each_violation_has_its_pointer() {
        let reg = repo_registry();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("MaHoSo", json!("HS-1"), "/payload/MaHoSo"),
            ("MaTTHC", json!("abc"), "/payload/MaTTHC"),
            ("TenTTHC", json!(""), "/payload/TenTTHC"),
            ("KenhThucHien", json!(4), "/payload/KenhThucHien"),
            ("LoaiDoiTuong", json!("1"), "/payload/LoaiDoiTuong"),
            ("Email", json!("not-an-email"), "/payload/Email"),
            ("SoDienThoai", json!("goi em"), "/payload/SoDienThoai"),
            ("NgayTiepNhan", json!("20261127"), "/payload/NgayTiepNhan"),
            ("TrangThaiHoSo", json!(0), "/payload/TrangThaiHoSo"),
            (
                "TrangThaiNoiBo",
                json!("dang-lam"),
                "/payload/TrangThaiNoiBo",
            ),
            ("HinhThuc", json!(2), "/payload/HinhThuc"),
            (
                "DuocThanhToanTrucTuyen",
                json!(true),
                "/payload/DuocThanhToanTrucTuyen",
            ),
            (
                "DinhDanhCHS",
                json!([{"LoaiDinhDanh": 1, "SoDinhDanh": "123456789"}]),
                "/payload/DinhDanhCHS/0/SoDinhDanh",
            ),
            (
                "TaiLieuNop",
                json!([{"TenTepDinhKem": "Đơn", "DuongDanTaiTepTin": "khong la url"}]),
                "/payload/TaiLieuNop/0/DuongDanTaiTepTin",
            ),
            ("DSKetNoiCSDL", json!([{}]), "/payload/DSKetNoiCSDL/0"),
        ];
        for (field, value, pointer) in cases {
            let mut payload = valid_dossier();
            payload[field] = value;
            let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
            assert_eq!(paths(&details), [pointer], "{field}: {details:#?}");
        }
    }

    #[test]
    fn standard_formats_are_asserted() {
        let reg = repo_registry();
        let mut payload = valid_dossier();
        payload["Email"] = json!("minhthu.example.vn");
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        assert_eq!(
            details[0].message,
            "\"minhthu.example.vn\" is not a valid email"
        );
    }

    #[test]
    fn cmnd_takes_nine_digits_and_cccd_twelve() {
        let reg = repo_registry();
        let mut payload = valid_dossier();
        payload["DinhDanhCHS"] = json!([
            {"LoaiDinhDanh": 2, "SoDinhDanh": "123456789"},
            {"LoaiDinhDanh": 1, "SoDinhDanh": "036095001234"}
        ]);
        assert_eq!(reg.validate("dossier.submitted", 1, &payload), Ok(()));
        payload["DinhDanhCHS"][0]["SoDinhDanh"] = json!("036095001234");
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        assert_eq!(paths(&details), ["/payload/DinhDanhCHS/0/SoDinhDanh"]);
    }

    #[test]
    fn every_violation_is_reported_sorted() {
        let reg = repo_registry();
        let mut payload = valid_dossier();
        payload["TrangThaiHoSo"] = json!(11);
        payload["NgayHenTra"] = json!("20240230120000");
        payload["KenhThucHien"] = json!(9);
        payload.as_object_mut().unwrap().remove("MaTTHC");
        payload.as_object_mut().unwrap().remove("TenTTHC");
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        assert_eq!(
            paths(&details),
            [
                "/payload",
                "/payload",
                "/payload/KenhThucHien",
                "/payload/NgayHenTra",
                "/payload/TrangThaiHoSo"
            ],
            "{details:#?}"
        );
        assert!(details[0].message.contains("MaTTHC"));
        assert!(details[1].message.contains("TenTTHC"));
    }

    #[test]
    fn wrong_root_type_is_a_root_violation() {
        let details = repo_registry()
            .validate("dossier.submitted", 1, &json!([1, 2]))
            .unwrap_err();
        assert_eq!(paths(&details), ["/payload"]);
        assert_eq!(details[0].message, "the value is not of type \"object\"");
    }

    #[test]
    fn unlisted_fields_pass_through_but_must_look_like_names() {
        let reg = repo_registry();
        let mut payload = valid_dossier();
        payload["MaHoSoKhac"] = json!("HS-CU-01");
        assert_eq!(reg.validate("dossier.submitted", 1, &payload), Ok(()));
        payload["bad key"] = json!(1);
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        assert_eq!(paths(&details), ["/payload"]);
        assert!(
            details[0]
                .message
                .starts_with("property name \"bad key\" does not match"),
            "{details:#?}"
        );
    }

    #[test]
    fn progress_requires_its_fields() {
        let reg = repo_registry();
        let details = reg
            .validate(
                "dossier.status-changed",
                1,
                &json!({"MaHoSo": "000.00.12.H40-261127-00001", "TrangThai": 4}),
            )
            .unwrap_err();
        assert_eq!(paths(&details), ["/payload", "/payload"]);
        let text = format!("{details:?}");
        assert!(
            text.contains("ThoiDiemXuLy") && text.contains("NoiDungXuLy"),
            "{text}"
        );
    }

    #[test]
    fn date_time_14_checks_the_calendar() {
        for ok in [
            "20261127083000",
            "20240229235959",
            "20000229000000",
            "00010101000000",
        ] {
            assert!(is_date_time_14(ok), "{ok}");
        }
        for bad in [
            "20241399000000", // month 13
            "20240001000000", // month 0
            "20241100000000", // day 0
            "20240431000000", // April has 30 days
            "20230229000000", // not a leap year
            "19000229000000", // century, not a leap year
            "20241127240000", // hour 24
            "20241127236000", // minute 60
            "20241127235960", // second 60
            "00000101000000", // year 0
            "2024112708300",  // 13 digits
            "202411270830000",
            "2024-11-27T08:3",
            "２０２４１１２７０８３０００", // full-width digits
            "",
        ] {
            assert!(!is_date_time_14(bad), "{bad}");
        }
    }

    #[test]
    fn bad_date_fails_validation() {
        let reg = repo_registry();
        let mut payload = valid_dossier();
        payload["NgayTiepNhan"] = json!("20241399000000");
        let details = reg.validate("dossier.submitted", 1, &payload).unwrap_err();
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].path, "/payload/NgayTiepNhan");
        assert_eq!(
            details[0].message,
            "\"20241399000000\" is not a real date-time in the yyyyMMddHHmmss format (14 digits, e.g. 20261127083000)"
        );
    }

    #[test]
    fn refs_across_files_resolve() {
        let dir = folder(&[
            (
                "common/defs.json",
                r#"{"$defs": {"code": {"$ref": "codes.json#/$defs/code"}, "date": {"type": "string", "format": "yyyyMMddHHmmss"}}}"#,
            ),
            (
                "common/codes.json",
                r#"{"$defs": {"code": {"type": "integer", "maximum": 10}}}"#,
            ),
            (
                "thing.happened.v1.schema.json",
                r#"{"type": "object", "properties": {
                    "code": {"$ref": "common/defs.json#/$defs/code"},
                    "at": {"$ref": "./common/defs.json#/$defs/date"}}}"#,
            ),
            ("README.md", "not json"),
        ]);
        let reg = SchemaRegistry::load(dir.path()).unwrap();
        assert_eq!(reg.types(), ["thing.happened"]);
        assert_eq!(
            reg.validate(
                "thing.happened",
                1,
                &json!({"code": 3, "at": "20260101000000"})
            ),
            Ok(())
        );
        let details = reg
            .validate(
                "thing.happened",
                1,
                &json!({"code": 30, "at": "20260132000000"}),
            )
            .unwrap_err();
        assert_eq!(paths(&details), ["/payload/at", "/payload/code"]);
    }

    #[test]
    fn latest_version_is_the_highest() {
        let dir = folder(&[
            ("a.b.v2.schema.json", OBJECT),
            (
                "a.b.v10.schema.json",
                r#"{"type": "object", "required": ["x"]}"#,
            ),
            ("a.b.v1.schema.json", OBJECT),
            ("c.v1.schema.json", OBJECT),
        ]);
        let reg = SchemaRegistry::load(dir.path()).unwrap();
        assert_eq!(reg.types(), ["a.b", "c"]);
        assert_eq!(reg.versions("a.b"), [1, 2, 10]);
        assert_eq!(reg.latest_version("a.b"), Some(10));
        assert_eq!(reg.validate("a.b", 2, &json!({})), Ok(()));
        assert!(reg.validate("a.b", 10, &json!({})).is_err());
    }

    #[test]
    fn missing_ref_target_names_the_file() {
        let p = problems(&[
            (
                "common/defs.json",
                r#"{"$defs": {"x": {"$ref": "nope.json"}}}"#,
            ),
            (
                "a.v1.schema.json",
                r#"{"$ref": "common/defs.json#/$defs/x"}"#,
            ),
            (
                "b.v1.schema.json",
                r#"{"$ref": "https://example.com/remote.json"}"#,
            ),
        ]);
        assert_eq!(
            paths_of(&p),
            ["a.v1.schema.json", "b.v1.schema.json", "common/defs.json"],
            "{p:#?}"
        );
        assert!(
            p[0].message
                .contains("`common/defs.json` has problems of its own"),
            "{p:#?}"
        );
        assert!(
            p[1].message
                .contains("`https://example.com/remote.json` does not exist"),
            "{p:#?}"
        );
        assert!(
            p[2].message.contains("`common/nope.json` does not exist"),
            "{p:#?}"
        );
    }

    #[test]
    fn missing_pointer_target_names_the_file() {
        let p = problems(&[
            ("common/defs.json", r#"{"$defs": {}}"#),
            (
                "a.v1.schema.json",
                r#"{"properties": {"x": {"$ref": "common/defs.json#/$defs/absent"}}}"#,
            ),
        ]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].path, "a.v1.schema.json");
        assert!(p[0].message.contains("/$defs/absent"), "{p:#?}");
    }

    #[test]
    fn bad_file_names_are_problems() {
        let p = problems(&[
            ("dossier.submitted.schema.json", OBJECT),
            ("dossier.submitted.v0.schema.json", OBJECT),
            ("dossier.submitted.v01.schema.json", OBJECT),
            ("Dossier.Submitted.v1.schema.json", OBJECT),
            ("dossier..x.v1.schema.json", OBJECT),
            ("common/nested.v1.schema.json", OBJECT),
            ("hồ sơ.json", OBJECT),
            ("ok.v1.schema.json", OBJECT),
        ]);
        let mut got = paths_of(&p);
        got.sort();
        assert_eq!(
            got,
            [
                "Dossier.Submitted.v1.schema.json",
                "common/nested.v1.schema.json",
                "dossier..x.v1.schema.json",
                "dossier.submitted.schema.json",
                "dossier.submitted.v0.schema.json",
                "dossier.submitted.v01.schema.json",
                "hồ sơ.json",
            ],
            "{p:#?}"
        );
        assert!(p.iter().all(|p| !p.message.is_empty()));
    }

    fn paths_of(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn invalid_json_and_uncompilable_schemas_are_problems() {
        let p = problems(&[
            ("broken.v1.schema.json", r#"{"type": "object""#),
            ("list.v1.schema.json", "[1, 2]"),
            ("typo.v1.schema.json", r#"{"type": "strin"}"#),
            (
                "common/defs.json",
                r#"{"$defs": {"n": {"minimum": "zero"}}}"#,
            ),
            ("badformat.v1.schema.json", r#"{"format": "yyyyMMddHHmm"}"#),
            ("fine.v1.schema.json", OBJECT),
        ]);
        assert_eq!(
            paths_of(&p),
            [
                "badformat.v1.schema.json",
                "broken.v1.schema.json",
                "common/defs.json",
                "list.v1.schema.json",
                "typo.v1.schema.json"
            ],
            "{p:#?}"
        );
        assert!(p[1].message.starts_with("invalid JSON"), "{p:#?}");
        assert!(p[2].message.contains("does not compile"), "{p:#?}");
        assert!(p[3].message.contains("must be a JSON object"), "{p:#?}");
        assert!(p[4].message.contains("does not compile"), "{p:#?}");
        assert!(
            p[0].message.contains("unknown format `yyyyMMddHHmm`"),
            "{p:#?}"
        );
    }

    #[test]
    fn schema_keyword_is_respected() {
        // Draft 4: `exclusiveMaximum` is a boolean modifier of `maximum`.
        let dir = folder(&[(
            "old.v1.schema.json",
            r#"{"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": true}"#,
        )]);
        let reg = SchemaRegistry::load(dir.path()).unwrap();
        assert_eq!(reg.validate("old", 1, &json!(4)), Ok(()));
        assert!(reg.validate("old", 1, &json!(5)).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end() {
        let dir = folder(&[("common/defs.json", r#"{"$defs": {}}"#)]);
        std::os::unix::fs::symlink(dir.path().join("common"), dir.path().join("common/again"))
            .unwrap();
        let p = SchemaRegistry::load(dir.path()).err().unwrap();
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].message.contains("symlink loop"), "{p:#?}");
    }

    #[test]
    fn missing_folder_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = SchemaRegistry::load(&dir.path().join("absent"))
            .err()
            .unwrap();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("cannot read the schemas folder"),
            "{p:#?}"
        );
    }

    #[test]
    fn long_and_composite_values_are_not_echoed() {
        let dir = folder(&[(
            "t.v1.schema.json",
            r#"{"properties": {"s": {"maxLength": 3}, "o": {"type": "string"}}}"#,
        )]);
        let reg = SchemaRegistry::load(dir.path()).unwrap();
        let secret = "0".repeat(100);
        let details = reg
            .validate("t", 1, &json!({"s": secret, "o": {"cccd": "036095001234"}}))
            .unwrap_err();
        assert_eq!(paths(&details), ["/payload/o", "/payload/s"]);
        assert!(
            details
                .iter()
                .all(|d| !d.message.contains("0000") && !d.message.contains("036095")),
            "{details:#?}"
        );
    }
}
