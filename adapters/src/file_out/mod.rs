//! `file-out`: writes each message as one file in a folder, for systems that can only read folders (or a sync
//! tool that ships the folder on).
//!
//! Why atomic: a reader polling the folder must never see half a file. Each message is written to a hidden
//! temp file in the same folder (`.lt-<random>.tmp`), fsynced, renamed to its final name, and the folder is
//! fsynced so the rename itself survives a power cut. Readers must ignore names starting with `.`.
//!
//! Why the id is the name: a crash between writing and ack redelivers the message; the redelivery finds the
//! file with identical bytes instead of adding a second one. `<id>.json` holds the envelope *without* `attempt`
//! (so every attempt writes the same bytes); `<id>.xml` holds the edXML package exactly as received. Ids are
//! made safe for file names by [`file_stem`].
//!
//! Why not the id alone: ids are chosen by senders, so two agencies may use the same one, and they are two
//! messages (a message is named by its sender and its id). The name is taken without replacing (a hard link of
//! the finished temp file, which fails if the name exists): if `<id>.<ext>` already holds other bytes — another
//! sender's message, since one sender's id always carries the same content — the message is written as
//! `<id>~<12 hex digits of SHA-256(sender)>.<ext>` instead, so neither replaces the other and a redelivery of
//! either lands on its own name again.
//!
//! Every IO failure (disk full, permission denied, folder removed or unmounted) is transient: an operator can
//! fix it and the retry succeeds; the route's retry policy bounds how long before it is dead-lettered.

use crate::registry::{AdapterType, Context};
use async_trait::async_trait;
use bytes::Bytes;
use lienthong_bus::adapter::{Built, Delivery, DeliveryError, Sink};
use lienthong_bus::config::Problem;
use lienthong_bus::message::ContentKind;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `type = "file-out"`: one file per message in a folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutConfig {
    /// Folder the files are written to, relative to the config file. Required. Created at startup if missing
    /// (its parent folder must exist).
    pub path: PathBuf,
    /// Flush each file and the folder to disk before a delivery counts as done, so an acknowledged message
    /// survives a power cut. Default `true`. `false` is faster, but a crash can lose files already acknowledged.
    #[serde(default = "yes")]
    pub fsync: bool,
}

fn yes() -> bool {
    true
}

impl AdapterType for FileOutConfig {
    const NAME: &'static str = "file-out";

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        folder(self, cx).err().unwrap_or_default()
    }

    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        let dir = folder(&self, cx)?;
        let problem = |e: io::Error| {
            vec![Problem::new(
                cx.at("path"),
                format!("cannot create `{}`: {e}", dir.display()),
            )]
        };
        fs::create_dir_all(&dir).map_err(problem)?;
        remove_stale_temp_files(&dir);
        Ok(Built {
            sink: Some(Arc::new(FileOut {
                dir,
                fsync: self.fsync,
            })),
            ..Built::default()
        })
    }
}

/// The folder `path` names, or the problem with it.
fn folder(cfg: &FileOutConfig, cx: &Context<'_>) -> Result<PathBuf, Vec<Problem>> {
    let dir = cx.spec.resolve(&cfg.path);
    match folder_problem(&dir) {
        Some(message) => Err(vec![Problem::new(cx.at("path"), message)]),
        None => Ok(dir),
    }
}

/// Why `dir` cannot be used as (or created as) a folder, if it cannot.
pub(crate) fn folder_problem(dir: &Path) -> Option<String> {
    if dir.exists() {
        return (!dir.is_dir()).then(|| format!("`{}` exists but is not a folder", dir.display()));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    (!parent.is_dir()).then(|| format!("the parent folder `{}` does not exist", parent.display()))
}

struct FileOut {
    dir: PathBuf,
    fsync: bool,
}

#[async_trait]
impl Sink for FileOut {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        let m = &d.message;
        let (ext, bytes) = match m.content {
            ContentKind::Json => ("json", Bytes::from(m.envelope_json(None))),
            ContentKind::Xml => ("xml", m.payload.clone()),
        };
        let stem = file_stem(&m.meta.id);
        let name = format!("{stem}.{ext}");
        let other = format!(
            "{stem}~{}.{ext}",
            &lienthong_bus::hex::lower(&Sha256::digest(m.meta.from.as_bytes()))[..12]
        );
        let (dir, fsync) = (self.dir.clone(), self.fsync);
        let target = dir.join(&name);
        tokio::task::spawn_blocking(move || write_unclaimed(&dir, &name, &other, &bytes, fsync))
            .await
            .map_err(|e| DeliveryError::transient(format!("file writer task failed: {e}")))?
            .map_err(|e| {
                DeliveryError::transient(format!("cannot write `{}`: {e}", target.display()))
            })
    }
}

