//! `tls = { ca = "…", client_cert = "…", client_key = "…" }` of the HTTP adapters: trust a private CA instead of
//! the public roots, and present the province's client certificate.
//!
//! Why here, once: the three HTTP adapters build their clients through [`super::client`], so each gains the
//! same key with the same checks (files exist, parse, key belongs to the certificate) by one field.

use lienthong_bus::config::{Problem, join};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An HTTP adapter's `tls` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM bundle of the CA certificates the peer's server certificate must chain to. When set, only these are
    /// trusted (not the system's public roots): a private CA of the province or the peer. Relative to the
    /// config file's folder. Default: the public roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM file with the client certificate (and any intermediates) presented to the peer. Relative to the
    /// config file's folder. Needs `client_key`. Default: none presented.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM file with the private key of `client_cert`. Relative to the config file's folder. Needs
    /// `client_cert`; a key that does not belong to it is refused.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

impl ClientTls {
    /// The same, with relative paths resolved against `base_dir` (the config file's folder).
    pub fn resolved(&self, base_dir: &Path) -> Self {
        let r = |p: &Option<PathBuf>| p.as_ref().map(|p| base_dir.join(p));
        Self {
            ca: r(&self.ca),
            client_cert: r(&self.client_cert),
            client_key: r(&self.client_key),
        }
    }

    /// Every problem with these files, at `at.<key>` (`adapters[2].tls.ca`); paths resolved against `base_dir`.
    pub fn problems(&self, base_dir: &Path, at: &str) -> Vec<Problem> {
        let t = self.resolved(base_dir);
        match t.load() {
            Ok(_) => Vec::new(),
            Err(ps) => ps
                .into_iter()
                .map(|(key, m)| Problem::new(join(at, key), m))
                .collect(),
        }
    }

    /// The roots and the identity reqwest takes, or each problem with the key it concerns.
    pub(crate) fn load(&self) -> Result<Loaded, Vec<(&'static str, String)>> {
        use lienthong_bus::tls;
        let mut problems = Vec::new();
        let mut roots = Vec::new();
        if let Some(ca) = &self.ca {
            match tls::read_certs(ca) {
                Ok(certs) => {
                    for c in certs {
                        match reqwest::Certificate::from_der(&c) {
                            Ok(c) => roots.push(c),
                            Err(e) => problems.push(("ca", format!("`{}`: {e}", ca.display()))),
                        }
                    }
                }
                Err(e) => problems.push(("ca", e)),
            }
        }
        let identity = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(_), None) => {
                problems.push(("client_key", "needed with `client_cert`".into()));
                None
            }
            (None, Some(_)) => {
                problems.push(("client_cert", "needed with `client_key`".into()));
                None
            }
            (Some(cert), Some(key)) => match tls::key_pair_problem(cert, key) {
                Err((k, e)) => {
                    problems.push((
                        if k == "cert" {
                            "client_cert"
                        } else {
                            "client_key"
                        },
                        e,
                    ));
                    None
                }
                Ok(()) => {
                    let pem = [std::fs::read(cert), std::fs::read(key)];
                    match pem {
                        [Ok(c), Ok(k)] => {
                            match reqwest::Identity::from_pem(&[c, b"\n".to_vec(), k].concat()) {
                                Ok(i) => Some(i),
                                Err(e) => {
                                    problems.push(("client_cert", format!("not usable: {e}")));
                                    None
                                }
                            }
                        }
                        _ => {
                            problems.push(("client_cert", "cannot be read".into()));
                            None
                        }
                    }
                }
            },
        };
        if problems.is_empty() {
            Ok(Loaded { roots, identity })
        } else {
            Err(problems)
        }
    }
}

/// What a client is built with.
pub(crate) struct Loaded {
    pub roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}
