use super::*;
use crate::testing::{build, check};
use lienthong_bus::adapter::Accepted;
use lienthong_bus::config::{AdapterSpec, Config};
use std::fs::{self, File};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use std::time::SystemTime;
use tokio::task::JoinHandle;

pub(super) const AGENCY: &str = "000.00.01.H40";
const DEADLINE: Duration = Duration::from_secs(10);

/// Answers a submission: `Some(result)`, or `None` to never answer.
pub(super) type Answer =
    Box<dyn Fn(&Submission) -> Option<Result<Accepted, ApiError>> + Send + Sync>;

/// A fake ingress that records every submission and answers with `answer`.
pub(super) struct Fake {
    pub(super) seen: Mutex<Vec<Submission>>,
    pub(super) answer: Answer,
}

#[async_trait]
impl Submit for Fake {
    async fn submit(&self, s: Submission) -> Result<Accepted, ApiError> {
        let answer = (self.answer)(&s);
        self.seen.lock().unwrap().push(s);
        match answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

impl Fake {
    pub(super) fn seen(&self) -> Vec<Submission> {
        self.seen.lock().unwrap().clone()
    }
}

pub(super) fn accept(s: &Submission) -> Option<Result<Accepted, ApiError>> {
    Some(Ok(Accepted {
        id: s.fallback_id.clone().unwrap(),
        routes: vec!["r1".into()],
    }))
}

pub(super) struct Test {
    pub(super) _tmp: tempfile::TempDir,
    pub(super) inbox: PathBuf,
    pub(super) config: Config,
    pub(super) spec: AdapterSpec,
}

pub(super) fn setup(extra: &str) -> Test {
    setup_with(&format!(
        "path = \"inbox\"\nagency = \"{AGENCY}\"\npoll_interval = \"20ms\"\n{extra}"
    ))
}

/// A config with one agency and one file-in adapter with these options; `<tmp>/inbox` exists.
pub(super) fn setup_with(options: &str) -> Test {
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    fs::create_dir(&inbox).unwrap();
    let text = format!(
        "[[agencies]]\ncode = \"{AGENCY}\"\n[[adapters]]\nid = \"commune-in\"\ntype = \"file-in\"\n{options}\n"
    );
    let config = Config::parse(&tmp.path().join("bus.toml"), &text).unwrap();
    let spec = config.adapters[0].clone();
    Test {
        _tmp: tmp,
        inbox,
        config,
        spec,
    }
}

impl Test {
    /// Starts the source; returns the fake ingress, the shutdown token and the running task.
    pub(super) fn run(
        &self,
        answer: Answer,
    ) -> (Arc<Fake>, CancellationToken, JoinHandle<Result<(), String>>) {
        assert_eq!(check(&self.spec, &self.config), vec![]);
        let source = build(&self.spec, &self.config).unwrap().source.unwrap();
        let fake = Arc::new(Fake {
            seen: Mutex::default(),
            answer,
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(source.run(fake.clone(), shutdown.clone()));
        (fake, shutdown, task)
    }

    /// Drops a file the way the contract asks: written under a hidden name, then renamed in.
    pub(super) fn put(&self, name: &str, body: &[u8]) {
        let part = self
            .inbox
            .join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
        fs::write(&part, body).unwrap();
        fs::rename(part, self.inbox.join(name)).unwrap();
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.inbox.join(rel)
    }
}

pub(super) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) fn envelope(n: u32) -> Vec<u8> {
    format!(
        "{{\"type\":\"dossier.submitted\",\"from\":\"{AGENCY}\",\"to\":[\"000.00.12.H40\"],\"payload\":{{\"n\":{n}}}}}"
    )
    .into_bytes()
}

const PACKAGE: &[u8] =
    "<?xml version=\"1.0\"?><edXML><Subject>Về việc</Subject></edXML>".as_bytes();

#[tokio::test]
async fn accepted_files_are_submitted_as_the_agency_and_moved_to_done() {
    let t = setup("");
    t.put("a.json", &envelope(1));
    t.put("b.EDXML", PACKAGE);
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    wait_until("both files in done/", || {
        t.path("done/a.json").exists() && t.path("done/b.EDXML").exists()
    })
    .await;
    assert!(!t.path("a.json").exists() && !t.path("b.EDXML").exists());
    assert_eq!(fs::read(t.path("done/a.json")).unwrap(), envelope(1));
    let mut seen = fake.seen();
    seen.sort_by_key(|s| s.content == ContentKind::Xml);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].caller, Caller::Agency(AGENCY.into()));
    assert_eq!(
        (seen[0].content, &seen[0].body[..]),
        (ContentKind::Json, &envelope(1)[..])
    );
    assert_eq!(
        (seen[1].content, &seen[1].body[..]),
        (ContentKind::Xml, PACKAGE)
    );
    assert_eq!(
        seen[0].fallback_id,
        Some(fallback_id(AGENCY, "a.json", &digest(&envelope(1))))
    );
    assert_eq!(
        seen[1].fallback_id,
        Some(fallback_id(AGENCY, "b.EDXML", &digest(PACKAGE)))
    );
    assert!(seen.iter().all(|s| s.traceparent.is_none()));
}

#[tokio::test]
async fn refused_files_go_to_rejected_with_their_error() {
    let t = setup("max_file_bytes = 200");
    t.put("bad.json", b"{\"type\":\"x\"}");
    t.put("notes.txt", b"hello");
    t.put("huge.xml", &[b'x'; 201]);
    let (fake, _shutdown, _task) = t.run(Box::new(|_| {
        Some(Err(ApiError::new(
            code::SCHEMA_VIOLATION,
            "payload does not match",
        )
        .at("/payload/n", "required")))
    }));
    wait_until("three files in rejected/", || {
        ["bad.json", "notes.txt", "huge.xml"]
            .iter()
            .all(|n| t.path(&format!("rejected/{n}")).exists())
    })
    .await;
    let error = |n: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(t.path(&format!("rejected/{n}.error.json"))).unwrap())
            .unwrap()
    };
    let bad = error("bad.json");
    assert_eq!(bad["error"]["code"], "schema_violation");
    assert_eq!(bad["error"]["details"][0]["path"], "/payload/n");
    assert_eq!(
        (&bad["file"], &bad["stored_as"], &bad["status"]),
        (&"bad.json".into(), &"bad.json".into(), &422.into())
    );
    assert!(bad["rejected_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(
        error("notes.txt")["error"]["code"],
        "unsupported_media_type"
    );
    assert_eq!(error("huge.xml")["error"]["code"], "payload_too_large");
    assert_eq!(fs::read(t.path("rejected/huge.xml")).unwrap(), [b'x'; 201]);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "only bad.json is submitted");
    assert_eq!(&seen[0].body[..], b"{\"type\":\"x\"}");
    assert!(!t.path("done").exists());
}

