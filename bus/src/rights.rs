//! Access rights per message type (`[[rights]]`, `[[groups]]`): checked for every message at every ingress
//! (HTTP, AMQP, folders, pulls — all come through [`crate::ingress::Ingress::publish`]) after the sender is
//! authenticated and before routing.
//!
//! Why default deny once any right is written: a list of grants that lets through whatever it forgot would
//! protect nothing. A config without rights keeps the old behaviour (every agency may send every type), and
//! `lienthong check` warns about it.

use crate::config::{Config, Problem};
use crate::error::{ApiError, code};
use crate::message::Meta;
use std::collections::HashMap;

/// How deep `group:` references may nest (a cycle is a config problem; this bounds matching regardless).
const MAX_DEPTH: usize = 8;

/// One `from`/`to`/`members` entry.
#[derive(Debug, Clone, PartialEq)]
enum Party {
    Any,
    /// Dot-separated parts; `*` matches any one part.
    Code(Vec<String>),
    Group(String),
}

impl Party {
    fn parse(s: &str) -> Self {
        if s == "*" {
            Party::Any
        } else if let Some(g) = s.strip_prefix("group:") {
            Party::Group(g.to_owned())
        } else {
            Party::Code(s.split('.').map(str::to_owned).collect())
        }
    }
}

#[derive(Debug, Clone)]
struct Right {
    from: Vec<Party>,
    /// Exact types, or prefixes (a pattern ending in `*`, without it).
    types: Vec<(String, bool)>,
    to: Option<Vec<Party>>,
}

/// The compiled `[[rights]]` and `[[groups]]` of a config.
#[derive(Debug, Clone)]
pub struct Rights {
    rights: Vec<Right>,
    groups: HashMap<String, Vec<Party>>,
    /// Each code of a configured agency → all of that agency's codes (`code`, `qd20_code`, `other_codes`): a
    /// right naming an agency by one code holds for a message naming it by another, as routes do.
    codes: HashMap<String, Vec<String>>,
}

/// Each code of every configured agency → all of that agency's codes.
fn codes_of(config: &Config) -> HashMap<String, Vec<String>> {
    config
        .agencies
        .iter()
        .flat_map(|a| {
            let all: Vec<String> = a.codes().map(str::to_owned).collect();
            all.clone().into_iter().map(move |c| (c, all.clone()))
        })
        .collect()
}

impl Rights {
    /// None when the config has no `[[rights]]` (everything is allowed).
    pub fn new(config: &Config) -> Option<Self> {
        if config.rights.is_empty() {
            return None;
        }
        let parties = |v: &[String]| v.iter().map(|s| Party::parse(s)).collect::<Vec<_>>();
        Some(Self {
            rights: config
                .rights
                .iter()
                .map(|r| Right {
                    from: parties(&r.from),
                    types: r
                        .types
                        .iter()
                        .map(|t| match t.strip_suffix('*') {
                            Some(prefix) => (prefix.to_owned(), true),
                            None => (t.clone(), false),
                        })
                        .collect(),
                    to: r.to.as_deref().map(parties),
                })
                .collect(),
            groups: config
                .groups
                .iter()
                .map(|g| (g.name.clone(), parties(&g.members)))
                .collect(),
            codes: codes_of(config),
        })
    }

    fn party_matches(&self, p: &Party, code: &str, depth: usize) -> bool {
        match p {
            Party::Any => true,
            Party::Code(parts) => {
                let mut given = code.split('.');
                parts
                    .iter()
                    .all(|part| given.next().is_some_and(|g| part == "*" || part == g))
                    && given.next().is_none()
            }
            Party::Group(name) => {
                depth < MAX_DEPTH
                    && self.groups.get(name).is_some_and(|members| {
                        members
                            .iter()
                            .any(|m| self.party_matches(m, code, depth + 1))
                    })
            }
        }
    }

    /// Whether a party of `ps` is `code`, or another code of the agency `code` names.
    fn any_matches(&self, ps: &[Party], code: &str) -> bool {
        let matches = |c: &str| ps.iter().any(|p| self.party_matches(p, c, 0));
        match self.codes.get(code) {
            Some(all) => all.iter().any(|c| matches(c)),
            None => matches(code),
        }
    }

    /// Whether some right lets `from` send `kind` to `to` (None: a message without receivers, allowed only by
    /// a right without `to`).
    pub fn allows(&self, from: &str, kind: &str, to: Option<&str>) -> bool {
        self.rights.iter().any(|r| {
            self.any_matches(&r.from, from)
                && r.types.iter().any(|(t, prefix)| {
                    if *prefix {
                        kind.starts_with(t.as_str())
                    } else {
                        kind == t
                    }
                })
                && match (&r.to, to) {
                    (None, _) => true,
                    (Some(ps), Some(to)) => self.any_matches(ps, to),
                    (Some(_), None) => false,
                }
        })
    }

