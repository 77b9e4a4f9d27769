//! Folders as handles: how `file-in` opens, reads and moves what another system wrote.
//!
//! Why: everything in the watched folder is put there by another system (an agency's software, or anyone who
//! can log into its machine), and it can change a name between the moment the bus lists it and the moment the
//! bus opens it. Opening by path (`File::open(dir.join(name))`) follows a symbolic link renamed over a listed
//! file, so the bus would read and deliver any file it can read elsewhere; checking first (`symlink_metadata`)
//! does not help, the swap comes between the check and the open. A pipe in its place would block the read, and
//! the folder's poll with it, for good. So nothing here trusts a name, only what an open handle says:
//!
//! - a folder is opened once per poll as a handle, and its entries are opened *relative to that handle*
//!   (`openat`) with `O_NOFOLLOW` (a link is refused by the kernel, `ELOOP`), `O_NONBLOCK` (a pipe opens
//!   without waiting for a writer), `O_NOCTTY` and `O_CLOEXEC`;
//! - what was opened is then checked on the handle (`fstat`): only a regular file is read, only when its size
//!   is within the bound, and never more than the bound plus one byte (it may still be growing);
//! - a folder that lies inside the watched one (`done`, `rejected` and `attachments` by default) is reached
//!   from the watched folder's handle one name at a time without following links either, since the writing
//!   system can replace it by a link to a folder elsewhere; folders configured elsewhere are the operator's,
//!   and are opened by their path;
//! - moves are `renameat` between handles (refusing to replace an existing name where the kernel can), so a
//!   link is moved as the link, a folder whole, and nothing outside the folders is touched.
//!
//! Names are kept within the usual 255-byte limit of one file name, with room for the `.error.json` written
//! beside a refused file: a longer one is cut and tagged with a hash of the whole name ([`stored_name`]), so a
//! 255-byte name can still be moved, and two long names that begin alike stay apart.

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Called with each path just before it is opened: a test plays the writing system's races there.
#[cfg(test)]
pub(super) type Hook = std::sync::Arc<dyn Fn(&Path) + Send + Sync>;

/// Opens the watched folder (in tests, with a [`Hook`] that every folder reached from it inherits).
#[derive(Clone, Default)]
pub(crate) struct Opener {
    #[cfg(test)]
    pub(super) hook: Option<Hook>,
}

impl Opener {
    /// The folder at `path` (configured by the operator, so links in the path are followed).
    pub fn open(&self, path: &Path) -> io::Result<Folder> {
        let fd = rustix::fs::openat(CWD, path, dir_flags(), Mode::empty())
            .map_err(|e| not_a_folder(path, e))?;
        Ok(Folder {
            fd,
            path: path.to_owned(),
            opener: self.clone(),
        })
    }
}

/// An opened folder: its entries are reached relative to this handle only.
pub(crate) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
    opener: Opener,
}

/// What a listed entry is, as the folder says (a link is a link, not what it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Folder,
    /// Anything else, and what it is, for the report.
    Other(&'static str),
}

/// One entry of a folder.
pub(crate) struct Entry {
    pub name: OsString,
    pub kind: Kind,
    /// Modification time: seconds and nanoseconds.
    pub modified: (i64, i64),
}

/// What an entry holds, once opened.
pub(crate) enum Content {
    /// A regular file's bytes (within the bound), and which file it was.
    Bytes(Vec<u8>, Identity),
    /// A regular file larger than the bound.
    TooLarge,
    /// Not a regular file: what it is.
    NotAFile(&'static str),
}

/// Which file was read, as its handle says: a name can be given to another file between two polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
}

impl Identity {
    /// When the file was last written (Unix seconds).
    pub(crate) fn written(&self) -> i64 {
        self.modified.0
    }
}

