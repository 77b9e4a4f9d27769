//! What the writing system can put in the folder besides files: links (also renamed over a file after the
//! listing), pipes, sockets, folders named like messages, names of 255 bytes, entries that cannot be moved.

use super::tests::*;
use super::*;
use crate::testing::check;
use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::instrument::WithSubscriber;

/// A file outside the folder that the bus can read: a valid envelope, so that following a link to it would get
/// it accepted and delivered.
const SECRET: &[u8] =
    b"{\"type\":\"dossier.submitted\",\"from\":\"000.00.01.H40\",\"to\":[\"000.00.12.H40\"],\
    \"payload\":{\"secret\":\"S3CRET-TOKEN-7f3a\"}}";

fn secret(t: &Test) -> PathBuf {
    let p = t._tmp.path().join("secret.json");
    fs::write(&p, SECRET).unwrap();
    p
}

/// The secret's bytes in any submission, as they are or base64-encoded in a package.
fn leaked(fake: &Fake) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    fake.seen().iter().any(|s| {
        contains(&s.body, b"S3CRET-TOKEN-7f3a") || contains(&s.body, &b64.as_bytes()[..40])
    })
}

/// Log lines written by the source.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    /// Lines that contain every one of `words`.
    fn lines_with(&self, words: &[&str]) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect()
    }
}

struct Running {
    fake: Arc<Fake>,
    logs: Logs,
    _stop: tokio_util::sync::DropGuard,
}

/// Starts the source with `hook` called with each path just before it is opened, and its logs captured.
fn start(t: &Test, answer: Answer, hook: Option<folder::Hook>) -> Running {
    assert_eq!(check(&t.spec, &t.config), vec![]);
    let options = t.spec.parse_options().unwrap();
    let cx = crate::Context::new(&t.spec, &t.config, &|_| None);
    let mut source = config::prepare(&options, &cx).unwrap();
    fs::create_dir_all(&source.attachments).unwrap();
    source.opener = folder::Opener { hook };
    let fake = Arc::new(Fake {
        seen: Mutex::default(),
        answer,
    });
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let shutdown = CancellationToken::new();
    let source: Box<dyn Source> = Box::new(source);
    tokio::spawn(
        source
            .run(fake.clone(), shutdown.clone())
            .with_subscriber(subscriber),
    );
    Running {
        fake,
        logs,
        _stop: shutdown.drop_guard(),
    }
}

/// Drops `name` and waits until it is in done/: every entry older than it has been handled (or tried) in a
/// poll that began after this call.
async fn a_later_poll(t: &Test, name: &str) {
    t.put(name, &envelope(99));
    wait_until(&format!("{name} in done/"), || {
        t.path(&format!("done/{name}")).exists()
    })
    .await;
}