    /// 403 `forbidden` naming the first receiver `meta.from` has no right to send `meta.kind` to.
    pub fn check(&self, meta: &Meta) -> Result<(), ApiError> {
        let refuse = |m: String, path: &str| {
            Err(ApiError::new(code::FORBIDDEN, m.clone()).at(path.to_owned(), m))
        };
        if meta.to.is_empty() {
            if !self.allows(&meta.from, &meta.kind, None) {
                return refuse(
                    format!("no right for {} to send {}", meta.from, meta.kind),
                    "/type",
                );
            }
            return Ok(());
        }
        for (i, to) in meta.to.iter().enumerate() {
            if !self.allows(&meta.from, &meta.kind, Some(to)) {
                return refuse(
                    format!("no right for {} to send {} to {to}", meta.from, meta.kind),
                    &format!("/to/{i}"),
                );
            }
        }
        Ok(())
    }
}

/// Every problem with `[[rights]]` and `[[groups]]`: empty lists, unknown or duplicate groups, group cycles,
/// and entries that match no configured agency.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for g in &config.groups {
        if g.name.is_empty() {
            problems.push(Problem::new(
                format!("groups[{}].name", g.index),
                "must not be empty",
            ));
        } else if let Some(prev) = names.insert(g.name.as_str(), g.index) {
            problems.push(Problem::new(
                format!("groups[{}].name", g.index),
                format!("group `{}` is already groups[{prev}]", g.name),
            ));
        }
    }
    let agencies: Vec<&str> = config.agencies.iter().map(|a| a.code.as_str()).collect();
    let rights = Rights {
        rights: Vec::new(),
        groups: config
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.members.iter().map(|m| Party::parse(m)).collect(),
                )
            })
            .collect(),
        codes: codes_of(config),
    };
    let entry = |path: String, s: &str, problems: &mut Vec<Problem>| {
        let p = Party::parse(s);
        if let Party::Group(name) = &p
            && !names.contains_key(name.as_str())
        {
            problems.push(Problem::new(
                path,
                format!("no [[groups]] entry is named `{name}`"),
            ));
        } else if !agencies.iter().any(|a| rights.party_matches(&p, a, 0)) {
            problems.push(Problem::new(
                path,
                format!("`{s}` matches no agency in [[agencies]]"),
            ));
        }
    };
    for g in &config.groups {
        for (j, m) in g.members.iter().enumerate() {
            entry(
                format!("groups[{}].members[{j}]", g.index),
                m,
                &mut problems,
            );
        }
        if in_cycle(&rights, &g.name, &g.name, 0) {
            problems.push(Problem::new(
                format!("groups[{}].members", g.index),
                format!(
                    "group `{}` contains itself (through `group:` members)",
                    g.name
                ),
            ));
        }
    }
    for r in &config.rights {
        let at = |k: &str| format!("rights[{}].{k}", r.index);
        if r.from.is_empty() {
            problems.push(Problem::new(at("from"), "must name at least one sender"));
        }
        if r.types.is_empty() {
            problems.push(Problem::new(
                at("types"),
                "must name at least one message type",
            ));
        }
        for (j, t) in r.types.iter().enumerate() {
            if t.is_empty() || t[..t.len() - 1].contains('*') {
                problems.push(Problem::new(
                    format!("rights[{}].types[{j}]", r.index),
                    format!("`{t}`: `*` is allowed only as the last character"),
                ));
            }
        }
        for (j, f) in r.from.iter().enumerate() {
            entry(format!("rights[{}].from[{j}]", r.index), f, &mut problems);
        }
        for (j, t) in r.to.iter().flatten().enumerate() {
            entry(format!("rights[{}].to[{j}]", r.index), t, &mut problems);
        }
    }
    problems
}

fn in_cycle(rights: &Rights, start: &str, at: &str, depth: usize) -> bool {
    depth < MAX_DEPTH
        && rights.groups.get(at).is_some_and(|members| {
            members.iter().any(|m| match m {
                Party::Group(g) => g == start || in_cycle(rights, start, g, depth + 1),
                _ => false,
            })
        })
}

