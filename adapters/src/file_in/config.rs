//! The `file-in` adapter's options, and their check and build: every problem with the folders is found before
//! the bus starts (missing folder, a sub-folder on another file system, a `file-out` adapter writing into it),
//! so that moving files by rename cannot fail on them at run time.

use super::FileIn;
use super::folder::Opener;
use crate::file_out::{FileOutConfig, folder_problem};
use crate::registry::{AdapterType, Context};
use lienthong_bus::adapter::Built;
use lienthong_bus::config::{HumanDuration, Problem};
use lienthong_qcvn102::agency::AgencyCode;
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};

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
    /// must be on the same filesystem as `path` (files are moved by rename). When it is inside `path`, a link
    /// put in its place is not followed (the move waits, logged once, until it is a folder again).
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
    /// built from it (attachments included). The size is checked on the opened file, and no more than this is
    /// ever read of it. Default 67108864 (64 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_file_bytes: u64,
}

fn default_poll() -> HumanDuration {
    HumanDuration::secs(1)
}
fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}

impl AdapterType for FileInConfig {
    const NAME: &'static str = "file-in";

    fn check(&self, cx: &Context<'_>) -> Vec<Problem> {
        prepare(self, cx).err().unwrap_or_default()
    }

    fn build(self, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
        let source = prepare(&self, cx)?;
        // The writing system puts attachments there before it renames a description in: it must exist.
        fs::create_dir_all(&source.attachments).map_err(|e| {
            vec![Problem::new(
                cx.at("attachments_dir"),
                format!("cannot create `{}`: {e}", source.attachments.display()),
            )]
        })?;
        Ok(Built {
            source: Some(Box::new(source)),
            ..Built::default()
        })
    }
}

/// The source these options describe, or every problem with them (folders included) at its key path.
pub(super) fn prepare(cfg: &FileInConfig, cx: &Context<'_>) -> Result<FileIn, Vec<Problem>> {
    let (spec, config) = (cx.spec, cx.config);
    let at = |key: &str| cx.at(key);
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
    for other in config
        .adapters
        .iter()
        .filter(|a| a.kind == FileOutConfig::NAME)
    {
        if let Ok(out) = other.parse_options::<FileOutConfig>()
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
        .as_ref()
        .map_or_else(|| dir.join("done"), |d| spec.resolve(d));
    let rejected = cfg
        .rejected_dir
        .as_ref()
        .map_or_else(|| dir.join("rejected"), |d| spec.resolve(d));
    let attachments = cfg
        .attachments_dir
        .as_ref()
        .map_or_else(|| dir.join("attachments"), |d| spec.resolve(d));
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
        agency: cfg.agency.clone(),
        poll: cfg.poll_interval.get(),
        max_bytes: cfg.max_file_bytes,
        opener: Opener::default(),
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
