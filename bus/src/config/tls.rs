//! `[http.tls]` and `[admin.tls]`: serving a listener over TLS, and asking its clients for certificates.
//!
//! Why a table of its own under each listener: agencies' systems reach ingress across networks the province
//! does not control, so ingress needs TLS, and client certificates let an agency prove who it is without a
//! shared secret. The admin API holds personal data and may want the same, with its own CA. Without the
//! table a listener speaks plain HTTP, as before.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[http.tls]` / `[admin.tls]`: the listener's certificate, and optionally the CA its clients' certificates
/// must chain to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the listener's certificate, followed by any intermediate CA certificates. Relative paths
    /// are resolved against the config file's folder. Required.
    pub cert: PathBuf,
    /// PEM file with the private key of `cert` (PKCS#8, PKCS#1 or SEC1). Relative to the config file's folder.
    /// Required. `lienthong check` refuses a key that does not belong to `cert`.
    pub key: PathBuf,
    /// PEM bundle of the CA certificates client certificates must chain to. When set, the listener asks every
    /// client for a certificate and verifies one that is presented (chain, validity dates, revocation against
    /// `crl`); a client whose certificate fails is refused during the handshake, before any request is read,
    /// and the reason is logged. On `[http.tls]` a client that presents none may still come in with a bearer
    /// token, unless its agency has `require_mtls = true`; on `[admin.tls]` a certificate of this CA is
    /// required. Unset = no client certificates are asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM or DER files, relative to the config file's folder) of the
    /// `client_ca` authorities: a client certificate listed as revoked is refused at the handshake. Only the
    /// client's own certificate is checked against them; a certificate whose issuer has no list here is not
    /// refused for that. Requires `client_ca`. Default none.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}
