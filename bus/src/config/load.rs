//! Reading the TOML file into a [`Config`] while collecting every problem, without stopping at one.
//!
//! `lienthong check` promises every problem in one run, so a structural mistake in one place (an unknown key,
//! a value of the wrong type) must not hide the others — not those of other entries, and not what is checked
//! after the file (schemas, token variables, adapters' own keys). So each section and each array element is
//! deserialized on its own, and an element with a bad key is *salvaged*: the problem is recorded, the key is
//! taken out (its default applies) and the element is read again. Only an element that cannot stand without
//! the key (a required field missing or unusable) is left out. The result is a best-effort config that is
//! good for finding more problems, never for running: [`Config::parse`] refuses it when anything was found.

use super::{
    AdapterSpec, AdminConfig, BusConfig, Config, ConfigErrors, HttpConfig, Problem, StateConfig,
    join, problem::clean_serde_message,
};
use std::path::Path;

/// The top-level sections the core owns; any other is a plugin's ([`Config::sections`]).
pub const CORE_SECTIONS: &[&str] = &[
    "bus",
    "http",
    "admin",
    "state",
    "agencies",
    "adapters",
    "routes",
    "rights",
    "groups",
    "evidence",
    "operators",
];

/// How many keys of one section or element are taken out before giving up on it.
const MAX_SALVAGE: usize = 64;

impl Config {
    /// Reads and parses `file`, collecting every structural problem. Cross-reference checks that need the
    /// schema registry and adapter factories are in [`crate::check`].
    pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
        let text = read(file)?;
        Self::parse(file, &text)
    }

    /// Parses config text as if read from `file` (relative paths resolve against its folder).
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let (config, problems) = Self::parse_all(file, text)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors {
                file: file.to_owned(),
                problems,
            })
        }
    }

    /// Like [`Config::load`], but a file that is TOML yields a config even when it has problems: the best
    /// reading of it (see the module doc) and every problem found in it. Only an unreadable file or a TOML
    /// syntax error is an `Err`, since nothing more can be learned then. For `lienthong check`.
    pub fn load_all(file: &Path) -> Result<(Config, Vec<Problem>), ConfigErrors> {
        let text = read(file)?;
        Self::parse_all(file, &text)
    }

    /// [`Config::load_all`] on text already read.
    pub fn parse_all(file: &Path, text: &str) -> Result<(Config, Vec<Problem>), ConfigErrors> {
        let (config, problems) = Self::parse_merged(file, text)?;
        let problems = config.origins.locate(problems);
        Ok((config, problems))
    }

    /// [`Config::load_all`], the problems still at their key paths in the merged arrays (so `check` can
    /// weigh them against its own findings before they are told in their files).
    pub(crate) fn load_merged(file: &Path) -> Result<(Config, Vec<Problem>), ConfigErrors> {
        let text = read(file)?;
        Self::parse_merged(file, &text)
    }

    fn parse_merged(file: &Path, text: &str) -> Result<(Config, Vec<Problem>), ConfigErrors> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let mut msg = e.message().to_owned();
            if let Some(span) = e.span() {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                msg = format!("line {line}: TOML syntax error: {msg}");
            }
            ConfigErrors {
                file: file.to_owned(),
                problems: vec![Problem::new("", msg)],
            }
        })?;
        let base_dir = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut problems = Vec::new();
        let mut origins = super::Origins::default();
        super::include::expand(&mut table, file, &mut origins, &mut problems);
        // Sections the core does not own are kept as written, for the plugin that owns them; `check`, which
        // knows the plugin, refuses those no one owns.
        let sections: toml::Table = table
            .iter()
            .filter(|(key, _)| !CORE_SECTIONS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        fn section<T: serde::de::DeserializeOwned + Default>(
            table: &toml::Table,
            key: &str,
            problems: &mut Vec<Problem>,
        ) -> T {
            match table.get(key) {
                None => T::default(),
                Some(v) => salvage(key, v.clone(), problems).unwrap_or_default(),
            }
        }
        let bus: BusConfig = section(&table, "bus", &mut problems);
        let http: HttpConfig = section(&table, "http", &mut problems);
        let admin: AdminConfig = section(&table, "admin", &mut problems);
        let state: StateConfig = section(&table, "state", &mut problems);
        let evidence: Option<super::EvidenceConfig> = section(&table, "evidence", &mut problems);
        let agencies = array(&table, "agencies", &mut problems, salvage)
            .into_iter()
            .map(|(index, a)| super::AgencyConfig { index, ..a })
            .collect();
        let routes = array(&table, "routes", &mut problems, salvage)
            .into_iter()
            .map(|(index, r)| super::RouteConfig { index, ..r })
            .collect();
        let rights = array(&table, "rights", &mut problems, salvage)
            .into_iter()
            .map(|(index, r)| super::RightConfig { index, ..r })
            .collect();
        let groups = array(&table, "groups", &mut problems, salvage)
            .into_iter()
            .map(|(index, g)| super::GroupConfig { index, ..g })
            .collect();
        let operators = array(&table, "operators", &mut problems, salvage)
            .into_iter()
            .map(|(index, o)| super::OperatorConfig { index, ..o })
            .collect();
        let adapters = array(&table, "adapters", &mut problems, |path, v, problems| {
            // Relative paths of an included adapter are relative to its own file.
            let index = path
                .trim_start_matches("adapters[")
                .trim_end_matches(']')
                .parse()
                .unwrap_or(0);
            let dir = match origins.of("adapters", index) {
                Some((f, _)) => parent_dir(f),
                None => base_dir.clone(),
            };
            adapter_spec(path, v, &dir, problems)
        })
        .into_iter()
        .map(|(_, a)| a)
        .collect();
        let config = Config {
            file: file.to_owned(),
            base_dir,
            bus,
            http,
            admin,
            state,
            agencies,
            adapters,
            routes,
            rights,
            groups,
            evidence,
            operators,
            sections,
            origins,
        };
        let more = config.cross_check();
        add_unless_explained(&mut problems, more);
        Ok((config, problems))
    }
}