fn report(t: &Test, stored: &str) -> serde_json::Value {
    let bytes = fs::read(t.path(&format!("rejected/{stored}.error.json"))).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn message(report: &serde_json::Value) -> String {
    report["error"]["message"].as_str().unwrap().to_owned()
}

/// What an attacker does between the listing and the open: renames a link to `target` over `path`.
fn swap_in_link(path: &Path, target: &Path) {
    let tmp = path.with_file_name(".swap");
    symlink(target, &tmp).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// A hook that swaps a link to `target` over `victim` the first time `victim` is about to be opened.
fn swap_hook(victim: PathBuf, target: PathBuf, swapped: Arc<AtomicBool>) -> folder::Hook {
    Arc::new(move |path: &Path| {
        if path == victim && !swapped.swap(true, Ordering::SeqCst) {
            swap_in_link(path, &target);
        }
    })
}

#[tokio::test]
async fn a_link_renamed_over_a_listed_file_before_it_is_opened_is_not_followed() {
    let t = setup("");
    let secret = secret(&t);
    t.put("a.json", &envelope(1));
    let swapped = Arc::new(AtomicBool::new(false));
    let hook = swap_hook(t.path("a.json"), secret.clone(), swapped.clone());
    let r = start(&t, Box::new(accept), Some(hook));
    wait_until("a.json handled", || {
        t.path("a.json").symlink_metadata().is_err()
    })
    .await;
    a_later_poll(&t, "b.json").await;
    assert!(swapped.load(Ordering::SeqCst), "the race was played");
    assert!(!leaked(&r.fake), "the link's target was submitted");
    assert!(t.path("rejected/a.json.error.json").exists(), "set aside");
    assert_eq!(r.fake.seen().len(), 1, "only b.json is submitted");
    let moved = fs::symlink_metadata(t.path("rejected/a.json")).unwrap();
    assert!(moved.file_type().is_symlink(), "the link itself is moved");
    assert!(message(&report(&t, "a.json")).contains("symbolic link"));
    assert_eq!(
        fs::read(&secret).unwrap(),
        SECRET,
        "the target is untouched"
    );
    assert!(!t.path("done/a.json").exists());
}

#[tokio::test]
async fn a_link_renamed_over_an_attachment_before_it_is_opened_is_not_followed() {
    let t = setup("");
    let secret = secret(&t);
    let swapped = Arc::new(AtomicBool::new(false));
    let hook = swap_hook(
        t.path("attachments/scan.pdf"),
        secret.clone(),
        swapped.clone(),
    );
    let r = start(&t, Box::new(accept), Some(hook));
    fs::write(t.path("attachments/scan.pdf"), b"%PDF-1.4 real scan").unwrap();
    t.put(
        "d.document.json",
        &description(serde_json::json!([{"file": "scan.pdf"}])),
    );
    wait_until("d.document.json handled", || {
        !t.path("d.document.json").exists()
    })
    .await;
    a_later_poll(&t, "b.json").await;
    assert!(swapped.load(Ordering::SeqCst), "the race was played");
    assert!(!leaked(&r.fake), "the link's target was submitted");
    assert!(
        t.path("rejected/d.document.json.error.json").exists(),
        "set aside"
    );
    wait_until("the link moved with its description", || {
        t.path("rejected/scan.pdf").symlink_metadata().is_ok()
    })
    .await;
    assert_eq!(r.fake.seen().len(), 1, "only b.json is submitted");
    let e = report(&t, "d.document.json");
    assert_eq!(e["error"]["details"][0]["path"], "/attachments/0/file");
    assert!(message(&e).contains("symbolic link"), "{e}");
    assert!(
        fs::symlink_metadata(t.path("rejected/scan.pdf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&secret).unwrap(), SECRET);
}

#[tokio::test]
async fn a_replaced_attachments_folder_is_not_followed() {
    let t = setup("");
    let secret = secret(&t);
    let r = start(&t, Box::new(accept), None);
    // The writing system swaps the attachments folder for a link to a folder outside, where the secret is.
    fs::remove_dir(t.path("attachments")).unwrap();
    symlink(secret.parent().unwrap(), t.path("attachments")).unwrap();
    t.put(
        "d.document.json",
        &description(serde_json::json!([{"file": "secret.json"}])),
    );
    a_later_poll(&t, "later.json").await;
    a_later_poll(&t, "last.json").await;
    assert!(!leaked(&r.fake), "a file outside the folder was submitted");
    assert!(
        t.path("d.document.json").exists(),
        "it waits for a real folder"
    );
    assert!(
        t.path("attachments")
            .symlink_metadata()
            .unwrap()
            .is_symlink(),
        "the operator's (or intruder's) entry is not moved"
    );
    let logged = r
        .logs
        .lines_with(&["d.document.json", "attachments", "symbolic link"]);
    assert_eq!(
        logged.len(),
        1,
        "reported once: {logged:?} in {:?}",
        r.logs.lines_with(&[""])
    );
    // A real folder again: the description is handled (refused: its attachment is not there).
    fs::remove_file(t.path("attachments")).unwrap();
    fs::create_dir(t.path("attachments")).unwrap();
    wait_until("d.document.json set aside", || {
        t.path("rejected/d.document.json.error.json").exists()
    })
    .await;
    assert!(message(&report(&t, "d.document.json")).contains("secret.json"));
    assert!(!leaked(&r.fake));
    assert_eq!(fs::read(&secret).unwrap(), SECRET);
}

#[tokio::test]
async fn links_pipes_sockets_and_folders_named_like_messages_are_set_aside_and_reported_once() {
    let t = setup("");
    let secret = secret(&t);
    symlink(&secret, t.path("link.json")).unwrap();
    symlink("/nonexistent/dangling", t.path("dangling.xml")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t.path("pipe.json").as_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o644),
        0,
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(t.path("socket.json")).unwrap();
    fs::create_dir(t.path("folder.json")).unwrap();
    fs::write(t.path("folder.json/inner.json"), envelope(7)).unwrap();
    fs::create_dir(t.path("sub")).unwrap(); // a plain sub-folder: not looked into, left alone
    t.put("ok.json", &envelope(1));
    let r = start(&t, Box::new(accept), None);
    let odd = [
        ("link.json", "symbolic link"),
        ("dangling.xml", "symbolic link"),
        ("pipe.json", "pipe"),
        ("socket.json", "socket"),
        ("folder.json", "folder"),
    ];
    wait_until("every odd entry set aside in rejected/", || {
        odd.iter()
            .all(|(n, _)| t.path(&format!("rejected/{n}.error.json")).exists())
    })
    .await;
    a_later_poll(&t, "later.json").await;
    a_later_poll(&t, "last.json").await;
    for (name, what) in odd {
        let e = report(&t, name);
        assert_eq!(e["error"]["code"], "unsupported_media_type", "{name}: {e}");
        assert!(message(&e).contains(what), "{name}: {e}");
        assert_eq!(e["file"], name);
        assert!(
            t.path(&format!("rejected/{name}"))
                .symlink_metadata()
                .is_ok()
        );
        assert!(t.path(name).symlink_metadata().is_err(), "{name} left");
        let logged = r.logs.lines_with(&["file rejected", name]);
        assert_eq!(logged.len(), 1, "{name} is reported once: {logged:?}");
    }
    let kind = |n: &str| fs::symlink_metadata(t.path(&format!("rejected/{n}"))).unwrap();
    assert!(kind("link.json").file_type().is_symlink());
    assert!(kind("pipe.json").file_type().is_fifo());
    assert!(kind("socket.json").file_type().is_socket());
    assert!(kind("folder.json").is_dir());
    assert_eq!(
        fs::read(t.path("rejected/folder.json/inner.json")).unwrap(),
        envelope(7),
        "a folder is moved whole"
    );
    assert!(t.path("sub").is_dir(), "a plain sub-folder is left alone");
    assert_eq!(fs::read(&secret).unwrap(), SECRET);
    assert!(!leaked(&r.fake));
    let mut bodies: Vec<_> = r.fake.seen().iter().map(|s| s.body.to_vec()).collect();
    bodies.sort();
    assert_eq!(bodies, [envelope(1), envelope(99), envelope(99)]);
}

/// A name of 255 bytes (the usual limit), without the `.error.json` or `.1` that moving it would add.
fn long_names() -> [String; 3] {
    [
        format!("{}.json", "a".repeat(250)),
        format!("{}b.json", "a".repeat(249)), // same first 249 bytes: the shortened names must differ
        format!("{}.json", "ồ".repeat(83)),   // 254 bytes of 3-byte characters: cut on a character
    ]
}

#[tokio::test]
async fn a_refused_file_with_a_255_byte_name_is_set_aside_under_a_shorter_unique_name_once() {
    let t = setup("");
    for (i, name) in long_names().iter().enumerate() {
        t.put(name, format!("{{\"n\":{i}}}").as_bytes());
    }
    let r = start(
        &t,
        Box::new(|s| {
            if s.body.starts_with(b"{\"n\"") {
                Some(Err(ApiError::new(code::INVALID_ENVELOPE, "no type")))
            } else {
                accept(s)
            }
        }),
        None,
    );
    wait_until("the long names gone from the folder", || {
        long_names().iter().all(|n| !t.path(n).exists())
    })
    .await;
    a_later_poll(&t, "later.json").await;
    assert_eq!(r.fake.seen().len(), 4, "each file is submitted once");
    let mut stored = Vec::new();
    for (i, name) in long_names().iter().enumerate() {
        let reports: Vec<_> = names_in(&t.path("rejected"))
            .into_iter()
            .filter(|n| n.ends_with(".error.json"))
            .map(|n| report(&t, n.trim_end_matches(".error.json")))
            .filter(|r| r["file"] == name.as_str())
            .collect();
        assert_eq!(reports.len(), 1, "one report for {name}");
        let as_stored = reports[0]["stored_as"].as_str().unwrap().to_owned();
        assert!(as_stored.len() + ".error.json".len() <= 255, "{as_stored}");
        assert!(as_stored.ends_with(".json"), "{as_stored}");
        assert_eq!(
            fs::read(t.path(&format!("rejected/{as_stored}"))).unwrap(),
            format!("{{\"n\":{i}}}").as_bytes()
        );
        stored.push(as_stored);
    }
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 3, "shortened names stay unique");
}

#[tokio::test]
async fn an_accepted_file_with_a_255_byte_name_whose_name_is_taken_in_done_is_moved_once() {
    let t = setup("");
    let r = start(&t, Box::new(accept), None);
    let name = &long_names()[0];
    t.put(name, &envelope(1));
    wait_until("the first copy moved", || {
        !t.path(name).exists() && names_in(&t.path("done")).len() == 1
    })
    .await;
    t.put(name, &envelope(1)); // the same name again: `.1` would make it 257 bytes
    wait_until("the second copy moved", || !t.path(name).exists()).await;
    a_later_poll(&t, "later.json").await;
    assert_eq!(r.fake.seen().len(), 3, "each copy is submitted once");
    let done = names_in(&t.path("done"));
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(done.iter().all(|n| n.len() <= 255 && n.ends_with(".json")));
}

#[tokio::test]
async fn an_entry_that_cannot_be_moved_is_reported_once_and_never_resubmitted() {
    let t = setup("");
    let secret = secret(&t);
    // A folder where each report would go: the reports cannot be written, so nothing can be moved.
    fs::create_dir_all(t.path("rejected/bad.json.error.json")).unwrap();
    fs::create_dir_all(t.path("rejected/link.json.error.json")).unwrap();
    t.put("bad.json", b"{}");
    symlink(&secret, t.path("link.json")).unwrap();
    let r = start(
        &t,
        Box::new(|s| {
            if &s.body[..] == b"{}" {
                Some(Err(ApiError::new(code::INVALID_ENVELOPE, "no type")))
            } else {
                accept(s)
            }
        }),
        None,
    );
    for i in 0..3 {
        a_later_poll(&t, &format!("later-{i}.json")).await;
    }
    assert!(t.path("bad.json").exists());
    assert!(t.path("link.json").symlink_metadata().is_ok());
    let refused = |fake: &Fake| fake.seen().iter().filter(|s| &s.body[..] == b"{}").count();
    assert_eq!(refused(&r.fake), 1, "a refused file is not submitted again");
    for name in ["bad.json", "link.json"] {
        let logged = r.logs.lines_with(&["cannot move", name]);
        assert_eq!(logged.len(), 1, "{name} is reported once: {logged:?}");
    }
    // Once the way is clear, both are moved, still without another submission.
    fs::remove_dir(t.path("rejected/bad.json.error.json")).unwrap();
    fs::remove_dir(t.path("rejected/link.json.error.json")).unwrap();
    wait_until("both moved to rejected/", || {
        t.path("rejected/bad.json").exists()
            && t.path("rejected/link.json").symlink_metadata().is_ok()
    })
    .await;
    assert_eq!(refused(&r.fake), 1);
    assert!(!leaked(&r.fake));
    assert_eq!(report(&t, "bad.json")["error"]["code"], "invalid_envelope");
}
