//! `lienthong check` names every problem with its file and key path; `run` refuses what `check` rejects.

mod common;

use common::*;
use std::process::Command;

const BROKEN: &str = r#"
[bus]
broker_url = "amqp://guest:guest@127.0.0.1:5672/%2f"
schemas_dir = "SCHEMAS"

[[agencies]]
code = "000.00.00.H40"
token_env = "LT_CHECK_TOKEN"

[[agencies]]
code = "H40"

[[adapters]]
id = "stp-inbox"
type = "webhook"
url = "http://127.0.0.1:9101/inbox"

[[adapters]]
id = "legacy"
type = "carrier-pigeon"

[[routes]]
id = "ok"
types = ["dossier.submitted"]
deliver = ["stp-inbox"]

[[routes]]
id = "broken"
types = ["dossier.teleported"]
deliver = ["stp-inbox", "nowhere"]
"#;

#[test]
fn check_lists_every_problem_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bus.toml");
    std::fs::write(
        &file,
        BROKEN.replace("SCHEMAS", &repo().join("schemas").display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env("LT_CHECK_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[1].deliver[1]"), "{err}");
    assert!(err.contains("agencies[1].code"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");

    // Fix the structural problems: now the type without a schema and the unknown adapter type are named.
    let fixed = BROKEN
        .replace("SCHEMAS", &repo().join("schemas").display().to_string())
        .replace("code = \"H40\"", "code = \"000.00.13.H40\"")
        .replace(", \"nowhere\"", "");
    std::fs::write(&file, fixed).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env("LT_CHECK_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[1].types[0]"), "{err}");
    assert!(err.contains("adapters[1].type"), "{err}");
    // An unset token variable is a problem too.
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env_remove("LT_CHECK_TOKEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("agencies[0].token_env"));

    // `run` refuses the same config, with the same report.
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(&file)
        .env("LT_CHECK_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes[1].types[0]"));
}

#[test]
fn check_accepts_the_shipped_configs() {
    for cfg in ["config/quickstart.toml", "config/example.toml"] {
        let out = Command::new(bin())
            .args(["check", "--config"])
            .arg(repo().join(cfg))
            .env("LT_TOKEN_H40", "a")
            .env("LT_TOKEN_STP", "b")
            .env("LT_TOKEN_SYT", "c")
            .env("LT_ADMIN_TOKEN", "d")
            .env("LT_DVCQG_USER", "u")
            .env("LT_DVCQG_PASSWORD", "p")
            .env("LT_VXP_SECRET", "s")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cfg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[bus]\nnamespace = \"x\"\nbroker_url = \n").unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
