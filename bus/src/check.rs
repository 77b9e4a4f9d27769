//! `lienthong check`: everything that can be known wrong before running, reported all at once.
//!
//! Structure and cross-references come from [`Config::parse`]; this adds what needs more than the file: the
//! schemas compile, every route's types have a schema, each adapter's own keys (via its factory), and that the
//! env vars named for tokens are set.

use crate::adapter::AdapterFactory;
use crate::config::{Config, ConfigErrors, Problem};
use crate::plugin::Plugin;
use crate::schema::SchemaRegistry;
use std::path::Path;

/// Loads `file` and checks everything; the registry is returned for `run`.
pub fn check(
    file: &Path,
    factory: &dyn AdapterFactory,
    plugin: &dyn Plugin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, SchemaRegistry), ConfigErrors> {
    let config = Config::load_with(file, &|c| plugin.check_party(c))?;
    let registry = check_loaded(&config, factory, plugin, env)?;
    Ok((config, registry))
}

/// Checks an already parsed config.
pub fn check_loaded(
    config: &Config,
    factory: &dyn AdapterFactory,
    plugin: &dyn Plugin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SchemaRegistry, ConfigErrors> {
    let mut problems = party_codes(config, plugin);
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
    for spec in &config.adapters {
        problems.extend(factory.check(spec, config));
    }
    match (problems.is_empty(), registry) {
        (true, Some(r)) => Ok(r),
        _ => Err(ConfigErrors {
            file: config.file.clone(),
            problems,
        }),
    }
}

/// Every agency code in the config, judged by the plugin's rule: a config loaded with the core's generic rule
/// (tests, embedders) is judged again here. ([`check`] loads with the plugin's rule, so nothing repeats.)
fn party_codes(config: &Config, plugin: &dyn Plugin) -> Vec<Problem> {
    let mut problems = Vec::new();
    for a in &config.agencies {
        if let Err(e) = plugin.check_party(&a.code) {
            problems.push(Problem::new(format!("agencies[{}].code", a.index), e));
        }
    }
    for r in &config.routes {
        for (key, codes) in [("from", &r.from), ("to", &r.to)] {
            for (j, c) in codes.iter().flatten().enumerate() {
                if let Err(e) = plugin.check_party(c) {
                    problems.push(Problem::new(format!("routes[{}].{key}[{j}]", r.index), e));
                }
            }
        }
    }
    problems
}
