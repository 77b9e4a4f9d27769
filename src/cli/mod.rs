//! Subcommands of the `lienthong` binary, one file each.

pub mod audit;
pub mod demo;
pub mod dlq;
pub mod hash_password;
pub mod run;
pub mod test;

/// Reads an environment variable (the production source of tokens).
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}
