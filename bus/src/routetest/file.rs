//! Reading `*.test.toml` files: every problem with its file and key path, the way config problems are told.

use crate::config::{Config, ConfigErrors, Problem, deserialize_at};
use crate::message::ContentKind;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The HTTP statuses a refusal may be expected with.
const REFUSALS: &[u16] = &[400, 403, 409, 413, 415, 422];

/// A `*.test.toml` file: `config` (optional) and `[[tests]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    /// The config file these tests are written for, relative to the test file. When set, a search for test
    /// files beside a config (`lienthong test` without files) skips this file for any other config.
    #[serde(default)]
    config: Option<PathBuf>,
    #[serde(default)]
    tests: Vec<toml::Value>,
}

/// One `[[tests]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseToml {
    /// Shown in `ok <name>` / `FAIL <name>`; unique in its file.
    name: String,
    /// The agency the message is submitted as (the caller a token or RabbitMQ user would prove); must be in
    /// the config's `[[agencies]]`.
    #[serde(rename = "as")]
    as_agency: String,
    /// The envelope, inline: `{ type, version, from, to, payload = {…} }` (any envelope key).
    #[serde(default)]
    message: Option<toml::Table>,
    /// An envelope JSON file, relative to the test file.
    #[serde(default)]
    message_file: Option<PathBuf>,
    /// An XML package file (`application/xml`), relative to the test file.
    #[serde(default)]
    edxml_file: Option<PathBuf>,
    expect: ExpectToml,
}

/// `expect = { status = 202, routes = […], adapters = […] }` or `{ status = 4xx, code = "…", paths = […] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectToml {
    /// 202, or the refusal's HTTP status (400, 403, 409, 413, 415, 422).
    status: u16,
    /// With 202: exactly these route ids match (order does not matter).
    #[serde(default)]
    routes: Option<Vec<String>>,
    /// With 202: exactly these adapters get a copy (order does not matter).
    #[serde(default)]
    adapters: Option<Vec<String>>,
    /// With a refusal: the error code (`schema_violation`, `no_route`, …).
    #[serde(default)]
    code: Option<String>,
    /// With a refusal: each of these JSON pointers is among the error's `details` paths.
    #[serde(default)]
    paths: Vec<String>,
}

/// What a case submits.
#[derive(Debug, Clone)]
pub struct Input {
    pub content: ContentKind,
    pub body: Bytes,
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Accepted {
        routes: Vec<String>,
        adapters: Vec<String>,
    },
    Refused {
        status: u16,
        code: String,
        paths: Vec<String>,
    },
}

/// One runnable case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub as_agency: String,
    pub input: Input,
    pub expect: Expect,
}

/// A test file, read and checked.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub file: PathBuf,
    pub cases: Vec<Case>,
}

/// The `*.test.toml` files beside `config` (sorted), less those whose `config` key names another file.
pub fn discover(config: &Path) -> Result<Vec<PathBuf>, ConfigErrors> {
    let dir = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| ConfigErrors {
        file: dir.clone(),
        problems: vec![Problem::new("", format!("cannot list the folder: {e}"))],
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.toml"))
                && p.is_file()
        })
        .collect();
    files.sort();
    let me = std::fs::canonicalize(config).ok();
    Ok(files
        .into_iter()
        .filter(|f| {
            let Ok(text) = std::fs::read_to_string(f) else {
                return true; // reported when loaded
            };
            let Ok(t) = text.parse::<toml::Table>() else {
                return true;
            };
            match t.get("config").and_then(|v| v.as_str()) {
                None => true,
                Some(c) => {
                    let theirs = std::fs::canonicalize(dir.join(c)).ok();
                    theirs.is_none() || theirs == me
                }
            }
        })
        .collect())
}

