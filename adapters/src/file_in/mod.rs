//! `file-in`: a watched folder as a message source, for commune systems that can only write files.
//!
//! Contract for the writing system: write a file under a name starting with `.` or ending in `.tmp` or `.part`
//! (or outside the folder, on the same disk), then *rename* it to its final name in the folder: `*.json` for a
//! JSON envelope, `*.xml` or `*.edxml` for an edXML package, `*.document.json` / `*.status.json` for a document
//! or status report described in JSON and built into an edXML package here ([`bundle`]; attachments go into
//! `attachments_dir` first) (any case). A file with a final name must be complete, because it may be read at
//! once. Names must be UTF-8; sub-folders are not looked into.
//!
//! Each poll takes the files oldest first (by modification time) and submits each to the bus as `agency`:
//! - accepted (every copy confirmed by the broker): moved to `done_dir`;
//! - refused (a 4xx: bad envelope, schema violation, `from` is not `agency`, larger than `max_file_bytes`,
//!   unknown extension): `<name>.error.json` (the API error, file name and time) is written to `rejected_dir`,
//!   then the file is moved beside it;
//! - bus unavailable (503): the file stays and the poll ends (order is kept); it is tried again next poll;
//!   logged once. Any other 5xx, or a 409 `conflict` (a status for the same document arrived at the same time),
//!   leaves that one file in place, to be tried again next poll, and goes on.
//!
//! Files are never deleted; a name already taken in `done_dir`/`rejected_dir` gets `.1`, `.2`… before its
//! extension. Crash safety: until it is moved, a file is still in the folder and is submitted again, with the
//! same [`fallback_id`] (or the envelope's own `id`; an edXML package is identified by its sender and
//! DocumentId), so the bus's idempotency makes the resubmission a no-op: nothing is lost and nothing is
//! duplicated.

mod bundle;

use crate::file_out::{folder_problem, sync_dir, write_atomic};
use async_trait::async_trait;
use bytes::Bytes;
use lienthong_bus::adapter::{Built, Caller, CancellationToken, Source, Submission, Submit};
use lienthong_bus::config::{AdapterSpec, Config, HumanDuration, Problem, join};
use lienthong_bus::error::{ApiError, code};
use lienthong_bus::message::{ContentKind, now_rfc3339};
use lienthong_qcvn102::agency::AgencyCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{error, info, warn};

/// `type = "file-in"`: submit the files an agency's system drops into a folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInConfig {
    /// Watched folder, relative to the config file. Required; must exist (it is not created, so a missing
    /// mount is noticed).
    pub path: PathBuf,
    /// QCVN 102 code of the agency whose system writes this folder; required, and must be in `[[agencies]]`.
    /// Every file is submitted as this agency, so an envelope whose `from` is another agency is refused.
    pub agency: String,
    /// How often the folder is listed. Default `"1s"`.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// Where accepted files are moved, relative to the config file. Default `<path>/done`. Created if missing;
    /// must be on the same filesystem as `path` (files are moved by rename).
    #[serde(default)]
    pub done_dir: Option<PathBuf>,
    /// Where refused files and their `<name>.error.json` go. Default `<path>/rejected`. Same rules as `done_dir`.
    #[serde(default)]
    pub rejected_dir: Option<PathBuf>,
    /// Where the files named by `*.document.json` descriptions are read from, relative to the config file.
    /// Default `<path>/attachments`. Created if missing; not watched itself; same filesystem as `path` (an
    /// attachment is moved to `done_dir` or `rejected_dir` with its description).
    #[serde(default)]
    pub attachments_dir: Option<PathBuf>,
    /// Larger files are refused (`payload_too_large`) without being submitted; for a description, the package
    /// built from it (attachments included). Default 67108864 (64 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_file_bytes: u64,
}

fn default_poll() -> HumanDuration {
    HumanDuration::secs(1)
}
fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}

pub fn check(spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
    prepare(spec, config).err().unwrap_or_default()
}

pub fn build(spec: &AdapterSpec, config: &Config) -> Result<Built, Vec<Problem>> {
    let source = prepare(spec, config)?;
    // The writing system puts attachments there before it renames a description in: it must exist.
    fs::create_dir_all(&source.attachments).map_err(|e| {
        vec![Problem::new(
            join(&spec.path(), "attachments_dir"),
            format!("cannot create `{}`: {e}", source.attachments.display()),
        )]
    })?;
    Ok(Built {
        source: Some(Box::new(source)),
        ..Built::default()
    })
}

