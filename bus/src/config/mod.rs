//! The operator's one TOML file: agencies, adapters, routes, and the bus's own settings.
//!
//! Every struct here is `deny_unknown_fields` and its doc comments are the user documentation of each key
//! (README "Configuration" summarises them in a table and points here). Loading never stops at the first mistake: each
//! section and each array element is deserialized on its own, a bad key is reported and read around (see
//! `load.rs`), and every [`Problem`] is collected with its key path, then cross-references (routes → adapters, `from`/`to` → agencies, types → schemas) are checked.
//! Adapter-specific keys are checked by the adapter's own factory (see [`crate::adapter::AdapterFactory`]) so the
//! core never depends on adapters.

mod broker_url;
mod bus;
pub mod codes;
mod duration;
mod evidence;
mod in_force;
mod inbox;
mod include;
mod listen;
mod load;
mod operator;
pub mod order;
mod problem;
mod redact;
mod rights;
mod route;
mod tls;

pub use broker_url::BrokerUrls;
pub use bus::BusConfig;
pub use duration::HumanDuration;
pub use evidence::EvidenceConfig;
pub use in_force::ConfigInForce;
pub use include::{INCLUDABLE, Origins};
pub use listen::{AdminConfig, HttpConfig, ListenerLimits, clashing_listeners, listen_problem};
pub use load::CORE_SECTIONS;
pub(crate) use load::add_unless_explained;
pub use operator::OperatorConfig;
pub use problem::{ConfigErrors, Problem, deserialize_at, join};
pub use redact::redact_url;
pub use rights::{GroupConfig, RightConfig};
pub use route::{RetryPolicy, RouteConfig, TO_RECEIVERS};
pub use tls::TlsConfig;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// `[state]`: the durable store behind idempotency, delivery de-duplication and the dead-letter parking lot.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `sqlite://PATH` (relative to this config file) or `postgres://...`. Default: a SQLite file
    /// `lienthong-state.db` next to the config. Use PostgreSQL when several bus processes share one broker.
    #[serde(default)]
    pub url: Option<String>,
    /// How long idempotency keys and delivery records are kept. A client resubmitting the same `id` after this
    /// is treated as new. Default `"7d"`. Dead-letter records are kept until purged.
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
}
fn default_retention() -> HumanDuration {
    HumanDuration::secs(7 * 24 * 3600)
}
impl Default for StateConfig {
    fn default() -> Self {
        Self {
            url: None,
            retention: default_retention(),
        }
    }
}