#[tokio::test]
async fn a_refused_file_is_moved_only_after_its_error_file_is_written() {
    let t = setup("");
    fs::create_dir_all(t.path("rejected/bad.json.error.json")).unwrap(); // makes writing the error file fail
    t.put("bad.json", b"{}");
    let (fake, _shutdown, _task) = t.run(Box::new(|s| {
        if &s.body[..] == b"{}" {
            Some(Err(ApiError::new(code::INVALID_ENVELOPE, "no type")))
        } else {
            accept(s)
        }
    }));
    wait_until("the refusal", || !fake.seen().is_empty()).await;
    // A file dropped now is taken in a later poll, after bad.json (older) has been tried again.
    t.put("later.json", &envelope(1));
    wait_until("later.json in done/", || t.path("done/later.json").exists()).await;
    assert!(t.path("bad.json").exists() && !t.path("rejected/bad.json").exists());
    fs::remove_dir(t.path("rejected/bad.json.error.json")).unwrap();
    wait_until("bad.json in rejected/", || {
        t.path("rejected/bad.json").exists()
    })
    .await;
    assert!(t.path("rejected/bad.json.error.json").is_file());
    assert_eq!(
        names_in(&t.path("rejected")),
        ["bad.json", "bad.json.error.json"]
    );
    let refused = fake.seen().iter().filter(|s| &s.body[..] == b"{}").count();
    assert_eq!(refused, 1, "answered once: only the move is tried again");
}

pub(super) fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn while_the_bus_is_unavailable_files_stay_and_are_retried() {
    let t = setup("");
    t.put("a.json", &envelope(1));
    let busy = Arc::new(AtomicBool::new(true));
    let flag = busy.clone();
    let (fake, _shutdown, _task) = t.run(Box::new(move |s| {
        if flag.load(Ordering::SeqCst) {
            Some(Err(ApiError::new(code::BROKER_UNAVAILABLE, "broker down")))
        } else {
            accept(s)
        }
    }));
    wait_until("a retry", || fake.seen().len() >= 2).await;
    assert!(t.path("a.json").exists());
    assert!(!t.path("done/a.json").exists() && !t.path("rejected").exists());
    busy.store(false, Ordering::SeqCst);
    wait_until("a.json in done/", || t.path("done/a.json").exists()).await;
    let seen = fake.seen();
    assert!(
        seen.iter()
            .all(|s| s.fallback_id == seen[0].fallback_id && s.body == seen[0].body)
    );
}

