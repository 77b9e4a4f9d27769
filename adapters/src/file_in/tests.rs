use super::*;
use lienthong_bus::adapter::Accepted;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::task::JoinHandle;

const AGENCY: &str = "000.00.01.H40";
const DEADLINE: Duration = Duration::from_secs(10);

/// Answers a submission: `Some(result)`, or `None` to never answer.
type Answer = Box<dyn Fn(&Submission) -> Option<Result<Accepted, ApiError>> + Send + Sync>;

/// A fake ingress that records every submission and answers with `answer`.
struct Fake {
    seen: Mutex<Vec<Submission>>,
    answer: Answer,
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
    fn seen(&self) -> Vec<Submission> {
        self.seen.lock().unwrap().clone()
    }
}

fn accept(s: &Submission) -> Option<Result<Accepted, ApiError>> {
    Some(Ok(Accepted {
        id: s.fallback_id.clone().unwrap(),
        routes: vec!["r1".into()],
    }))
}

struct Test {
    _tmp: tempfile::TempDir,
    inbox: PathBuf,
    config: Config,
    spec: AdapterSpec,
}

fn setup(extra: &str) -> Test {
    setup_with(&format!(
        "path = \"inbox\"\nagency = \"{AGENCY}\"\npoll_interval = \"20ms\"\n{extra}"
    ))
}

/// A config with one agency and one file-in adapter with these options; `<tmp>/inbox` exists.
fn setup_with(options: &str) -> Test {
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
    fn run(
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

    /// Drops a file the way the contract asks: written under a `.part` name, then renamed in.
    fn put(&self, name: &str, body: &[u8]) {
        let part = self.inbox.join(format!("{name}.part"));
        fs::write(&part, body).unwrap();
        fs::rename(part, self.inbox.join(name)).unwrap();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.inbox.join(rel)
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn envelope(n: u32) -> Vec<u8> {
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
        Some(fallback_id(AGENCY, "a.json", &envelope(1)))
    );
    assert_eq!(
        seen[1].fallback_id,
        Some(fallback_id(AGENCY, "b.EDXML", PACKAGE))
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
    let (fake, _shutdown, _task) = t.run(Box::new(|_| {
        Some(Err(ApiError::new(code::INVALID_ENVELOPE, "no type")))
    }));
    wait_until("a retry", || fake.seen().len() >= 2).await;
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
}

fn names_in(dir: &Path) -> Vec<String> {
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
    for n in [".hidden.json", "x.json.tmp", "y.xml.part", "sub/z.json"] {
        fs::write(t.path(n), envelope(9)).unwrap();
    }
    t.put("ok.json", &envelope(1));
    let (fake, _shutdown, _task) = t.run(Box::new(accept));
    wait_until("ok.json in done/", || t.path("done/ok.json").exists()).await;
    for n in [".hidden.json", "x.json.tmp", "y.xml.part", "sub/z.json"] {
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
    let id = fallback_id(AGENCY, "a.json", b"1");
    assert_eq!(id, fallback_id(AGENCY, "a.json", b"1"));
    assert_ne!(id, fallback_id(AGENCY, "a.json", b"2"));
    assert_ne!(id, fallback_id(AGENCY, "b.json", b"1"));
    assert_ne!(id, fallback_id("000.00.02.H40", "a.json", b"1"));
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