/// `[[agencies]]`: who may send. Every sender is an agency; its systems prove who they are with a token (HTTP)
/// or their RabbitMQ user (AMQP).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyConfig {
    /// Position in `[[agencies]]` (for key paths), set by the loader.
    #[serde(skip)]
    pub index: usize,
    /// The agency's code, e.g. `000.00.00.H40`. Validated by the domain's rule for party codes (with the
    /// provincial domain, the national agency code format `NNN.NN.NN.Xnn`; see docs/qcvn102.md).
    pub code: String,
    /// Human name, shown in logs, the admin API and whatever the plugin shows of agencies.
    #[serde(default)]
    pub name: String,
    /// Env var holding the bearer token this agency's systems present on HTTP ingress. Read at startup; the
    /// token itself never appears in config or logs. Absent = this agency cannot use HTTP ingress. Each agency
    /// needs a token of its own: two agencies naming the same variable, or variables holding the same token
    /// (or the admin token), are refused by `check` and at start.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the bearer token instead of an env var (its content, surrounding whitespace ignored; at
    /// most 4 KiB): absolute, or relative to the folder of the config file that names it (a commune's own
    /// file, or the main one). Read at start and again at every reload, so an agency onboarded by a reload (a
    /// commune's new file, then SIGHUP) brings its token with it, which an env var cannot do for a process
    /// already running. Set `token_env` or `token_file`, not both;
    /// the same rules hold (a token of its own, never the admin token). Keep the file readable by the bus's
    /// user only.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// RabbitMQ user name this agency's systems connect as. A message on `<namespace>.ingress` whose
    /// `user_id` property is this user is from this agency (RabbitMQ itself refuses a `user_id` that is not
    /// the connection's user). Absent = this agency cannot use AMQP ingress. One user maps to one agency: a
    /// user named by two agencies is refused.
    #[serde(default)]
    pub amqp_user: Option<String>,
    /// The agency's code in the QĐ 20/2020/QĐ-TTg scheme, for adapters whose peer speaks that scheme. It is
    /// also one of the agency's codes (see `other_codes`).
    #[serde(default)]
    pub qd20_code: Option<String>,
    /// Other codes this agency is known by — a tax code, a legacy code — e.g.
    /// `other_codes = ["020100107370"]`. Default none. On every ingress the sender (an envelope's `from`, an
    /// XML package's sender element) may be the agency's `code`, its `qd20_code` or one of these; the bus then names the
    /// sender by `code` (routes, headers, idempotency, the DLQ), while the message's own bytes stay as written.
    /// A route's `from` and `to` match a message that names the agency by any of its codes. One code names one
    /// agency: a code claimed by two agencies (as `code`, `qd20_code` or here) is refused, since either could
    /// then pose as the other. Each must be a code the domain accepts for a receiver (with the provincial
    /// domain: 1 to 64 ASCII letters, digits, '.', '-', '_'; docs/qcvn102.md, "Agency codes").
    #[serde(default)]
    pub other_codes: Vec<String>,
    /// The id of the adapter that delivers to this agency: a route with `deliver = ["@to"]` gives each
    /// receiver in a message's `to` its copy through its own inbox, so onboarding an agency (a commune in
    /// a file of its own, see `include`) needs no route edit. Must name an `[[adapters]]` id. Absent = a
    /// `@to` route cannot deliver to this agency: `check` refuses a `@to` route that can reach it, and at
    /// run time a message for it through such a route is refused with 422 `no_route` naming it.
    #[serde(default)]
    pub inbox: Option<String>,
    /// SHA-256 fingerprints (64 hex digits, `:` separators allowed) of client certificates that identify
    /// this agency on a listener with `[http.tls] client_ca`. A certificate may also identify an agency
    /// through the plugin (with the provincial domain, a subjectAltName URI `urn:qcvn102:<code>`). Default
    /// none.
    #[serde(default)]
    pub cert_fingerprints: Vec<String>,
    /// When true, this agency's bearer token is refused (401 `unauthenticated`): its systems must present a
    /// client certificate that identifies it (needs `[http.tls] client_ca`). Default false.
    #[serde(default)]
    pub require_mtls: bool,
}

/// `[[adapters]]` as the core sees it: an id, a type, and the adapter's own keys (checked by its factory).
#[derive(Debug, Clone)]
pub struct AdapterSpec {
    /// Position in the `[[adapters]]` array (for key paths: `adapters[2].url`).
    pub index: usize,
    /// Unique adapter id; routes name it in `deliver`; its queue is `<namespace>.deliver.<id>`.
    pub id: String,
    /// Adapter type (`webhook`, `file-out`, `file-in`, `dvcqg`, ...).
    pub kind: String,
    /// Every other key of the table, for the adapter's own typed config.
    pub options: toml::Table,
    /// Folder of the config file; relative paths in adapter options are relative to it.
    pub base_dir: PathBuf,
}

impl AdapterSpec {
    /// Key path of this adapter (`adapters[2]`).
    pub fn path(&self) -> String {
        format!("adapters[{}]", self.index)
    }

    /// Deserializes the adapter's own options into its typed, `deny_unknown_fields` config.
    pub fn parse_options<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        deserialize_at(&self.path(), toml::Value::Table(self.options.clone()))
    }

    /// As [`Self::parse_options`], but reading on past bad keys: every key serde refuses is a problem, and the
    /// options are still had (those keys at their defaults) when nothing required is lost, so the adapter's
    /// own check can report its problems beside them; `check` then shows them all at once.
    pub fn salvage_options<T: serde::de::DeserializeOwned>(&self) -> (Option<T>, Vec<Problem>) {
        let mut problems = Vec::new();
        let options = load::salvage(
            &self.path(),
            toml::Value::Table(self.options.clone()),
            &mut problems,
        );
        (options, problems)
    }

    /// Resolves a path option relative to the config file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve(&self.base_dir, p)
    }
}

