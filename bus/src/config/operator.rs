//! `[[operators]]`: the people who may log in to the operator web console (`/ui/` on the admin listener).
//!
//! Why passwords as argon2 hashes in the config: the console must work on a commune's server with nothing but
//! the binary and its file, and a config that leaks (a backup, a support ticket) must not give the passwords
//! away. `lienthong hash-password` makes a hash.

use super::Problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[[operators]]`: one person who may log in to the operator console (`/ui/` on `admin.listen`). The name
/// is recorded in the audit log for every replay and purge done from the console.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Position in `[[operators]]` (for key paths), set by the loader.
    #[serde(skip)]
    pub index: usize,
    /// Login name, e.g. `"nguyen.van.an"`: 1 to 64 characters, no control characters, unique. Shown in the
    /// console and recorded as the actor of what the operator does there.
    pub name: String,
    /// The operator's password as an argon2 hash in PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`),
    /// as printed by `lienthong hash-password` (which reads the password from standard input). Never the
    /// password itself.
    pub password_hash: String,
}

/// Every problem of `[[operators]]`: names empty, too long, with control characters or given twice; hashes
/// that are not argon2 PHC strings.
pub fn problems(operators: &[OperatorConfig]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for o in operators {
        let at = format!("operators[{}]", o.index);
        if o.name.is_empty() || o.name.chars().count() > 64 || o.name.chars().any(char::is_control)
        {
            out.push(Problem::new(
                format!("{at}.name"),
                "must be 1 to 64 characters without control characters",
            ));
        } else if let Some(prev) = seen.insert(o.name.as_str(), o.index) {
            seen.insert(o.name.as_str(), prev);
            out.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "operator `{}` is listed twice (first at operators[{prev}])",
                    o.name
                ),
            ));
        }
        if let Err(e) = crate::ui::password::parse(&o.password_hash) {
            out.push(Problem::new(format!("{at}.password_hash"), e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(Path::new("/tmp/x.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    #[test]
    fn operators_are_checked_at_their_key_paths() {
        let good = crate::ui::password::hash("pw").unwrap();
        assert_eq!(
            problems(&format!(
                "[[operators]]\nname = \"an\"\npassword_hash = \"{good}\"\n"
            )),
            Vec::<String>::new()
        );
        let p = problems(&format!(
            "[[operators]]\nname = \"an\"\npassword_hash = \"hunter2\"\n\
             [[operators]]\nname = \"an\"\npassword_hash = \"{good}\"\n\
             [[operators]]\nname = \"\"\npassword_hash = \"{good}\"\n\
             [[operators]]\nname = \"c\"\npassword_hash = \"{good}\"\npassword = \"x\"\n"
        ));
        let at = |path: &str| p.iter().any(|m| m.starts_with(&format!("{path}:")));
        assert!(at("operators[0].password_hash"), "{p:?}");
        assert!(at("operators[1].name"), "{p:?}");
        assert!(at("operators[2].name"), "{p:?}");
        assert!(at("operators[3].password"), "{p:?}");
        assert_eq!(p.len(), 4, "{p:?}");
    }
}
