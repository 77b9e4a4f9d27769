//! `[evidence]`: the signed, hash-chained evidence log (see `crate::evidence` and docs/evidence.md).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[evidence]`: keep a tamper-evident record of every accepted, refused, delivered, retried, dead-lettered,
/// replayed and purged message in the state store, hash-chained and signed (docs/evidence.md). Absent = no
/// evidence is kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// PEM file (PKCS#8) of the Ed25519 private key that signs the log, relative to this config file;
    /// `lienthong keygen --out FILE` writes one and prints its public key. Keep it readable only by the bus.
    pub signing_key: PathBuf,
    /// Also keep each accepted message's body bytes with its record (personal data in the log). Default
    /// false: only the body's SHA-256 is kept.
    #[serde(default)]
    pub store_payloads: bool,
}
