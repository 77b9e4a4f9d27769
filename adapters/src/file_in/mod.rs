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
//! Only regular files are read, and only through handles, never by path ([`folder`] says why: the folder is
//! written by another system, which can swap a link or a pipe in after the listing). So an entry that is not a
//! regular file (a symbolic link, a pipe, a socket, a device, or a sub-folder named like a message) is never
//! submitted: it is refused (`unsupported_media_type`) and moved, as it is, to `rejected_dir` with its report,
//! instead of staying in the folder unseen. Other sub-folders, and the bus's own (`done`, `rejected`,
//! `attachments` when inside), are left alone.
//!
//! Files are never deleted; a name already taken in `done_dir`/`rejected_dir` gets `.1`, `.2`… before its
//! extension, and a name too long for that (or for `.error.json` beside it) is stored cut and tagged with a
//! hash of the whole name; the report's `file` keeps the whole name. Crash safety: until it is moved, a file is
//! still in the folder and is submitted again, with the same [`fallback_id`] (or the envelope's own `id`; an
//! edXML package is identified by its sender and DocumentId), so the bus's idempotency makes the resubmission a
//! no-op: nothing is lost and nothing is duplicated. While the process runs, a file the bus has answered for
//! good but that could not be moved (a full disk, a blocked `rejected_dir`) is not submitted again: the same
//! file (same inode, size and time) gets the same answer and only its move is tried again, logged once.

pub(crate) mod bundle;
mod config;
pub(crate) mod folder;

pub use config::FileInConfig;

use async_trait::async_trait;
use bytes::Bytes;
use folder::{Content, Folder, Identity, Kind, Opener, free_name};
use lienthong_bus::adapter::{Accepted, Caller, CancellationToken, Source, Submission, Submit};
use lienthong_bus::error::{ApiError, code};
use lienthong_bus::message::{ContentKind, now_rfc3339};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

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
    /// Which file was read (to know it again when it could not be moved after its answer).
    identity: Identity,
}

/// What is done with one entry of the folder, before the bus is asked.
enum Taken {
    /// Submit it.
    Submit(Picked),
    /// Refused without being submitted (too large, unknown extension, not a regular file, a bad description).
    Refused(ApiError),
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
    opener: Opener,
}

/// What is remembered across polls: a lasting problem is logged once, not every poll, and a file that was
/// answered but could not be moved is not submitted again.
#[derive(Default)]
struct Quiet {
    bus_down: bool,
    listing_failed: bool,
    odd_names: usize,
    /// Entries whose problem has been logged (until they are handled or gone).
    files: HashSet<String>,
    /// Files the bus answered for good that are still in the folder (their move failed): the same file (same
    /// identity) gets that answer again instead of a new submission.
    answered: HashMap<String, (Identity, Result<Accepted, ApiError>)>,
}

