//! The registry's behaviours on neutral fixtures written into a temporary folder: loading and its problems
//! (file names, JSON, compile errors, `$ref`s, symlink loops), versions, formats, and the pointer and message of
//! each violation. The repository's own schemas are tested by the domain crate (`domain/tests/schemas.rs`).

use super::*;
use crate::config::Problem;
use serde_json::json;
use std::fs;

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

/// A message type `thing` (v1, and a v2 that also requires `at`) and another type, sharing definitions in
/// `common/defs.json` through relative `$ref`s.
fn thing_registry() -> SchemaRegistry {
    let dir = folder(&[
        (
            "common/defs.json",
            r#"{"$defs": {
                "date14": {"type": "string", "format": "yyyyMMddHHmmss"},
                "item": {"type": "object", "required": ["code"],
                         "properties": {"code": {"type": "string", "pattern": "^[0-9]{9}$"}}}}}"#,
        ),
        ("thing.v1.schema.json", THING_V1),
        (
            "thing.v2.schema.json",
            r#"{"allOf": [{"$ref": "thing.v1.schema.json"}], "required": ["at"]}"#,
        ),
        ("other.kind.v1.schema.json", OBJECT),
    ]);
    SchemaRegistry::load(dir.path()).unwrap_or_else(|p| panic!("fixture has problems: {p:#?}"))
}

const THING_V1: &str = r#"{
    "type": "object",
    "required": ["name", "count"],
    "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "at": {"$ref": "common/defs.json#/$defs/date14"},
        "email": {"type": "string", "format": "email"},
        "state": {"enum": ["new", "in-progress", "done"]},
        "items": {"type": "array", "items": {"$ref": "common/defs.json#/$defs/item"}},
        "idKind": {"enum": [1, 2]},
        "idNumber": {"type": "string"}
    },
    "if": {"properties": {"idKind": {"const": 2}}, "required": ["idKind"]},
    "then": {"properties": {"idNumber": {"pattern": "^[0-9]{9}$"}}},
    "else": {"properties": {"idNumber": {"pattern": "^[0-9]{12}$"}}}
}"#;

fn valid_thing() -> Value {
    json!({
        "name": "a thing",
        "count": 3,
        "at": "20261127083000",
        "email": "someone@example.com",
        "state": "new",
        "items": [{"code": "123456789"}],
        "idKind": 1,
        "idNumber": "036095001234"
    })
}

#[test]
fn loads_types_and_versions() {
    let reg = thing_registry();
    assert_eq!(reg.types(), ["other.kind", "thing"]);
    assert_eq!(reg.versions("thing"), [1, 2]);
    assert_eq!(reg.latest_version("thing"), Some(2));
    assert_eq!(reg.versions("other.kind"), [1]);
    assert_eq!(reg.latest_version("thing.teleported"), None);
    assert!(reg.versions("thing.teleported").is_empty());
}

#[test]
fn a_valid_payload_passes_every_version_it_fits() {
    let reg = thing_registry();
    assert_eq!(reg.validate("thing", 1, &valid_thing()), Ok(()));
    assert_eq!(reg.validate("thing", 2, &valid_thing()), Ok(()));
    let mut without_at = valid_thing();
    without_at.as_object_mut().unwrap().remove("at");
    assert_eq!(reg.validate("thing", 1, &without_at), Ok(()));
    let details = reg.validate("thing", 2, &without_at).unwrap_err();
    // A missing property is reported where it should be.
    assert_eq!(paths(&details), ["/payload/at"]);
    assert!(
        details[0].message.contains("\"at\" is a required property"),
        "{details:#?}"
    );
}

#[test]
fn unknown_type_is_reported_at_type() {
    let details = thing_registry()
        .validate("thing.teleported", 1, &valid_thing())
        .unwrap_err();
    assert_eq!(paths(&details), ["/type"]);
    assert!(
        details[0].message.contains("thing.teleported"),
        "{details:#?}"
    );
}

#[test]
fn unknown_version_is_reported_at_type() {
    let details = thing_registry()
        .validate("thing", 7, &valid_thing())
        .unwrap_err();
    assert_eq!(paths(&details), ["/type"]);
    assert!(
        details[0].message.contains("no version 7"),
        "{}",
        details[0].message
    );
    assert!(
        details[0].message.contains("known versions: 1, 2"),
        "{}",
        details[0].message
    );
}

#[test]
fn each_violation_has_its_pointer() {
    let reg = thing_registry();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("name", json!(""), "/payload/name"),
        ("count", json!("3"), "/payload/count"),
        ("count", json!(0), "/payload/count"),
        ("at", json!("20261127"), "/payload/at"),
        ("email", json!("not-an-email"), "/payload/email"),
        ("state", json!("lost"), "/payload/state"),
        ("items", json!([{"code": "12"}]), "/payload/items/0/code"),
        ("items", json!([{}]), "/payload/items/0/code"),
        ("idNumber", json!("123456789"), "/payload/idNumber"),
    ];
    for (field, value, pointer) in cases {
        let mut payload = valid_thing();
        payload[field] = value;
        let details = reg.validate("thing", 1, &payload).unwrap_err();
        assert_eq!(paths(&details), [pointer], "{field}: {details:#?}");
    }
}

#[test]
fn conditional_rules_apply() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload["idKind"] = json!(2);
    payload["idNumber"] = json!("123456789");
    assert_eq!(reg.validate("thing", 1, &payload), Ok(()));
    payload["idNumber"] = json!("036095001234");
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(paths(&details), ["/payload/idNumber"]);
}