#[tokio::test]
async fn a_file_the_bus_fails_on_does_not_block_the_others() {
    let t = setup("");
    t.put("a.json", b"[1]");
    File::options()
        .write(true)
        .open(t.path("a.json"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    t.put("b.json", &envelope(2));
    let (fake, _shutdown, _task) = t.run(Box::new(|s| {
        if &s.body[..] == b"[1]" {
            Some(Err(ApiError::new(code::INTERNAL, "bug")))
        } else {
            accept(s)
        }
    }));
    wait_until("b.json in done/ and a.json retried", || {
        t.path("done/b.json").exists()
            && fake.seen().iter().filter(|s| &s.body[..] == b"[1]").count() >= 2
    })
    .await;
    assert!(t.path("a.json").exists() && !t.path("rejected").exists());
}

#[tokio::test]
async fn hidden_temporary_and_nested_files_are_left_alone() {
    let t = setup("");
    fs::create_dir(t.path("sub")).unwrap();
    let left_alone = [
        ".hidden.json",
        "x.json.tmp",
        "y.xml.part",
        "w.xml.filepart",
        "v.json.crdownload",
        "u.XML.PART",
        "t.json~",
        "sub/z.json",
    ];
    for n in left_alone {
        fs::write(t.path(n), envelope(9)).unwrap();
    }
    t.put("ok.json", &envelope(1));
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    wait_until("ok.json in done/", || t.path("done/ok.json").exists()).await;
    for n in left_alone {
        assert!(t.path(n).exists(), "{n}");
    }
    assert!(fake.seen().iter().all(|s| s.body[..] == envelope(1)[..]));
}

#[tokio::test]
async fn the_same_file_again_gets_the_same_id_and_a_free_name() {
    let t = setup("");
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    t.put("a.json", &envelope(1));
    wait_until("a.json in done/", || t.path("done/a.json").exists()).await;
    t.put("a.json", &envelope(1));
    wait_until("a.1.json in done/", || t.path("done/a.1.json").exists()).await;
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].fallback_id, seen[1].fallback_id);
}

#[test]
fn fallback_ids_depend_on_agency_name_and_content() {
    let id = fallback_id(AGENCY, "a.json", &digest(b"1"));
    assert_eq!(id, fallback_id(AGENCY, "a.json", &digest(b"1")));
    assert_ne!(id, fallback_id(AGENCY, "a.json", &digest(b"2")));
    assert_ne!(id, fallback_id(AGENCY, "b.json", &digest(b"1")));
    assert_ne!(id, fallback_id("000.00.02.H40", "a.json", &digest(b"1")));
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 8);
}

#[tokio::test]
async fn oldest_files_go_first() {
    let t = setup("");
    let now = SystemTime::now();
    for (name, age) in [("a.json", 50), ("b.json", 100), ("c.json", 10)] {
        t.put(name, name.as_bytes());
        File::options()
            .write(true)
            .open(t.path(name))
            .unwrap()
            .set_modified(now - Duration::from_secs(age))
            .unwrap();
    }
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    wait_until("three submissions", || fake.seen().len() == 3).await;
    let order: Vec<_> = fake.seen().iter().map(|s| s.body.clone()).collect();
    assert_eq!(order, [&b"b.json"[..], b"a.json", b"c.json"]);
}

#[tokio::test]
async fn shutdown_stops_the_loop_promptly() {
    let t = setup("");
    t.put("a.json", &envelope(1));
    let (fake, shutdown, task) = t.run(Box::new(|_| None));
    wait_until("a submission", || !fake.seen().is_empty()).await;
    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
    assert_eq!(ended.expect("run did not stop").unwrap(), Ok(()));
    assert!(t.path("a.json").exists(), "an unanswered file stays");

    let t = setup_with(&format!(
        "path = \"inbox\"\nagency = \"{AGENCY}\"\npoll_interval = \"1h\""
    ));
    let (_fake, shutdown, task) = t.run(Box::new(accept));
    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
    assert_eq!(ended.expect("idle run did not stop").unwrap(), Ok(()));
}

