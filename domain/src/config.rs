//! The domain's own sections of the bus's config file: `[tracking]` (how dossiers are judged) and `[public]`
//! (the citizens' lookup). The core hands them over as written ([`Config::section`]); these structs are
//! `deny_unknown_fields` like the core's, and their doc comments are the user documentation of each key.

use lienthong_bus::config::{Config, HumanDuration, Problem, clashing_listeners, listen_problem};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The top-level sections this crate owns.
pub const SECTIONS: &[&str] = &["tracking", "public"];

/// `[tracking]`: how dossiers are judged (docs/dossiers.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// An open dossier whose appointment date (`NgayHenTra`) is no further ahead than this is `due_soon`
    /// rather than `on_time`; the same holds for a step against its own deadline. Default `"2d"`.
    #[serde(default = "default_due_soon")]
    pub due_soon: HumanDuration,
}

fn default_due_soon() -> HumanDuration {
    HumanDuration::secs(2 * 24 * 3600)
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            due_soon: default_due_soon(),
        }
    }
}

/// `[public]`: the lookup citizens use to follow their dossier (`GET /public/`, `GET /public/dossiers/{code}`),
/// on a listener of its own so it can face the internet without the admin API. It shows only what a citizen
/// may see (procedure, status, steps with agency names and dates, appointment date, on time or not), never
/// names, ID numbers, addresses, phone numbers, e-mail or documents. At most 1024 connections are open at
/// once, a connection silent for 30 s is closed, and a request gets 10 s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    /// Address of the public listener (`0.0.0.0:8443`, say, behind the province's TLS proxy). Default: none,
    /// no public listener.
    #[serde(default)]
    pub listen: Option<String>,
    /// Lookups allowed per client address, as `"<count>/<sec|min|hour>"`; one more gets 429 with
    /// `Retry-After`. Counted per IPv4 address and per IPv6 /64 network, as the connection's peer (behind a
    /// proxy, every client is the proxy: rate-limit there instead). Default `"30/min"`.
    #[serde(default = "default_rate")]
    pub rate: Rate,
}

fn default_rate() -> Rate {
    Rate {
        count: 30,
        per: Duration::from_secs(60),
    }
}

impl Default for PublicConfig {
    fn default() -> Self {
        Self {
            listen: None,
            rate: default_rate(),
        }
    }
}

/// A rate: `count` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// Parses `"30/min"`, `"5/sec"`, `"1000/hour"`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad =
            || format!("`{s}` is not a rate; write \"<count>/<sec|min|hour>\", e.g. \"30/min\"");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!("`{s}`: the count must be at least 1"));
        }
        Ok(Rate {
            count,
            per: Duration::from_secs(per),
        })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Everything the domain reads from the config file.
#[derive(Debug, Clone, Default)]
pub struct DomainConfig {
    pub tracking: TrackingConfig,
    pub public: PublicConfig,
}

impl DomainConfig {
    /// The domain's sections of `config`, with every problem in them at its key path.
    pub fn read(config: &Config) -> (DomainConfig, Vec<Problem>) {
        let (tracking, mut problems) = config.section::<TrackingConfig>("tracking");
        let (public, more) = config.section::<PublicConfig>("public");
        problems.extend(more);
        if let Some(listen) = public.listen.as_deref() {
            if listen.trim().is_empty() {
                problems.push(Problem::new(
                    "public.listen",
                    "must be an address such as \"0.0.0.0:8443\" (leave the key out for no public listener)",
                ));
            } else {
                problems.extend(listen_problem("public.listen", listen));
                problems.extend(
                    clashing_listeners(&[
                        ("http.listen", &config.http.listen),
                        ("admin.listen", &config.admin.listen),
                        ("public.listen", listen),
                    ])
                    .into_iter()
                    .filter(|p| p.path == "public.listen"),
                );
            }
        }
        (DomainConfig { tracking, public }, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(text: &str) -> (DomainConfig, Vec<String>) {
        let c = Config::parse(Path::new("/etc/lienthong/bus.toml"), text).unwrap();
        let (d, problems) = DomainConfig::read(&c);
        (
            d,
            problems
                .into_iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        )
    }

    #[test]
    fn defaults_apply_when_the_sections_are_absent() {
        let (d, problems) = read("");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(d.tracking.due_soon.get(), Duration::from_secs(172_800));
        assert_eq!(d.public.listen, None);
        assert_eq!(d.public.rate, Rate::parse("30/min").unwrap());
    }

    #[test]
    fn sections_are_read_and_every_problem_has_its_key_path() {
        let (d, problems) = read(
            "[tracking]\ndue_soon = \"36h\"\n[public]\nlisten = \"127.0.0.1:0\"\nrate = \"5/sec\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(d.tracking.due_soon.get(), Duration::from_secs(36 * 3600));
        assert_eq!(d.public.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(
            d.public.rate,
            Rate {
                count: 5,
                per: Duration::from_secs(1)
            }
        );
        let (_, problems) = read(
            "[tracking]\ndue_soon = \"soon\"\ndue_son = \"1d\"\n[public]\nrate = \"30 per minute\"\nlisen = \"x\"\n",
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        for want in [
            "tracking.due_soon: `soon` is not a duration",
            "tracking.due_son: unknown field",
            "public.rate: `30 per minute` is not a rate",
            "public.lisen: unknown field",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want} not in {problems:?}"
            );
        }
    }

    #[test]
    fn rates_are_parsed_or_refused() {
        assert_eq!(
            Rate::parse("1000/hour").unwrap().per,
            Duration::from_secs(3600)
        );
        for bad in ["0/min", "30", "x/min", "30/day", ""] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }
}
