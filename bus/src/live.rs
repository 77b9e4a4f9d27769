//! The config in force: one immutable [`Snapshot`] of everything a reload may change, swapped whole.
//!
//! Why a snapshot: a message must be judged by one config from start to end — its sender's credentials,
//! rights, schema and routes all from the same file — even when a reload lands while it is in the pipeline.
//! Ingress takes [`Live::current`] once per message and uses only that; a reload builds a new snapshot off to
//! the side, checks it completely, and replaces the pointer (readers holding the old one finish with it). The
//! routes a message was accepted with travel with each copy (`lt-route`, `lt-adapter`), so a copy accepted
//! before a reload is delivered where that config said, whatever the new one says.
//!
//! What a reload cannot change (`[bus]`, `[http]`, `[admin]`, `[state]`, a plugin's own sections) stays in
//! [`crate::Context::config`], the config the process started with; a reload that changes them is refused.

use crate::config::{Config, ConfigInForce};
use crate::ingress::identity::CertIdentities;
use crate::mailbox::Mailboxes;
use crate::rights::Rights;
use crate::router::Router;
use crate::schema::SchemaRegistry;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Which config is in force: `GET /v1/config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// SHA-256 (hex) of every config file read (the main one and its includes) and every schema file.
    pub hash: String,
    /// When this config was loaded, RFC 3339.
    pub loaded_at: String,
    /// The config files read, the main one first.
    pub files: Vec<String>,
}

impl Version {
    /// The version of `config` as it is on disk now.
    pub fn of(config: &Config) -> Version {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut add = |name: &str, bytes: &[u8]| {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        let files: Vec<String> = config
            .origins
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        for f in &config.origins.files {
            add(
                &f.display().to_string(),
                &std::fs::read(f).unwrap_or_default(),
            );
        }
        let dir = config.schemas_dir();
        let mut schemas = Vec::new();
        walk(&dir, &mut schemas);
        schemas.sort();
        for f in &schemas {
            let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
            add(&name, &std::fs::read(f).unwrap_or_default());
        }
        Version {
            hash: crate::hex::lower(&h.finalize()),
            loaded_at: crate::message::now_rfc3339(),
            files,
        }
    }
}

/// Every regular file under `dir` (not following links).
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

/// Who is who: bearer tokens, RabbitMQ users and client certificates → agency codes, and `[[rights]]`.
pub(crate) struct Access {
    /// bearer token → agency code
    pub tokens: HashMap<String, String>,
    /// RabbitMQ user → agency code
    pub amqp_users: HashMap<String, String>,
    pub certs: CertIdentities,
    /// `[[rights]]`; None = every agency may send every type.
    pub rights: Option<Rights>,
}

/// Everything a reload may change, built from one checked config.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub registry: Arc<SchemaRegistry>,
    pub router: Router,
    /// Pull mailboxes, by the agency that reads each.
    pub mailboxes: Arc<Mailboxes>,
    pub(crate) access: Access,
    /// Every retry delay tier declared so far (sorted; tiers are never taken away while the process runs).
    pub retry_tiers: Vec<Duration>,
    pub version: Version,
}

impl Snapshot {
    /// Builds a snapshot of `config` (already checked), with the credentials [`crate::check::credentials`]
    /// made of it and the retry tiers declared for it.
    pub fn new(
        config: Arc<Config>,
        registry: Arc<SchemaRegistry>,
        creds: crate::check::Credentials,
        mailboxes: Arc<Mailboxes>,
        retry_tiers: &BTreeSet<Duration>,
    ) -> Snapshot {
        let router = Router::new(&config.routes)
            .with_party_codes(&config.agencies)
            .with_inboxes(config.inboxes());
        Snapshot {
            router,
            registry,
            mailboxes,
            access: Access {
                tokens: creds.tokens,
                amqp_users: creds.amqp_users,
                certs: CertIdentities::new(&config),
                rights: Rights::new(&config),
            },
            retry_tiers: retry_tiers.iter().copied().collect(),
            version: Version::of(&config),
            config,
        }
    }
}

/// The snapshot in force, shared by everything that reads it; [`Live::replace`] is the reload's one write.
#[derive(Clone)]
pub struct Live {
    current: Arc<RwLock<Arc<Snapshot>>>,
    config: ConfigInForce,
}

impl Live {
    pub fn new(first: Snapshot) -> Live {
        let config = ConfigInForce::new(first.config.clone());
        Live::following(first, config)
    }

    /// Like [`Live::new`], keeping `config` (handed to the plugin earlier) up to date with every snapshot.
    pub fn following(first: Snapshot, config: ConfigInForce) -> Live {
        config.set(first.config.clone());
        Live {
            current: Arc::new(RwLock::new(Arc::new(first))),
            config,
        }
    }

    /// The snapshot in force now; hold it for the whole of one message.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `next` in force; answers the one it replaced.
    pub(crate) fn replace(&self, next: Snapshot) -> Arc<Snapshot> {
        self.config.set(next.config.clone());
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, Arc::new(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_config_files_and_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bus.toml");
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(&file, "[bus]\nschemas_dir = \"schemas\"\n").unwrap();
        let schema = dir.path().join("schemas/x.v1.schema.json");
        std::fs::write(&schema, "{}").unwrap();
        let version = || Version::of(&Config::load(&file).unwrap());
        let first = version();
        assert_eq!(first.hash.len(), 64);
        assert_eq!(first.files, vec![file.display().to_string()]);
        assert_eq!(version().hash, first.hash, "same files, same hash");
        std::fs::write(&schema, "{\"type\": \"object\"}").unwrap();
        let second = version();
        assert_ne!(second.hash, first.hash, "a schema changed");
        std::fs::write(&file, "[bus]\nschemas_dir = \"schemas\"\n# note\n").unwrap();
        assert_ne!(version().hash, second.hash, "the config file changed");
    }
}