/// The message id as a file name stem: characters outside `[A-Za-z0-9._-]` (and a leading `.`, which would
/// hide the file) become `_`, at most 200 of them are kept, and whenever anything changed `-<12 hex digits of
/// SHA-256(id)>` is appended, so two different ids never share a file.
pub fn file_stem(id: &str) -> String {
    const MAX: usize = 200;
    let mut stem: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    if stem == id && !stem.is_empty() && stem.len() <= MAX {
        return stem;
    }
    stem.truncate(MAX);
    format!(
        "{stem}-{}",
        &lienthong_bus::hex::lower(&Sha256::digest(id.as_bytes()))[..12]
    )
}

/// Writes `bytes` as `dir/name` without replacing a file of other bytes there: then as `dir/other`, replacing
/// that. Readers see either no file or the whole file: it is written to a temp file in the same folder, (fsynced,)
/// then given its name, (and the folder fsynced). The temp file is removed on failure.
pub(crate) fn write_unclaimed(
    dir: &Path,
    name: &str,
    other: &str,
    bytes: &[u8],
    fsync: bool,
) -> io::Result<()> {
    let tmp = temp_name(dir);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        let target = dir.join(name);
        let taken = match fs::hard_link(&tmp, &target) {
            Ok(()) => {
                fs::remove_file(&tmp)?;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => true,
            // A filesystem without hard links: the check and the rename are two steps there.
            Err(_) => {
                if fs::symlink_metadata(&target).is_ok() {
                    true
                } else {
                    fs::rename(&tmp, &target)?;
                    false
                }
            }
        };
        if taken {
            if holds_exactly(&target, bytes)? {
                // This very message, written before (a redelivery): nothing to change.
                fs::remove_file(&tmp)?;
                return Ok(());
            }
            fs::rename(&tmp, dir.join(other))?;
        }
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `path` is a regular file (not followed if a link) holding exactly `bytes`.
fn holds_exactly(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32,
        )
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        // A link or something else that cannot be read as a file: not ours.
        Err(_) => return Ok(false),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(at == bytes.len());
        }
        if at + n > bytes.len() || buf[..n] != bytes[at..at + n] {
            return Ok(false);
        }
        at += n;
    }
}

/// A hidden temp file name in `dir`. The writer's pid is in it, so that a restart can tell a crashed writer's
/// leftovers from a live process's write in progress (see `remove_stale_temp_files`).
fn temp_name(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".lt-{}-{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Makes renames into or out of `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Temp files left by a crash mid-write: those whose writer is gone, and any older than an hour. Another live
/// process's in-flight write is spared.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        if name.starts_with(".lt-") && name.ends_with(".tmp") && (old || writer_gone(&name)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// For a temp file named `.lt-<pid>-<random>.tmp`: true when process `<pid>` no longer runs (Linux `/proc`), or
/// is this process, which writes nothing before the sweep at startup, so the file is an earlier process's
/// that had the same pid (a container's pid 1 after a restart). Unknown (false) for other names.
fn writer_gone(name: &str) -> bool {
    let pid = name
        .strip_prefix(".lt-")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<u32>().ok());
    let Some(pid) = pid else {
        return false;
    };
    let proc_fs = Path::new("/proc/self").exists();
    pid == std::process::id() || (proc_fs && !Path::new("/proc").join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests;
