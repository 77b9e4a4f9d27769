//! `[bus] broker_url`: one RabbitMQ URL, or a list of them — the nodes of one cluster.
//!
//! Why a type of its own: a string must stay valid (every existing config has one), a list must be accepted
//! for a cluster, and most of the code only asks "which URL, and is it the embedded broker?". It dereferences
//! to the first URL, so those questions read as before; the broker client asks [`BrokerUrls::urls`] for all.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The RabbitMQ node(s) the bus may connect to, in the order it tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrls(Vec<String>);

impl BrokerUrls {
    /// One URL.
    pub fn one(url: impl Into<String>) -> Self {
        Self(vec![url.into()])
    }

    /// Every URL, in the order given (at least one, checked by [`crate::config::Config::check`]).
    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// The URLs with their passwords masked, comma-separated (for logs and the demo banner).
    pub fn redacted(&self) -> String {
        self.0
            .iter()
            .map(|u| crate::config::redact_url(u))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::ops::Deref for BrokerUrls {
    type Target = str;
    /// The first URL (the only one when a string was given).
    fn deref(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or("")
    }
}

impl PartialEq<&str> for BrokerUrls {
    fn eq(&self, other: &&str) -> bool {
        self.0.len() == 1 && self.0[0] == *other
    }
}

impl<'de> Deserialize<'de> for BrokerUrls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a URL string or a list of URL strings")
        })? {
            OneOrMany::One(s) => Ok(Self(vec![s])),
            OneOrMany::Many(v) => Ok(Self(v)),
        }
    }
}

impl Serialize for BrokerUrls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() == 1 {
            self.0[0].serialize(s)
        } else {
            self.0.serialize(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        broker_url: BrokerUrls,
    }

    #[test]
    fn a_string_or_a_list() {
        let one: Holder = toml::from_str(r#"broker_url = "amqp://h:5672/%2f""#).unwrap();
        assert_eq!(one.broker_url.urls(), ["amqp://h:5672/%2f"]);
        assert_eq!(&*one.broker_url, "amqp://h:5672/%2f");
        let many: Holder =
            toml::from_str(r#"broker_url = ["amqp://u:p@a:5681/%2f", "amqp://u:p@b:5682/%2f"]"#)
                .unwrap();
        assert_eq!(many.broker_url.urls().len(), 2);
        assert_eq!(&*many.broker_url, "amqp://u:p@a:5681/%2f");
        assert_eq!(
            many.broker_url.redacted(),
            "amqp://u:***@a:5681/%2f, amqp://u:***@b:5682/%2f"
        );
        let err = toml::from_str::<Holder>("broker_url = 5")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("a URL string or a list of URL strings"),
            "{err}"
        );
    }
}
