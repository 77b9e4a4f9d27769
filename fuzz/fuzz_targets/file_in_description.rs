//! file-in's description builder (`adapters/src/file_in/bundle.rs`, attachments opened through
//! `folder.rs`): a `*.document.json` or `*.status.json` dropped into the folder, built into an edXML package.
//! Input: the file name, a newline, the description's bytes. The attachments folder holds `cv-125.pdf`,
//! `empty.txt`, a symbolic link `link.pdf` and a named pipe `pipe.pdf`.
//!
//! Oracles: the build never fails with an I/O error (the folder is fine: an I/O error would leave the file in
//! the folder, retried forever); what is not one JSON value is refused as `invalid_json`; every refusal's path
//! is a JSON pointer that points into the description (at the value at fault, or at the object missing it); a
//! built package parses, is the kind the name says, carries one attachment per described one and passes its
//! schema (`schemas/document.*.v1.schema.json`), as ingress will check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_adapters::fuzzing;
use lienthong_bus::Code;
use lienthong_bus::schema::SchemaRegistry;
use lienthong_qcvn102::edxml::{self, Limits, PackageKind};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

mod common;
use common::assert_pointer;

const MAX_BYTES: u64 = 1 << 20;

fn attachments() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lt-fuzz-file-in-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cv-125.pdf"), b"%PDF-1.4 tiny").unwrap();
        std::fs::write(dir.join("empty.txt"), b"").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link.pdf")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(dir.join("pipe.pdf"))
            .status();
        assert!(fifo.is_ok_and(|s| s.success()));
        dir
    })
}

fn schemas() -> &'static SchemaRegistry {
    static REG: OnceLock<SchemaRegistry> = OnceLock::new();
    REG.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        SchemaRegistry::load(&dir).unwrap_or_else(|p| panic!("the repository's schemas: {p:?}"))
    })
}

/// `pointer` names a place in `doc`: the value itself, or the object or array that lacks it.
fn points_into(doc: &Value, pointer: &str) -> bool {
    if doc.pointer(pointer).is_some() {
        return true;
    }
    match pointer.rsplit_once('/') {
        Some((parent, _)) => doc.pointer(parent).is_some(),
        None => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(name) = std::str::from_utf8(&data[..nl]) else {
        return;
    };
    let description = &data[nl + 1..];
    for n in [0, 1, 7] {
        let stored = fuzzing::file_in_stored_name(name, n);
        assert!(stored.len() + ".error.json".len() <= 255, "{stored}");
    }
    let _ = fuzzing::file_in_attachment_names(name, description);
    let Some(built) = fuzzing::file_in_description(name, description, attachments(), MAX_BYTES)
    else {
        return;
    };
    let built = built.unwrap_or_else(|e| panic!("an I/O error on a description: {e}"));
    let doc = serde_json::from_slice::<Value>(description).ok();
    let status = name.to_ascii_lowercase().ends_with(".status.json");
    match built {
        Ok(package) => {
            let doc = doc.expect("a package was built from something that is not one JSON value");
            let p = edxml::parse(&package, &Limits::default())
                .unwrap_or_else(|e| panic!("a built package does not parse: {e}"));
            assert_eq!(matches!(p.kind, PackageKind::Status { .. }), status);
            if !status {
                let described = doc
                    .get("attachments")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                assert_eq!(p.attachments.len(), described);
            }
            if let Err(details) = schemas().validate(p.message_type(), 1, &p.header) {
                panic!(
                    "a built package fails its schema: {details:?}\n{}",
                    String::from_utf8_lossy(&package)
                );
            }
        }
        Err(refusal) => {
            assert!(
                matches!(refusal.code, Code::InvalidJson | Code::PayloadTooLarge),
                "{refusal:?}"
            );
            for d in &refusal.details {
                assert_pointer(&d.path, &refusal);
                if let Some(doc) = &doc {
                    assert!(
                        points_into(doc, &d.path),
                        "{:?} is not in the description: {refusal:?}",
                        d.path
                    );
                }
            }
        }
    }
});
