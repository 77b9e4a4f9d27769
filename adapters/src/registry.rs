//! One registration per adapter type: the type's name, its options struct, its check and its build are tied
//! together by implementing [`AdapterType`] on the options struct, so adding a type is one `impl` and one line
//! in the crate's list of types, and no string is matched anywhere else.
//!
//! [`Context`] is what checking or building one `[[adapters]]` table may look at, including the only way an
//! adapter reads a secret ([`Context::secret`]): through the environment the core was handed (the process
//! environment in production, an injected one in tests and the demo), never `std::env` directly.

use lienthong_bus::adapter::Built;
use lienthong_bus::config::{AdapterSpec, Config, Problem, join};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// What checking or building one adapter sees: its `[[adapters]]` table, the whole config, and the environment
/// secrets are read from.
pub struct Context<'a> {
    pub spec: &'a AdapterSpec,
    pub config: &'a Config,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Context<'a> {
    pub fn new(
        spec: &'a AdapterSpec,
        config: &'a Config,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Self { spec, config, env }
    }

    /// The key path of this adapter's option `key` (`adapters[2].url`), for problems.
    pub fn at(&self, key: &str) -> String {
        join(&self.spec.path(), key)
    }

    /// The secret in the environment variable `name`, which this adapter's option `key` names; a problem at
    /// that key when the name is blank or the variable is unset or empty. The value itself is never in a
    /// problem.
    pub fn secret(&self, key: &str, name: &str) -> Result<String, Problem> {
        if name.trim().is_empty() {
            return Err(Problem::new(
                self.at(key),
                "must name an environment variable",
            ));
        }
        let why = match (self.env)(name) {
            Some(v) if !v.is_empty() => return Ok(v),
            Some(_) => "is empty",
            None => "is not set",
        };
        Err(Problem::new(
            self.at(key),
            format!("environment variable `{name}` {why}"),
        ))
    }
}

/// An adapter type, implemented by its options struct: the `[[adapters]]` table minus `id` and `type`,
/// deserialized with `#[serde(deny_unknown_fields)]` and documented field by field (those doc comments are the
/// user documentation of its keys).
pub trait AdapterType: DeserializeOwned {
    /// The `type = "..."` value that selects it.
    const NAME: &'static str;
    /// Every problem with these options, each at its key path; nothing is started or created.
    fn check(&self, cx: &Context<'_>) -> Vec<Problem>;
    /// Builds the adapter; called only after `check` found nothing, but must still refuse (not panic on) what
    /// it cannot build.
    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>>;
}

/// An [`AdapterType`] as the crate's list of types holds it: options parsed from the table, then checked or
/// built.
pub(crate) trait Registration: Sync {
    fn name(&self) -> &'static str;
    fn check(&self, cx: &Context<'_>) -> Vec<Problem>;
    fn build(&self, cx: &Context<'_>) -> Result<Built, Vec<Problem>>;
}

/// The registration of `T`: `&Registered::<T>::TYPE` in the list.
pub(crate) struct Registered<T>(PhantomData<fn() -> T>);

impl<T> Registered<T> {
    pub(crate) const TYPE: Self = Self(PhantomData);
}

impl<T: AdapterType> Registration for Registered<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        // A bad value does not hide the adapter's other problems: the options are read around it.
        let (options, mut problems) = cx.spec.salvage_options::<T>();
        if let Some(options) = options {
            let more: Vec<Problem> = options
                .check(cx)
                .into_iter()
                .filter(|p| !problems.iter().any(|q| q.path == p.path))
                .collect();
            problems.extend(more);
        }
        problems
    }

    fn build(&self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        cx.spec.parse_options::<T>().map_err(|p| vec![p])?.build(cx)
    }
}
