//! TLS for the listeners: reading the certificate, key and CA files of `[http.tls]` / `[admin.tls]`, building
//! the rustls server config that verifies client certificates, and what the bus learns from a verified client
//! certificate ([`CertInfo`]).
//!
//! Why here and not in the listener: `lienthong check` reads the same files with the same code (so `check`
//! refuses what `run` would), and ingress maps a certificate to an agency without knowing about sockets.
//! The crypto provider is aws-lc-rs, the one reqwest and lapin already bring.

pub mod check;

use crate::config::{Config, Problem, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;

/// What the bus knows of a client certificate the listener verified (chain, dates, revocation): handed to
/// handlers in the request's extensions (as [`ClientCert`]) and to the plugin to name the party it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// SHA-256 of `der`, 64 lowercase hex digits (what `[[agencies]] cert_fingerprints` lists).
    pub sha256: String,
    /// The subjectAltName URIs, as written.
    pub uris: Vec<String>,
    /// The subject's distinguished name, for logs.
    pub subject: String,
}

impl CertInfo {
    /// Reads what the bus needs from a DER certificate. A certificate rustls verified always parses; should
    /// one not, it has no names (and so identifies no one but by its fingerprint).
    pub fn from_der(der: &[u8]) -> Self {
        let sha256 = crate::hex::lower(&sha2::Sha256::digest(der));
        let (uris, subject) = match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => {
                let uris = cert
                    .subject_alternative_name()
                    .ok()
                    .flatten()
                    .map(|san| {
                        san.value
                            .general_names
                            .iter()
                            .filter_map(|n| match n {
                                x509_parser::extensions::GeneralName::URI(u) => {
                                    Some((*u).to_owned())
                                }
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (uris, cert.subject().to_string())
            }
            Err(_) => (Vec::new(), String::new()),
        };
        Self {
            der: der.to_vec(),
            sha256,
            uris,
            subject,
        }
    }
}

/// The verified client certificate of the connection a request came on, in the request's extensions.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Arc<CertInfo>);

/// A fingerprint as written in config (`AB:CD:…` or `abcd…`) in the form of [`CertInfo::sha256`]; None when it
/// is not 64 hex digits.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let f: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit())).then_some(f)
}

/// The crypto provider of every TLS config the bus builds.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Every certificate in a PEM file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}` is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "`{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        )
    })
}

/// The revocation lists in a file: PEM (any number) or one DER list.
pub fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = read(path)?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{}` is not a PEM CRL file: {e}", path.display()))?;
        if crls.is_empty() {
            return Err(format!(
                "`{}` holds no PEM CRL (-----BEGIN X509 CRL-----)",
                path.display()
            ));
        }
        Ok(crls)
    } else {
        <x509_parser::revocation_list::CertificateRevocationList as x509_parser::prelude::FromDer<_>>::from_der(&bytes)
            .map_err(|e| format!("`{}` is neither a PEM nor a DER CRL: {e}", path.display()))?;
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
}

/// Whether the key in `key` belongs to the (first) certificate in `cert`: Err names which file is at fault
/// (`"cert"` or `"key"`) and why. For client certificates the bus presents (the HTTP adapters' `tls`).
pub fn key_pair_problem(cert: &Path, key: &Path) -> Result<(), (&'static str, String)> {
    let certs = read_certs(cert).map_err(|e| ("cert", e))?;
    let k = read_key(key).map_err(|e| ("key", e))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, k)
        .map(|_| ())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => (
                "key",
                format!(
                    "the key in `{}` does not belong to the certificate in `{}`",
                    key.display(),
                    cert.display()
                ),
            ),
            e => ("cert", format!("cannot use this certificate and key: {e}")),
        })
}

/// The rustls server config of a listener's `[<section>.tls]`, or every problem with it at its key path
/// (`http.tls.key`). Files are resolved against the config's folder.
pub fn server_config(
    tls: &TlsConfig,
    section: &str,
    config: &Config,
) -> Result<Arc<rustls::ServerConfig>, Vec<Problem>> {
    let key_path = |k: &str| format!("{section}.tls.{k}");
    let mut problems = Vec::new();
    let certs = read_certs(&config.resolve(&tls.cert))
        .map_err(|e| problems.push(Problem::new(key_path("cert"), e)))
        .ok();
    let key = read_key(&config.resolve(&tls.key))
        .map_err(|e| problems.push(Problem::new(key_path("key"), e)))
        .ok();
    let verifier = match &tls.client_ca {
        None => {
            if !tls.crl.is_empty() {
                problems.push(Problem::new(
                    key_path("crl"),
                    "revocation lists need `client_ca` (without it no client certificate is asked for)",
                ));
            }
            None
        }
        // Operators of the admin API have no bearer-token fallback per agency: its CA is a gate.
        Some(ca) => client_verifier(
            config,
            ca,
            &tls.crl,
            section == "admin",
            &key_path,
            &mut problems,
        ),
    };
    let (Some(certs), Some(key)) = (certs, key) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| vec![Problem::new(key_path("cert"), e.to_string())])?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        vec![Problem::new(
            key_path("key"),
            match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "the key in `{}` does not belong to the certificate in `{}`",
                    tls.key.display(),
                    tls.cert.display()
                ),
                e => format!("cannot use this certificate and key: {e}"),
            },
        )]
    })?;
    // The listeners speak HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn client_verifier(
    config: &Config,
    ca: &Path,
    crl_files: &[std::path::PathBuf],
    required: bool,
    key_path: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    match read_certs(&config.resolve(ca)) {
        Ok(certs) => {
            for c in certs {
                if let Err(e) = roots.add(c) {
                    problems.push(Problem::new(
                        key_path("client_ca"),
                        format!("`{}`: not a usable CA certificate: {e}", ca.display()),
                    ));
                }
            }
        }
        Err(e) => problems.push(Problem::new(key_path("client_ca"), e)),
    }
    let mut crls = Vec::new();
    for (i, f) in crl_files.iter().enumerate() {
        match read_crls(&config.resolve(f)) {
            Ok(c) => crls.extend(c),
            Err(e) => problems.push(Problem::new(key_path(&format!("crl[{i}]")), e)),
        }
    }
    if !problems.is_empty() || roots.is_empty() {
        return None;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status();
    // On ingress, agencies without a certificate still come in with their bearer token (unless
    // `require_mtls`).
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| {
            problems.push(Problem::new(
                key_path("client_ca"),
                format!("cannot verify client certificates with these files: {e}"),
            ))
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_compared_in_one_form() {
        let hex64 = "ab".repeat(32);
        let colons = hex64
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(normalize_fingerprint(&colons), Some(hex64.clone()));
        assert_eq!(normalize_fingerprint(&hex64[..62]), None);
        assert_eq!(normalize_fingerprint(&format!("{}zz", &hex64[..62])), None);
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(read_certs(&missing).unwrap_err().contains("missing.pem"));
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        assert!(
            read_certs(&junk)
                .unwrap_err()
                .contains("no PEM certificate")
        );
        assert!(read_key(&junk).unwrap_err().contains("no PEM private key"));
        assert!(
            read_crls(&junk)
                .unwrap_err()
                .contains("neither a PEM nor a DER CRL")
        );
    }
}