impl Config {
    /// Reads the plugin-owned top-level section `key` into the plugin's own (`deny_unknown_fields`) type the
    /// way the core reads its own sections: every problem at its key path (`tracking.due_soon`), a bad key
    /// read around so the others are still checked (its default applies). An absent section is the default.
    pub fn section<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &str,
    ) -> (T, Vec<Problem>) {
        let mut problems = Vec::new();
        let value = match self.sections.get(key) {
            None => T::default(),
            Some(v) => salvage(key, v.clone(), &mut problems).unwrap_or_default(),
        };
        (value, problems)
    }
}

fn parent_dir(f: &Path) -> std::path::PathBuf {
    match f.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    }
}

fn read(file: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(file).map_err(|e| ConfigErrors {
        file: file.to_owned(),
        problems: vec![Problem::new(
            "",
            format!("cannot read the config file: {e}"),
        )],
    })
}

/// Adds `more` to `problems`, leaving out those at or under a key already reported: a key that could not be
/// read was replaced by its default, and what is then found about the default is no news to the operator.
pub(crate) fn add_unless_explained(problems: &mut Vec<Problem>, more: Vec<Problem>) {
    let explained = |p: &Problem| {
        problems.iter().any(|known| {
            !known.path.is_empty()
                && known.file == p.file
                && p.path
                    .strip_prefix(known.path.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    };
    let more: Vec<Problem> = more.into_iter().filter(|p| !explained(p)).collect();
    problems.extend(more);
}

/// Deserializes `value` (found at key path `path`) into `T`, recording a problem for each key that is
/// unknown or unusable and reading on without it; `None` when `T` cannot be had at all.
pub(crate) fn salvage<T: serde::de::DeserializeOwned>(
    path: &str,
    mut value: toml::Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    // Keys taken out, by the key path of their table: a later "missing field" about one of them is the
    // problem already reported, not a new one.
    let mut removed: Vec<(String, String)> = Vec::new();
    for _ in 0..MAX_SALVAGE {
        let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        // The keys leading to the fault, up to the first array: a bad array element costs its whole array.
        let segments: Vec<String> = e
            .path()
            .iter()
            .map_while(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let message = e.inner().to_string();
        let at = join(path, &segments.join("."));
        if removed
            .iter()
            .any(|(table, key)| *table == at && message.contains(&format!("missing field `{key}`")))
        {
            return None;
        }
        problems.push(problem_at(path, &e));
        let Some((key, parents)) = segments.split_last() else {
            return None; // the element itself is wrong (e.g. a required key is missing)
        };
        let mut table = value.as_table_mut();
        for p in parents {
            table = table
                .and_then(|t| t.get_mut(p))
                .and_then(|v| v.as_table_mut());
        }
        // Nothing to take out (the path does not lead to a key): the element cannot be salvaged.
        table.and_then(|t| t.remove(key))?;
        removed.push((join(path, &parents.join(".")), key.clone()));
    }
    None
}

/// The problem serde reported, at its key path inside `path`.
fn problem_at<T>(path: &str, e: &serde_path_to_error::Error<T>) -> Problem
where
    T: std::fmt::Display,
{
    let inner = e.path().to_string();
    let inner = if inner == "." { String::new() } else { inner };
    Problem::new(
        join(path, &inner),
        clean_serde_message(&e.inner().to_string()),
    )
}

fn array<T>(
    table: &toml::Table,
    key: &str,
    problems: &mut Vec<Problem>,
    mut each: impl FnMut(&str, toml::Value, &mut Vec<Problem>) -> Option<T>,
) -> Vec<(usize, T)> {
    match table.get(key) {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| each(&format!("{key}[{i}]"), v.clone(), problems).map(|t| (i, t)))
            .collect(),
        Some(_) => {
            problems.push(Problem::new(
                key,
                format!("must be an array of tables ([[{key}]])"),
            ));
            Vec::new()
        }
    }
}

/// An `[[adapters]]` entry: `id` and `type` are the core's, every other key is the adapter's own (checked by
/// its factory). With `type` missing or not a string the entry is still kept, with an empty type, so the
/// routes naming its `id` are not reported as naming nothing.
fn adapter_spec(
    path: &str,
    v: toml::Value,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<AdapterSpec> {
    let index = path
        .trim_start_matches("adapters[")
        .trim_end_matches(']')
        .parse()
        .unwrap_or(0);
    let toml::Value::Table(mut t) = v else {
        problems.push(Problem::new(path, "must be a table"));
        return None;
    };
    let mut take = |k: &str| match t.remove(k) {
        Some(toml::Value::String(s)) => Some(s),
        Some(_) => {
            problems.push(Problem::new(join(path, k), "must be a string"));
            None
        }
        None => {
            problems.push(Problem::new(join(path, k), "missing required key"));
            None
        }
    };
    let id = take("id");
    let kind = take("type");
    Some(AdapterSpec {
        index,
        id: id?,
        kind: kind.unwrap_or_default(),
        options: t,
        base_dir: base_dir.to_owned(),
    })
}