/// The whole config, typed, with the file it came from.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub base_dir: PathBuf,
    pub bus: BusConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub state: StateConfig,
    pub agencies: Vec<AgencyConfig>,
    pub adapters: Vec<AdapterSpec>,
    pub routes: Vec<RouteConfig>,
    /// `[[rights]]`: who may send what to whom; none = every agency may send every type.
    pub rights: Vec<RightConfig>,
    /// `[[groups]]`: named sets of agencies for `[[rights]]`.
    pub groups: Vec<GroupConfig>,
    /// `[evidence]`: the signed evidence log; None = none is kept.
    pub evidence: Option<EvidenceConfig>,
    /// `[[operators]]`: who may log in to the operator console (`/ui/` on the admin listener).
    pub operators: Vec<OperatorConfig>,
    /// Top-level sections the core does not own, as written: a plugin's (it names them in
    /// [`crate::plugin::Plugin::sections`] and reads them with [`Config::section`]). `lienthong check` and
    /// `run` refuse a section no one owns.
    pub sections: toml::Table,
    /// Top-level `include = ["communes/*.toml", …]`: globs of files, relative to the file that names them,
    /// whose `[[agencies]]`, `[[adapters]]`, `[[routes]]` (and `[[rights]]`, `[[groups]]`) are appended to
    /// this file's, in order (files sorted by name within a glob), and read as if written here. An included
    /// file may include others (relative to itself); nothing else may be in it. A name without a wildcard
    /// must exist; a glob may match nothing. A file included twice is refused. This field records where
    /// each included element came from, so that problems are told in its file and at its key path there.
    pub origins: Origins,
}

