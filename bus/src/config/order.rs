//! Per-key order as far as the config decides it: whether an `order_by` pointer is one the bus can follow,
//! which adapters some ordered route reaches (they get partition queues) and with how many partitions, and the
//! warning for retries that outlast RabbitMQ's consumer timeout. What a message's key is and which partition
//! it goes to is `crate::order`, above the config.

use super::{Config, Problem, RouteConfig, TO_RECEIVERS};
use std::collections::BTreeMap;

/// Whether `p` is a JSON pointer (RFC 6901) the bus can order by: starts with `/`, names a field of the
/// envelope, and every `~` is `~0` or `~1`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!(
            "`{p}` is not a JSON pointer into the envelope: it must start with `/` (e.g. \"/payload/case_id\")"
        ));
    };
    let bytes = p.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "`{p}` is not a valid JSON pointer: `~` at byte {i} must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)"
            ));
        }
    }
    let first = unescape(rest.split('/').next().unwrap_or_default());
    match first.as_str() {
        "id" | "type" | "version" | "from" | "correlation_id" => {
            if rest.contains('/') {
                return Err(format!(
                    "`{p}`: `/{first}` is a single value, nothing is under it"
                ));
            }
        }
        "to" => {
            let under: Vec<&str> = rest.split('/').skip(1).collect();
            if under.len() != 1 || under[0].parse::<usize>().is_err() {
                return Err(format!(
                    "`{p}`: under `/to` name one receiver by its position (`/to/0`)"
                ));
            }
        }
        "payload" => {
            if rest == "payload" {
                return Err(format!(
                    "`{p}`: order by a field of the payload (`/payload/case_id`), not the whole payload"
                ));
            }
        }
        other => {
            return Err(format!(
                "`{p}`: the envelope has no field `{other}` (it has id, type, version, from, to, \
                 correlation_id, payload)"
            ));
        }
    }
    Ok(())
}

pub(crate) fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The adapters an ordered route can deliver to: its `deliver` ids, and for `@to` the inbox of every agency
/// its `to` admits (every agency's, without `to`).
fn adapters_of<'a>(config: &'a Config, r: &'a RouteConfig) -> Vec<&'a str> {
    let mut out = Vec::new();
    for d in &r.deliver {
        if d == TO_RECEIVERS {
            for a in &config.agencies {
                let admitted =
                    r.to.as_ref()
                        .is_none_or(|to| a.codes().any(|c| to.iter().any(|t| t == c)));
                if let (true, Some(inbox)) = (admitted, &a.inbox) {
                    out.push(inbox.as_str());
                }
            }
        } else {
            out.push(d.as_str());
        }
    }
    out
}

/// Every adapter some ordered route reaches, with its partition count; and a problem for each ordered route
/// whose `order_partitions` disagrees with an earlier one's at a shared adapter.
pub fn ordered_adapters(config: &Config) -> (BTreeMap<String, u16>, Vec<Problem>) {
    let mut out: BTreeMap<String, (u16, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in config.routes.iter().filter(|r| r.order_by.is_some()) {
        for a in adapters_of(config, r) {
            match out.get(a) {
                Some((n, first)) if *n != r.partitions() => problems.push(Problem::new(
                    format!("routes[{}].order_partitions", r.index),
                    format!(
                        "adapter `{a}` already has {n} order partitions from routes[{first}]; every ordered \
                         route reaching one adapter must give the same number (this one: {})",
                        r.partitions()
                    ),
                )),
                Some(_) => {}
                None => {
                    out.insert(a.to_owned(), (r.partitions(), r.index));
                }
            }
        }
    }
    (
        out.into_iter().map(|(a, (n, _))| (a, n)).collect(),
        problems,
    )
}

/// RabbitMQ closes a consumer whose delivery stays unacknowledged longer than its `consumer_timeout`
/// (default 30 minutes); an ordered route holds a failing message unacknowledged through its retries.
pub const BROKER_CONSUMER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Warnings for ordered routes whose retries can hold one delivery longer than RabbitMQ's default
/// `consumer_timeout`.
pub fn warnings(config: &Config) -> Vec<Problem> {
    config
        .routes
        .iter()
        .filter(|r| r.order_by.is_some())
        .filter_map(|r| {
            let total: std::time::Duration = (1..=r.retry.attempts)
                .filter_map(|n| r.retry.delay_before_retry(n))
                .sum();
            (total >= BROKER_CONSUMER_TIMEOUT).then(|| {
                Problem::new(
                    format!("routes[{}].retry", r.index),
                    format!(
                        "this ordered route can hold a failing message unacknowledged for {} of retries; \
                         RabbitMQ closes a consumer whose delivery stays unacknowledged beyond its \
                         consumer_timeout (default 30 min), which hands the held messages back and restarts \
                         their retries: keep the backoff's total under it or raise consumer_timeout",
                        humantime::format_duration(total)
                    ),
                )
            })
        })
        .collect()
}