fn prepare(spec: &AdapterSpec, config: &Config) -> Result<FileIn, Vec<Problem>> {
    let cfg: FileInConfig = spec.parse_options().map_err(|p| vec![p])?;
    let at = |key: &str| join(&spec.path(), key);
    let mut problems = Vec::new();
    let dir = spec.resolve(&cfg.path);
    if !dir.is_dir() {
        problems.push(Problem::new(
            at("path"),
            format!("folder `{}` does not exist", dir.display()),
        ));
    }
    if let Err(e) = AgencyCode::parse(&cfg.agency) {
        problems.push(Problem::new(at("agency"), e.to_string()));
    } else if !config.agencies.iter().any(|a| a.code == cfg.agency) {
        problems.push(Problem::new(
            at("agency"),
            format!("agency `{}` is not in [[agencies]]", cfg.agency),
        ));
    }
    for other in config.adapters.iter().filter(|a| a.kind == "file-out") {
        if let Ok(out) = other.parse_options::<crate::file_out::FileOutConfig>()
            && canonical(&other.resolve(&out.path)) == canonical(&dir)
        {
            problems.push(Problem::new(
                at("path"),
                format!(
                    "file-out adapter `{}` ({}.path) writes into this folder: every message it delivers would \
                     be picked up again and submitted as {}; give each adapter its own folder",
                    other.id,
                    other.path(),
                    cfg.agency
                ),
            ));
        }
    }
    if cfg.poll_interval.get().is_zero() {
        problems.push(Problem::new(at("poll_interval"), "must be more than 0"));
    }
    if cfg.max_file_bytes == 0 {
        problems.push(Problem::new(at("max_file_bytes"), "must be more than 0"));
    }
    let done = cfg
        .done_dir
        .map_or_else(|| dir.join("done"), |d| spec.resolve(&d));
    let rejected = cfg
        .rejected_dir
        .map_or_else(|| dir.join("rejected"), |d| spec.resolve(&d));
    let attachments = cfg
        .attachments_dir
        .map_or_else(|| dir.join("attachments"), |d| spec.resolve(&d));
    for (key, sub) in [
        ("done_dir", &done),
        ("rejected_dir", &rejected),
        ("attachments_dir", &attachments),
    ] {
        let problem = if canonical(sub) == canonical(&dir) {
            Some("must not be the watched folder itself".to_owned())
        } else if let Some(p) = folder_problem(sub) {
            Some(p)
        } else {
            (!same_filesystem(&dir, sub))
                .then(|| "must be on the same filesystem as `path`".to_owned())
        };
        problems.extend(problem.map(|p| Problem::new(at(key), p)));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(FileIn {
        adapter: spec.id.clone(),
        dir,
        done,
        rejected,
        attachments,
        agency: cfg.agency,
        poll: cfg.poll_interval.get(),
        max_bytes: cfg.max_file_bytes,
    })
}

fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

#[cfg(unix)]
fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let device = |p: &Path| {
        p.ancestors()
            .find_map(|a| fs::metadata(a).ok())
            .map(|m| m.dev())
    };
    device(a) == device(b)
}
#[cfg(not(unix))]
fn same_filesystem(_: &Path, _: &Path) -> bool {
    true
}

