//! Which adapters get a copy of a message: matched on type, sender and addressees, from config alone.
//!
//! A route matches when the message's type is in `types`, its sender is in `from` (if given), and one of its
//! addressees is in `to` (if given). Every matching route contributes its `deliver` adapters; an adapter named
//! by several matching routes still gets one copy (the first matching route, in config order, owns it and its
//! retry policy). No match is an error the sender sees (`no_route`), never a silent drop — and neither is an
//! addressee that no matching route serves ([`Decision::unserved`]), even when others are served.
//!
//! A configured agency may be named by any of its codes (`code`, `qd20_code`, `other_codes`): a route naming
//! it by one matches a message naming it by another ([`Router::with_party_codes`]).

use crate::config::{AgencyConfig, RetryPolicy, RouteConfig};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
struct Route {
    id: String,
    types: HashSet<String>,
    from: Option<HashSet<String>>,
    to: Option<HashSet<String>>,
    deliver: Vec<String>,
    retry: RetryPolicy,
    /// `order_by` and the partition count, when the route keeps per-key order.
    order: Option<(String, u16)>,
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
    /// Positions in the message's `to` of the addressees no matching route serves (a route serves an addressee
    /// when it has no `to`, or its `to` names it).
    pub unserved: Vec<usize>,
    /// (route, receiver) pairs a matching `deliver = ["@to"]` route could not serve: the receiver has no
    /// `[[agencies]] inbox`. Ingress refuses such a message (`no_route` naming the receiver) rather than
    /// deliver it to some receivers and silently not to others.
    pub unreachable: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Agency code → its `[[agencies]] inbox` adapter, for `deliver = ["@to"]`.
    inboxes: HashMap<String, String>,
}

