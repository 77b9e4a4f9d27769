//! Adapters for the Liên Thông bus: one module per adapter type, each with its own documented,
//! `deny_unknown_fields` options struct, implementation and tests.
//!
//! [`Factory`] builds them from the closed list of adapter types below, each an [`AdapterType`] (one registration
//! ties a type's name, options, check and build together); the binary hands it to the core, which never depends
//! on this crate. Adapters read secrets only through [`Context::secret`], from the environment the core was
//! handed. The adapters that call out over HTTP share one client policy (`http_client.rs`: no redirect is ever
//! followed, so no credential is carried to another host).
#![forbid(unsafe_code)]

pub mod dvcqg;
pub mod file_in;
pub mod file_out;
#[doc(hidden)]
pub mod fuzzing;
mod http_client;
pub mod mailbox;
mod registry;
pub mod vxp;
pub mod webhook;

use lienthong_bus::adapter::{AdapterFactory, Built};
use lienthong_bus::config::{AdapterSpec, Config, Problem};
pub use registry::{AdapterType, Context};
use registry::{Registered, Registration};

/// Every adapter type this build knows, in the order `lienthong check` lists them.
static TYPES: &[&dyn Registration] = &[
    &Registered::<webhook::WebhookConfig>::TYPE,
    &Registered::<file_out::FileOutConfig>::TYPE,
    &Registered::<file_in::FileInConfig>::TYPE,
    &Registered::<dvcqg::DvcqgConfig>::TYPE,
    &Registered::<vxp::VxpPullConfig>::TYPE,
    &Registered::<mailbox::MailboxConfig>::TYPE,
];

/// The adapter factory the `lienthong` binary uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct Factory;

impl Factory {
    /// The registration of `spec`'s type, or the problem naming the known ones.
    fn find(spec: &AdapterSpec) -> Result<&'static dyn Registration, Problem> {
        TYPES
            .iter()
            .copied()
            .find(|t| t.name() == spec.kind)
            .ok_or_else(|| {
                let known: Vec<_> = TYPES.iter().map(|t| t.name()).collect();
                Problem::new(
                    format!("{}.type", spec.path()),
                    format!(
                        "unknown adapter type `{}`; known types: {}",
                        spec.kind,
                        known.join(", ")
                    ),
                )
            })
    }
}

impl AdapterFactory for Factory {
    fn types(&self) -> Vec<&'static str> {
        TYPES.iter().map(|t| t.name()).collect()
    }

    fn check(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Problem> {
        match Self::find(spec) {
            Ok(t) => t.check(&Context::new(spec, config, env)),
            Err(p) => vec![p],
        }
    }

    fn build(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Built, Vec<Problem>> {
        Self::find(spec)
            .map_err(|p| vec![p])?
            .build(&Context::new(spec, config, env))
    }
}

/// `Factory`'s `check` and `build` with the process environment, as `lienthong check` and `run` call them.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    fn process_env(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    pub(crate) fn check(spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
        Factory.check(spec, config, &process_env)
    }

    pub(crate) fn build(spec: &AdapterSpec, config: &Config) -> Result<Built, Vec<Problem>> {
        Factory.build(spec, config, &process_env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_listed_once_in_order() {
        assert_eq!(
            Factory.types(),
            [
                "webhook", "file-out", "file-in", "dvcqg", "vxp-pull", "mailbox"
            ]
        );
    }

    #[test]
    fn an_unknown_type_is_named_with_the_known_ones() {
        let text = "[[adapters]]\nid = \"x\"\ntype = \"ftp-out\"\n";
        let config = Config::parse(std::path::Path::new("/etc/lienthong/bus.toml"), text).unwrap();
        let problems = testing::check(&config.adapters[0], &config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "adapters[0].type");
        assert_eq!(
            problems[0].message,
            "unknown adapter type `ftp-out`; known types: webhook, file-out, file-in, dvcqg, vxp-pull, mailbox"
        );
        let Err(problems) = testing::build(&config.adapters[0], &config) else {
            panic!("an unknown type was built")
        };
        assert_eq!(problems[0].path, "adapters[0].type");
    }

    /// Secrets come from the environment the factory is handed, never from the process environment.
    #[test]
    fn secrets_are_read_from_the_injected_environment() {
        let text = "[[agencies]]\ncode = \"000.00.00.H40\"\n[[adapters]]\nid = \"vxp\"\ntype = \"vxp-pull\"\n\
                    base_url = \"https://vxp.example.gov.vn/api\"\nsystem_id = \"s\"\nagency = \"000.00.00.H40\"\n\
                    secret_env = \"LT_TEST_INJECTED_ONLY_9C1E\"\n";
        let config = Config::parse(std::path::Path::new("/etc/lienthong/bus.toml"), text).unwrap();
        let spec = &config.adapters[0];
        let injected = |name: &str| (name == "LT_TEST_INJECTED_ONLY_9C1E").then(|| "k".to_owned());
        assert_eq!(Factory.check(spec, &config, &injected), vec![]);
        assert!(Factory.build(spec, &config, &injected).is_ok());
        let empty = |_: &str| Some(String::new());
        let problems = Factory.check(spec, &config, &empty);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "adapters[0].secret_env");
        assert_eq!(
            problems[0].message,
            "environment variable `LT_TEST_INJECTED_ONLY_9C1E` is empty"
        );
        // The process environment does not have it.
        assert_eq!(testing::check(spec, &config).len(), 1);
    }
}
