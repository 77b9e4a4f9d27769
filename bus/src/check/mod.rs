//! `lienthong check`: everything that can be known wrong before running, reported all at once.
//!
//! Structure and cross-references come from [`Config::load_all`], which reads on past structural mistakes;
//! this adds what needs more than the file: the schemas compile, every route's types have a schema, each
//! adapter's own keys (via its factory), the plugin's own top-level sections (and that every section is
//! someone's), that the env vars named for tokens are set, and that no two agencies share a credential.
//! [`crate::runtime::start`] runs the same checks, so `run` refuses what `check` refuses.

use crate::adapter::AdapterFactory;
use crate::config::{CORE_SECTIONS, Config, ConfigErrors, Problem};
use crate::plugin::Plugin;
use crate::schema::SchemaRegistry;
use std::path::Path;

mod credentials;
pub use credentials::{Credentials, credentials};

/// Loads `file` and checks everything, reporting every problem found in one go (a structural mistake does
/// not hide the rest); the registry is returned for `run`.
pub fn check(
    file: &Path,
    factory: &dyn AdapterFactory,
    plugin: &dyn Plugin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, SchemaRegistry), ConfigErrors> {
    let (config, mut problems) = Config::load_merged(file)?;
    let (more, registry) = findings(&config, factory, plugin, env);
    crate::config::add_unless_explained(&mut problems, more);
    let problems = config.origins.locate(problems);
    match (problems.is_empty(), registry) {
        (true, Some(r)) => Ok((config, r)),
        _ => Err(ConfigErrors {
            file: config.file.clone(),
            problems,
        }),
    }
}

/// What is not wrong but deserves the operator's eye, each at its key path: certificates expiring within
/// [`crate::tls::check::EXPIRY_WARNING_DAYS`], no `[[rights]]` at all, routes no right can ever use.
/// `lienthong check` prints them; they never stop `run`.
pub fn warnings(config: &Config) -> Vec<Problem> {
    let mut w = crate::tls::check::warnings(config, time::OffsetDateTime::now_utc());
    w.extend(crate::rights::warnings(config));
    w.extend(crate::order::warnings(config));
    w
}