impl Config {
    /// `p` as written in the config: absolute, or relative to the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve(&self.base_dir, p)
    }

    /// Absolute-or-config-relative schemas folder.
    pub fn schemas_dir(&self) -> PathBuf {
        resolve(&self.base_dir, &self.bus.schemas_dir)
    }

    /// State store URL with the default applied and relative SQLite paths resolved.
    pub fn state_url(&self) -> String {
        match &self.state.url {
            None => format!(
                "sqlite://{}?mode=rwc",
                self.base_dir.join("lienthong-state.db").display()
            ),
            Some(u) if u.starts_with("sqlite://") => {
                let rest = &u["sqlite://".len()..];
                if rest.starts_with('/') || rest.starts_with(':') {
                    u.clone()
                } else {
                    format!("sqlite://{}", self.base_dir.join(rest).display())
                }
            }
            Some(u) => u.clone(),
        }
    }

    /// The broker layout new copies are written in: `[bus] copy_layout`, or when unset 2 on SQLite (one process)
    /// and 1 on any other state store (several processes, possibly of different builds mid-upgrade).
    pub fn copy_layout(&self) -> u8 {
        self.bus.copy_layout.unwrap_or_else(|| {
            if self.state_url().starts_with("sqlite:") {
                crate::wire::version::LAYOUT_VERSION
            } else {
                1
            }
        })
    }

    pub fn route(&self, id: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.id == id)
    }

    /// `[[agencies]] qd20_code` → `code`: for adapters whose peer names agencies in the QĐ 20/2020 scheme.
    pub fn qd20_to_qcvn102(&self) -> std::collections::HashMap<String, String> {
        self.agencies
            .iter()
            .filter_map(|a| a.qd20_code.as_ref().map(|q| (q.clone(), a.code.clone())))
            .collect()
    }

    /// The QĐ 20/2020 code of agency `code`, when configured.
    pub fn qd20_of(&self, code: &str) -> Option<&str> {
        self.agencies
            .iter()
            .find(|a| a.code == code)
            .and_then(|a| a.qd20_code.as_deref())
    }

    /// `[[agencies]] inbox`: agency code → adapter id, for routes delivering to `@to`. Every code of the agency
    /// (`code`, `qd20_code`, `other_codes`) leads to its inbox: senders address receivers by whichever code
    /// their software knows, as routes' `from`/`to` match them.
    pub fn inboxes(&self) -> Vec<(String, String)> {
        self.agencies
            .iter()
            .filter_map(|a| a.inbox.as_ref().map(|i| (a, i)))
            .flat_map(|(a, i)| a.codes().map(move |c| (c.to_owned(), i.clone())))
            .collect()
    }

    pub fn adapter(&self, id: &str) -> Option<&AdapterSpec> {
        self.adapters.iter().find(|a| a.id == id)
    }

    /// Checks that need only the config itself: unique ids, agency codes, routes naming adapters that exist.
    fn cross_check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !is_name(&self.bus.namespace) {
            problems.push(Problem::new(
                "bus.namespace",
                "must be non-empty and use only letters, digits, '-', '_' and '.'",
            ));
        }
        let urls = self.bus.broker_url.urls();
        if urls.is_empty() {
            problems.push(Problem::new(
                "bus.broker_url",
                "the list is empty: name at least one amqp:// or amqps:// URL",
            ));
        }
        for (i, url) in urls.iter().enumerate() {
            let at = if urls.len() == 1 {
                "bus.broker_url".to_owned()
            } else {
                format!("bus.broker_url[{i}]")
            };
            let amqp = url.starts_with("amqp://") || url.starts_with("amqps://");
            if url == "memory://" && urls.len() > 1 {
                problems.push(Problem::new(
                    at,
                    "memory:// (embedded) cannot be one node of a cluster list",
                ));
            } else if !(amqp || url == "memory://") {
                problems.push(Problem::new(
                    at,
                    "must start with amqp:// or amqps://, or be memory:// (embedded, not durable)",
                ));
            }
        }
        if self.bus.quorum_size == Some(0) {
            problems.push(Problem::new("bus.quorum_size", "must be at least 1"));
        }
        if let Some(layout) = self.bus.copy_layout
            && !(1..=crate::wire::version::LAYOUT_VERSION).contains(&layout)
        {
            problems.push(Problem::new(
                "bus.copy_layout",
                format!(
                    "must be 1 or {} (the copy layouts this build writes), not {}",
                    crate::wire::version::LAYOUT_VERSION,
                    layout
                ),
            ));
        }
        if self.bus.prefetch == 0 {
            problems.push(Problem::new("bus.prefetch", "must be at least 1"));
        }
        if self.bus.max_in_flight == 0 {
            problems.push(Problem::new("bus.max_in_flight", "must be at least 1"));
        }
        if self.bus.delivery_limit == 0 {
            problems.push(Problem::new(
                "bus.delivery_limit",
                "must be at least 1 (a message returned to its queue once would be dead-lettered)",
            ));
        }
        if self.http.max_json_depth < 2 {
            problems.push(Problem::new(
                "http.max_json_depth",
                "must be at least 2 (the envelope is one level and an object payload another)",
            ));
        }
        if self.http.max_body_bytes == 0 {
            problems.push(Problem::new(
                "http.max_body_bytes",
                "must be at least 1 (every message would be refused as too large)",
            ));
        }
        problems.extend(operator::problems(&self.operators));
        problems.extend(listen::listen_problem("http.listen", &self.http.listen));
        problems.extend(listen::listen_problem("admin.listen", &self.admin.listen));
        problems.extend(listen::clashing_listeners(&[
            ("http.listen", &self.http.listen),
            ("admin.listen", &self.admin.listen),
        ]));
        problems.extend(self.http.listener_limits().problems());
        problems.extend(self.admin.listener_limits().problems());
        if let Some(u) = &self.state.url
            && !(u.starts_with("sqlite://")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
        {
            problems.push(Problem::new(
                "state.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        let mut codes = HashSet::new();
        let mut first_code = BTreeMap::new();
        let mut users = BTreeMap::new();
        for a in &self.agencies {
            let i = a.index;
            if let Err(e) = codes::check_party_generic(&a.code) {
                problems.push(Problem::new(format!("agencies[{i}].code"), e));
            }
            codes.insert(a.code.as_str());
            if let Some(prev) = first_code.insert(a.code.as_str(), i) {
                first_code.insert(a.code.as_str(), prev);
                problems.push(Problem::new(
                    format!("agencies[{i}].code"),
                    format!(
                        "agency `{}` is listed twice (first at agencies[{prev}])",
                        a.code
                    ),
                ));
            }
            if let Some(q) = &a.qd20_code {
                let ok = !q.is_empty()
                    && q.len() <= 40
                    && q.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
                if !ok {
                    problems.push(Problem::new(
                        format!("agencies[{i}].qd20_code"),
                        "must be a QĐ 20/2020 code such as `H40` or `H40.01` (letters, digits, '.', '-')",
                    ));
                }
            }
            if let Some(u) = &a.amqp_user
                && let Some(prev) = users.insert(u.as_str(), i)
            {
                problems.push(Problem::new(
                    format!("agencies[{i}].amqp_user"),
                    format!("RabbitMQ user `{u}` is already agencies[{prev}]'s; one user maps to one agency"),
                ));
            }
        }
        problems.extend(self.code_problems());
        let any_code: HashSet<&str> = self.agencies.iter().flat_map(|a| a.codes()).collect();
        let mut adapter_ids = HashSet::new();
        let mut first_adapter = BTreeMap::new();
        for a in &self.adapters {
            if !is_name(&a.id) {
                problems.push(Problem::new(
                    format!("{}.id", a.path()),
                    "must be non-empty and use only letters, digits, '-', '_' and '.'",
                ));
            }
            adapter_ids.insert(a.id.as_str());
            if let Some(prev) = first_adapter.insert(a.id.as_str(), a.index) {
                first_adapter.insert(a.id.as_str(), prev);
                problems.push(Problem::new(
                    format!("{}.id", a.path()),
                    format!(
                        "adapter id `{}` is used twice (first at adapters[{prev}])",
                        a.id
                    ),
                ));
            }
        }
        for a in &self.agencies {
            if let Some(inbox) = &a.inbox
                && !adapter_ids.contains(inbox.as_str())
            {
                problems.push(Problem::new(
                    format!("agencies[{}].inbox", a.index),
                    format!(
                        "no adapter with id `{inbox}` (known: {})",
                        list(&adapter_ids)
                    ),
                ));
            }
        }
        let mut route_ids = BTreeMap::new();
        for r in &self.routes {
            let p = format!("routes[{}]", r.index);
            if let Some(prev) = route_ids.insert(r.id.as_str(), r.index) {
                route_ids.insert(r.id.as_str(), prev);
                problems.push(Problem::new(
                    format!("{p}.id"),
                    format!(
                        "route id `{}` is used twice (first at routes[{prev}])",
                        r.id
                    ),
                ));
            }
            if r.types.is_empty() {
                problems.push(Problem::new(
                    format!("{p}.types"),
                    "must name at least one message type",
                ));
            }
            if r.deliver.is_empty() {
                problems.push(Problem::new(
                    format!("{p}.deliver"),
                    "must name at least one adapter (or `@to`)",
                ));
            }
            for (j, d) in r.deliver.iter().enumerate() {
                if d == TO_RECEIVERS {
                    problems.extend(self.check_to_receivers(r, j));
                    continue;
                }
                if !adapter_ids.contains(d.as_str()) {
                    problems.push(Problem::new(
                        format!("{p}.deliver[{j}]"),
                        format!("no adapter with id `{d}` (known: {})", list(&adapter_ids)),
                    ));
                }
            }
            for (key, list_opt) in [("from", &r.from), ("to", &r.to)] {
                for (j, c) in list_opt.iter().flatten().enumerate() {
                    if let Err(e) = codes::check_party_generic(c) {
                        problems.push(Problem::new(format!("{p}.{key}[{j}]"), e));
                    } else if key == "from" && !any_code.contains(c.as_str()) {
                        problems.push(Problem::new(
                            format!("{p}.{key}[{j}]"),
                            format!("agency `{c}` is not in [[agencies]], so it can never send"),
                        ));
                    }
                }
            }
            problems.extend(r.order_problems(&p));
            if r.retry.backoff.is_empty() && r.retry.attempts > 0 {
                problems.push(Problem::new(
                    format!("{p}.retry.backoff"),
                    "must list at least one delay when attempts > 0",
                ));
            }
        }
        problems.extend(order::ordered_adapters(self).1);
        problems
    }
}

fn list(set: &HashSet<&str>) -> String {
    let mut v: Vec<_> = set.iter().copied().collect();
    v.sort();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// True for ids that are safe inside queue names, file names and URLs.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod include_tests;
#[cfg(test)]
mod tests;