#[test]
fn messages_say_what_is_wrong() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload.as_object_mut().unwrap().remove("name");
    payload["count"] = json!(12);
    payload["at"] = json!("20240230120000");
    payload["state"] = json!("lost");
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(
        paths(&details),
        [
            "/payload/at",
            "/payload/count",
            "/payload/name",
            "/payload/state"
        ],
        "{details:#?}"
    );
    assert!(
        details[2]
            .message
            .contains("\"name\" is a required property"),
        "{details:#?}"
    );
    assert!(
        details[0].message.contains("yyyyMMddHHmmss"),
        "{details:#?}"
    );
    assert!(
        details[1]
            .message
            .contains("12 is greater than the maximum of 10"),
        "{details:#?}"
    );
    assert_eq!(
        details[3].message,
        "\"lost\" is not one of the allowed values: \"new\", \"in-progress\", \"done\""
    );
}

#[test]
fn standard_formats_are_asserted() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload["email"] = json!("someone.example.com");
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(
        details[0].message,
        "\"someone.example.com\" is not a valid email"
    );
}

#[test]
fn every_violation_is_reported_sorted() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload["state"] = json!("lost");
    payload["at"] = json!("20240230120000");
    payload["email"] = json!("x");
    payload.as_object_mut().unwrap().remove("name");
    payload.as_object_mut().unwrap().remove("count");
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(
        paths(&details),
        [
            "/payload/at",
            "/payload/count",
            "/payload/email",
            "/payload/name",
            "/payload/state"
        ],
        "{details:#?}"
    );
    assert!(details[1].message.contains("count"), "{details:#?}");
    assert!(details[3].message.contains("name"), "{details:#?}");
}

#[test]
fn wrong_root_type_is_a_root_violation() {
    let details = thing_registry()
        .validate("thing", 1, &json!([1, 2]))
        .unwrap_err();
    assert_eq!(paths(&details), ["/payload"]);
    assert_eq!(details[0].message, "the value is not of type \"object\"");
}

#[test]
fn unlisted_fields_pass_through_but_must_look_like_names() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload["somethingElse"] = json!("kept");
    assert_eq!(reg.validate("thing", 1, &payload), Ok(()));
    payload["bad key"] = json!(1);
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(paths(&details), ["/payload"]);
    assert!(
        details[0]
            .message
            .starts_with("property name \"bad key\" does not match"),
        "{details:#?}"
    );
}

#[test]
fn bad_date_fails_validation() {
    let reg = thing_registry();
    let mut payload = valid_thing();
    payload["at"] = json!("20241399000000");
    let details = reg.validate("thing", 1, &payload).unwrap_err();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].path, "/payload/at");
    assert_eq!(
        details[0].message,
        "\"20241399000000\" is not a real date-time in the yyyyMMddHHmmss format (14 digits, e.g. 20261127083000)"
    );
}

#[test]
fn registry_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<SchemaRegistry>();
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
    std::os::unix::fs::symlink(dir.path().join("common"), dir.path().join("common/again")).unwrap();
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

#[test]
fn two_files_claiming_one_id_are_both_named() {
    // The README's "copy v1 to make v2" done without changing the `$id`.
    let schema = r#"{"$id": "https://example.invalid/dossier.json", "type": "object"}"#;
    let dir = folder(&[
        ("dossier.v1.schema.json", schema),
        ("dossier.v2.schema.json", schema),
        ("fine.v1.schema.json", OBJECT),
    ]);
    let p = SchemaRegistry::load(dir.path()).err().unwrap();
    assert_eq!(
        paths_of(&p),
        ["dossier.v1.schema.json", "dossier.v2.schema.json"],
        "{p:#?}"
    );
    assert!(
        p[0].message.contains("dossier.v2.schema.json")
            && p[1].message.contains("dossier.v1.schema.json"),
        "each names the other: {p:#?}"
    );
}

#[test]
fn an_id_equal_to_another_files_location_is_refused() {
    let dir = folder(&[
        (
            "common/defs.json",
            r#"{"$defs": {"n": {"type": "integer"}}}"#,
        ),
        (
            "evil.v1.schema.json",
            r#"{"$id": "common/defs.json", "$defs": {"n": {"type": "string"}}}"#,
        ),
    ]);
    let p = SchemaRegistry::load(dir.path()).err().unwrap();
    assert_eq!(
        paths_of(&p),
        ["common/defs.json", "evil.v1.schema.json"],
        "{p:#?}"
    );
    assert!(p[1].message.contains("common/defs.json"), "{p:#?}");
    // Distinct ids, and an `$id` equal to the file's own location, are fine.
    let dir = folder(&[
        (
            "a.v1.schema.json",
            r#"{"$id": "a.v1.schema.json", "type": "object"}"#,
        ),
        (
            "b.v1.schema.json",
            r#"{"$id": "urn:lt:b", "type": "object"}"#,
        ),
    ]);
    assert!(SchemaRegistry::load(dir.path()).is_ok());
}

#[test]
fn idn_formats_are_checked() {
    let dir = folder(&[(
        "contact.v1.schema.json",
        r#"{"type": "object", "properties": {
             "email": {"type": "string", "format": "idn-email"},
             "host": {"type": "string", "format": "idn-hostname"}}}"#,
    )]);
    let reg = SchemaRegistry::load(dir.path()).unwrap();
    assert_eq!(
        reg.validate(
            "contact",
            1,
            &json!({"email": "nguyễn@bưuđiện.vn", "host": "bưuđiện.vn"})
        ),
        Ok(())
    );
    assert!(
        reg.validate("contact", 1, &json!({"email": "không có a còng"}))
            .is_err()
    );
    assert!(
        reg.validate("contact", 1, &json!({"host": "-bad-.vn"}))
            .is_err()
    );
}