impl Quiet {
    /// Forgets the entries that are no longer in the folder.
    fn keep_only(&mut self, listed: &HashSet<&str>) {
        self.files.retain(|n| listed.contains(n.as_str()));
        self.answered.retain(|n, _| listed.contains(n.as_str()));
    }
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
        let (dir, opener) = (self.dir.clone(), self.opener.clone());
        let listed = blocking(move || {
            let inbox = opener.open(&dir)?;
            let entries = inbox.list()?;
            Ok((inbox, entries))
        })
        .await;
        let (inbox, entries) = match listed {
            Ok(listed) => listed,
            Err(e) => {
                if !std::mem::replace(&mut quiet.listing_failed, true) {
                    error!(adapter = %self.adapter, folder = %self.dir.display(), "cannot list the folder: {e}");
                }
                return;
            }
        };
        quiet.listing_failed = false;
        let (entries, odd) = self.to_take(entries);
        if std::mem::replace(&mut quiet.odd_names, odd) != odd && odd > 0 {
            warn!(adapter = %self.adapter, "{odd} file name(s) are not UTF-8 and are left alone");
        }
        quiet.keep_only(&entries.iter().map(|(name, _)| name.as_str()).collect());
        let inbox = Arc::new(inbox);
        for (name, kind) in entries {
            if shutdown.is_cancelled()
                || !self.one(ingress, shutdown, &inbox, name, kind, quiet).await
            {
                return;
            }
        }
    }

    /// The entries to take, oldest first (by modification time, then name), and how many were left alone
    /// because their name is not UTF-8. Hidden and temporary names are left alone, and so are sub-folders,
    /// except one named like a message (`*.json`, `*.xml`, `*.edxml`): that is set aside, not ignored for good.
    fn to_take(&self, entries: Vec<folder::Entry>) -> (Vec<(String, Kind)>, usize) {
        let own: Vec<&OsStr> = [&self.done, &self.rejected, &self.attachments]
            .into_iter()
            .filter(|p| p.parent() == Some(self.dir.as_path()))
            .filter_map(|p| p.file_name())
            .collect();
        let (mut taken, mut odd) = (Vec::new(), 0);
        for e in entries {
            // The bus's own sub-folders are never taken, whatever they have become: a link there is not
            // followed but reported when used (`Folder::folder`).
            if own.contains(&e.name.as_os_str()) {
                continue;
            }
            let Ok(name) = e.name.into_string() else {
                odd += 1;
                continue;
            };
            if is_in_progress(&name) {
                continue;
            }
            if e.kind == Kind::Folder && content_kind(&name).is_none() {
                continue;
            }
            taken.push((e.modified, name, e.kind));
        }
        taken.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let taken = taken.into_iter().map(|(_, name, kind)| (name, kind));
        (taken.collect(), odd)
    }

    /// Handles one entry; false when this poll should stop (bus unavailable, shutdown).
    async fn one(
        &self,
        ingress: &dyn Submit,
        shutdown: &CancellationToken,
        inbox: &Arc<Folder>,
        name: String,
        kind: Kind,
        quiet: &mut Quiet,
    ) -> bool {
        let (attachments, taken) = match self.read(inbox, &name, kind).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(e) => {
                return self.complain(quiet, &name, format!("cannot read the file: {e}"));
            }
            Ok(read) => read,
        };
        let (outcome, identity) = match taken {
            Taken::Refused(refusal) => (Err(refusal), None),
            Taken::Submit(file) => match quiet.answered.get(&name) {
                // Answered already; only its move failed. Not submitted again.
                Some((known, answer)) if *known == file.identity => (answer.clone(), None),
                _ => {
                    let identity = file.identity;
                    let submission = Submission {
                        caller: Caller::Agency(self.agency.clone()),
                        content: file.content,
                        fallback_id: Some(fallback_id(&self.agency, &name, &file.id_source)),
                        body: file.body,
                        traceparent: None,
                    };
                    tokio::select! {
                        answer = ingress.submit(submission) => (answer, Some(identity)),
                        _ = shutdown.cancelled() => return false,
                    }
                }
            },
        };
        match &outcome {
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
            _ => {}
        }
        if let Some(identity) = identity {
            quiet
                .answered
                .insert(name.clone(), (identity, outcome.clone()));
        }
        let (to, refusal) = match &outcome {
            Ok(_) => {
                if std::mem::take(&mut quiet.bus_down) {
                    info!(adapter = %self.adapter, "bus available again");
                }
                (&self.done, None)
            }
            Err(refusal) => (&self.rejected, Some(refusal)),
        };
        if let Err(e) = self.move_to(inbox, to, &name, refusal).await {
            let what = match refusal {
                None => format!("accepted but cannot move to done: {e}"),
                Some(refusal) => format!("rejected ({refusal}) but cannot move: {e}"),
            };
            return self.complain(quiet, &name, what);
        }
        match &outcome {
            Ok(accepted) => {
                info!(adapter = %self.adapter, file = %name, id = %accepted.id, "file accepted")
            }
            Err(refusal) => {
                warn!(adapter = %self.adapter, file = %name, "file rejected: {refusal}")
            }
        }
        self.move_attachments(inbox, to, &name, attachments).await;
        quiet.files.remove(&name);
        quiet.answered.remove(&name);
        true
    }

    /// Logs a problem with one entry once (until it is handled or gone); the poll goes on with the next.
    fn complain(&self, quiet: &mut Quiet, name: &str, what: String) -> bool {
        if quiet.files.insert(name.to_owned()) {
            error!(adapter = %self.adapter, file = %name, "{what}; the file stays and is retried");
        }
        true
    }

    /// What to do with the entry: submit it, or refuse it without asking the bus; with the attachment files
    /// that go wherever it goes (a description's, even when it is refused).
    async fn read(
        &self,
        inbox: &Arc<Folder>,
        name: &str,
        kind: Kind,
    ) -> io::Result<(Vec<String>, Taken)> {
        let content = match kind {
            Kind::Folder => return Ok((Vec::new(), Taken::Refused(not_a_file("a folder")))),
            Kind::Other(what) => return Ok((Vec::new(), Taken::Refused(not_a_file(what)))),
            Kind::File => match content_kind(name) {
                Some(content) => content,
                None => {
                    let msg =
                        "file name must end in .json, .xml, .edxml, .document.json or .status.json";
                    let refusal = ApiError::new(code::UNSUPPORTED_MEDIA_TYPE, msg);
                    return Ok((Vec::new(), Taken::Refused(refusal)));
                }
            },
        };
        let described = bundle::Described::of(name);
        let (inbox, name, max) = (inbox.clone(), name.to_owned(), self.max_bytes);
        let attachments_dir = self.attachments.clone();
        blocking(move || {
            let (body, identity) = match inbox.read(&name, max)? {
                Content::Bytes(body, identity) => (body, identity),
                Content::TooLarge => {
                    let msg = format!("file is larger than max_file_bytes ({max} bytes)");
                    let refusal = ApiError::new(code::PAYLOAD_TOO_LARGE, msg);
                    return Ok((Vec::new(), Taken::Refused(refusal)));
                }
                Content::NotAFile(what) => {
                    return Ok((Vec::new(), Taken::Refused(not_a_file(what))));
                }
            };
            let Some(kind) = described else {
                let picked = Picked {
                    content,
                    id_source: Sha256::digest(&body).into(),
                    body: Bytes::from(body),
                    identity,
                };
                return Ok((Vec::new(), Taken::Submit(picked)));
            };
            let names = bundle::attachment_names(kind, &body);
            let attachments = inbox.folder(&attachments_dir, true)?;
            let taken = match bundle::build(kind, &body, identity.written(), &attachments, max)? {
                Ok(p) => Taken::Submit(Picked {
                    content: ContentKind::Xml,
                    id_source: p.digest,
                    body: Bytes::from(p.bytes),
                    identity,
                }),
                Err(refusal) => Taken::Refused(refusal),
            };
            Ok((names, taken))
        })
        .await
    }

    /// Moves a description's attachments after it, into the same folder; a failure is logged, not fatal (the
    /// description has been handled, and the attachment is still where it was).
    async fn move_attachments(
        &self,
        inbox: &Arc<Folder>,
        to: &Path,
        description: &str,
        files: Vec<String>,
    ) {
        if files.is_empty() {
            return;
        }
        let (inbox, from, to) = (inbox.clone(), self.attachments.clone(), to.to_owned());
        let moved = blocking(move || {
            let (from, to) = (inbox.folder(&from, true)?, inbox.folder(&to, true)?);
            for f in &files {
                match from.move_to(f, &to, &free_name(&to, f)) {
                    Ok(()) => {}
                    // Named twice in one description, or already moved: nothing left to move.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            to.sync()?;
            from.sync()
        })
        .await;
        if let Err(e) = moved {
            warn!(adapter = %self.adapter, file = %description, "cannot move the attachments: {e}");
        }
    }

    /// Moves entry `name` into `to` under a free name; for a refusal, writes `<stored name>.error.json` first.
    async fn move_to(
        &self,
        inbox: &Arc<Folder>,
        to: &Path,
        name: &str,
        refusal: Option<&ApiError>,
    ) -> io::Result<String> {
        let (inbox, to, name) = (inbox.clone(), to.to_owned(), name.to_owned());
        let mut report = refusal.map(|e| {
            let mut r = e.to_json();
            r["status"] = e.status().into();
            r["file"] = name.clone().into();
            r["agency"] = self.agency.clone().into();
            r["rejected_at"] = now_rfc3339().into();
            r
        });
        blocking(move || {
            let to = inbox.folder(&to, true)?;
            let target = free_name(&to, &name);
            if let Some(report) = &mut report {
                report["stored_as"] = target.clone().into();
                let bytes = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
                to.write_atomic(&format!("{target}.error.json"), &bytes)?;
            }
            inbox.move_to(&name, &to, &target)?;
            to.sync()?;
            inbox.sync()?;
            Ok(target)
        })
        .await
    }
}

/// What a name says the file holds: `*.json` (descriptions included) or `*.xml` / `*.edxml`, in any case.
fn content_kind(name: &str) -> Option<ContentKind> {
    match name.rsplit_once('.')?.1.to_ascii_lowercase().as_str() {
        "json" => Some(ContentKind::Json),
        "xml" | "edxml" => Some(ContentKind::Xml),
        _ => None,
    }
}

/// The refusal of an entry that is not a regular file.
fn not_a_file(what: &str) -> ApiError {
    ApiError::new(
        code::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "this is {what}, not a regular file: only regular files are taken (a link could hand over a file \
             from outside the folder, a pipe would block the folder); it is set aside as it is"
        ),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;

/// Names the usual tools give a file while they are still writing it, before the rename into the folder:
/// hidden (`.name`), and the temporary suffixes of common copy and transfer programs (WinSCP's `.filepart`,
/// browsers' `.crdownload`/`.partial`, rsync's `~tmp~`, editors' `~`). Such a file is left where it is.
pub(crate) const IN_PROGRESS_SUFFIXES: &[&str] = &[
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".filepart",
    ".crdownload",
    ".download",
    ".swp",
    "~",
];

/// Whether `name` is a file still being written (see [`IN_PROGRESS_SUFFIXES`]).
fn is_in_progress(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || IN_PROGRESS_SUFFIXES.iter().any(|s| lower.ends_with(s))
}
