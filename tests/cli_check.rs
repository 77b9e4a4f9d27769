//! `lienthong check` names every problem with its file and key path, all in one run; `run` refuses what
//! `check` rejects.

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
    // Every problem in one run: what needs the schemas and the adapters' own checks is there too.
    assert!(err.contains("routes[1].types[0]"), "{err}");
    assert!(err.contains("adapters[1].type"), "{err}");

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

/// Runs the binary with `args` and `envs`; it must exit within 30 s (a `run` that is not refused would not).
fn exits(args: &[&str], file: &std::path::Path, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg(file)
        .env_remove("LT_CHECK_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{}` did not exit within 30 s", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let file = dir.path().join("bus.toml");
    let schemas = repo().join("schemas").display().to_string();
    std::fs::write(&file, format!("[bus]\nschemas_dir = \"{schemas}\"\n{text}")).unwrap();
    file
}

#[test]
fn check_lists_an_unknown_key_and_an_unset_token_variable_together() {
    // Issue 10 item 8: the unknown key used to stop `check` before the token variables were looked at.
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "namespase = \"typo\"\n\n[[agencies]]\ncode = \"000.00.00.H40\"\ntoken_env = \"LT_CHECK_UNSET_A\"\n\
         tokn_env = \"typo\"\n\n[[agencies]]\ncode = \"000.00.12.H40\"\ntoken_env = \"LT_CHECK_UNSET_B\"\n",
    );
    let (code, err) = exits(&["check", "--config"], &file, &[]);
    assert_eq!(code, Some(1), "{err}");
    for want in [
        "bus.namespase",
        "agencies[0].tokn_env",
        "agencies[0].token_env: environment variable `LT_CHECK_UNSET_A` is not set",
        "agencies[1].token_env: environment variable `LT_CHECK_UNSET_B` is not set",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        err.contains("4 problem(s)"),
        "nothing spurious besides:\n{err}"
    );
}

const TWO_AGENCIES: &str = "[[agencies]]\ncode = \"000.00.00.H40\"\ntoken_env = \"LT_CHECK_A\"\namqp_user = \"ubnd\"\n\
                            [[agencies]]\ncode = \"000.00.12.H40\"\ntoken_env = \"LT_CHECK_B\"\namqp_user = \"stp\"\n\
                            [[adapters]]\nid = \"out\"\ntype = \"file-out\"\npath = \"out\"\n\
                            [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"out\"]\n";

#[test]
fn check_and_run_refuse_two_agencies_with_one_credential() {
    // Issue 10 item 4: the same token given to two agencies authenticated as the later one, so the earlier
    // could be impersonated. Refused by `check` and by `run`, naming both entries and never the token.
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cr3t-shared-token";
    let distinct = [("LT_CHECK_A", "token-a"), ("LT_CHECK_B", "token-b")];
    let file = config_file(&dir, TWO_AGENCIES);
    let (code, err) = exits(&["check", "--config"], &file, &distinct);
    assert_eq!(code, Some(0), "distinct tokens are fine: {err}");

    let same_value = [("LT_CHECK_A", token), ("LT_CHECK_B", token)];
    for args in [["check", "--config"], ["run", "--config"]] {
        let (code, err) = exits(&args, &file, &same_value);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("agencies[1].token_env: `LT_CHECK_B` holds the same token as `LT_CHECK_A` (agencies[0].token_env)"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(token), "{args:?} printed the token: {err}");
    }

    // Two agencies naming one variable, and one RabbitMQ user for two agencies.
    let file = config_file(
        &dir,
        &TWO_AGENCIES
            .replace("LT_CHECK_B", "LT_CHECK_A")
            .replace("amqp_user = \"stp\"", "amqp_user = \"ubnd\""),
    );
    for args in [["check", "--config"], ["run", "--config"]] {
        let (code, err) = exits(&args, &file, &distinct);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("agencies[1].token_env: `LT_CHECK_A` is also agencies[0].token_env"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("agencies[1].amqp_user: RabbitMQ user `ubnd` is already agencies[0]'s"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("token-a"),
            "{args:?} printed the token: {err}"
        );
    }
}

#[test]
fn the_domains_sections_are_checked_and_a_section_no_one_owns_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "[tracking]\ndue_son = \"1d\"\n\n[public]\nlisten = \"127.0.0.1:0\"\nrate = \"thirty\"\n\n\
         [publc]\nlisten = \"127.0.0.1:0\"\n\n[[agencies]]\ncode = \"000.00.00.H40\"\n",
    );
    for cmd in ["check", "run"] {
        let (code, err) = exits(&[cmd, "--config"], &file, &[]);
        assert_eq!(code, Some(1), "{cmd}: {err}");
        for want in [
            "tracking.due_son: unknown field",
            "public.rate: `thirty` is not a rate",
            "publc: unknown key; expected one of: bus, http, admin, state, agencies, adapters, routes, rights, groups, evidence, operators, tracking, public",
        ] {
            assert!(err.contains(want), "{cmd}: missing {want:?} in:\n{err}");
        }
        assert!(
            err.contains("3 problem(s)"),
            "{cmd}: nothing spurious besides:\n{err}"
        );
    }
    // Written right, the same sections pass.
    let good = config_file(
        &dir,
        "[tracking]\ndue_soon = \"36h\"\n\n[public]\nlisten = \"127.0.0.1:0\"\nrate = \"60/min\"\n\n\
         [[agencies]]\ncode = \"000.00.00.H40\"\n",
    );
    let (code, err) = exits(&["check", "--config"], &good, &[]);
    assert_eq!(code, Some(0), "{err}");
}

/// `order_by` must be a JSON pointer into the envelope; `check` names the route's key and what is wrong, and
/// warns (exit 0) when an ordered route's retries can outlast RabbitMQ's consumer timeout.
#[test]
fn check_names_a_bad_order_by_and_warns_about_long_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bus.toml");
    let config = |order: &str| {
        format!(
            "[bus]\nschemas_dir = \"{}\"\n[[agencies]]\ncode = \"000.00.00.H40\"\ntoken_env = \"LT_CHECK_TOKEN\"\n\
             [[adapters]]\nid = \"stp-inbox\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9101/inbox\"\n\
             [[routes]]\nid = \"ok\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp-inbox\"]\n{order}\n",
            repo().join("schemas").display()
        )
    };
    let check = |text: String| {
        std::fs::write(&file, text).unwrap();
        let out = Command::new(bin())
            .args(["check", "--config"])
            .arg(&file)
            .env("LT_CHECK_TOKEN", "x")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        )
    };
    let (code, out) = check(config(
        "order_by = \"payload/MaHoSo\"\norder_partitions = 2000",
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("routes[0].order_by: `payload/MaHoSo` is not a JSON pointer"),
        "{out}"
    );
    assert!(
        out.contains("routes[0].order_partitions: must be 1 to 1024"),
        "{out}"
    );
    let (code, out) = check(config("order_by = \"/payload/MaHoSo\""));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("routes[0].retry"), "{out}");
    assert!(out.contains("consumer_timeout"), "{out}");
    let (code, out) = check(config(
        "order_by = \"/payload/MaHoSo\"\nretry = { attempts = 5, backoff = [\"5s\"] }",
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("consumer_timeout"), "{out}");
}
