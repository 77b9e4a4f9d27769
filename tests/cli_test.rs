//! `lienthong test`: route tests pass on the shipped configs, fail with "expected …, got …" on a wrong
//! expectation (exit 1), and an invalid test file is exit 2 with its file and key path. No broker needed.

mod common;

use common::*;
use std::process::{Command, Output};

fn lienthong_test(config: &std::path::Path, files: &[&std::path::Path]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["test", "--config"]).arg(config);
    for f in files {
        cmd.arg(f);
    }
    // Secrets are not needed: none of the config's token variables is set here.
    cmd.env_remove("LT_TOKEN_H40").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn shipped_route_tests_pass() {
    for config in ["config/quickstart.toml", "config/example.toml"] {
        let out = lienthong_test(&repo().join(config), &[]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{config}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
        assert!(stdout.lines().any(|l| l.starts_with("ok ")), "{stdout}");
    }
}

#[test]
fn a_wrong_expectation_fails_with_expected_and_got() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.test.toml");
    let sample = repo().join("config/samples/01-dossier-submitted.json");
    std::fs::write(
        &file,
        format!(
            r#"
[[tests]]
name = "right"
as = "000.00.00.H40"
message_file = "{s}"
expect = {{ status = 202, routes = ["dossier-to-stp"], adapters = ["archive", "stp-inbox"] }}

[[tests]]
name = "deliberately wrong"
as = "000.00.00.H40"
message_file = "{s}"
expect = {{ status = 202, routes = ["dossier-to-stp"], adapters = ["stp-inbox"] }}

[[tests]]
name = "wrong refusal"
as = "000.00.00.H40"
message = {{ type = "dossier.submitted", from = "000.00.00.H40", to = ["000.00.12.H40"], payload = {{}} }}
expect = {{ status = 422, code = "no_route" }}
"#,
            s = sample.display()
        ),
    )
    .unwrap();
    let out = lienthong_test(&repo().join("config/quickstart.toml"), &[&file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok right\n"), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL deliberately wrong: expected 202 routes [\"dossier-to-stp\"] adapters [\"stp-inbox\"], \
             got 202 routes [\"dossier-to-stp\"] adapters [\"stp-inbox\", \"archive\"]"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL wrong refusal: expected 422 no_route, got 422 schema_violation"),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 2 failed\n"), "{stdout}");
}

#[test]
fn an_invalid_test_file_is_exit_2_with_file_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.test.toml");
    std::fs::write(
        &file,
        r#"
[[tests]]
name = "no input"
as = "000.00.00.H40"
expect = { status = 202, routes = [], adapters = [] }

[[tests]]
name = "unknown sender and a typo"
as = "000.00.99.H40"
message_file = "missing.json"
expect = { status = 422, cod = "no_route" }
"#,
    )
    .unwrap();
    let out = lienthong_test(&repo().join("config/quickstart.toml"), &[&file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "no case runs: {}", text(&out.stdout));
    let f = file.display().to_string();
    assert!(
        stderr.contains(&format!("{f}: tests[0]: needs exactly one of")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{f}: tests[1].expect.cod")),
        "{stderr}"
    );
}

#[test]
fn an_invalid_config_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bus.toml");
    std::fs::write(
        &config,
        "[[routes]]\nid = \"r\"\ntypes = []\ndeliver = [\"nowhere\"]\n",
    )
    .unwrap();
    let out = lienthong_test(&config, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("routes[0].deliver[0]"), "{stderr}");
}
