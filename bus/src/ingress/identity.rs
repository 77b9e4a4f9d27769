//! Who a verified client certificate is: by its SHA-256 fingerprint listed in `[[agencies]]
//! cert_fingerprints` (the core's own, generic), or by the plugin reading the names in it
//! ([`crate::plugin::Plugin::party_from_certificate`]). Only a configured agency counts.
//!
//! Why apart from the bearer-token map: a request may carry both a certificate and a token, and the two must
//! agree; an agency may also be barred from tokens altogether (`require_mtls`). The rules that combine them
//! live in [`super::http`]; this only answers "whose certificate is this".

use crate::config::Config;
use crate::error::{ApiError, code};
use crate::plugin::Plugin;
use crate::tls::{CertInfo, normalize_fingerprint};
use std::collections::{HashMap, HashSet};

pub struct CertIdentities {
    /// Normalized fingerprint → agency code.
    fingerprints: HashMap<String, String>,
    agencies: HashSet<String>,
    /// Agencies whose bearer token is refused.
    mtls_only: HashSet<String>,
}

impl CertIdentities {
    pub fn new(config: &Config) -> Self {
        Self {
            fingerprints: config
                .agencies
                .iter()
                .flat_map(|a| {
                    a.cert_fingerprints
                        .iter()
                        .filter_map(|f| normalize_fingerprint(f))
                        .map(|f| (f, a.code.clone()))
                })
                .collect(),
            agencies: config.agencies.iter().map(|a| a.code.clone()).collect(),
            mtls_only: config
                .agencies
                .iter()
                .filter(|a| a.require_mtls)
                .map(|a| a.code.clone())
                .collect(),
        }
    }

    /// The agency `cert` identifies; 401 `unauthenticated` when it names none (or two different ones).
    pub fn agency(&self, plugin: &dyn Plugin, cert: &CertInfo) -> Result<String, ApiError> {
        let by_fingerprint = self.fingerprints.get(&cert.sha256);
        let by_name = plugin
            .party_from_certificate(cert)
            .filter(|c| self.agencies.contains(c));
        match (by_fingerprint, by_name) {
            (Some(a), Some(b)) if *a != b => Err(ApiError::new(
                code::UNAUTHENTICATED,
                format!(
                    "the client certificate's fingerprint is listed for agency {a} but the certificate names {b}"
                ),
            )),
            (Some(a), _) => Ok(a.clone()),
            (None, Some(b)) => Ok(b),
            (None, None) => Err(ApiError::new(
                code::UNAUTHENTICATED,
                format!(
                    "the client certificate (SHA-256 {}) identifies no configured agency",
                    cert.sha256
                ),
            )),
        }
    }

    /// Whether `agency` may come in only with its certificate (`require_mtls`).
    pub fn requires_mtls(&self, agency: &str) -> bool {
        self.mtls_only.contains(agency)
    }
}