#[test]
fn check_lists_every_problem_with_its_key_path() {
    let problems = |options: &str| {
        let t = setup_with(options);
        check(&t.spec, &t.config)
    };
    let paths = |options: &str| {
        let mut paths: Vec<_> = problems(options).into_iter().map(|p| p.path).collect();
        paths.sort();
        paths
    };
    assert_eq!(
        paths(
            "path = \"nowhere\"\nagency = \"H40\"\npoll_interval = \"0s\"\nmax_file_bytes = 0\n\
             done_dir = \"nowhere\"\nrejected_dir = \"no/such/dir\""
        ),
        [
            "adapters[0].agency",
            "adapters[0].attachments_dir", // its default is under the missing folder
            "adapters[0].done_dir",
            "adapters[0].max_file_bytes",
            "adapters[0].path",
            "adapters[0].poll_interval",
            "adapters[0].rejected_dir",
        ]
    );
    let unknown = problems("path = \"inbox\"\nagency = \"000.00.99.H40\"");
    assert_eq!(unknown[0].path, "adapters[0].agency");
    assert!(
        unknown[0].message.contains("not in [[agencies]]"),
        "{unknown:?}"
    );
    assert!(
        problems("path = \"inbox\"")[0].message.contains("agency"),
        "agency is required"
    );
    assert!(
        problems(&format!(
            "path = \"inbox\"\nagency = \"{AGENCY}\"\nwatch = true"
        ))[0]
            .message
            .contains("watch")
    );
    assert_eq!(
        paths(&format!(
            "path = \"inbox\"\nagency = \"{AGENCY}\"\ndone_dir = \"elsewhere\""
        )),
        Vec::<String>::new()
    );
}

#[test]
fn a_folder_a_file_out_adapter_writes_into_is_refused() {
    let t = setup_with(&format!(
        "path = \"inbox\"\nagency = \"{AGENCY}\"\n\
         [[adapters]]\nid = \"commune-out\"\ntype = \"file-out\"\npath = \"inbox\""
    ));
    let problems = check(&t.spec, &t.config);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "adapters[0].path");
    assert!(
        problems[0].message.contains("commune-out")
            && problems[0].message.contains("adapters[1].path"),
        "{problems:?}"
    );
    // Its own folder is fine.
    let t = setup_with(&format!(
        "path = \"inbox\"\nagency = \"{AGENCY}\"\n\
         [[adapters]]\nid = \"commune-out\"\ntype = \"file-out\"\npath = \"outbox\""
    ));
    assert_eq!(check(&t.spec, &t.config), vec![]);
}

pub(super) fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub(super) fn description(attachments: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "document": {
            "from": {"organ_id": AGENCY, "organ_name": "UBND xã Mỹ Lộc"},
            "to": [{"organ_id": "000.00.00.H40"}],
            "code": {"number": "125", "notation": "UBND-VP"},
            "promulgation": {"place": "Mỹ Lộc", "date": "2026-11-20"},
            "document_type": {"type": 1, "type_name": "Công văn"},
            "subject": "V/v báo cáo tình hình tiếp nhận hồ sơ"
        },
        "attachments": attachments
    }))
    .unwrap()
}

#[tokio::test]
async fn a_described_document_is_built_into_a_package_with_its_attachments() {
    let t = setup("");
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    let pdf: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(t.path("attachments/cv-125.pdf"), &pdf).unwrap();
    fs::write(t.path("attachments/empty.txt"), b"").unwrap();
    t.put(
        "cv125.document.json",
        &description(serde_json::json!([
            {"file": "cv-125.pdf", "name": "Công văn 125.pdf"},
            {"file": "empty.txt"}
        ])),
    );
    wait_until("the description in done/", || {
        t.path("done/cv125.document.json").exists()
    })
    .await;
    wait_until("its attachments in done/", || {
        t.path("done/cv-125.pdf").exists() && t.path("done/empty.txt").exists()
    })
    .await;
    assert!(!t.path("attachments/cv-125.pdf").exists());
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].content, ContentKind::Xml);
    let pkg = lienthong_qcvn102::edxml::parse(&seen[0].body, &Default::default()).unwrap();
    assert_eq!(pkg.from, AGENCY);
    assert_eq!(pkg.to, ["000.00.00.H40"]);
    assert_eq!(
        pkg.header["Subject"],
        "V/v báo cáo tình hình tiếp nhận hồ sơ"
    );
    let mut got = Vec::new();
    lienthong_qcvn102::edxml::decode_attachment(
        &seen[0].body,
        &Default::default(),
        "cid:1",
        &mut got,
    )
    .unwrap();
    assert_eq!(got, pdf, "attachment bytes survive the package");
    // The same description and attachments dropped again get the same id (crash resubmission).
    let digest_again = {
        use sha2::Digest;
        let mut d = sha2::Sha256::new().chain_update(description(serde_json::json!([
            {"file": "cv-125.pdf", "name": "Công văn 125.pdf"},
            {"file": "empty.txt"}
        ])));
        for (f, b) in [("cv-125.pdf", &pdf[..]), ("empty.txt", &b""[..])] {
            d.update([0]);
            d.update(f.as_bytes());
            d.update([0]);
            d.update(sha2::Sha256::digest(b));
        }
        <[u8; 32]>::from(d.finalize())
    };
    assert_eq!(
        seen[0].fallback_id,
        Some(fallback_id(AGENCY, "cv125.document.json", &digest_again))
    );
}