/// Checks an already parsed config.
pub fn check_loaded(
    config: &Config,
    factory: &dyn AdapterFactory,
    plugin: &dyn Plugin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SchemaRegistry, ConfigErrors> {
    match findings(config, factory, plugin, env) {
        (problems, Some(r)) if problems.is_empty() => Ok(r),
        (problems, _) => Err(ConfigErrors {
            file: config.file.clone(),
            problems: config.origins.locate(problems),
        }),
    }
}

/// Everything wrong beyond the file's own structure, and the schema registry when it loaded.
fn findings(
    config: &Config,
    factory: &dyn AdapterFactory,
    plugin: &dyn Plugin,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Problem>, Option<SchemaRegistry>) {
    let mut problems = sections(config, plugin);
    problems.extend(party_codes(config, plugin));
    let dir = config.schemas_dir();
    let registry = if !dir.is_dir() {
        problems.push(Problem::new(
            "bus.schemas_dir",
            format!("`{}` is not a folder", dir.display()),
        ));
        None
    } else {
        match SchemaRegistry::load(&dir) {
            Ok(r) => Some(r),
            Err(ps) => {
                problems.extend(ps.into_iter().map(|p| {
                    Problem::new(
                        "bus.schemas_dir",
                        format!("{}: {}", dir.join(&p.path).display(), p.message),
                    )
                }));
                None
            }
        }
    };
    if let Some(reg) = &registry {
        let known = reg.types();
        for r in &config.routes {
            for (j, t) in r.types.iter().enumerate() {
                if reg.versions(t).is_empty() {
                    problems.push(Problem::new(
                        format!("routes[{}].types[{j}]", r.index),
                        format!(
                            "no schema for message type `{t}` in {} (known: {})",
                            dir.display(),
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
    }
    for a in &config.agencies {
        if let Some(var) = &a.token_env
            && env(var).filter(|v| !v.is_empty()).is_none()
        {
            problems.push(Problem::new(
                format!("agencies[{}].token_env", a.index),
                format!(
                    "environment variable `{var}` is not set (it holds the agency's bearer token)"
                ),
            ));
        }
    }
    if let Some(var) = &config.admin.token_env
        && env(var).filter(|v| !v.is_empty()).is_none()
    {
        problems.push(Problem::new(
            "admin.token_env",
            format!("environment variable `{var}` is not set"),
        ));
    }
    problems.extend(admin_exposure(config));
    if let Err(p) = crate::state::EvidenceSetup::from_config(config) {
        problems.push(p);
    }
    if let Err(ps) = credentials(config, env) {
        problems.extend(ps);
    }
    problems.extend(crate::tls::check::problems(config));
    problems.extend(crate::rights::problems(config));
    for spec in &config.adapters {
        problems.extend(factory.check(spec, config, env));
    }
    (problems, registry)
}

/// The admin API shows personal data: on an address other hosts can reach it needs the admin token or
/// operators' client certificates.
fn admin_exposure(config: &Config) -> Option<Problem> {
    let admin = &config.admin;
    let guarded =
        admin.token_env.is_some() || admin.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if guarded || is_loopback(&admin.listen) {
        return None;
    }
    Some(Problem::new(
        "admin.listen",
        format!(
            "`{}` is not a loopback address, and the admin API (dossiers, parked payloads, evidence) would be open \
             to anyone who reaches it: set `admin.token_env` or `[admin.tls] client_ca`, or listen on 127.0.0.1",
            admin.listen
        ),
    ))
}

/// Whether `listen` (`host:port`) is on a loopback address (`localhost` counts; a name that must be looked
/// up does not).
fn is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    listen
        .rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

/// Top-level sections beyond the core's: each must be one the plugin owns, and the plugin checks its own.
fn sections(config: &Config, plugin: &dyn Plugin) -> Vec<Problem> {
    let owned = plugin.sections();
    let mut problems = Vec::new();
    for key in config.sections.keys() {
        if !owned.contains(&key.as_str()) {
            let known: Vec<&str> = CORE_SECTIONS.iter().chain(owned).copied().collect();
            problems.push(Problem::new(
                key.clone(),
                format!("unknown key; expected one of: {}", known.join(", ")),
            ));
        }
    }
    problems.extend(plugin.check_config(config));
    problems
}

/// Every agency code in the config, judged by the plugin's rule (the file itself is read with the core's generic
/// rule; a code both refuse is reported once).
fn party_codes(config: &Config, plugin: &dyn Plugin) -> Vec<Problem> {
    let mut problems = Vec::new();
    for a in &config.agencies {
        if let Err(e) = plugin.check_party(&a.code) {
            problems.push(Problem::new(format!("agencies[{}].code", a.index), e));
        }
        for (j, c) in a.other_codes.iter().enumerate() {
            if let Err(e) = plugin.check_receiver(c) {
                problems.push(Problem::new(
                    format!("agencies[{}].other_codes[{j}]", a.index),
                    e,
                ));
            }
        }
    }
    for r in &config.routes {
        for (key, codes) in [("from", &r.from), ("to", &r.to)] {
            for (j, c) in codes.iter().flatten().enumerate() {
                // A sender is one of this bus's agencies (by any of its codes); a receiver may be anyone.
                let judged =
                    if key == "to" || config.agency_of_code(c).is_some_and(|a| a.code != *c) {
                        plugin.check_receiver(c)
                    } else {
                        plugin.check_party(c)
                    };
                if let Err(e) = judged {
                    problems.push(Problem::new(format!("routes[{}].{key}[{j}]", r.index), e));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(agencies: &str) -> Config {
        Config::parse(Path::new("/etc/lienthong/bus.toml"), agencies).unwrap()
    }

    #[test]
    fn loopback_listen_addresses() {
        for a in [
            "127.0.0.1:9090",
            "[::1]:9090",
            "localhost:9090",
            "127.0.0.2:1",
        ] {
            assert!(super::is_loopback(a), "{a}");
        }
        for a in [
            "0.0.0.0:9090",
            "[::]:9090",
            "10.0.0.1:9090",
            "admin.example:9090",
        ] {
            assert!(!super::is_loopback(a), "{a}");
        }
    }

    const TWO: &str = "[[agencies]]\ncode = \"000.00.00.H40\"\ntoken_env = \"A\"\namqp_user = \"u1\"\n\
                       [[agencies]]\ncode = \"000.00.12.H40\"\ntoken_env = \"B\"\namqp_user = \"u2\"\n";

    /// A plugin that owns `[tracking]` and reads it strictly.
    struct OwnsTracking;

    impl Plugin for OwnsTracking {
        fn sections(&self) -> &[&'static str] {
            &["tracking"]
        }
        fn check_config(&self, config: &Config) -> Vec<Problem> {
            #[derive(serde::Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)]
            struct Tracking {
                #[serde(default)]
                due_soon: Option<String>,
                #[serde(default)]
                window: u32,
            }
            config.section::<Tracking>("tracking").1
        }
        fn start(&self, _: &crate::plugin::PluginContext) -> crate::plugin::Hooks {
            Default::default()
        }
    }

    #[test]
    fn a_top_level_section_is_the_plugins_or_refused() {
        let text = format!(
            "{TWO}[tracking]\ndue_son = \"1d\"\nwindow = \"x\"\n[trackin]\ndue_soon = \"1d\"\n"
        );
        let c = config(&text);
        assert!(c.sections.contains_key("tracking"), "kept as written");
        let got: Vec<String> = sections(&c, &OwnsTracking)
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("trackin: unknown key; expected one of: bus, "),
            "{got:?}"
        );
        assert!(
            got[0].ends_with("routes, rights, groups, evidence, operators, tracking"),
            "{got:?}"
        );
        // Both bad keys of the plugin's section, each at its path: one does not hide the other.
        assert!(
            got[1].starts_with("tracking.due_son: unknown field"),
            "{got:?}"
        );
        assert!(got[2].starts_with("tracking.window: "), "{got:?}");
        // Without a plugin that owns it, the section is no one's.
        let alone = sections(&c, &crate::plugin::NoPlugin);
        let paths: Vec<&str> = alone.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["trackin", "tracking"]);
    }
}
