//! `mailbox`: a pull mailbox for an agency whose system cannot receive (behind NAT, no webhook).
//!
//! Why: many commune and district systems can only call out. Their messages wait in the adapter's own durable
//! quorum queue (`<namespace>.deliver.<id>`), and the agency fetches and acknowledges them over the ingress
//! listener with its own credentials (`GET /v1/inbox`, …; the core's [`lienthong_bus::mailbox`]). This type only
//! reads and checks its options: there is no sink, nothing is pushed anywhere.

use crate::registry::{AdapterType, Context};
use lienthong_bus::adapter::{Built, MailboxSpec};
use lienthong_bus::config::{HumanDuration, Problem};
use serde::Deserialize;

/// `type = "mailbox"`: messages routed here wait until their agency fetches and acknowledges them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The agency (its `code` in `[[agencies]]`) that reads this mailbox. Default: the one agency whose
    /// `[[agencies]] inbox` names this adapter. One mailbox per agency.
    #[serde(default)]
    pub agency: Option<String>,
    /// How long a fetched message (`GET /v1/inbox/{id}`) stays out of the listing while the agency works on it;
    /// not acknowledged by then, it is offered again. Each fetch renews it. Default `"5m"`.
    #[serde(default = "default_lease")]
    pub lease: HumanDuration,
    /// At most this many messages are held for listing at once (1 to 1000); the others wait in the queue
    /// and come forward as held ones are acknowledged. Default 100.
    #[serde(default = "default_window")]
    pub window: u16,
}

fn default_lease() -> HumanDuration {
    HumanDuration::secs(300)
}

fn default_window() -> u16 {
    100
}

impl MailboxConfig {
    /// The agency this mailbox is for, or the problems that leave it unknown.
    fn agency(&self, cx: &Context<'_>) -> Result<String, Problem> {
        let config = cx.config;
        if let Some(code) = &self.agency {
            return config
                .agencies
                .iter()
                .find(|a| &a.code == code)
                .map(|a| a.code.clone())
                .ok_or_else(|| {
                    Problem::new(
                        cx.at("agency"),
                        format!("no agency with code `{code}` in [[agencies]]"),
                    )
                });
        }
        let inboxes: Vec<&str> = config
            .agencies
            .iter()
            .filter(|a| a.inbox.as_deref() == Some(cx.spec.id.as_str()))
            .map(|a| a.code.as_str())
            .collect();
        match inboxes[..] {
            [one] => Ok(one.to_owned()),
            [] => Err(Problem::new(
                cx.at("agency"),
                "required: the agency that reads this mailbox (or name this adapter as one agency's `inbox`)",
            )),
            _ => Err(Problem::new(
                cx.at("agency"),
                format!(
                    "required: several agencies name this adapter as their `inbox` ({}); say whose mailbox it is",
                    inboxes.join(", ")
                ),
            )),
        }
    }

    fn spec(&self, cx: &Context<'_>) -> Result<MailboxSpec, Vec<Problem>> {
        let mut problems = Vec::new();
        let agency = self.agency(cx).map_err(|p| problems.push(p)).ok();
        if self.lease.get().is_zero() {
            problems.push(Problem::new(cx.at("lease"), "must be longer than 0s"));
        }
        if !(1..=1000).contains(&self.window) {
            problems.push(Problem::new(cx.at("window"), "must be 1 to 1000"));
        }
        if let Some(agency) = &agency {
            // Another mailbox of the same agency: `/v1/inbox` would not know which one to read.
            for other in &cx.config.adapters {
                if other.id == cx.spec.id || other.kind != Self::NAME {
                    continue;
                }
                let theirs = other
                    .parse_options::<MailboxConfig>()
                    .ok()
                    .and_then(|o| o.agency(&Context::new(other, cx.config, &|_| None)).ok());
                if theirs.as_deref() == Some(agency.as_str()) {
                    problems.push(Problem::new(
                        cx.at("agency"),
                        format!(
                            "agency {agency} already has mailbox `{}`; an agency has one mailbox",
                            other.id
                        ),
                    ));
                }
            }
        }
        match agency {
            Some(agency) if problems.is_empty() => Ok(MailboxSpec {
                agency,
                lease: self.lease.get(),
                window: self.window,
            }),
            _ => Err(problems),
        }
    }
}

impl AdapterType for MailboxConfig {
    const NAME: &'static str = "mailbox";

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        self.spec(cx).err().unwrap_or_default()
    }

    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        Ok(Built {
            mailbox: Some(self.spec(cx)?),
            ..Built::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{build, check};
    use lienthong_bus::config::Config;
    use std::time::Duration;

    fn config(adapters: &str) -> Config {
        let text = format!(
            "[[agencies]]\ncode = \"000.00.00.H40\"\n[[agencies]]\ncode = \"000.02.30.H40\"\ninbox = \"nv\"\n{adapters}"
        );
        Config::parse(std::path::Path::new("/etc/lienthong/bus.toml"), &text).unwrap()
    }

    #[test]
    fn the_agency_defaults_to_the_one_whose_inbox_it_is() {
        let c = config("[[adapters]]\nid = \"nv\"\ntype = \"mailbox\"\n");
        assert_eq!(check(&c.adapters[0], &c), vec![]);
        let spec = build(&c.adapters[0], &c).ok().unwrap().mailbox.unwrap();
        assert_eq!(spec.agency, "000.02.30.H40");
        assert_eq!(spec.lease, Duration::from_secs(300));
        assert_eq!(spec.window, 100);
    }

    #[test]
    fn every_problem_names_its_key() {
        let c = config(
            "[[adapters]]\nid = \"nv\"\ntype = \"mailbox\"\n\
             [[adapters]]\nid = \"x\"\ntype = \"mailbox\"\nlease = \"0s\"\nwindow = 0\n\
             [[adapters]]\nid = \"y\"\ntype = \"mailbox\"\nagency = \"000.09.99.H40\"\n",
        );
        let paths: Vec<_> = check(&c.adapters[1], &c)
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            [
                "adapters[1].agency",
                "adapters[1].lease",
                "adapters[1].window"
            ]
        );
        let p = check(&c.adapters[2], &c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("000.09.99.H40"), "{p:?}");
    }

    #[test]
    fn an_agency_has_one_mailbox() {
        let c = config(
            "[[adapters]]\nid = \"nv\"\ntype = \"mailbox\"\n\
             [[adapters]]\nid = \"nv2\"\ntype = \"mailbox\"\nagency = \"000.02.30.H40\"\n",
        );
        let p = check(&c.adapters[1], &c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, "adapters[1].agency");
        assert!(p[0].message.contains("mailbox `nv`"), "{p:?}");
    }
}