impl Folder {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder at `path`, created when missing and `create`. Inside this folder, it is reached from this
    /// handle one name at a time without following links; elsewhere, by its path.
    pub fn folder(&self, path: &Path, create: bool) -> io::Result<Folder> {
        let inside = path.strip_prefix(&self.path).ok().filter(|rel| {
            !rel.as_os_str().is_empty()
                && rel.components().all(|c| matches!(c, Component::Normal(_)))
        });
        let Some(inside) = inside else {
            if create {
                fs::create_dir_all(path)?;
            }
            return self.opener.open(path);
        };
        let mut fd: Option<OwnedFd> = None;
        for part in inside.components() {
            let parent = fd.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let name = part.as_os_str();
            let opened = match rustix::fs::openat(
                parent,
                name,
                dir_flags() | OFlags::NOFOLLOW,
                Mode::empty(),
            ) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(parent, name, Mode::from(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(not_a_folder(path, e)),
                    }
                    rustix::fs::openat(parent, name, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
                }
                other => other,
            };
            let opened = opened.map_err(|e| match e {
                // `O_DIRECTORY` answers a link with ENOTDIR (and `O_NOFOLLOW` with ELOOP): say which.
                Errno::NOTDIR | Errno::LOOP => {
                    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Symlink => {
                            not_a_folder(path, Errno::LOOP)
                        }
                        _ => not_a_folder(path, Errno::NOTDIR),
                    }
                }
                e => not_a_folder(path, e),
            })?;
            fd = Some(opened);
        }
        let Some(fd) = fd else {
            return self.opener.open(path); // not reached: a path inside has at least one name
        };
        Ok(Folder {
            fd,
            path: path.to_owned(),
            opener: self.opener.clone(),
        })
    }

    /// Every entry but `.` and `..`, with what it is (not following links) and when it was modified. An entry
    /// removed while the folder is listed is left out.
    pub fn list(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_owned();
            let stat =
                match rustix::fs::statat(&self.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => stat,
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
            let kind = match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Folder,
                other => Kind::Other(what(other)),
            };
            entries.push(Entry {
                name,
                kind,
                modified: modified(&stat),
            });
        }
        Ok(entries)
    }

    /// Opens entry `name` without following a link and without waiting on a pipe, and reads it when, on the
    /// handle, it is a regular file of at most `max` bytes.
    pub fn read(&self, name: &str, max: u64) -> io::Result<Content> {
        #[cfg(test)]
        if let Some(hook) = &self.opener.hook {
            hook(&self.path.join(name));
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Ok(Content::NotAFile(what(FileType::Symlink))),
            // What opening a socket (or a device without a driver) answers.
            Err(Errno::NXIO) => return Ok(Content::NotAFile("a socket or a device")),
            Err(e) => return Err(e.into()),
        };
        // `fstat` on the handle: what was opened, not what the name points to now.
        let mut file = File::from(fd);
        let meta = file.metadata()?;
        let kind = FileType::from_raw_mode(meta.mode());
        if kind != FileType::RegularFile {
            return Ok(Content::NotAFile(what(kind)));
        }
        if meta.size() > max {
            return Ok(Content::TooLarge);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.size()).unwrap_or(0));
        (&mut file)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Ok(Content::TooLarge);
        }
        let identity = Identity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
        };
        Ok(Content::Bytes(bytes, identity))
    }

    /// Whether this folder has an entry `name` (of any kind).
    pub fn has(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Writes `name` whole or not at all: a hidden temporary file, synced, renamed over `name`.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = format!(
            ".lt-{}-{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let written = (|| {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let mut file = File::from(rustix::fs::openat(
                &self.fd,
                tmp.as_str(),
                flags,
                Mode::from(0o666),
            )?);
            file.write_all(bytes)?;
            file.sync_all()?;
            rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        written
    }

    /// Moves entry `name` into `to` as `target`, never over an existing `target` where the file system can
    /// refuse that. The entry itself is moved: a link as the link, a folder whole.
    pub fn move_to(&self, name: &str, to: &Folder, target: &str) -> io::Result<()> {
        match rustix::fs::renameat_with(&self.fd, name, &to.fd, target, RenameFlags::NOREPLACE) {
            // The file system (or kernel) cannot refuse: `target` was free when it was chosen.
            Err(Errno::INVAL | Errno::NOSYS) => {
                rustix::fs::renameat(&self.fd, name, &to.fd, target)?
            }
            other => other?,
        }
        Ok(())
    }

    /// Makes renames into or out of this folder durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn not_a_folder(path: &Path, e: Errno) -> io::Error {
    let why = match e {
        Errno::LOOP => "it is a symbolic link; only a real folder is used".to_owned(),
        Errno::NOTDIR => "it is not a folder".to_owned(),
        e => io::Error::from(e).to_string(),
    };
    io::Error::new(
        io::Error::from(e).kind(),
        format!("cannot open the folder `{}`: {why}", path.display()),
    )
}

// The field types differ between architectures (here they may already be `i64`).
#[allow(clippy::useless_conversion)]
fn modified(stat: &rustix::fs::Stat) -> (i64, i64) {
    (
        i64::from(stat.st_mtime),
        i64::try_from(stat.st_mtime_nsec).unwrap_or(0),
    )
}

/// What a file type is, in a report.
fn what(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a named pipe",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "not a regular file",
    }
}

/// Longest stored name: 255 bytes (one name's limit on the usual file systems) less `.error.json`.
const MAX_STORED: usize = 255 - ".error.json".len();

/// The name the `n`th copy of `name` is stored under (`n` = 0: `name`; then `<stem>.<n><.ext>`), within
/// [`MAX_STORED`] bytes: a longer one keeps its beginning, cut on a character, then `~` and 16 hex digits of
/// the whole name's SHA-256, then the number and the extension.
pub(crate) fn stored_name(name: &str, n: u32) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => name.split_at(i),
        _ => (name, ""),
    };
    let number = if n == 0 {
        String::new()
    } else {
        format!(".{n}")
    };
    let plain = format!("{stem}{number}{ext}");
    if plain.len() <= MAX_STORED {
        return plain;
    }
    let tag = format!(
        "~{}",
        lienthong_bus::hex::lower(&Sha256::digest(name.as_bytes())[..8])
    );
    let mut cut = MAX_STORED - tag.len() - number.len() - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tag}{number}{ext}", &stem[..cut])
}

/// The first of `name`'s stored names that is free in `dir`.
pub(super) fn free_name(dir: &Folder, name: &str) -> String {
    (0..)
        .map(|n| stored_name(name, n))
        .find(|candidate| !dir.has(candidate))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_fit_with_their_error_file_and_stay_apart() {
        assert_eq!(stored_name("a.json", 0), "a.json");
        assert_eq!(stored_name("a.json", 2), "a.2.json");
        assert_eq!(stored_name("noext", 1), "noext.1");
        let long = format!("{}.json", "a".repeat(250));
        let twin = format!("{}b.json", "a".repeat(249));
        let viet = format!("{}.json", "ồ".repeat(83));
        let odd_ext = format!("x.{}", "e".repeat(253));
        for name in [&long, &twin, &viet, &odd_ext] {
            for n in [0, 1, 4_000_000_000] {
                let s = stored_name(name, n);
                assert!(s.len() + ".error.json".len() <= 255, "{s}");
                assert_eq!(s, stored_name(name, n), "the same every time");
            }
        }
        assert!(stored_name(&long, 0).ends_with(".json"));
        assert!(stored_name(&long, 3).ends_with(".3.json"));
        assert_ne!(stored_name(&long, 0), stored_name(&twin, 0));
        assert_ne!(stored_name(&long, 0), stored_name(&long, 1));
        assert!(stored_name(&viet, 0).starts_with("ồồ"));
    }
}
