//! The codes a party is known by, and the one place that decides whether a code is one of an agency's.
//!
//! A party has one configured `code` (its identity: tokens, routes and records are bound to it) and may be
//! named by others on the networks the bus connects (`qd20_code`, `other_codes`). Senders write whichever
//! their software knows, so "is the sender the caller?" and "which agency does this receiver code mean?" are
//! answered here and nowhere else; and since a code answered for two agencies would let one pose as the other,
//! a code claimed twice is a config error.

use super::{AgencyConfig, Config, Problem};
use std::collections::HashMap;

/// Longest party code the core accepts without a plugin's opinion.
pub const MAX_PARTY_LEN: usize = 64;

/// The core's own rule for a party code: 1 to [`MAX_PARTY_LEN`] visible ASCII characters, no comma (the
/// broker layout lists receivers comma-separated).
pub fn check_party_generic(code: &str) -> Result<(), String> {
    if code.is_empty()
        || code.len() > MAX_PARTY_LEN
        || !code.bytes().all(|b| b.is_ascii_graphic() && b != b',')
    {
        return Err(format!(
            "`{}` is not a party code (1 to {MAX_PARTY_LEN} visible ASCII characters, no comma)",
            code.chars().take(MAX_PARTY_LEN).collect::<String>()
        ));
    }
    Ok(())
}

impl AgencyConfig {
    /// Every code naming this agency: `code`, then `qd20_code`, then `other_codes`.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.code.as_str())
            .chain(self.qd20_code.as_deref())
            .chain(self.other_codes.iter().map(String::as_str))
    }
}

impl Config {
    /// The agency `code` names, by its `code`, its `qd20_code` or one of its `other_codes`.
    pub fn agency_of_code(&self, code: &str) -> Option<&AgencyConfig> {
        self.agencies.iter().find(|a| a.codes().any(|c| c == code))
    }

    /// Whether `code` is one of agency `agency`'s codes: the test of "the sender is the caller" on every
    /// ingress (`agency` is the authenticated agency's `code`).
    pub fn is_code_of(&self, agency: &str, code: &str) -> bool {
        code == agency || self.agency_of_code(code).is_some_and(|a| a.code == agency)
    }

    /// `code` as the bus names that party: the `code` of the agency it belongs to, or `code` itself when no
    /// configured agency has it.
    pub fn canonical_code<'a>(&'a self, code: &'a str) -> &'a str {
        self.agency_of_code(code)
            .map(|a| a.code.as_str())
            .unwrap_or(code)
    }

    /// Other codes that are well-formed for the core, and no code claimed by two agencies.
    pub(super) fn code_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        // code → (agency index, the key that claims it)
        let mut owner: HashMap<&str, (usize, String)> = HashMap::new();
        for a in &self.agencies {
            let i = a.index;
            for (j, c) in a.other_codes.iter().enumerate() {
                if let Err(e) = check_party_generic(c) {
                    problems.push(Problem::new(format!("agencies[{i}].other_codes[{j}]"), e));
                }
            }
            let keys = std::iter::once(("code".to_owned(), a.code.as_str()))
                .chain(a.qd20_code.as_deref().map(|q| ("qd20_code".to_owned(), q)))
                .chain(
                    a.other_codes
                        .iter()
                        .enumerate()
                        .map(|(j, c)| (format!("other_codes[{j}]"), c.as_str())),
                );
            for (key, c) in keys {
                match owner.get(c) {
                    // The same agency naming a code twice is harmless; two agencies listing one `code` is
                    // reported by the duplicate-agency check.
                    Some((prev, _)) if *prev == i => {}
                    Some((_, _)) if key == "code" && self.agencies.iter().any(|b| b.index != i && b.code == c) => {}
                    Some((prev, prev_key)) => problems.push(Problem::new(
                        format!("agencies[{i}].{key}"),
                        format!(
                            "code `{c}` is already agencies[{prev}].{prev_key}; one code names one agency, or \
                             either could pose as the other"
                        ),
                    )),
                    None => {
                        owner.insert(c, (i, key));
                    }
                }
            }
        }
        problems
    }
}
