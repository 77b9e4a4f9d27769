//! `$id` collisions between schema files.
//!
//! Why: a `$ref` goes to whichever document the registry holds under a URI, and a file's `$id` re-names the
//! file under that URI. Two files claiming one `$id` (the usual way: `cp dossier.v1.schema.json
//! dossier.v2.schema.json` and edit, leaving the `$id` alone), or an `$id` equal to another file's own
//! location, would make one file silently stand in for the other for every `$ref`. Both files are named
//! instead, and the bus does not start.

use super::refs::{rel_of, uri_of};
use crate::config::Problem;
use serde_json::Value;
use std::collections::BTreeMap;

/// Keywords whose values are data, not schemas: an `$id` inside them names nothing.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "examples", "default"];

/// One problem per file whose `$id` (anywhere in it) collides with another file's `$id` or location.
pub(super) fn collisions(docs: &[(&str, &Value)]) -> Vec<Problem> {
    // Every URI a file answers to: its location, and each `$id` it declares (resolved against its base).
    let mut owners: BTreeMap<String, Vec<(String, &'static str)>> = BTreeMap::new();
    for (rel, doc) in docs {
        let base = uri_of(rel);
        owners
            .entry(base.clone())
            .or_default()
            .push((rel.to_string(), "is the location of"));
        let mut ids = Vec::new();
        declared_ids(doc, &base, &mut ids);
        ids.sort();
        ids.dedup();
        for id in ids.into_iter().filter(|id| *id != base) {
            owners
                .entry(id)
                .or_default()
                .push((rel.to_string(), "declares `$id`"));
        }
    }
    let mut problems = Vec::new();
    for (uri, claims) in owners {
        if claims.len() < 2 {
            continue;
        }
        for (i, (rel, how)) in claims.iter().enumerate() {
            let others: Vec<String> = claims
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (other, other_how))| format!("{other} ({other_how} it)"))
                .collect();
            problems.push(Problem::new(
                rel.clone(),
                format!(
                    "`{}`, which this file {how}, is also claimed by {}: a `$ref` to it would reach only one \
                     of them. Give each file its own `$id` (or none: a file's `$ref` name is its path in the \
                     schemas folder)",
                    rel_of(&uri),
                    others.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The `$id`s of `doc` and its subschemas, each resolved against the base it is declared in, without fragment.
fn declared_ids(doc: &Value, base: &str, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            let mut base = base.to_owned();
            if let Some(Value::String(id)) = map.get("$id") {
                base = resolve(&base, id);
                out.push(base.clone());
            }
            for (k, v) in map {
                if !DATA_KEYWORDS.contains(&k.as_str()) {
                    declared_ids(v, &base, out);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                declared_ids(v, base, out);
            }
        }
        _ => {}
    }
}

/// `reference` resolved against `base` (RFC 3986 for the forms schemas use: absolute, absolute-path,
/// relative path with `./` and `../`), fragment dropped.
fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or_default();
    if reference.is_empty() {
        return base.split('#').next().unwrap_or_default().to_owned();
    }
    let has_scheme = reference
        .split_once(':')
        .is_some_and(|(s, _)| !s.is_empty() && !s.contains('/'));
    if has_scheme {
        return reference.to_owned();
    }
    // scheme://authority of the base.
    let (origin, path) = match base.find("://") {
        Some(i) => {
            let rest = &base[i + 3..];
            let cut = rest.find('/').map_or(base.len(), |j| i + 3 + j);
            (&base[..cut], &base[cut..])
        }
        None => ("", base),
    };
    let joined = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        let dir = path.rfind('/').map_or("/", |j| &path[..=j]);
        format!("{dir}{reference}")
    };
    let mut segments: Vec<&str> = Vec::new();
    for seg in joined.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("{origin}/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve_against_the_base() {
        let b = "https://x.invalid/a/b.json";
        assert_eq!(resolve(b, "c.json"), "https://x.invalid/a/c.json");
        assert_eq!(resolve(b, "../c.json#"), "https://x.invalid/c.json");
        assert_eq!(resolve(b, "/d/e.json"), "https://x.invalid/d/e.json");
        assert_eq!(resolve(b, "urn:x:y"), "urn:x:y");
        assert_eq!(resolve(b, "#"), b);
    }
}
