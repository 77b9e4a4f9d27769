//! The schema registry's compile and validate path with an arbitrary schema and instance: the input is
//! `<schema> NUL <instance>`. The schema is written as `t.v1.schema.json` into a folder of its own beside a shared
//! `common/defs.json` (so relative `$ref`s are reached), the folder loaded with `SchemaRegistry::load`, and the
//! instance validated as ingress does (after the envelope's depth and duplicate-key scan).
//!
//! Oracles: loading and validating return, never panic; every violation's path is a JSON pointer under
//! `/payload`; a violation never echoes a string of the instance longer than 64 characters (the registry's
//! promise: long values and personal data are not sent back); an instance that fails `validate` fails the
//! registry's API error path with the same number of details.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_bus::envelope;
use lienthong_bus::schema::{self, SchemaRegistry};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

mod common;
use common::assert_pointer;

const DEFS: &str = r#"{"$defs": {"code": {"type": "string", "pattern": "^[0-9]{3}$"},
  "date14": {"type": "string", "format": "date-time-14"}}}"#;

fn folder() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lt-fuzz-schema-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("common")).unwrap();
        std::fs::write(dir.join("common/defs.json"), DEFS).unwrap();
        dir
    })
}

/// Strings of the instance (keys and values) longer than the registry quotes.
fn long_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) if s.chars().count() > 64 => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| long_strings(v, out)),
        Value::Object(o) => {
            for (k, v) in o {
                if k.chars().count() > 64 {
                    out.push(k);
                }
                long_strings(v, out);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(cut) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (schema_bytes, instance_bytes) = (&data[..cut], &data[cut + 1..]);
    // Operators' schemas are files, but a deeply nested one must not crash the loader either.
    if envelope::check_structure(schema_bytes, 64).is_err() {
        return;
    }
    let dir = folder();
    std::fs::write(dir.join("t.v1.schema.json"), schema_bytes).unwrap();
    let registry = match SchemaRegistry::load(dir) {
        Ok(r) => r,
        Err(problems) => {
            assert!(!problems.is_empty());
            return;
        }
    };
    assert_eq!(registry.versions("t"), [1]);
    // As ingress: the body's depth and duplicate keys are checked before the payload is a `Value`.
    if envelope::check_structure(instance_bytes, 64).is_err() {
        return;
    }
    let Ok(instance) = serde_json::from_slice::<Value>(instance_bytes) else {
        return;
    };
    match registry.validate("t", 1, &instance) {
        Ok(()) => assert!(schema::validate(&registry, "payload", "t", 1, &instance).is_ok()),
        Err(details) => {
            assert!(!details.is_empty());
            let schema_text = String::from_utf8_lossy(schema_bytes);
            let mut long = Vec::new();
            long_strings(&instance, &mut long);
            for d in &details {
                assert!(d.path.starts_with("/payload"), "{d:?}");
                assert_pointer(&d.path, d);
                for s in &long {
                    // A string the schema itself holds may be named by it (an enum's options).
                    let head: String = s.chars().take(64).collect();
                    if !schema_text.contains(head.as_str()) {
                        assert!(
                            !d.message.contains(*s),
                            "a long instance string echoed: {d:?}"
                        );
                    }
                }
            }
            let api = schema::validate(&registry, "payload", "t", 1, &instance).unwrap_err();
            assert_eq!(api.details.len(), details.len());
        }
    }
    assert!(registry.validate("t", 2, &instance).is_err());
    assert!(registry.validate("absent", 1, &instance).is_err());
});
