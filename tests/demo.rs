//! README's first command, `lienthong demo`, kept true: the embedded bus takes the sample dossiers and the
//! edXML package, delivers them to the quickstart folders, and refuses the bad samples with their error codes.

mod common;

use common::{bin, repo};
use std::process::Command;

#[test]
fn the_demo_delivers_the_good_samples_and_explains_the_bad_ones() {
    let out = Command::new(bin())
        .arg("demo")
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "01-dossier-submitted.json: 202 accepted",
        "02-dossier-status-changed.json: 202 accepted",
        "03-dossier-invalid.json: 422 schema_violation",
        "at /payload/TrangThaiHoSo",
        "04-unknown-type.json: 422 unknown_type",
        "05-document-edxml.xml: 202 accepted",
        "06-document-with-doctype.xml: 400 invalid_xml",
        "delivered to stp-inbox (file-out)",
        "3 accepted, 3 refused, 6 deliveries made.",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("NOT delivered"), "{stdout}");
}
