//! The evidence log: a tamper-evident record of what the bus did with every message, that a third party can
//! check without trusting the bus's operator (docs/evidence.md).
//!
//! Why: agencies exchange dossiers with citizens' personal data; "the bus accepted it at 09:14 and the
//! receiver took it at 09:15" must be provable after the fact, and a log an operator could quietly edit proves
//! nothing. So every event is a record in the state store, each record's hash covers the previous record's
//! hash (a chain: removing, reordering or changing one breaks every later link), and each group commit's last
//! hash is signed with the bus's Ed25519 key (one signature per batch, not per record: the log rides on the
//! state store's group commit, `state/batch/`, and costs one signature per commit).
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the events recorded, the signing key (`keygen`, loading) |
//! | `chain.rs` | the record layout, its hashes, the signed head, checking a whole chain |
//! | `bundle.rs` | one message's records with what proves them, as a self-contained JSON file checked offline |

pub mod bundle;
pub mod chain;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::Path;

/// What happened to a message. The name is the record's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Every copy confirmed by the broker: body hash, sender, type, receivers, routes.
    Accepted,
    /// Refused at ingress, after the sender was authenticated: the error code.
    Refused,
    /// An adapter delivered it: adapter, attempt, the receiver's answer.
    Delivered,
    /// A delivery failed and will be tried again: adapter, attempt, error, when.
    Retried,
    /// Parked in the dead-letter queue: adapter, reason.
    DeadLettered,
    /// An operator sent it back for delivery: adapter, actor.
    Replayed,
    /// An operator removed it from the parking lot: adapter, actor.
    Purged,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Accepted => "accepted",
            Kind::Refused => "refused",
            Kind::Delivered => "delivered",
            Kind::Retried => "retried",
            Kind::DeadLettered => "dead_lettered",
            Kind::Replayed => "replayed",
            Kind::Purged => "purged",
        }
    }
}

/// One event to append: what, about which message (sender and id; the id is empty when a refused submission
/// had none), the event's own fields, and with `store_payloads` the accepted body.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub sender: String,
    pub id: String,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub payload: Option<bytes::Bytes>,
}

impl Event {
    pub fn new(kind: Kind, sender: &str, id: &str) -> Self {
        Self {
            kind,
            sender: sender.to_owned(),
            id: id.to_owned(),
            data: serde_json::Map::new(),
            payload: None,
        }
    }

    /// Adds field `key` to the event's data.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}

/// The key that signs the log, with its public half.
pub struct Signer {
    key: SigningKey,
    /// The public key as SPKI PEM (what bundles carry and `keygen` prints).
    pub public_pem: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("Signer")
            .field("public_key", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads a PKCS#8 PEM Ed25519 private key. The error names the file and what is wrong, never its content.
    pub fn load(path: &Path) -> Result<Signer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|_| {
            format!(
                "{} is not a PEM (PKCS#8) Ed25519 private key; `lienthong keygen --out FILE` writes one",
                path.display()
            )
        })?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: SigningKey) -> Signer {
        let public_pem = public_pem(&key.verifying_key());
        Signer { key, public_pem }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs a chain head (see [`chain::head_message`]); base64 of the 64-byte signature.
    pub fn sign_head(&self, ns: &str, seq: i64, hash: &str, at: &str) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer as _;
        let sig = self
            .key
            .sign(chain::head_message(ns, seq, hash, at).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    }
}

/// The SPKI PEM of a public key.
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .unwrap_or_else(|_| String::new())
}

/// Reads a public key from SPKI PEM.
pub fn parse_public_pem(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(text.trim())
        .map_err(|_| "not a PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)".to_string())
}

/// Writes a new private key to `out` (PKCS#8 PEM; created, never overwritten; mode 0600 on Unix) and returns
/// its public key as PEM.
pub fn keygen(out: &Path) -> Result<String, String> {
    use std::io::Write;
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(public_pem(&key.verifying_key()))
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::hex::lower(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_loads_and_signs_what_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.pem");
        let public = keygen(&file).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        assert!(
            keygen(&file).is_err(),
            "an existing key is never overwritten"
        );
        let signer = Signer::load(&file).unwrap();
        assert_eq!(signer.public_pem, public);
        let mut head = chain::Head {
            seq: 3,
            hash: "ab".repeat(32),
            at: "t".into(),
            signature: signer.sign_head("ns", 3, &"ab".repeat(32), "t"),
        };
        let key = parse_public_pem(&public).unwrap();
        assert!(chain::head_signature_valid(&key, "ns", &head));
        head.seq = 4;
        assert!(!chain::head_signature_valid(&key, "ns", &head));
        let err = Signer::load(&dir.path().join("missing.pem")).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
        std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
        let err = Signer::load(&dir.path().join("bad.pem")).unwrap_err();
        assert!(err.contains("not a PEM"), "{err}");
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}
