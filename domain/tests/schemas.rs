//! The repository's message schemas (`schemas/`) and sample envelopes (`config/samples/`), checked through the
//! bus's generic [`SchemaRegistry`].
//!
//! Why here and not in the bus: these schemas are the province's dossier contract (field names, status codes,
//! identity-number rules), which belongs to the domain. The bus tests its registry with neutral fixtures; this
//! suite proves the real schemas load, accept the samples, and point at each field a client gets wrong.

use lienthong_bus::error::Detail;
use lienthong_bus::schema::SchemaRegistry;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};

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
        let env =
            lienthong_bus::envelope::parse(&body, 64).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        [
            "/payload/ChuHoSo",
            "/payload/NgayHenTra",
            "/payload/TrangThaiHoSo"
        ],
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
        (
            "DSKetNoiCSDL",
            json!([{}]),
            "/payload/DSKetNoiCSDL/0/MaCSDL",
        ),
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
            "/payload/KenhThucHien",
            "/payload/MaTTHC",
            "/payload/NgayHenTra",
            "/payload/TenTTHC",
            "/payload/TrangThaiHoSo"
        ],
        "{details:#?}"
    );
    assert!(details[1].message.contains("MaTTHC"));
    assert!(details[3].message.contains("TenTTHC"));
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
    assert_eq!(
        paths(&details),
        ["/payload/NoiDungXuLy", "/payload/ThoiDiemXuLy"]
    );
    let text = format!("{details:?}");
    assert!(
        text.contains("ThoiDiemXuLy") && text.contains("NoiDungXuLy"),
        "{text}"
    );
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