/// What `lienthong check` points out without failing: no rights at all (every agency may send every type),
/// and routes no right can ever use.
pub fn warnings(config: &Config) -> Vec<Problem> {
    let Some(rights) = Rights::new(config) else {
        return vec![Problem::new(
            "rights",
            "no [[rights]]: every agency may send every message type to every agency",
        )];
    };
    let agencies: Vec<&str> = config.agencies.iter().map(|a| a.code.as_str()).collect();
    let mut warnings = Vec::new();
    for route in &config.routes {
        let pick = |filter: &Option<Vec<String>>| -> Vec<&str> {
            agencies
                .iter()
                .copied()
                .filter(|a| filter.as_ref().is_none_or(|f| f.iter().any(|c| c == a)))
                .collect()
        };
        let senders = pick(&route.from);
        let receivers = pick(&route.to);
        let usable = senders.iter().any(|s| {
            route.types.iter().any(|t| {
                receivers.iter().any(|r| rights.allows(s, t, Some(r)))
                    || (route.to.is_none() && rights.allows(s, t, None))
            })
        });
        if !usable {
            warnings.push(Problem::new(
                format!("routes[{}]", route.index),
                format!(
                    "route `{}`: no right lets any of its senders send its types to its receivers, so it can never be used",
                    route.id
                ),
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rights: &str) -> Config {
        let text = format!(
            "[[agencies]]\ncode = \"000.00.00.H40\"\n[[agencies]]\ncode = \"000.01.30.H40\"\n\
             [[agencies]]\ncode = \"000.02.31.H40\"\n[[agencies]]\ncode = \"000.00.13.H40\"\n{rights}"
        );
        let (c, problems) =
            Config::parse_all(std::path::Path::new("/etc/lienthong/bus.toml"), &text).unwrap();
        assert_eq!(problems, vec![]);
        c
    }

    #[test]
    fn a_right_holds_whichever_code_names_the_agency() {
        let mut c = config(
            r#"
[[rights]]
from = ["000.*.*.H40"]
types = ["dossier.submitted"]
to = ["000.00.13.H40"]
"#,
        );
        c.agencies[3].qd20_code = Some("H40.13".into());
        c.agencies[3].other_codes = vec!["0600123456".into()];
        let r = Rights::new(&c).unwrap();
        for to in ["000.00.13.H40", "H40.13", "0600123456"] {
            assert!(
                r.allows("000.01.30.H40", "dossier.submitted", Some(to)),
                "{to}"
            );
        }
        assert!(!r.allows("000.01.30.H40", "dossier.submitted", Some("H40.14")));
    }

    #[test]
    fn wildcards_groups_and_default_deny() {
        let c = config(
            r#"
[[groups]]
name = "communes"
members = ["000.01.30.H40", "000.02.31.H40"]

[[rights]]
from = ["group:communes"]
types = ["dossier.*"]
to = ["000.00.13.H40"]

[[rights]]
from = ["000.00.00.H40"]
types = ["*"]
"#,
        );
        let r = Rights::new(&c).unwrap();
        assert!(r.allows("000.01.30.H40", "dossier.submitted", Some("000.00.13.H40")));
        assert!(r.allows(
            "000.02.31.H40",
            "dossier.status-changed",
            Some("000.00.13.H40")
        ));
        assert!(!r.allows("000.01.30.H40", "document.edxml", Some("000.00.13.H40")));
        assert!(!r.allows("000.01.30.H40", "dossier.submitted", Some("000.00.00.H40")));
        assert!(!r.allows("000.01.30.H40", "dossier.submitted", None));
        assert!(r.allows("000.00.00.H40", "anything", Some("000.02.31.H40")));
        assert!(!r.allows("000.00.13.H40", "dossier.submitted", Some("000.00.00.H40")));
        let meta = Meta {
            id: "x".into(),
            kind: "dossier.submitted".into(),
            version: 1,
            from: "000.01.30.H40".into(),
            to: vec!["000.00.13.H40".into(), "000.00.00.H40".into()],
            correlation_id: None,
            created_at: String::new(),
        };
        let e = r.check(&meta).unwrap_err();
        assert_eq!((e.code, e.status()), (code::FORBIDDEN, 403));
        assert_eq!(e.details[0].path, "/to/1");
        assert_eq!(
            e.details[0].message,
            "no right for 000.01.30.H40 to send dossier.submitted to 000.00.00.H40"
        );
        assert!(Rights::new(&config("")).is_none());
    }

    #[test]
    fn check_names_unknown_groups_agencies_and_cycles() {
        let text = r#"
[[agencies]]
code = "000.00.00.H40"
[[groups]]
name = "a"
members = ["group:b"]
[[groups]]
name = "b"
members = ["group:a", "000.00.99.H40"]
[[rights]]
from = ["group:nope", "000.*.*.H41"]
types = ["do*ssier"]
"#;
        let (c, _) =
            Config::parse_all(std::path::Path::new("/etc/lienthong/bus.toml"), text).unwrap();
        let ps = problems(&c);
        let has = |path: &str, what: &str| {
            ps.iter()
                .any(|p| p.path == path && p.message.contains(what))
        };
        assert!(
            has("rights[0].from[0]", "no [[groups]] entry is named `nope`"),
            "{ps:?}"
        );
        assert!(has("rights[0].from[1]", "matches no agency"), "{ps:?}");
        assert!(
            has("rights[0].types[0]", "only as the last character"),
            "{ps:?}"
        );
        assert!(has("groups[1].members[1]", "matches no agency"), "{ps:?}");
        assert!(has("groups[0].members", "contains itself"), "{ps:?}");
    }
}
