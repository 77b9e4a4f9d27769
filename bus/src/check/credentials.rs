//! Who may present what: agencies' bearer tokens (from `token_env` or `token_file`) and RabbitMQ users, each
//! mapped to one agency. Built here for ingress and checked by `check`, at start and at every reload, the same
//! way: a credential two agencies would share is refused, since a map keeps only one of them and one agency
//! could then send as the other.

use crate::config::{Config, Problem};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

/// Who presents what: bearer token → agency code, RabbitMQ user → agency code.
#[derive(Debug, Default)]
pub struct Credentials {
    pub tokens: HashMap<String, String>,
    pub amqp_users: HashMap<String, String>,
}

/// Builds the credential maps ingress authenticates with, from the config and the environment. Refused when
/// two agencies would share one: the same `token_env`, two variables holding the same token, or the same
/// `amqp_user` — a map keeps only one of them, so one agency could send as the other. An agency token equal
/// to the admin token is refused too. Messages name the variables and key paths, never a token. Agencies
/// whose token variable is unset are left out (that is reported on its own).
pub fn credentials(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut creds = Credentials::default();
    // token → (agencies[i], where it came from, its key); variable → agencies[i]
    let mut holders: HashMap<String, (usize, String, &str)> = HashMap::new();
    let mut vars: HashMap<&str, usize> = HashMap::new();
    let mut users: HashMap<&str, usize> = HashMap::new();
    let admin = config
        .admin
        .token_env
        .as_deref()
        .and_then(|v| env(v).filter(|t| !t.is_empty()).map(|t| (v, t)));
    for a in &config.agencies {
        let i = a.index;
        // The same variable twice is wrong whatever it holds, set or not.
        let repeated = a
            .token_env
            .as_deref()
            .and_then(|var| match vars.entry(var) {
                Entry::Occupied(first) => Some((var, *first.get())),
                Entry::Vacant(first) => {
                    first.insert(i);
                    None
                }
            });
        if let Some((var, j)) = repeated {
            problems.push(shared(
                format!("agencies[{i}].token_env"),
                format!("`{var}` is also agencies[{j}].token_env"),
            ));
        } else {
            match agency_token(config, a, env) {
                Err(p) => problems.push(p),
                Ok(None) => {}
                Ok(Some(t)) => {
                    let at = format!("agencies[{i}].{}", t.key);
                    if let Some((j, other, key)) = holders.get(&t.token) {
                        problems.push(shared(
                            at,
                            format!(
                                "{} holds the same token as {other} (agencies[{j}].{key})",
                                t.source
                            ),
                        ));
                    } else if let Some((admin_var, _)) =
                        admin.as_ref().filter(|(_, tok)| *tok == t.token)
                    {
                        problems.push(Problem::new(
                            at,
                            format!(
                                "{} holds the same token as `{admin_var}` (admin.token_env); the admin token \
                                 must be no agency's",
                                t.source
                            ),
                        ));
                    } else {
                        creds.tokens.insert(t.token.clone(), a.code.clone());
                        holders.insert(t.token, (i, t.source, t.key));
                    }
                }
            }
        }
        if let Some(u) = &a.amqp_user {
            if let Some(j) = users.get(u.as_str()) {
                problems.push(Problem::new(
                    format!("agencies[{i}].amqp_user"),
                    format!(
                        "RabbitMQ user `{u}` is already agencies[{j}]'s; one user maps to one agency"
                    ),
                ));
            } else {
                users.insert(u, i);
                creds.amqp_users.insert(u.clone(), a.code.clone());
            }
        }
    }
    if problems.is_empty() {
        Ok(creds)
    } else {
        Err(problems)
    }
}

/// Two agencies would share a token.
fn shared(at: String, why: String) -> Problem {
    Problem::new(
        at,
        format!("{why}; each agency needs a token of its own, or one could send as the other"),
    )
}

/// Largest `token_file` read.
const MAX_TOKEN_FILE: u64 = 4096;

/// An agency's bearer token, with where it came from for messages (never the token itself).
struct Token {
    token: String,
    /// "`VAR`" or "`path`".
    source: String,
    /// `token_env` or `token_file`.
    key: &'static str,
}

