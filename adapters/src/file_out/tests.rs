use super::*;
use crate::testing::{build, check};
use lienthong_bus::adapter::ErrorClass;
use lienthong_bus::config::{AdapterSpec, Config};
use lienthong_bus::message::{Message, Meta};

fn adapter(base: &Path, options: &str) -> (Config, AdapterSpec) {
    let text = format!("[[adapters]]\nid = \"out\"\ntype = \"file-out\"\n{options}\n");
    let config = Config::parse(&base.join("bus.toml"), &text).unwrap();
    let spec = config.adapters[0].clone();
    (config, spec)
}

fn sink(base: &Path, options: &str) -> Arc<dyn Sink> {
    let (config, spec) = adapter(base, options);
    assert_eq!(check(&spec, &config), vec![]);
    build(&spec, &config).unwrap().sink.unwrap()
}

fn message(id: &str, content: ContentKind, payload: impl Into<Bytes>) -> Message {
    Message {
        meta: Meta {
            id: id.into(),
            kind: "dossier.submitted".into(),
            version: 1,
            from: "000.00.00.H40".into(),
            to: vec!["000.00.12.H40".into()],
            correlation_id: Some("c-1".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
        },
        content,
        payload: payload.into(),
    }
}

fn delivery(message: Message, attempt: u32) -> Delivery {
    Delivery {
        message,
        route: "r1".into(),
        adapter: "out".into(),
        attempt,
        traceparent: lienthong_bus::message::new_traceparent(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn json_and_xml_land_with_exact_bytes_and_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    let json = message(
        "m-1",
        ContentKind::Json,
        "{ \"MaHoSo\":\"Hồ sơ\", \"n\": 1.50 }",
    );
    let xml = message(
        "m-2",
        ContentKind::Xml,
        "<?xml version=\"1.0\"?><edXML>Về việc</edXML>\r\n",
    );
    sink.deliver(&delivery(json.clone(), 4)).await.unwrap();
    sink.deliver(&delivery(xml.clone(), 1)).await.unwrap();
    let dir = tmp.path().join("outbox");
    assert_eq!(names(&dir), ["m-1.json", "m-2.xml"]);
    let written = fs::read(dir.join("m-1.json")).unwrap();
    assert_eq!(written, json.envelope_json(None));
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert!(v.get("attempt").is_none());
    assert_eq!(fs::read(dir.join("m-2.xml")).unwrap(), xml.payload);
}

#[tokio::test]
async fn redelivery_overwrites_with_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"\nfsync = false");
    let m = message("m-1", ContentKind::Json, "[1, 2]");
    sink.deliver(&delivery(m.clone(), 1)).await.unwrap();
    let first = fs::read(tmp.path().join("outbox/m-1.json")).unwrap();
    sink.deliver(&delivery(m, 2)).await.unwrap();
    assert_eq!(names(&tmp.path().join("outbox")), ["m-1.json"]);
    assert_eq!(fs::read(tmp.path().join("outbox/m-1.json")).unwrap(), first);
}

#[tokio::test]
async fn a_20_mb_package_is_written_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    let mut package = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><edXML><Data>".to_vec();
    let mut n: u32 = 1;
    while package.len() < 20 * 1024 * 1024 {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        package.extend_from_slice(format!("Tỉnh {n:08x} đ ").as_bytes());
    }
    package.extend_from_slice(b"</Data></edXML>");
    let m = message("big", ContentKind::Xml, package.clone());
    sink.deliver(&delivery(m, 1)).await.unwrap();
    let written = fs::read(tmp.path().join("outbox/big.xml")).unwrap();
    assert_eq!(written.len(), package.len());
    assert!(written == package, "content differs");
    assert_eq!(names(&tmp.path().join("outbox")), ["big.xml"]);
}

#[tokio::test]
async fn unsafe_ids_cannot_escape_or_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    for id in ["../../etc/x", "a/b", "a_b", "Hồ sơ 1", ".hidden"] {
        sink.deliver(&delivery(message(id, ContentKind::Json, "1"), 1))
            .await
            .unwrap();
    }
    let got = names(&tmp.path().join("outbox"));
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.contains(&"a_b.json".to_owned()));
    assert!(
        got.iter()
            .all(|n| !n.starts_with('.') && n.ends_with(".json")),
        "{got:?}"
    );
    assert_eq!(names(tmp.path()), ["outbox"]);
}

