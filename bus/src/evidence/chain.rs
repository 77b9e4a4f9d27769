//! The chain: how a record is laid out and hashed, what a signed head says, and checking a whole log.
//!
//! A record's `content` is a JSON text written once and stored as written (so no re-encoding can change its
//! hash): `{"v":1,"ns","seq","at","kind","from","id","data"}`. Its `hash` is
//! `SHA-256(prev ‖ SHA-256(content))` over the lowercase hex of both, `prev` being the previous record's hash
//! ([`GENESIS`] for record 1). Hashing the content's digest rather than the content lets a bundle prove one
//! message's records with only the digests of the records between them and the signed head — never the
//! other messages' contents. A head signs `lienthong-evidence-head/1`, the namespace, a sequence number, the
//! hash of that record and the head's time; one is written per group commit, at its last record.

use super::sha256_hex;
use ed25519_dalek::VerifyingKey;
use std::collections::BTreeMap;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a record whose content has digest `digest`, following the record with hash `prev`.
pub fn link(prev: &str, digest: &str) -> String {
    sha256_hex(format!("{prev}{digest}").as_bytes())
}

/// The hash of a record: [`link`] of its previous hash and the digest of its content.
pub fn record_hash(prev: &str, content: &str) -> String {
    link(prev, &sha256_hex(content.as_bytes()))
}

/// The content of record `seq` of namespace `ns` for `event`, at `at` (RFC 3339).
pub fn content(ns: &str, seq: i64, at: &str, event: &super::Event) -> String {
    serde_json::json!({
        "v": 1,
        "ns": ns,
        "seq": seq,
        "at": at,
        "kind": event.kind.as_str(),
        "from": event.sender,
        "id": event.id,
        "data": event.data,
    })
    .to_string()
}

/// The bytes a head's signature is over.
pub fn head_message(ns: &str, seq: i64, hash: &str, at: &str) -> String {
    format!("lienthong-evidence-head/1\n{ns}\n{seq}\n{hash}\n{at}")
}

/// Whether a head's signature (base64 of 64 bytes) verifies with `key`; strict verification (no malleable
/// signatures).
pub fn head_signature_valid(key: &VerifyingKey, ns: &str, head: &Head) -> bool {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&head.signature) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(bytes) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&bytes);
    key.verify_strict(
        head_message(ns, head.seq, &head.hash, &head.at).as_bytes(),
        &sig,
    )
    .is_ok()
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: i64,
    pub prev: String,
    pub hash: String,
    pub content: String,
}

/// One stored signed head.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    pub signature: String,
}

/// The first thing wrong with a log: the sequence number of the record and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    pub seq: i64,
    pub what: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}", self.seq, self.what)
    }
}

/// What a whole-log check found when nothing was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Intact {
    pub records: u64,
    pub signatures: u64,
}

/// Checks records fed in order of sequence number against the heads, keeping the first problem (by sequence
/// number). Records are streamed through it; only the heads are held.
pub struct Verifier {
    ns: String,
    key: VerifyingKey,
    heads: BTreeMap<i64, Head>,
    next: i64,
    last_hash: String,
    records: u64,
    signatures: u64,
    broken: Vec<Broken>,
}

impl Verifier {
    pub fn new(ns: &str, key: VerifyingKey, heads: Vec<Head>) -> Self {
        Self {
            ns: ns.to_owned(),
            key,
            heads: heads.into_iter().map(|h| (h.seq, h)).collect(),
            next: 1,
            last_hash: GENESIS.to_owned(),
            records: 0,
            signatures: 0,
            broken: Vec::new(),
        }
    }

    /// Something wrong with record `seq` found outside the chain itself (the store's columns beside it).
    pub fn problem(&mut self, seq: i64, what: impl Into<String>) {
        self.broken.push(Broken {
            seq,
            what: what.into(),
        });
    }

    /// The next record, in order of `seq`.
    pub fn feed(&mut self, r: &Stored) {
        self.records += 1;
        if r.seq > self.next {
            let what = if r.seq == self.next + 1 {
                format!(
                    "missing record (record {} follows record {})",
                    r.seq,
                    self.next - 1
                )
            } else {
                format!(
                    "missing record (records {}..{} are gone; record {} follows record {})",
                    self.next,
                    r.seq - 1,
                    r.seq,
                    self.next - 1
                )
            };
            self.problem(self.next, what);
        } else if r.seq < self.next {
            self.problem(r.seq, "record stored twice");
        }
        if r.prev != self.last_hash {
            self.problem(
                r.seq,
                "previous-hash mismatch: it does not follow the record before it (a record removed, \
                 inserted or moved)",
            );
        }
        match serde_json::from_str::<serde_json::Value>(&r.content) {
            Ok(v) if v["seq"] == r.seq && v["ns"] == self.ns.as_str() => {}
            Ok(v) if v["seq"] != r.seq => self.problem(
                r.seq,
                format!(
                    "hash mismatch: its content is that of record {} (records swapped or moved)",
                    v["seq"]
                ),
            ),
            Ok(_) => self.problem(r.seq, "hash mismatch: its content is of another namespace"),
            Err(_) => self.problem(r.seq, "hash mismatch: its content is not JSON"),
        }
        if record_hash(&r.prev, &r.content) != r.hash {
            self.problem(
                r.seq,
                "hash mismatch: the stored hash is not the hash of its content and previous hash",
            );
        }
        if let Some(head) = self.heads.get(&r.seq).cloned() {
            if head.hash != r.hash {
                self.problem(
                    r.seq,
                    "hash mismatch: the signed head at this record names another hash",
                );
            }
            if head_signature_valid(&self.key, &self.ns, &head) {
                self.signatures += 1;
            } else {
                self.problem(
                    r.seq,
                    "bad signature: the signed head at this record does not verify with the public key",
                );
            }
        }
        self.next = self.next.max(r.seq + 1);
        self.last_hash = r.hash.clone();
    }

