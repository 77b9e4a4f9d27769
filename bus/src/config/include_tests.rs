//! `include`: included elements read as if written in the main file, problems told in their own file.

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const MAIN: &str = r#"
include = ["communes/*.toml"]
[[agencies]]
code = "000.00.00.H40"
[[adapters]]
id = "archive"
type = "file-out"
path = "out"
[[routes]]
id = "to-archive"
types = ["dossier.submitted"]
deliver = ["archive"]
"#;

fn commune(code: &str, id: &str) -> String {
    format!(
        r#"
[[agencies]]
code = "{code}"
[[adapters]]
id = "{id}"
type = "file-out"
path = "{id}/in"
[[routes]]
id = "to-{id}"
types = ["dossier.submitted"]
to = ["{code}"]
deliver = ["{id}"]
"#
    )
}

#[test]
fn included_files_add_agencies_adapters_and_routes_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "bus.toml", MAIN);
    write(
        dir.path(),
        "communes/b.toml",
        &commune("000.02.30.H40", "b-inbox"),
    );
    write(
        dir.path(),
        "communes/a.toml",
        &commune("000.01.30.H40", "a-inbox"),
    );
    write(dir.path(), "communes/notes.txt", "not toml");
    let c = Config::load(&main).unwrap();
    let codes: Vec<_> = c.agencies.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(codes, ["000.00.00.H40", "000.01.30.H40", "000.02.30.H40"]);
    let ids: Vec<_> = c.routes.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["to-archive", "to-a-inbox", "to-b-inbox"]);
    // An included adapter's relative paths are relative to its own file.
    assert_eq!(
        c.adapter("a-inbox").unwrap().base_dir,
        dir.path().join("communes")
    );
    assert_eq!(c.adapter("archive").unwrap().base_dir, dir.path());
    assert_eq!(c.origins.files.len(), 3);
}

#[test]
fn problems_in_an_included_file_name_it_and_its_own_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "bus.toml", MAIN);
    let a = write(
        dir.path(),
        "communes/a.toml",
        &commune("000.01.30.H40", "a-inbox")
            .replace("[[agencies]]\n", "[[agencies]]\nnmae = \"x\"\n"),
    );
    let b = write(
        dir.path(),
        "communes/b.toml",
        &format!(
            "{}\n[bus]\nprefetch = 1\n",
            commune("000.00.00.H40", "archive")
        ),
    );
    let e = Config::load(&main).unwrap_err();
    let shown = e.to_string();
    let at = |file: &Path, path: &str| {
        e.problems
            .iter()
            .find(|p| p.file.as_deref() == Some(file) && p.path == path)
            .unwrap_or_else(|| panic!("no problem at {}: {path} in\n{shown}", file.display()))
    };
    at(&a, "agencies[0].nmae");
    at(&b, "bus");
    // Duplicates across files name both places.
    let dup = at(&b, "agencies[0].code");
    assert!(
        dup.message
            .contains(&format!("{}: agencies[0]", main.display())),
        "{}",
        dup.message
    );
    let dup = at(&b, "adapters[0].id");
    assert!(dup.message.contains("first at"), "{}", dup.message);
    assert!(
        shown.contains(&format!("{}: agencies[0].nmae", a.display())),
        "{shown}"
    );
}

#[test]
fn a_named_file_that_is_missing_and_a_file_included_twice_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "bus.toml",
        &MAIN.replace(
            r#"include = ["communes/*.toml"]"#,
            r#"include = ["communes/*.toml", "communes/a.toml", "agencies.toml"]"#,
        ),
    );
    write(
        dir.path(),
        "communes/a.toml",
        &commune("000.01.30.H40", "a-inbox"),
    );
    let e = Config::load(&main).unwrap_err();
    let paths: Vec<_> = e
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.file.is_none()))
        .collect();
    assert!(paths.contains(&("include[1]", true)), "{e}");
    assert!(paths.contains(&("include[2]", true)), "{e}");
    assert!(e.to_string().contains("included twice"), "{e}");
}

#[test]
fn a_glob_that_matches_nothing_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "bus.toml", MAIN);
    let c = Config::load(&main).unwrap();
    assert_eq!(c.agencies.len(), 1);
}

#[test]
fn at_to_routes_need_an_inbox_for_every_agency_they_can_reach() {
    let text = r#"
[[agencies]]
code = "000.00.00.H40"
inbox = "nowhere"
[[agencies]]
code = "000.00.12.H40"
inbox = "stp"
[[agencies]]
code = "000.00.13.H40"
[[adapters]]
id = "stp"
type = "file-out"
path = "stp"
[[routes]]
id = "listed"
types = ["t"]
to = ["000.00.12.H40", "000.00.13.H40"]
deliver = ["@to"]
[[routes]]
id = "any"
types = ["t"]
deliver = ["stp", "@to"]
"#;
    let e = Config::parse(Path::new("/etc/lienthong/bus.toml"), text).unwrap_err();
    let at = |path: &str| {
        e.problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem at {path} in\n{e}"))
            .message
            .clone()
    };
    assert!(at("agencies[0].inbox").contains("no adapter with id `nowhere`"));
    assert!(at("routes[0].to[1]").contains("000.00.13.H40"));
    assert!(at("routes[1].deliver[1]").contains("000.00.13.H40"));
    // `@to` is not an adapter id, and a listed receiver with an inbox is fine.
    assert!(
        !e.problems.iter().any(|p| p.path == "routes[0].to[0]"),
        "{e}"
    );
    assert!(!e.to_string().contains("no adapter with id `@to`"), "{e}");
    assert_eq!(e.problems.len(), 3, "{e}");
}