#[tokio::test]
async fn a_description_with_a_missing_attachment_or_a_bad_field_is_rejected_with_the_place() {
    let t = setup("");
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    t.put(
        "missing.document.json",
        &description(serde_json::json!([{"file": "nowhere.pdf"}])),
    );
    t.put(
        "sneaky.document.json",
        &description(serde_json::json!([{"file": "../../etc/passwd"}])),
    );
    fs::write(t.path("attachments/scan.pdf"), b"%PDF-1.4").unwrap();
    let mut bad: serde_json::Value =
        serde_json::from_slice(&description(serde_json::json!([{"file": "scan.pdf"}]))).unwrap();
    bad["document"]["to"][0]["organ_id"] = "Sở Tư pháp".into();
    t.put("bad.document.json", &serde_json::to_vec(&bad).unwrap());
    t.put("typo.status.json", br#"{"status_kode": "03"}"#);
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", t.path("attachments/link.pdf")).unwrap();
    #[cfg(unix)]
    t.put(
        "link.document.json",
        &description(serde_json::json!([{"file": "link.pdf"}])),
    );
    let names = [
        "missing.document.json",
        "sneaky.document.json",
        "bad.document.json",
        "typo.status.json",
        #[cfg(unix)]
        "link.document.json",
    ];
    wait_until("every description in rejected/", || {
        names
            .iter()
            .all(|n| t.path(&format!("rejected/{n}.error.json")).exists())
    })
    .await;
    let error = |n: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(t.path(&format!("rejected/{n}.error.json"))).unwrap())
            .unwrap()
    };
    let e = error("missing.document.json");
    assert_eq!(e["error"]["details"][0]["path"], "/attachments/0/file");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere.pdf")
    );
    assert_eq!(
        error("sneaky.document.json")["error"]["details"][0]["path"],
        "/attachments/0/file"
    );
    let e = error("bad.document.json");
    assert_eq!(e["error"]["details"][0]["path"], "/document/to/0/organ_id");
    // A refused description takes its attachments along, so none is left behind to be picked up by mistake.
    wait_until("scan.pdf moved with its description", || {
        t.path("rejected/scan.pdf").exists()
    })
    .await;
    assert!(!t.path("attachments/scan.pdf").exists());
    #[cfg(unix)]
    {
        let e = error("link.document.json");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a regular file"),
            "{e}"
        );
    }
    assert_eq!(error("typo.status.json")["error"]["code"], "invalid_json");
    assert!(
        fake.seen().is_empty(),
        "nothing refused here reaches the bus"
    );
}

#[tokio::test]
async fn a_described_status_report_is_built_and_submitted() {
    let t = setup("");
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    let status = serde_json::json!({
        "response_for": {"organ_id": "000.00.00.H40", "code": "88/UBND-VP",
                         "promulgation_date": "2026-11-20",
                         "document_id": "000.00.00.H40,2026/11/20,88/UBND-VP"},
        "from": {"organ_id": AGENCY},
        "status_code": "03",
        "timestamp": "2026-11-27 08:30:00"
    });
    t.put("ack.status.json", &serde_json::to_vec(&status).unwrap());
    wait_until("ack in done/", || t.path("done/ack.status.json").exists()).await;
    let seen = fake.seen();
    assert_eq!(seen[0].content, ContentKind::Xml);
    let pkg = lienthong_qcvn102::edxml::parse(&seen[0].body, &Default::default()).unwrap();
    assert_eq!(pkg.message_type(), "document.status");
    assert_eq!(pkg.from, AGENCY);
}
