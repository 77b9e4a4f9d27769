//! What `lienthong check` (and `run`, before it starts) verifies of the TLS settings: the files of
//! `[http.tls]` / `[admin.tls]` exist, parse and belong together, agencies' certificate fingerprints are
//! well-formed and not shared, and `require_mtls` can be met. Certificates about to expire are warnings.

use crate::config::{Config, Problem};
use std::collections::HashMap;

/// Days before a certificate's end of validity from which `check` warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Every problem with the TLS settings, each at its key path.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (section, tls) in [("http", &config.http.tls), ("admin", &config.admin.tls)] {
        if let Some(tls) = tls
            && let Err(ps) = super::server_config(tls, section, config)
        {
            problems.extend(ps);
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for a in &config.agencies {
        for (j, f) in a.cert_fingerprints.iter().enumerate() {
            let key = format!("agencies[{}].cert_fingerprints[{j}]", a.index);
            match super::normalize_fingerprint(f) {
                None => problems.push(Problem::new(
                    key,
                    "not a SHA-256 fingerprint (64 hex digits, `:` separators allowed)",
                )),
                Some(n) => {
                    if let Some(prev) = seen.insert(n, a.index)
                        && prev != a.index
                    {
                        problems.push(Problem::new(
                            key,
                            format!(
                                "this certificate already identifies agencies[{prev}]; one certificate identifies one agency"
                            ),
                        ));
                    }
                }
            }
        }
        let mtls_possible = config
            .http
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some());
        if a.require_mtls && !mtls_possible {
            problems.push(Problem::new(
                format!("agencies[{}].require_mtls", a.index),
                "needs `[http.tls] client_ca` (client certificates are not asked for, so this agency could never send over HTTP)",
            ));
        }
    }
    problems
}

/// Certificates in the TLS files that expire within [`EXPIRY_WARNING_DAYS`] of `now` (or already have), each
/// at its key path: the listeners' (`[http.tls]`, `[admin.tls]`) and the HTTP adapters' (`tls = { ca,
/// client_cert }`, the option every adapter built on the shared HTTP client reads). Files that cannot be read
/// are problems (of `check`, or of the adapter's own check), not warnings.
pub fn warnings(config: &Config, now: time::OffsetDateTime) -> Vec<Problem> {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (section, tls) in [("http", &config.http.tls), ("admin", &config.admin.tls)] {
        let Some(tls) = tls else { continue };
        files.push((format!("{section}.tls.cert"), config.resolve(&tls.cert)));
        if let Some(ca) = &tls.client_ca {
            files.push((format!("{section}.tls.client_ca"), config.resolve(ca)));
        }
    }
    for a in &config.adapters {
        let Some(tls) = a.options.get("tls").and_then(|t| t.as_table()) else {
            continue;
        };
        for key in ["ca", "client_cert"] {
            if let Some(path) = tls.get(key).and_then(|v| v.as_str()) {
                files.push((
                    format!("{}.tls.{key}", a.path()),
                    a.resolve(std::path::Path::new(path)),
                ));
            }
        }
    }
    let mut warnings = Vec::new();
    for (key, path) in files {
        let Ok(certs) = super::read_certs(&path) else {
            continue;
        };
        for der in certs {
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
                continue;
            };
            let not_after = cert.validity().not_after.timestamp();
            let left = (not_after - now.unix_timestamp()) / 86_400;
            let subject = cert.subject().to_string();
            let when = cert
                .validity()
                .not_after
                .to_datetime()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            if not_after <= now.unix_timestamp() {
                warnings.push(Problem::new(
                    key.clone(),
                    format!(
                        "certificate `{subject}` in `{}` expired on {when}",
                        path.display()
                    ),
                ));
            } else if left < EXPIRY_WARNING_DAYS {
                warnings.push(Problem::new(
                    key.clone(),
                    format!(
                        "certificate `{subject}` in `{}` expires on {when}, in {left} days",
                        path.display()
                    ),
                ));
            }
        }
    }
    warnings
}