/// The id a file is submitted under when its content has none: a UUID (version 8) made of
/// SHA-256(agency ‖ 0 ‖ file name ‖ 0 ‖ `content_digest`), where `content_digest` is the file's SHA-256 (for a
/// description: over it and its attachments). The same file submitted again gets the same id.
pub fn fallback_id(agency: &str, file_name: &str, content_digest: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(agency)
        .chain_update([0])
        .chain_update(file_name)
        .chain_update([0])
        .chain_update(content_digest)
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// A file read and ready to submit.
struct Picked {
    content: ContentKind,
    body: Bytes,
    /// What the resubmission id is made of: SHA-256 of the file, or of a description and its attachments.
    id_source: [u8; 32],
}

struct FileIn {
    adapter: String,
    dir: PathBuf,
    done: PathBuf,
    rejected: PathBuf,
    attachments: PathBuf,
    agency: String,
    poll: Duration,
    max_bytes: u64,
}

/// What has been logged already, so a lasting problem is logged once, not every poll.
#[derive(Default)]
struct Quiet {
    bus_down: bool,
    listing_failed: bool,
    odd_names: usize,
    files: HashSet<String>,
}

#[async_trait]
impl Source for FileIn {
    async fn run(
        self: Box<Self>,
        ingress: Arc<dyn Submit>,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut quiet = Quiet::default();
        while !shutdown.is_cancelled() {
            self.poll_once(&*ingress, &shutdown, &mut quiet).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        Ok(())
    }
}

impl FileIn {
    async fn poll_once(
        &self,
        ingress: &dyn Submit,
        shutdown: &CancellationToken,
        quiet: &mut Quiet,
    ) {
        let dir = self.dir.clone();
        let names = match blocking(move || list(&dir)).await {
            Ok((names, odd)) => {
                if std::mem::replace(&mut quiet.odd_names, odd) != odd && odd > 0 {
                    warn!(adapter = %self.adapter, "{odd} file name(s) are not UTF-8 and are left alone");
                }
                names
            }
            Err(e) => {
                if !std::mem::replace(&mut quiet.listing_failed, true) {
                    error!(adapter = %self.adapter, folder = %self.dir.display(), "cannot list the folder: {e}");
                }
                return;
            }
        };
        quiet.listing_failed = false;
        for name in names {
            if shutdown.is_cancelled() || !self.one(ingress, shutdown, name, quiet).await {
                return;
            }
        }
    }

    /// Handles one file; false when this poll should stop (bus unavailable, shutdown).
    async fn one(
        &self,
        ingress: &dyn Submit,
        shutdown: &CancellationToken,
        name: String,
        quiet: &mut Quiet,
    ) -> bool {
        let (attachments, outcome) = match self.read(&name).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(e) => {
                self.complain(quiet, &name, format!("cannot read the file: {e}"));
                return true;
            }
            Ok((names, Err(refusal))) => (names, Err(refusal)),
            Ok((names, Ok(file))) => {
                let submission = Submission {
                    caller: Caller::Agency(self.agency.clone()),
                    content: file.content,
                    fallback_id: Some(fallback_id(&self.agency, &name, &file.id_source)),
                    body: file.body,
                    traceparent: None,
                };
                tokio::select! {
                    answer = ingress.submit(submission) => (names, answer),
                    _ = shutdown.cancelled() => return false,
                }
            }
        };
        match outcome {
            Err(e) if e.status() == 503 => {
                if !std::mem::replace(&mut quiet.bus_down, true) {
                    warn!(adapter = %self.adapter, file = %name, "bus unavailable, files stay and are retried: {e}");
                }
                return false;
            }
            Err(e) if e.retry_later() => {
                return self.complain(
                    quiet,
                    &name,
                    format!("not accepted this time, tried again next poll: {e}"),
                );
            }
            Ok(accepted) => {
                if std::mem::take(&mut quiet.bus_down) {
                    info!(adapter = %self.adapter, "bus available again");
                }
                match self.move_to(&self.done, &name, None).await {
                    Ok(_) => {
                        info!(adapter = %self.adapter, file = %name, id = %accepted.id, "file accepted");
                        self.move_attachments(&self.done, &name, attachments).await;
                    }
                    Err(e) => {
                        return self.complain(
                            quiet,
                            &name,
                            format!("accepted but cannot move to done: {e}"),
                        );
                    }
                }
            }
            Err(refusal) => match self.move_to(&self.rejected, &name, Some(&refusal)).await {
                Ok(_) => {
                    warn!(adapter = %self.adapter, file = %name, "file rejected: {refusal}");
                    self.move_attachments(&self.rejected, &name, attachments)
                        .await;
                }
                Err(e) => {
                    return self.complain(
                        quiet,
                        &name,
                        format!("rejected ({refusal}) but cannot move: {e}"),
                    );
                }
            },
        }
        quiet.files.remove(&name);
        true
    }

    /// Logs a problem with one file once (until the file is handled); the poll goes on with the next file.
    fn complain(&self, quiet: &mut Quiet, name: &str, what: String) -> bool {
        if quiet.files.insert(name.to_owned()) {
            error!(adapter = %self.adapter, file = %name, "{what}; the file stays and is retried");
        }
        true
    }

    /// What to submit for the file, or why it is refused without being submitted; with the attachment files
    /// that go wherever the file goes (a description's, even when it is refused).
    async fn read(&self, name: &str) -> io::Result<(Vec<String>, Result<Picked, ApiError>)> {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        let described = bundle::Described::of(name);
        let content = match ext.as_deref() {
            Some("json") => ContentKind::Json,
            Some("xml" | "edxml") => ContentKind::Xml,
            _ => {
                let msg =
                    "file name must end in .json, .xml, .edxml, .document.json or .status.json";
                return Ok((
                    Vec::new(),
                    Err(ApiError::new(code::UNSUPPORTED_MEDIA_TYPE, msg)),
                ));
            }
        };
        let (path, max) = (self.dir.join(name), self.max_bytes);
        let attachments_dir = self.attachments.clone();
        blocking(move || {
            let mut body = Vec::new();
            File::open(path)?.take(max + 1).read_to_end(&mut body)?;
            if body.len() as u64 > max {
                let msg = format!("file is larger than max_file_bytes ({max} bytes)");
                return Ok((Vec::new(), Err(ApiError::new(code::PAYLOAD_TOO_LARGE, msg))));
            }
            let Some(kind) = described else {
                let picked = Picked {
                    content,
                    id_source: Sha256::digest(&body).into(),
                    body: Bytes::from(body),
                };
                return Ok((Vec::new(), Ok(picked)));
            };
            let names = bundle::attachment_names(kind, &body);
            let built = bundle::build(kind, &body, &attachments_dir, max)?;
            Ok((
                names,
                built.map(|p| Picked {
                    content: ContentKind::Xml,
                    id_source: p.digest,
                    body: Bytes::from(p.bytes),
                }),
            ))
        })
        .await
    }

    /// Moves a description's attachments after it, into the same folder; a failure is logged, not fatal (the
    /// description has been handled, and the attachment is still where it was).
    async fn move_attachments(&self, to: &Path, description: &str, files: Vec<String>) {
        if files.is_empty() {
            return;
        }
        let (from, to) = (self.attachments.clone(), to.to_owned());
        let moved = blocking(move || {
            fs::create_dir_all(&to)?;
            for f in &files {
                match fs::rename(from.join(f), to.join(free_name(&to, f))) {
                    Ok(()) => {}
                    // Named twice in one description, or already moved: nothing left to move.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            sync_dir(&to)?;
            sync_dir(&from)
        })
        .await;
        if let Err(e) = moved {
            warn!(adapter = %self.adapter, file = %description, "cannot move the attachments: {e}");
        }
    }

    /// Moves `name` into `to` under a free name; for a refusal, writes `<final name>.error.json` first.
    async fn move_to(
        &self,
        to: &Path,
        name: &str,
        refusal: Option<&ApiError>,
    ) -> io::Result<String> {
        let (from, to, name) = (self.dir.clone(), to.to_owned(), name.to_owned());
        let mut report = refusal.map(|e| {
            let mut r = e.to_json();
            r["status"] = e.status().into();
            r["file"] = name.clone().into();
            r["agency"] = self.agency.clone().into();
            r["rejected_at"] = now_rfc3339().into();
            r
        });
        blocking(move || {
            fs::create_dir_all(&to)?;
            let target = free_name(&to, &name);
            if let Some(report) = &mut report {
                report["stored_as"] = target.clone().into();
                let bytes = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
                write_atomic(&to, &format!("{target}.error.json"), &bytes, true)?;
            }
            fs::rename(from.join(&name), to.join(&target))?;
            sync_dir(&to)?;
            sync_dir(&from)?;
            Ok(target)
        })
        .await
    }
}

/// `name`, or `<stem>.<n><.ext>` with the smallest n not yet taken in `dir`.
fn free_name(dir: &Path, name: &str) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let taken = |n: &String| fs::symlink_metadata(dir.join(n)).is_ok();
    std::iter::once(name.to_owned())
        .chain((1..).map(|n| format!("{stem}.{n}{ext}")))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// Regular files ready to take, oldest first (by modification time, then name), and how many files were
/// left alone because their name is not UTF-8.
fn list(dir: &Path) -> io::Result<(Vec<String>, usize)> {
    let (mut files, mut odd) = (Vec::new(), 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            odd += 1;
            continue;
        };
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((modified, name));
    }
    files.sort();
    Ok((files.into_iter().map(|(_, name)| name).collect(), odd))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

#[cfg(test)]
mod tests;
