//! The process's file-descriptor limit against what the two listeners may hold.
//!
//! Why: each open connection is a file descriptor. Caps on the listeners keep clients from using them all,
//! but only if the limit (`RLIMIT_NOFILE`) is above the caps plus what the rest of the bus needs; a common
//! soft limit of 1024 is below the ingress cap alone. At start-up the soft limit is raised to the hard
//! limit when it is too low, and a limit that is still too low is reported.

use crate::config::Config;

/// File descriptors kept for everything but the listeners' connections: the broker connections (two, plus
/// up to four for large messages), the state store's pool, adapters' HTTP clients and files, the runtime's
/// own.
pub const RESERVED: u64 = 256;

/// The soft limit to raise to, if any: the hard limit (`Some(None)` = unlimited) when the soft limit `soft` is
/// below `needed` and the hard one is above it. `soft` and `hard` as `getrlimit` gives them (`None` =
/// unlimited).
pub fn raise_to(needed: u64, soft: Option<u64>, hard: Option<u64>) -> Option<Option<u64>> {
    let short = soft.is_some_and(|s| s < needed);
    let higher = hard.is_none_or(|h| soft.is_some_and(|s| h > s));
    (short && higher).then_some(hard)
}

/// Descriptors the listeners' caps and [`RESERVED`] add up to.
pub fn needed(config: &Config) -> u64 {
    (config.http.max_connections as u64)
        .saturating_add(config.admin.max_connections as u64)
        .saturating_add(RESERVED)
}

/// Compares the limit with what `config` needs, raising the soft limit when that helps; logs what it did.
pub fn ensure(config: &Config) {
    let needed = needed(config);
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let shown = |l: Option<u64>| l.map_or("unlimited".to_owned(), |l| l.to_string());
        let mut soft = limit.current;
        if let Some(to) = raise_to(needed, limit.current, limit.maximum) {
            let raised = Rlimit {
                current: to,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(
                        from = %shown(soft),
                        to = %shown(to),
                        "Raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
                    );
                    soft = to;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot raise the open-file limit (RLIMIT_NOFILE)");
                }
            }
        }
        if soft.is_some_and(|s| s < needed) {
            tracing::warn!(
                limit = %shown(soft),
                hard_limit = %shown(limit.maximum),
                needed,
                "The open-file limit (RLIMIT_NOFILE) is below http.max_connections ({}) + \
                 admin.max_connections ({}) + {RESERVED} for the broker, state store and adapters: clients \
                 could use up the descriptors the rest of the bus needs. Raise the limit (ulimit -n, systemd \
                 LimitNOFILE=) or lower the caps",
                config.http.max_connections,
                config.admin.max_connections,
            );
        }
    }
    #[cfg(not(unix))]
    let _ = needed;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit_only_when_it_is_short() {
        assert_eq!(raise_to(1344, Some(20000), Some(20000)), None);
        assert_eq!(raise_to(1344, None, None), None);
        assert_eq!(raise_to(1344, Some(1024), Some(524288)), Some(Some(524288)));
        assert_eq!(raise_to(1344, Some(1024), None), Some(None));
        // As far as it goes, though still short (then a warning follows).
        assert_eq!(raise_to(1344, Some(256), Some(1024)), Some(Some(1024)));
        assert_eq!(raise_to(1344, Some(1024), Some(1024)), None);
    }
}
