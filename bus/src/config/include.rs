//! `include = ["communes/*.toml"]`: a province's config as many small files.
//!
//! Onboarding a commune should be one new file, not an edit of a long shared one. So the main file (and any
//! included file) may name other files by glob, relative to itself; their `[[agencies]]`, `[[adapters]]`,
//! `[[routes]]` (and `[[rights]]`, `[[groups]]`, for whoever owns those) are appended, in file order, to the
//! main file's arrays and then read exactly as if written there. Each appended element keeps its origin, so
//! every problem is told in the file and at the key path where the operator wrote it ([`Origins::locate`]),
//! and a duplicate id names both places.

use super::Problem;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The arrays an included file may add to.
pub const INCLUDABLE: &[&str] = &["agencies", "adapters", "routes", "rights", "groups"];

/// How deep includes may nest (a file including a file including …).
const MAX_DEPTH: usize = 8;

/// Where the array elements that came from included files were written.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// (array, index in the merged array, file, index in that file's array).
    entries: Vec<(String, usize, PathBuf, usize)>,
    /// Every file read, the main one first.
    pub files: Vec<PathBuf>,
}

impl Origins {
    /// The file and local key (`agencies[0]`) of merged element `array[index]`; `None` for the main file's.
    pub fn of(&self, array: &str, index: usize) -> Option<(&Path, String)> {
        self.entries
            .iter()
            .find(|(a, i, _, _)| a == array && *i == index)
            .map(|(a, _, f, l)| (f.as_path(), format!("{a}[{l}]")))
    }

    /// Human place of merged element `array[index]`: `agencies[2]` or `communes/x.toml: agencies[0]`.
    pub fn place(&self, array: &str, index: usize) -> String {
        match self.of(array, index) {
            Some((f, key)) => format!("{}: {key}", f.display()),
            None => format!("{array}[{index}]"),
        }
    }

    /// Tells each problem about an included element in its own file and at its own key path; references
    /// to other elements in the message (`already agencies[7]'s`) are told as places too.
    pub fn locate(&self, problems: Vec<Problem>) -> Vec<Problem> {
        if self.entries.is_empty() {
            return problems;
        }
        problems
            .into_iter()
            .map(|mut p| {
                if p.file.is_none()
                    && let Some((array, index, rest)) = split_key(&p.path)
                    && let Some((f, key)) = self.of(array, index)
                {
                    p.file = Some(f.to_owned());
                    p.path = format!("{key}{rest}");
                }
                p.message = self.rewrite_refs(&p.message);
                p
            })
            .collect()
    }