pub use crate::config::TO_RECEIVERS;

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
                    order: r.order_by.clone().map(|p| (p, r.partitions())),
                })
                .collect(),
            inboxes: HashMap::new(),
        }
    }

    /// Lets routes name a configured agency by any of its codes: each route's `from` and `to` get every other
    /// code of the agencies they name.
    pub fn with_party_codes(mut self, agencies: &[AgencyConfig]) -> Self {
        let widen = |set: &mut HashSet<String>| {
            let more: Vec<String> = agencies
                .iter()
                .filter(|a| a.codes().any(|c| set.contains(c)))
                .flat_map(|a| a.codes().map(str::to_owned))
                .collect();
            set.extend(more);
        };
        for r in &mut self.routes {
            r.from.iter_mut().chain(r.to.iter_mut()).for_each(widen);
        }
        self
    }

    /// This router with each agency's inbox adapter (code → adapter id), for `deliver = ["@to"]`.
    pub fn with_inboxes(mut self, inboxes: impl IntoIterator<Item = (String, String)>) -> Self {
        self.inboxes = inboxes.into_iter().collect();
        self
    }

    /// Routes a message of type `kind` from `from` addressed to `to`.
    pub fn route(&self, kind: &str, from: &str, to: &[String]) -> Decision {
        let mut d = Decision::default();
        let mut served = vec![false; to.len()];
        for r in &self.routes {
            if !r.types.contains(kind) {
                continue;
            }
            if let Some(f) = &r.from
                && !f.contains(from)
            {
                continue;
            }
            match &r.to {
                None => served.iter_mut().for_each(|s| *s = true),
                Some(t) => {
                    let mut any = false;
                    for (i, a) in to.iter().enumerate() {
                        if t.contains(a) {
                            served[i] = true;
                            any = true;
                        }
                    }
                    if !any {
                        continue;
                    }
                }
            }
            d.routes.push(r.id.clone());
            for a in &r.deliver {
                if a == TO_RECEIVERS {
                    let admitted = to
                        .iter()
                        .filter(|x| r.to.as_ref().is_none_or(|t| t.contains(*x)));
                    for receiver in admitted {
                        match self.inboxes.get(receiver) {
                            Some(inbox) if !d.targets.iter().any(|t| &t.adapter == inbox) => {
                                d.targets.push(Target {
                                    route: r.id.clone(),
                                    adapter: inbox.clone(),
                                })
                            }
                            Some(_) => {}
                            None => d.unreachable.push((r.id.clone(), receiver.clone())),
                        }
                    }
                    continue;
                }
                if !d.targets.iter().any(|t| &t.adapter == a) {
                    d.targets.push(Target {
                        route: r.id.clone(),
                        adapter: a.clone(),
                    });
                }
            }
        }
        d.unserved = (0..to.len()).filter(|i| !served[*i]).collect();
        d
    }

    /// Whether route `id` exists.
    pub fn has_route(&self, id: &str) -> bool {
        self.routes.iter().any(|r| r.id == id)
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

    /// The order pointer and partition count of route `id`, when it keeps per-key order (`order_by`).
    pub fn order_of(&self, id: &str) -> Option<(&str, u16)> {
        self.routes
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.order.as_ref())
            .map(|(p, n)| (p.as_str(), *n))
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
            order_by: None,
            order_partitions: None,
        }
    }

    const H40: &str = "000.00.00.H40";
    const STP: &str = "000.00.12.H40";
    const SYT: &str = "000.00.13.H40";

    #[test]
    fn at_to_delivers_to_each_receivers_inbox_and_names_those_without_one() {
        let r = Router::new(&[route("inboxes", &["t"], None, None, &["@to"])]).with_inboxes([
            (STP.to_string(), "stp-inbox".to_string()),
            (SYT.to_string(), "syt-inbox".to_string()),
        ]);
        let d = r.route("t", H40, &[STP.into(), SYT.into()]);
        let adapters: Vec<_> = d.targets.iter().map(|t| t.adapter.as_str()).collect();
        assert_eq!(adapters, ["stp-inbox", "syt-inbox"]);
        assert!(d.unreachable.is_empty());
        let d = r.route("t", STP, &[H40.into(), SYT.into()]);
        assert_eq!(d.unreachable, [("inboxes".to_string(), H40.to_string())]);
        // A route's `to` limits which receivers it serves.
        let r = Router::new(&[route("stp-only", &["t"], None, Some(&[STP]), &["@to"])])
            .with_inboxes([(STP.to_string(), "stp-inbox".to_string())]);
        let d = r.route("t", H40, &[STP.into(), SYT.into()]);
        assert_eq!(d.targets.len(), 1);
        assert!(d.unreachable.is_empty());
    }

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

    #[test]
    fn an_addressee_no_route_serves_is_named() {
        let r = Router::new(&[route("stp", &["t"], None, Some(&[STP]), &["y"])]);
        // Served and unserved addressees together: the route matches, and the unserved one is named.
        let d = r.route("t", H40, &[SYT.into(), STP.into(), "G12".into()]);
        assert_eq!(d.routes, vec!["stp"]);
        assert_eq!(d.unserved, vec![0, 2]);
        assert!(r.route("t", H40, &[STP.into()]).unserved.is_empty());
        // A route without `to` serves every addressee.
        let all = Router::new(&[
            route("stp", &["t"], None, Some(&[STP]), &["y"]),
            route("axis", &["t"], None, None, &["z"]),
        ]);
        assert!(
            all.route("t", H40, &[SYT.into(), "G12".into()])
                .unserved
                .is_empty()
        );
        // A route of another type serves nobody.
        assert_eq!(r.route("u", H40, &[STP.into()]).unserved, vec![0]);
    }

    #[test]
    fn routes_name_an_agency_by_any_of_its_codes() {
        let g12 = AgencyConfig {
            index: 0,
            code: "000.00.00.G12".into(),
            name: String::new(),
            token_env: None,
            token_file: None,
            amqp_user: None,
            qd20_code: Some("G12".into()),
            other_codes: vec!["0100109106".into()],
            inbox: None,
            cert_fingerprints: Vec::new(),
            require_mtls: false,
        };
        let r = Router::new(&[
            route("to-g12", &["t"], None, Some(&["000.00.00.G12"]), &["x"]),
            route("from-g12", &["u"], Some(&["0100109106"]), None, &["y"]),
        ])
        .with_party_codes(std::slice::from_ref(&g12));
        for to in ["G12", "000.00.00.G12", "0100109106"] {
            let d = r.route("t", H40, &[to.into()]);
            assert_eq!(
                (d.routes, d.unserved),
                (vec!["to-g12".to_owned()], vec![]),
                "{to}"
            );
        }
        assert_eq!(r.route("u", "000.00.00.G12", &[]).routes, vec!["from-g12"]);
        assert!(r.route("t", H40, &["H37.02.02".into()]).routes.is_empty());
    }

    #[test]
    fn an_inbox_is_reached_by_any_code_of_its_agency() {
        let config = crate::config::Config::parse(
            std::path::Path::new("bus.toml"),
            r#"
[bus]
namespace = "t"
[[agencies]]
code = "000.00.00.G12"
qd20_code = "G12"
other_codes = ["0100109106"]
inbox = "g12-inbox"
[[adapters]]
id = "g12-inbox"
type = "file-out"
dir = "/tmp/x"
[[routes]]
id = "to-inboxes"
types = ["t"]
deliver = ["@to"]
"#,
        )
        .expect("config");
        let r = Router::new(&config.routes)
            .with_party_codes(&config.agencies)
            .with_inboxes(config.inboxes());
        for to in ["G12", "000.00.00.G12", "0100109106"] {
            let d = r.route("t", H40, &[to.into()]);
            assert_eq!(d.targets.len(), 1, "{to}: {d:?}");
            assert_eq!(d.targets[0].adapter, "g12-inbox", "{to}");
            assert!(d.unreachable.is_empty(), "{to}: {d:?}");
        }
        // Named twice by two of its codes, the agency still gets one copy.
        let d = r.route("t", H40, &["G12".into(), "000.00.00.G12".into()]);
        assert_eq!((d.targets.len(), d.unreachable.len()), (1, 0), "{d:?}");
        assert_eq!(r.route("t", H40, &["H37".into()]).unreachable.len(), 1);
    }

    mod properties {
        //! Random route tables and messages against a naive reference: which routes match is decided by the
        //! type/from/to filters alone, in config order; each adapter gets one copy, owned by the first
        //! matching route that delivers to it.

        use super::super::*;
        use proptest::prelude::*;

        /// Small universes, so that filters both hit and miss.
        const TYPES: [&str; 4] = ["t0", "t1", "t2", "t3"];
        const AGENCIES: [&str; 4] = ["a0", "a1", "a2", "a3"];
        const ADAPTERS: [&str; 5] = ["x0", "x1", "x2", "x3", "x4"];
        /// A type no route ever carries.
        const UNROUTED: &str = "t-unrouted";

        fn some_of(universe: &'static [&'static str], max: usize) -> BoxedStrategy<Vec<String>> {
            proptest::sample::subsequence(universe, 0..=max)
                .prop_map(|v| v.into_iter().map(str::to_owned).collect())
                .boxed()
        }

        fn route_config() -> impl Strategy<Value = RouteConfig> {
            (
                some_of(&TYPES, 3),
                proptest::option::of(some_of(&AGENCIES, 3)),
                proptest::option::of(some_of(&AGENCIES, 3)),
                // `deliver` may name an adapter twice: the router must still make one copy.
                proptest::collection::vec(proptest::sample::select(&ADAPTERS[..]), 0..4),
            )
                .prop_map(|(types, from, to, deliver)| RouteConfig {
                    index: 0,
                    id: String::new(),
                    types,
                    from,
                    to,
                    deliver: deliver.into_iter().map(str::to_owned).collect(),
                    retry: RetryPolicy::default(),
                    order_by: None,
                    order_partitions: None,
                })
        }

        fn table() -> impl Strategy<Value = Vec<RouteConfig>> {
            proptest::collection::vec(route_config(), 0..8).prop_map(|mut v| {
                for (i, r) in v.iter_mut().enumerate() {
                    r.index = i;
                    r.id = format!("r{i}");
                }
                v
            })
        }

        /// (type, from, to) of a message.
        fn message() -> impl Strategy<Value = (String, String, Vec<String>)> {
            (
                proptest::sample::select(vec!["t0", "t1", "t2", "t3", UNROUTED]),
                proptest::sample::select(&AGENCIES[..]),
                proptest::collection::vec(proptest::sample::select(&AGENCIES[..]), 0..4),
            )
                .prop_map(|(k, f, t)| {
                    (
                        k.to_owned(),
                        f.to_owned(),
                        t.into_iter().map(str::to_owned).collect(),
                    )
                })
        }

        /// The reference: a route matches when its filters say so, with nothing clever.
        fn matches(r: &RouteConfig, kind: &str, from: &str, to: &[String]) -> bool {
            r.types.iter().any(|t| t == kind)
                && r.from.as_ref().is_none_or(|f| f.iter().any(|a| a == from))
                && r.to
                    .as_ref()
                    .is_none_or(|t| to.iter().any(|a| t.contains(a)))
        }

        fn reference(routes: &[RouteConfig], kind: &str, from: &str, to: &[String]) -> Decision {
            let mut d = Decision::default();
            for r in routes.iter().filter(|r| matches(r, kind, from, to)) {
                d.routes.push(r.id.clone());
                for a in &r.deliver {
                    if d.targets.iter().all(|t| &t.adapter != a) {
                        d.targets.push(Target {
                            route: r.id.clone(),
                            adapter: a.clone(),
                        });
                    }
                }
            }
            // An addressee is served by a matching route that has no `to` or names it.
            d.unserved = (0..to.len())
                .filter(|i| {
                    !routes
                        .iter()
                        .filter(|r| matches(r, kind, from, to))
                        .any(|r| r.to.as_ref().is_none_or(|t| t.contains(&to[*i])))
                })
                .collect();
            d
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn routing_agrees_with_the_filters(routes in table(), (kind, from, to) in message()) {
                let router = Router::new(&routes);
                let d = router.route(&kind, &from, &to);
                let by_id = |id: &str| routes.iter().find(|r| r.id == id).unwrap();

                // A target's adapter appears at most once.
                let mut adapters: Vec<&str> = d.targets.iter().map(|t| t.adapter.as_str()).collect();
                adapters.sort_unstable();
                let n = adapters.len();
                adapters.dedup();
                prop_assert_eq!(adapters.len(), n, "an adapter got two copies: {:?}", d.targets);

                // Every target's route is in `routes`, and delivers to that adapter.
                for t in &d.targets {
                    prop_assert!(d.routes.contains(&t.route), "{:?} not in {:?}", t, d.routes);
                    prop_assert!(by_id(&t.route).deliver.contains(&t.adapter));
                }

                // No route with an unmatched type ever appears.
                for id in &d.routes {
                    prop_assert!(by_id(id).types.contains(&kind), "{} does not carry {}", id, kind);
                }
                if kind == UNROUTED {
                    prop_assert!(d.routes.is_empty() && d.targets.is_empty());
                    prop_assert_eq!(d.unserved.len(), to.len());
                }

                // A route is in `routes` iff its filters match; the targets are exactly the reference's.
                for r in &routes {
                    prop_assert_eq!(
                        d.routes.contains(&r.id),
                        matches(r, &kind, &from, &to),
                        "route {:?}", r
                    );
                }
                prop_assert_eq!(&d, &reference(&routes, &kind, &from, &to));

                // Every adapter of a matching route is served (by some route).
                for id in &d.routes {
                    for a in &by_id(id).deliver {
                        prop_assert!(d.targets.iter().any(|t| &t.adapter == a));
                    }
                }
            }

            #[test]
            fn the_route_table_order_decides_the_owner_not_the_set(
                routes in table(),
                (kind, from, to) in message(),
            ) {
                // Reversing the table changes who owns a copy, never which routes match or which adapters
                // get one.
                let forward = Router::new(&routes).route(&kind, &from, &to);
                let mut reversed = routes.clone();
                reversed.reverse();
                let backward = Router::new(&reversed).route(&kind, &from, &to);
                let mut a: Vec<_> = forward.routes.clone();
                let mut b: Vec<_> = backward.routes.clone();
                a.sort();
                b.sort();
                prop_assert_eq!(a, b);
                let mut a: Vec<_> = forward.targets.iter().map(|t| t.adapter.clone()).collect();
                let mut b: Vec<_> = backward.targets.iter().map(|t| t.adapter.clone()).collect();
                a.sort();
                b.sort();
                prop_assert_eq!(a, b);
            }
        }
    }
}