/// The agency's token from its `token_env` or its `token_file`; `None` when it has neither, or its variable
/// is unset (reported on its own by `check`).
fn agency_token(
    config: &Config,
    a: &crate::config::AgencyConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Token>, Problem> {
    let at = |key: &str| format!("agencies[{}].{key}", a.index);
    match (&a.token_env, &a.token_file) {
        (Some(_), Some(_)) => Err(Problem::new(
            at("token_file"),
            "set `token_env` or `token_file`, not both",
        )),
        (Some(var), None) => Ok(env(var).filter(|t| !t.is_empty()).map(|token| Token {
            token,
            source: format!("`{var}`"),
            key: "token_env",
        })),
        (None, Some(file)) => {
            // Relative to the file that names it: a commune's own file, or the main config.
            let path = match config.origins.of("agencies", a.index) {
                Some((origin, _)) => origin.parent().unwrap_or(Path::new(".")).join(file),
                None => config.resolve(file),
            };
            let unreadable = |why: String| {
                Problem::new(
                    at("token_file"),
                    format!("cannot read the token from `{}`: {why}", path.display()),
                )
            };
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(
                    std::fs::File::open(&path).map_err(|e| unreadable(e.to_string()))?,
                    MAX_TOKEN_FILE + 1,
                ),
                &mut text,
            )
            .map_err(|e| unreadable(e.to_string()))?;
            if text.len() as u64 > MAX_TOKEN_FILE {
                return Err(unreadable(format!("larger than {MAX_TOKEN_FILE} bytes")));
            }
            let token = text.trim();
            if token.is_empty() {
                return Err(unreadable("the file is empty".into()));
            }
            Ok(Some(Token {
                token: token.to_owned(),
                source: format!("`{}`", path.display()),
                key: "token_file",
            }))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(agencies: &str) -> Config {
        Config::parse(Path::new("/etc/lienthong/bus.toml"), agencies).unwrap()
    }

    fn env(key: &str) -> Option<String> {
        match key {
            "A" | "A2" => Some("secret-a".into()),
            "B" => Some("secret-b".into()),
            "ADMIN" => Some("secret-b".into()),
            _ => None,
        }
    }

    const TWO: &str = "[[agencies]]\ncode = \"000.00.00.H40\"\ntoken_env = \"A\"\namqp_user = \"u1\"\n\
                       [[agencies]]\ncode = \"000.00.12.H40\"\ntoken_env = \"B\"\namqp_user = \"u2\"\n";

    #[test]
    fn distinct_credentials_map_to_their_agencies() {
        let c = credentials(&config(TWO), &env).unwrap();
        assert_eq!(c.tokens["secret-a"], "000.00.00.H40");
        assert_eq!(c.tokens["secret-b"], "000.00.12.H40");
        assert_eq!(c.amqp_users["u2"], "000.00.12.H40");
    }

    #[test]
    fn a_shared_token_is_refused_naming_both_entries_and_never_the_token() {
        for (second, want) in [
            (
                "A2",
                "`A2` holds the same token as `A` (agencies[0].token_env)",
            ),
            ("A", "`A` is also agencies[0].token_env"),
        ] {
            let text = TWO.replace("token_env = \"B\"", &format!("token_env = \"{second}\""));
            let problems = credentials(&config(&text), &env).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].path, "agencies[1].token_env");
            assert!(problems[0].message.contains(want), "{:?}", problems[0]);
            assert!(!problems[0].message.contains("secret"), "{:?}", problems[0]);
        }
    }

    #[test]
    fn one_variable_named_by_three_agencies_is_refused_even_unset() {
        let text = TWO
            .replace("token_env = \"B\"", "token_env = \"UNSET\"")
            .replace("token_env = \"A\"", "token_env = \"UNSET\"")
            + "[[agencies]]\ncode = \"000.00.13.H40\"\ntoken_env = \"UNSET\"\n";
        let problems = credentials(&config(&text), &env).unwrap_err();
        let got: Vec<_> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "agencies[1].token_env");
        assert_eq!(got[1].0, "agencies[2].token_env");
        assert!(
            got[1]
                .1
                .starts_with("`UNSET` is also agencies[0].token_env"),
            "{got:?}"
        );
    }

    #[test]
    fn a_token_equal_to_the_admin_token_is_refused() {
        let text = format!("[admin]\ntoken_env = \"ADMIN\"\n{TWO}");
        let problems = credentials(&config(&text), &env).unwrap_err();
        assert_eq!(problems[0].path, "agencies[1].token_env");
        assert!(problems[0].message.contains("admin.token_env"));
    }

    #[test]
    fn a_token_file_is_read_and_judged_like_a_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xa.token");
        std::fs::write(&file, "  secret-file\n").unwrap();
        let with_file = |token_file: &str| {
            let text = TWO.replace(
                "token_env = \"B\"",
                &format!("token_file = \"{token_file}\""),
            );
            Config::parse(&dir.path().join("bus.toml"), &text).unwrap()
        };
        // Relative to the config's folder; whitespace around the token ignored.
        let c = credentials(&with_file("xa.token"), &env).unwrap();
        assert_eq!(c.tokens["secret-file"], "000.00.12.H40");
        // The same token as another agency's variable: refused, naming both, never the token.
        std::fs::write(&file, "secret-a").unwrap();
        let problems = credentials(&with_file("xa.token"), &env).unwrap_err();
        assert_eq!(problems[0].path, "agencies[1].token_file");
        assert!(
            problems[0]
                .message
                .contains("holds the same token as `A` (agencies[0].token_env)"),
            "{problems:?}"
        );
        assert!(!problems[0].message.contains("secret"), "{problems:?}");
        // Missing, empty, or beside `token_env`: each a problem at the key.
        std::fs::write(&file, " \n").unwrap();
        for (text, want) in [
            (with_file("missing.token"), "cannot read the token"),
            (with_file("xa.token"), "empty"),
        ] {
            let problems = credentials(&text, &env).unwrap_err();
            assert_eq!(problems[0].path, "agencies[1].token_file");
            assert!(problems[0].message.contains(want), "{problems:?}");
        }
        let both = TWO.replace(
            "token_env = \"B\"",
            "token_env = \"B\"\ntoken_file = \"xa.token\"",
        );
        let problems = credentials(&config(&both), &env).unwrap_err();
        assert!(problems[0].message.contains("not both"), "{problems:?}");
    }

    #[test]
    fn a_shared_amqp_user_is_refused() {
        let mut c = config(TWO);
        // Config::parse already refuses it; the credential maps must not depend on that.
        c.agencies[1].amqp_user = Some("u1".into());
        let problems = credentials(&c, &env).unwrap_err();
        assert_eq!(problems[0].path, "agencies[1].amqp_user");
        assert!(problems[0].message.contains("agencies[0]"));
    }
}
