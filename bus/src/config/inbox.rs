//! `deliver = ["@to"]` and `[[agencies]] inbox`: a route that serves every receiver through its own inbox.
//!
//! With it, onboarding an agency is one file (its agency with `inbox`, its adapter) and no route edit. The
//! price is a promise `check` must keep: every agency such a route can reach has an inbox, or a message for
//! it would be refused at run time.

use super::{Config, Problem, RouteConfig};

impl Config {
    /// `deliver[j]` of route `r` is `@to`: every agency the route can reach needs an inbox.
    pub(super) fn check_to_receivers(&self, r: &RouteConfig, j: usize) -> Vec<Problem> {
        let p = format!("routes[{}]", r.index);
        let has_inbox = |code: &str| {
            self.agencies
                .iter()
                .any(|a| a.code == code && a.inbox.is_some())
        };
        match &r.to {
            Some(to) => to
                .iter()
                .enumerate()
                .filter(|(_, c)| !has_inbox(c))
                .map(|(k, c)| {
                    Problem::new(
                        format!("{p}.to[{k}]"),
                        format!(
                            "agency `{c}` has no `[[agencies]] inbox`, so `deliver = [\"@to\"]` cannot reach it"
                        ),
                    )
                })
                .collect(),
            None => {
                let without: Vec<&str> = self
                    .agencies
                    .iter()
                    .filter(|a| a.inbox.is_none())
                    .map(|a| a.code.as_str())
                    .collect();
                if without.is_empty() {
                    Vec::new()
                } else {
                    vec![Problem::new(
                        format!("{p}.deliver[{j}]"),
                        format!(
                            "`@to` delivers to each receiver's inbox and this route (no `to`) can reach every \
                             agency, but {} have no `[[agencies]] inbox`: give them one or list the route's `to`",
                            without.join(", ")
                        ),
                    )]
                }
            }
        }
    }
}
