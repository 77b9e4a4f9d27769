//! One message's evidence as a self-contained JSON file that anyone can check offline — no config, no
//! database, no trust in whoever handed it over: `lienthong audit export` writes it, `lienthong audit
//! verify-bundle` checks it.
//!
//! For each of the message's records the bundle holds its content (and the accepted body when the log keeps
//! bodies), its previous hash and hash, the content digests of the records after it up to the first signed head
//! at or after it (only digests: the other messages' contents stay out), that head with its signature, and
//! the public key. The file is written in one canonical form and checked to be in it, so any changed byte
//! fails: either a value changes (and a hash or the signature no longer fits) or the form does.

use super::chain::{Head, head_signature_valid, link};
use super::{parse_public_pem, sha256_hex};
use serde::{Deserialize, Serialize};

/// The `format` of a bundle.
pub const FORMAT: &str = "lienthong-evidence-bundle/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    /// The bus namespace the chain belongs to (signed in every head).
    pub namespace: String,
    /// The message: its sender and id.
    pub from: String,
    pub id: String,
    /// The signing key's public half, SPKI PEM.
    pub public_key: String,
    pub records: Vec<Proven>,
}

/// One record with what proves it belongs to the signed chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Proven {
    pub seq: i64,
    pub prev: String,
    pub hash: String,
    /// The record's content, as stored (its bytes are hashed).
    pub content: String,
    /// Base64 of the accepted body, when the log keeps bodies (`store_payloads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Content digests of records `seq + 1 ..= head.seq`, in order.
    pub following: Vec<String>,
    /// The first signed head at or after this record.
    pub head: Head,
}

impl Bundle {
    /// The file's bytes: pretty JSON with sorted keys and a final newline (the canonical form).
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

/// `v` with every object's keys sorted (whatever map serde_json was built with).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Checks a bundle file's bytes; with `public_key` (PEM), the bundle must be signed by that key. Answers how
/// many records were proven, or what is wrong.
pub fn verify(bytes: &[u8], public_key: Option<&str>) -> Result<usize, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON evidence bundle: {e}"))?;
    let bundle: Bundle = serde_json::from_value(value)
        .map_err(|e| format!("not an evidence bundle ({FORMAT}): {e}"))?;
    if bundle.format != FORMAT {
        return Err(format!(
            "format is `{}`, this build reads `{FORMAT}`",
            bundle.format
        ));
    }
    if bundle.to_bytes() != bytes {
        return Err(
            "the file is not in the form it was exported in: it was changed after export".into(),
        );
    }
    let key = parse_public_pem(&bundle.public_key).map_err(|e| format!("public_key: {e}"))?;
    if let Some(given) = public_key {
        let given = parse_public_pem(given).map_err(|e| format!("--public-key: {e}"))?;
        if given != key {
            return Err("the bundle is signed with another key than the one given".into());
        }
    }
    if bundle.records.is_empty() {
        return Err("the bundle holds no records".into());
    }
    for r in &bundle.records {
        check_record(&bundle, r, &key).map_err(|what| format!("record {}: {what}", r.seq))?;
    }
    Ok(bundle.records.len())
}

fn check_record(b: &Bundle, r: &Proven, key: &ed25519_dalek::VerifyingKey) -> Result<(), String> {
    let content: serde_json::Value = serde_json::from_str(&r.content)
        .map_err(|_| "hash mismatch: its content is not JSON".to_string())?;
    if content["seq"] != r.seq || content["ns"] != b.namespace.as_str() {
        return Err("hash mismatch: its content is of another record".into());
    }
    if content["from"] != b.from.as_str() || content["id"] != b.id.as_str() {
        return Err(format!(
            "its content is about another message than {} from {}",
            b.id, b.from
        ));
    }
    if let Some(p) = &r.payload {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD
            .decode(p)
            .map_err(|_| "payload is not base64".to_string())?;
        if content["data"]["body_sha256"] != sha256_hex(&body).as_str() {
            return Err("hash mismatch: the payload is not the body the record names".into());
        }
    }
    let mut hash = link(&r.prev, &sha256_hex(r.content.as_bytes()));
    if hash != r.hash {
        return Err("hash mismatch: the hash is not that of its content and previous hash".into());
    }
    for d in &r.following {
        hash = link(&hash, d);
    }
    let expected_head = r.seq + r.following.len() as i64;
    if r.head.seq != expected_head || hash != r.head.hash {
        return Err(format!(
            "hash mismatch: its chain does not lead to the signed head at record {}",
            r.head.seq
        ));
    }
    if !head_signature_valid(key, &b.namespace, &r.head) {
        return Err("bad signature: the signed head does not verify with the public key".into());
    }
    Ok(())
}