/// Reads test file `file` for `config`: every problem at its key path (`tests[2].expect.code`).
pub fn load(file: &Path, config: &Config) -> Result<TestFile, ConfigErrors> {
    let fail = |problems: Vec<Problem>| ConfigErrors {
        file: file.to_owned(),
        problems,
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        fail(vec![Problem::new(
            "",
            format!("cannot read the test file: {e}"),
        )])
    })?;
    let value: toml::Value = text
        .parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = match line {
                Some(l) => format!("line {l}: TOML syntax error: {}", e.message()),
                None => format!("TOML syntax error: {}", e.message()),
            };
            fail(vec![Problem::new("", msg)])
        })?;
    let parsed: FileToml = deserialize_at("", value).map_err(|p| fail(vec![p]))?;
    let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
    let mut problems = Vec::new();
    if let Some(c) = &parsed.config
        && !dir.join(c).is_file()
    {
        problems.push(Problem::new(
            "config",
            format!("no config file {}", dir.join(c).display()),
        ));
    }
    if parsed.tests.is_empty() {
        problems.push(Problem::new("tests", "no [[tests]] in this file"));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut cases = Vec::new();
    for (i, v) in parsed.tests.into_iter().enumerate() {
        let at = format!("tests[{i}]");
        let c: CaseToml = match deserialize_at(&at, v) {
            Ok(c) => c,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if let Some(prev) = names.insert(c.name.clone(), i) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("test `{}` is already tests[{prev}]'s name", c.name),
            ));
        }
        if !config.agencies.iter().any(|a| a.code == c.as_agency) {
            problems.push(Problem::new(
                format!("{at}.as"),
                format!(
                    "agency `{}` is not in the config's [[agencies]]",
                    c.as_agency
                ),
            ));
        }
        let input = input(&at, &dir, &c, &mut problems);
        let expect = expect(&at, c.expect, &mut problems);
        if let (Some(input), Some(expect)) = (input, expect) {
            cases.push(Case {
                name: c.name,
                as_agency: c.as_agency,
                input,
                expect,
            });
        }
    }
    if problems.is_empty() {
        Ok(TestFile {
            file: file.to_owned(),
            cases,
        })
    } else {
        Err(fail(problems))
    }
}

fn input(at: &str, dir: &Path, c: &CaseToml, problems: &mut Vec<Problem>) -> Option<Input> {
    let given = [
        c.message.is_some(),
        c.message_file.is_some(),
        c.edxml_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        problems.push(Problem::new(
            at,
            "needs exactly one of `message`, `message_file` and `edxml_file`",
        ));
        return None;
    }
    let read = |key: &str, p: &Path, problems: &mut Vec<Problem>| match std::fs::read(dir.join(p)) {
        Ok(b) => Some(Bytes::from(b)),
        Err(e) => {
            problems.push(Problem::new(
                format!("{at}.{key}"),
                format!("cannot read {}: {e}", dir.join(p).display()),
            ));
            None
        }
    };
    if let Some(m) = &c.message {
        let json = match serde_json::to_vec(m) {
            Ok(j) => j,
            Err(e) => {
                problems.push(Problem::new(
                    format!("{at}.message"),
                    format!("cannot be written as JSON: {e}"),
                ));
                return None;
            }
        };
        return Some(Input {
            content: ContentKind::Json,
            body: Bytes::from(json),
        });
    }
    if let Some(p) = &c.message_file {
        return read("message_file", p, problems).map(|body| Input {
            content: ContentKind::Json,
            body,
        });
    }
    let p = c.edxml_file.as_ref()?;
    read("edxml_file", p, problems).map(|body| Input {
        content: ContentKind::Xml,
        body,
    })
}

fn expect(at: &str, e: ExpectToml, problems: &mut Vec<Problem>) -> Option<Expect> {
    let at = format!("{at}.expect");
    let before = problems.len();
    if e.status == 202 {
        if e.code.is_some() {
            problems.push(Problem::new(
                format!("{at}.code"),
                "an accepted message has no error code",
            ));
        }
        if !e.paths.is_empty() {
            problems.push(Problem::new(
                format!("{at}.paths"),
                "an accepted message has no error paths",
            ));
        }
        let (Some(routes), Some(adapters)) = (e.routes.clone(), e.adapters.clone()) else {
            let missing = if e.routes.is_none() {
                "routes"
            } else {
                "adapters"
            };
            problems.push(Problem::new(
                format!("{at}.{missing}"),
                "missing: with status 202, name exactly the routes and the adapters",
            ));
            return None;
        };
        return (problems.len() == before).then_some(Expect::Accepted { routes, adapters });
    }
    if !REFUSALS.contains(&e.status) {
        problems.push(Problem::new(
            format!("{at}.status"),
            "must be 202 or a refusal: 400, 403, 409, 413, 415 or 422",
        ));
    }
    for (key, v) in [("routes", &e.routes), ("adapters", &e.adapters)] {
        if v.is_some() {
            problems.push(Problem::new(format!("{at}.{key}"), "only with status 202"));
        }
    }
    let Some(code) = e.code else {
        problems.push(Problem::new(
            format!("{at}.code"),
            "missing: a refusal names its error code",
        ));
        return None;
    };
    (problems.len() == before).then_some(Expect::Refused {
        status: e.status,
        code,
        paths: e.paths,
    })
}
