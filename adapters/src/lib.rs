//! Adapters for the Liên Thông bus: one module per adapter type, each with its own documented,
//! `deny_unknown_fields` config struct, implementation and tests.
//!
//! [`Factory`] is the closed list of adapter types; the binary hands it to the core, which never depends on
//! this crate.
#![forbid(unsafe_code)]

pub mod dvcqg;
pub mod file_in;
pub mod file_out;
pub mod vxp;
pub mod webhook;

use lienthong_bus::adapter::{AdapterFactory, Built};
use lienthong_bus::config::{AdapterSpec, Config, Problem};

/// Every adapter type this build knows.
pub const TYPES: &[&str] = &["webhook", "file-out", "file-in", "dvcqg", "vxp-pull"];

/// The adapter factory the `lienthong` binary uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct Factory;

impl AdapterFactory for Factory {
    fn types(&self) -> Vec<&'static str> {
        TYPES.to_vec()
    }

    fn check(&self, spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
        match spec.kind.as_str() {
            "webhook" => webhook::check(spec, config),
            "file-out" => file_out::check(spec, config),
            "file-in" => file_in::check(spec, config),
            "dvcqg" => dvcqg::check(spec, config),
            "vxp-pull" => vxp::check(spec, config),
            other => vec![unknown_type(spec, other)],
        }
    }

    fn build(&self, spec: &AdapterSpec, config: &Config) -> Result<Built, Vec<Problem>> {
        match spec.kind.as_str() {
            "webhook" => webhook::build(spec, config),
            "file-out" => file_out::build(spec, config),
            "file-in" => file_in::build(spec, config),
            "dvcqg" => dvcqg::build(spec, config),
            "vxp-pull" => vxp::build(spec, config),
            other => Err(vec![unknown_type(spec, other)]),
        }
    }
}

fn unknown_type(spec: &AdapterSpec, other: &str) -> Problem {
    Problem::new(
        format!("{}.type", spec.path()),
        format!(
            "unknown adapter type `{other}`; known types: {}",
            TYPES.join(", ")
        ),
    )
}

/// The secret in the environment variable `name`, which the adapter option `key` names; a problem at that key
/// when the name is blank or the variable is unset, empty or not UTF-8. The value itself is never in a problem.
pub(crate) fn secret_from_env(
    spec: &AdapterSpec,
    key: &str,
    name: &str,
) -> Result<String, Problem> {
    let path = lienthong_bus::config::join(&spec.path(), key);
    if name.trim().is_empty() {
        return Err(Problem::new(path, "must name an environment variable"));
    }
    let why = match std::env::var(name) {
        Ok(v) if !v.is_empty() => return Ok(v),
        Ok(_) => "is empty",
        Err(std::env::VarError::NotPresent) => "is not set",
        Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
    };
    Err(Problem::new(
        path,
        format!("environment variable `{name}` {why}"),
    ))
}
