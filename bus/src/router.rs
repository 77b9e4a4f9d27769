//! Which adapters get a copy of a message: matched on type, sender and addressees, from config alone.
//!
//! A route matches when the message's type is in `types`, its sender is in `from` (if given), and one of its
//! addressees is in `to` (if given). Every matching route contributes its `deliver` adapters; an adapter named
//! by several matching routes still gets one copy (the first matching route, in config order, owns it and its
//! retry policy). No match is an error the sender sees (`no_route`), never a silent drop.

use crate::config::{RetryPolicy, RouteConfig};
use std::collections::HashSet;

#[derive(Debug, Clone)]
struct Route {
    id: String,
    types: HashSet<String>,
    from: Option<HashSet<String>>,
    to: Option<HashSet<String>>,
    deliver: Vec<String>,
    retry: RetryPolicy,
}

/// One copy to publish: for this adapter, owned by this route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub route: String,
    pub adapter: String,
}

/// The result of routing one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Every matching route id, in config order.
    pub routes: Vec<String>,
    /// One target per distinct adapter.
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Self {
        let set = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.iter().cloned().collect());
        Self {
            routes: routes
                .iter()
                .map(|r| Route {
                    id: r.id.clone(),
                    types: r.types.iter().cloned().collect(),
                    from: set(&r.from),
                    to: set(&r.to),
                    deliver: r.deliver.clone(),
                    retry: r.retry.clone(),
                })
                .collect(),
        }
    }

    /// Routes a message of type `kind` from `from` addressed to `to`.
    pub fn route(&self, kind: &str, from: &str, to: &[String]) -> Decision {
        let mut d = Decision::default();
        for r in &self.routes {
            if !r.types.contains(kind) {
                continue;
            }
            if let Some(f) = &r.from
                && !f.contains(from)
            {
                continue;
            }
            if let Some(t) = &r.to
                && !to.iter().any(|a| t.contains(a))
            {
                continue;
            }
            d.routes.push(r.id.clone());
            for a in &r.deliver {
                if !d.targets.iter().any(|t| &t.adapter == a) {
                    d.targets.push(Target {
                        route: r.id.clone(),
                        adapter: a.clone(),
                    });
                }
            }
        }
        d
    }

    /// The retry policy of route `id` (default policy if the route no longer exists, e.g. after a config
    /// change while messages were queued).
    pub fn retry_policy(&self, id: &str) -> RetryPolicy {
        self.routes
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.retry.clone())
            .unwrap_or_default()
    }

    /// Every message type some route carries.
    pub fn types(&self) -> HashSet<&str> {
        self.routes
            .iter()
            .flat_map(|r| r.types.iter().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(
        id: &str,
        types: &[&str],
        from: Option<&[&str]>,
        to: Option<&[&str]>,
        deliver: &[&str],
    ) -> RouteConfig {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        RouteConfig {
            index: 0,
            id: id.into(),
            types: v(types),
            from: from.map(v),
            to: to.map(v),
            deliver: v(deliver),
            retry: RetryPolicy::default(),
        }
    }

    const H40: &str = "000.00.00.H40";
    const STP: &str = "000.00.12.H40";
    const SYT: &str = "000.00.13.H40";

    #[test]
    fn matches_on_type_from_and_to() {
        let r = Router::new(&[
            route("a", &["dossier.submitted"], Some(&[H40]), None, &["x"]),
            route("b", &["dossier.submitted"], None, Some(&[STP]), &["y"]),
            route("c", &["dossier.status-changed"], None, None, &["z"]),
        ]);
        let d = r.route("dossier.submitted", H40, &[STP.into()]);
        assert_eq!(d.routes, vec!["a", "b"]);
        assert_eq!(d.targets.len(), 2);
        // matched by `to`, not by `from`
        let d = r.route("dossier.submitted", SYT, &[STP.into()]);
        assert_eq!(d.routes, vec!["b"]);
        // neither
        let d = r.route("dossier.submitted", SYT, &[SYT.into()]);
        assert!(d.routes.is_empty() && d.targets.is_empty());
        assert_eq!(
            r.route("dossier.status-changed", SYT, &[]).routes,
            vec!["c"]
        );
    }

    #[test]
    fn one_copy_per_adapter_owned_by_the_first_route() {
        let r = Router::new(&[
            route("first", &["t"], None, None, &["x", "y"]),
            route("second", &["t"], None, None, &["y", "z"]),
        ]);
        let d = r.route("t", H40, &[]);
        assert_eq!(d.routes, vec!["first", "second"]);
        let owners: Vec<_> = d
            .targets
            .iter()
            .map(|t| (t.adapter.as_str(), t.route.as_str()))
            .collect();
        assert_eq!(
            owners,
            vec![("x", "first"), ("y", "first"), ("z", "second")]
        );
    }

    #[test]
    fn to_filter_needs_an_addressee() {
        let r = Router::new(&[route("b", &["t"], None, Some(&[STP]), &["y"])]);
        assert!(r.route("t", H40, &[]).routes.is_empty());
    }
}