    /// The verdict, once every record was fed. `tip` is the sequence number the store says is the last.
    pub fn finish(mut self, tip: i64) -> Result<Intact, Broken> {
        let last = self.next - 1;
        if let Some((&seq, _)) = self.heads.range(last + 1..).next() {
            self.problem(
                last + 1,
                format!(
                    "missing record (a signed head names record {seq}, the log ends at {last})"
                ),
            );
        } else if tip > last {
            self.problem(
                last + 1,
                format!("missing record (the log's tip is record {tip}, it ends at {last})"),
            );
        }
        let covered = self.heads.keys().next_back().copied().unwrap_or(0);
        if last > covered {
            self.problem(
                covered + 1,
                format!(
                    "bad signature: records {}..{last} are not covered by a signed head",
                    covered + 1
                ),
            );
        }
        match self.broken.into_iter().min_by_key(|b| b.seq) {
            Some(b) => Err(b),
            None => Ok(Intact {
                records: self.records,
                signatures: self.signatures,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Event, Kind, Signer};

    fn chain(n: i64, signer: &Signer) -> (Vec<Stored>, Vec<Head>) {
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        let mut heads = Vec::new();
        for seq in 1..=n {
            let c = content(
                "ns",
                seq,
                "t",
                &Event::new(Kind::Accepted, "A", &format!("m{seq}")),
            );
            let hash = record_hash(&prev, &c);
            out.push(Stored {
                seq,
                prev: prev.clone(),
                hash: hash.clone(),
                content: c,
            });
            if seq % 2 == 0 || seq == n {
                heads.push(Head {
                    seq,
                    hash: hash.clone(),
                    at: "t".into(),
                    signature: signer.sign_head("ns", seq, &hash, "t"),
                });
            }
            prev = hash;
        }
        (out, heads)
    }

    fn verify(records: &[Stored], heads: &[Head], signer: &Signer) -> Result<Intact, Broken> {
        let mut v = Verifier::new("ns", signer.verifying_key(), heads.to_vec());
        for r in records {
            v.feed(r);
        }
        v.finish(records.last().map_or(0, |r| r.seq))
    }

    fn signer() -> Signer {
        let dir = tempfile::tempdir().unwrap();
        crate::evidence::keygen(&dir.path().join("k")).unwrap();
        Signer::load(&dir.path().join("k")).unwrap()
    }

    #[test]
    fn an_untouched_chain_verifies_and_each_tampering_is_named() {
        let s = signer();
        let (records, heads) = chain(5, &s);
        assert_eq!(
            verify(&records, &heads, &s),
            Ok(Intact {
                records: 5,
                signatures: 3
            })
        );
        let mut r = records.clone();
        r[2].hash = "f".repeat(64);
        let b = verify(&r, &heads, &s).unwrap_err();
        assert_eq!(
            (b.seq, b.what.starts_with("hash mismatch")),
            (3, true),
            "{b}"
        );
        let mut r = records.clone();
        r.remove(2);
        let b = verify(&r, &heads, &s).unwrap_err();
        assert_eq!(
            (b.seq, b.what.starts_with("missing record")),
            (3, true),
            "{b}"
        );
        let mut r = records.clone();
        let (a, c) = (r[1].clone(), r[2].clone());
        r[1] = Stored { seq: 2, ..c };
        r[2] = Stored { seq: 3, ..a };
        let b = verify(&r, &heads, &s).unwrap_err();
        assert_eq!(b.seq, 2, "{b}");
        let mut h = heads.clone();
        h[1].signature = heads[0].signature.clone();
        let b = verify(&records, &h, &s).unwrap_err();
        assert_eq!(
            (b.seq, b.what.starts_with("bad signature")),
            (4, true),
            "{b}"
        );
        let mut r = records.clone();
        r.pop();
        let b = verify(&r, &heads, &s).unwrap_err();
        assert_eq!(
            (b.seq, b.what.starts_with("missing record")),
            (5, true),
            "{b}"
        );
    }
}