#[test]
fn file_stems() {
    assert_eq!(file_stem("0199a1b2-7c3d.v1_x"), "0199a1b2-7c3d.v1_x");
    let slash = file_stem("a/b");
    assert!(
        slash.starts_with("a_b-") && slash.len() == 3 + 1 + 12,
        "{slash}"
    );
    assert_ne!(slash, file_stem("a:b"));
    assert_eq!(slash, file_stem("a/b"));
    assert!(file_stem("..").starts_with("_.-"));
    assert!(file_stem("").starts_with('-'));
    let long = "x".repeat(300);
    assert_eq!(file_stem(&long).len(), 200 + 13);
    assert_ne!(file_stem(&long), file_stem(&"x".repeat(301)));
}

#[tokio::test]
async fn io_failures_are_transient() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    fs::remove_dir(tmp.path().join("outbox")).unwrap();
    let err = sink
        .deliver(&delivery(message("m", ContentKind::Json, "1"), 1))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient);
    assert!(err.reason.contains("outbox"), "{}", err.reason);
}

#[test]
fn check_names_the_path_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, spec) = adapter(tmp.path(), "path = \"missing/outbox\"");
    let problems = check(&spec, &config);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "adapters[0].path");
    assert!(
        problems[0].message.contains("does not exist"),
        "{problems:?}"
    );
    fs::write(tmp.path().join("afile"), "x").unwrap();
    let (config, spec) = adapter(tmp.path(), "path = \"afile\"");
    assert!(check(&spec, &config)[0].message.contains("not a folder"));
    let (config, spec) = adapter(tmp.path(), "path = \"out\"\nfsynk = true");
    assert!(check(&spec, &config)[0].message.contains("fsynk"));
}

#[test]
fn build_creates_the_folder_and_sweeps_stale_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    fs::create_dir(&dir).unwrap();
    let stale = File::create(dir.join(".lt-old.tmp")).unwrap();
    stale
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    fs::write(dir.join(".lt-fresh.tmp"), "x").unwrap();
    fs::write(dir.join("keep.json"), "x").unwrap();
    sink(tmp.path(), "path = \"outbox\"");
    assert_eq!(names(&dir), [".lt-fresh.tmp", "keep.json"]);
    let (config, spec) = adapter(
        tmp.path(),
        &format!("path = \"{}\"", tmp.path().join("new").display()),
    );
    assert!(build(&spec, &config).is_ok());
    assert!(tmp.path().join("new").is_dir());
}

#[tokio::test]
async fn the_same_id_from_two_senders_is_two_files_and_redeliveries_add_none() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    let first = message("dup-1", ContentKind::Json, "{\"n\":1}");
    let mut second = message("dup-1", ContentKind::Json, "{\"n\":2}");
    second.meta.from = "000.01.30.H40".into();
    sink.deliver(&delivery(first.clone(), 1)).await.unwrap();
    sink.deliver(&delivery(second.clone(), 1)).await.unwrap();
    // Each delivered again (a crash before the ack): nothing new, nothing replaced.
    sink.deliver(&delivery(second.clone(), 2)).await.unwrap();
    sink.deliver(&delivery(first.clone(), 2)).await.unwrap();
    let dir = tmp.path().join("outbox");
    let tag = &lienthong_bus::hex::lower(&Sha256::digest(second.meta.from.as_bytes()))[..12];
    let other = format!("dup-1~{tag}.json");
    assert_eq!(names(&dir), vec!["dup-1.json".to_owned(), other.clone()]);
    assert_eq!(
        fs::read(dir.join("dup-1.json")).unwrap(),
        first.envelope_json(None)
    );
    assert_eq!(
        fs::read(dir.join(&other)).unwrap(),
        second.envelope_json(None)
    );
    // Once the reader has taken the first away, the name is free again.
    fs::remove_file(dir.join("dup-1.json")).unwrap();
    sink.deliver(&delivery(second.clone(), 3)).await.unwrap();
    assert_eq!(
        fs::read(dir.join("dup-1.json")).unwrap(),
        second.envelope_json(None)
    );
}

#[tokio::test]
async fn a_link_in_the_way_is_never_followed_nor_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "path = \"outbox\"");
    let dir = tmp.path().join("outbox");
    let secret = tmp.path().join("secret.txt");
    fs::write(&secret, "keep").unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("m-9.json")).unwrap();
    let m = message("m-9", ContentKind::Json, "{\"n\":9}");
    sink.deliver(&delivery(m.clone(), 1)).await.unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"keep");
    assert!(
        fs::symlink_metadata(dir.join("m-9.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let tag = &lienthong_bus::hex::lower(&Sha256::digest(m.meta.from.as_bytes()))[..12];
    assert_eq!(
        fs::read(dir.join(format!("m-9~{tag}.json"))).unwrap(),
        m.envelope_json(None)
    );
}