    fn rewrite_refs(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for array in INCLUDABLE {
                if let Some(after) = rest.strip_prefix(&format!("{array}["))
                    && let Some(close) = after.find(']')
                    && let Ok(index) = after[..close].parse::<usize>()
                {
                    match (self.of(array, index), self.files.first()) {
                        (Some(_), _) => out.push_str(&self.place(array, index)),
                        (None, Some(main)) => {
                            out.push_str(&format!("{}: {array}[{index}]", main.display()))
                        }
                        (None, None) => out.push_str(&format!("{array}[{index}]")),
                    }
                    rest = &after[close + 1..];
                    continue 'scan;
                }
            }
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// `agencies[3].code` → (`agencies`, 3, `.code`).
fn split_key(path: &str) -> Option<(&str, usize, &str)> {
    let open = path.find('[')?;
    let array = &path[..open];
    if !INCLUDABLE.contains(&array) {
        return None;
    }
    let close = open + path[open..].find(']')?;
    let index = path[open + 1..close].parse().ok()?;
    Some((array, index, &path[close + 1..]))
}

/// Takes `include` out of `table` (the file `file`) and appends what the files it names hold.
pub fn expand(
    table: &mut toml::Table,
    file: &Path,
    origins: &mut Origins,
    problems: &mut Vec<Problem>,
) {
    let mut seen = HashSet::new();
    if let Ok(c) = std::fs::canonicalize(file) {
        seen.insert(c);
    }
    origins.files.push(file.to_owned());
    let includes = table.remove("include");
    walk(includes, None, file, table, origins, problems, &mut seen, 0);
}

#[allow(clippy::too_many_arguments)]
fn walk(
    includes: Option<toml::Value>,
    from: Option<&Path>,
    file: &Path,
    main: &mut toml::Table,
    origins: &mut Origins,
    problems: &mut Vec<Problem>,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
) {
    let problem = |path: String, message: String| {
        let mut p = Problem::new(path, message);
        p.file = from.map(|_| file.to_owned());
        p
    };
    let Some(includes) = includes else { return };
    let Some(list) = includes.as_array() else {
        problems.push(problem(
            "include".into(),
            "must be an array of file globs (relative to this file)".into(),
        ));
        return;
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    for (j, pattern) in list.iter().enumerate() {
        let at = format!("include[{j}]");
        let Some(pattern) = pattern.as_str() else {
            problems.push(problem(at, "must be a string (a file glob)".into()));
            continue;
        };
        if depth >= MAX_DEPTH {
            problems.push(problem(
                at,
                format!("includes nest deeper than {MAX_DEPTH} files"),
            ));
            return;
        }
        let matches = glob(&dir, pattern);
        if matches.is_empty() && !has_wildcard(pattern) {
            problems.push(problem(
                at.clone(),
                format!("no file {}", dir.join(pattern).display()),
            ));
        }
        for path in matches {
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen.insert(canonical) {
                problems.push(problem(
                    at.clone(),
                    format!("{} is included twice", path.display()),
                ));
                continue;
            }
            origins.files.push(path.clone());
            let in_file = |key: &str, message: String| {
                let mut p = Problem::new(key, message);
                p.file = Some(path.clone());
                p
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(in_file("", format!("cannot read the included file: {e}")));
                    continue;
                }
            };
            let mut table: toml::Table = match text.parse() {
                Ok(t) => t,
                Err(e) => {
                    let e: toml::de::Error = e;
                    let line = e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                        .unwrap_or(1);
                    problems.push(in_file(
                        "",
                        format!("line {line}: TOML syntax error: {}", e.message()),
                    ));
                    continue;
                }
            };
            let nested = table.remove("include");
            for (key, value) in table {
                if !INCLUDABLE.contains(&key.as_str()) {
                    problems.push(in_file(
                        &key,
                        format!(
                            "an included file may hold only include and [[{}]]",
                            INCLUDABLE.join("]], [[")
                        ),
                    ));
                    continue;
                }
                let toml::Value::Array(items) = value else {
                    problems.push(in_file(
                        &key,
                        format!("must be an array of tables ([[{key}]])"),
                    ));
                    continue;
                };
                let target = main
                    .entry(key.clone())
                    .or_insert_with(|| toml::Value::Array(Vec::new()));
                // A main-file value that is not an array is reported where it is; nothing is added to it.
                let Some(target) = target.as_array_mut() else {
                    continue;
                };
                for (local, item) in items.into_iter().enumerate() {
                    origins
                        .entries
                        .push((key.clone(), target.len(), path.clone(), local));
                    target.push(item);
                }
            }
            walk(
                nested,
                Some(file),
                &path,
                main,
                origins,
                problems,
                seen,
                depth + 1,
            );
        }
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Files matching `pattern` (`*` and `?` within one path segment), relative to `dir`, sorted. Hidden
/// files match only a segment that starts with `.`.
fn glob(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![if Path::new(pattern).is_absolute() {
        PathBuf::from("/")
    } else {
        dir.to_owned()
    }];
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    for (n, seg) in segments.iter().enumerate() {
        let last = n + 1 == segments.len();
        let mut next = Vec::new();
        for base in &current {
            if !has_wildcard(seg) {
                let p = base.join(seg);
                if (last && p.is_file()) || (!last && p.is_dir()) {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    (!name.starts_with('.') || seg.starts_with('.')) && wildcard(seg, &name)
                })
                .map(|e| e.path())
                .filter(|p| if last { p.is_file() } else { p.is_dir() })
                .collect();
            found.sort();
            next.extend(found);
        }
        current = next;
    }
    if segments.is_empty() {
        return Vec::new();
    }
    current
}

/// `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("*.toml", "my-loc.toml"));
        assert!(!wildcard("*.toml", "my-loc.toml.bak"));
        assert!(wildcard("x?.toml", "x1.toml"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "ac"));
    }
}
