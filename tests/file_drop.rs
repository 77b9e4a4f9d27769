//! Issue 4, the folder adapters against the real RabbitMQ: a commune system drops envelopes into a `file-in`
//! folder and the bus writes them to a `file-out` folder. Killed with -9 in the middle and restarted, the bus
//! takes every file exactly once, writes every message exactly once under its id, leaves no temp files and never
//! reads half a file. A malformed file is set aside in `rejected/` with a report naming the error.

mod common;

use common::process::*;
use common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const FILES: usize = 300;

fn folders_config(outbox: &Path, out: &Path) -> String {
    folders_with_route(
        outbox,
        out,
        "id = \"dossiers\"\ntypes = [\"dossier.submitted\"]\nretry = { attempts = 10, backoff = [\"1s\"] }",
    )
}

/// H40's outbox folder (file-in) and STP's folder (file-out), and one route into STP's folder.
fn folders_with_route(outbox: &Path, out: &Path, route: &str) -> String {
    format!(
        r#"
[[adapters]]
id = "h40-outbox"
type = "file-in"
path = "{}"
agency = "{H40}"
poll_interval = "100ms"

[[adapters]]
id = "stp-folder"
type = "file-out"
path = "{}"

[[routes]]
{route}
deliver = ["stp-folder"]
"#,
        outbox.display(),
        out.display()
    )
}

fn topology_of(ns: &str) -> lienthong_bus::broker::Topology {
    let names = lienthong_bus::broker::topology::Names::new(ns);
    lienthong_bus::broker::topology::build(
        &names,
        &["stp-folder".into()],
        &[Duration::from_secs(1)].into_iter().collect(),
        1,
    )
}

/// Messages waiting in `queue` (ready, plus un-acked ones once their consumer is gone).
async fn queue_messages(queue: &str) -> u32 {
    use lapin::options::QueueDeclareOptions;
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("broker");
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

/// Writes `name` into `dir` the way the contract asks: a `.tmp` file first, then a rename.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn count(dir: &Path) -> usize {
    file_names(dir).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_files_are_processed_takes_each_file_once_and_writes_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, out) = (dir.path().join("outbox"), dir.path().join("stp"));
    let (done, rejected) = (outbox.join("done"), outbox.join("rejected"));
    std::fs::create_dir(&outbox).unwrap();
    let ns = namespace("filedrop");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let (cfg, http, admin) = write_config(dir.path(), &ns, &state, &folders_config(&outbox, &out));
    let mut bus = BusProcess::spawn(&cfg, http, admin).await;

    // file name → (id, label)
    let dropped: BTreeMap<String, (String, String)> = (0..FILES)
        .map(|i| (format!("dossier-{i:03}.json"), (new_id(), format!("F-{i}"))))
        .collect();
    let writer = {
        let (outbox, dropped) = (outbox.clone(), dropped.clone());
        tokio::task::spawn_blocking(move || {
            for (name, (id, label)) in &dropped {
                let env = envelope(Some(id), H40, &[STP], dossier(label));
                drop_file(&outbox, name, env.to_string().as_bytes());
            }
        })
    };
    wait_for(
        "some files in done/ before the kill",
        Duration::from_secs(60),
        || async { (count(&done) >= 40).then_some(()) },
    )
    .await;
    bus.kill9();
    let done_at_kill = count(&done);
    writer.await.unwrap();
    assert!(
        done_at_kill < FILES,
        "the kill came after every file was taken ({done_at_kill}); nothing was in progress"
    );

    let mut bus = BusProcess::spawn(&cfg, http, admin).await;
    wait_for(
        "every file taken and every message written",
        Duration::from_secs(180),
        || async {
            let outputs = file_names(&out)
                .into_iter()
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .count();
            (count(&outbox) == 0 && count(&done) == FILES && outputs == FILES).then_some(())
        },
    )
    .await;
    // Stop it gracefully so that nothing is in flight any more, then look at what is left.
    let code = bus.terminate(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "SIGTERM exits 0");
    let names = topology_of(&ns).queues;
    let deliver = lienthong_bus::broker::topology::Names::new(&ns).deliver_queue("stp-folder");
    assert!(names.iter().any(|q| q.name == deliver));
    assert_eq!(
        queue_messages(&deliver).await,
        0,
        "every delivery was acknowledged"
    );

    // Every dropped file was taken once and accepted: all in done/, none refused, none left behind.
    let want_names: BTreeSet<String> = dropped.keys().cloned().collect();
    let done_names: BTreeSet<String> = file_names(&done).into_iter().collect();
    assert_eq!(
        done_names, want_names,
        "done/ holds exactly the dropped files"
    );
    assert!(
        file_names(&rejected).is_empty(),
        "refused: {:?}",
        file_names(&rejected)
    );
    assert!(file_names(&outbox).is_empty(), "{:?}", file_names(&outbox));
    // Each file in done/ is the complete file that was dropped.
    for (name, (id, label)) in &dropped {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(done.join(name)).unwrap()).unwrap();
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["payload"], dossier(label));
    }

    // Every id exactly once in the output folder, complete, with the right payload; no temp files.
    let outputs = file_names(&out);
    let temps: Vec<_> = outputs.iter().filter(|n| n.starts_with('.')).collect();
    assert!(
        temps.is_empty(),
        "temp files left in the output folder: {temps:?}"
    );
    let want_outputs: BTreeSet<String> = dropped
        .values()
        .map(|(id, _)| format!("{id}.json"))
        .collect();
    let got_outputs: BTreeSet<String> = outputs.iter().cloned().collect();
    assert_eq!(got_outputs, want_outputs, "one file per id, nothing else");
    for (id, label) in dropped.values() {
        let bytes = std::fs::read(out.join(format!("{id}.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{id}.json is not whole JSON ({e})"));
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["type"], "dossier.submitted");
        assert_eq!(v["from"], H40);
        assert_eq!(v["to"], json!([STP]));
        assert_eq!(v["payload"], dossier(label), "{id}");
        assert!(v.get("attempt").is_none(), "file-out leaves out `attempt`");
    }
    drop(bus);
    delete_topology(&topology_of(&ns)).await;
}

#[tokio::test]
async fn malformed_files_go_to_rejected_with_an_error_report() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, out) = (dir.path().join("outbox"), dir.path().join("stp"));
    let (done, rejected) = (outbox.join("done"), outbox.join("rejected"));
    std::fs::create_dir(&outbox).unwrap();
    let bus = TestBus::start("filereject", &folders_config(&outbox, &out)).await;

    let mut no_owner = dossier("R-3");
    no_owner.as_object_mut().unwrap().remove("ChuHoSo");
    let bad: [(&str, Vec<u8>, &str); 5] = [
        (
            "broken.json",
            b"{\"type\": \"dossier.sub".to_vec(),
            "invalid_json",
        ),
        (
            "not-ours.json",
            envelope(Some(&new_id()), SYT, &[STP], dossier("R-2"))
                .to_string()
                .into_bytes(),
            "forbidden",
        ),
        (
            "no-owner.json",
            envelope(Some(&new_id()), H40, &[STP], no_owner)
                .to_string()
                .into_bytes(),
            "schema_violation",
        ),
        (
            "broken.xml",
            b"<edXML><edXMLEnvelope>".to_vec(),
            "invalid_xml",
        ),
        ("notes.txt", b"hello".to_vec(), "unsupported_media_type"),
    ];
    for (name, bytes, _) in &bad {
        drop_file(&outbox, name, bytes);
    }
    let good_id = new_id();
    drop_file(
        &outbox,
        "good.json",
        envelope(Some(&good_id), H40, &[STP], dossier("R-1"))
            .to_string()
            .as_bytes(),
    );

    wait_for("every file handled", Duration::from_secs(60), || async {
        (count(&outbox) == 0 && count(&done) == 1).then_some(())
    })
    .await;
    // The report is written before the file is moved, so both are there once the file is gone.
    for (name, bytes, code) in &bad {
        let kept = std::fs::read(rejected.join(name)).unwrap();
        assert!(kept == *bytes, "{name} was kept unchanged");
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(rejected.join(format!("{name}.error.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["error"]["code"], *code, "{name}: {report}");
        assert!(
            report["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(report["file"], *name);
        assert_eq!(report["agency"], H40);
        assert!(
            report["status"]
                .as_u64()
                .is_some_and(|s| (400..500).contains(&s))
        );
    }
    assert_eq!(
        count(&rejected),
        2 * bad.len(),
        "{:?}",
        file_names(&rejected)
    );
    assert_eq!(file_names(&done), vec!["good.json".to_owned()]);
    let written = wait_for("the good message written", Duration::from_secs(30), || {
        let path = out.join(format!("{good_id}.json"));
        async move { std::fs::read(path).ok() }
    })
    .await;
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(v["payload"], dossier("R-1"));
    assert_eq!(file_names(&out), vec![format!("{good_id}.json")]);
    bus.stop().await;
}

#[tokio::test]
async fn a_restart_sweeps_temp_files_of_dead_writers_and_spares_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, out) = (dir.path().join("outbox"), dir.path().join("stp"));
    std::fs::create_dir(&outbox).unwrap();
    std::fs::create_dir(&out).unwrap();
    // A writer that is gone (a process that ran and exited) and one that is alive (this test).
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let dead = format!(".lt-{dead_pid}-0123456789abcdef.tmp");
    let live = format!(".lt-{}-0123456789abcdef.tmp", std::process::id());
    std::fs::write(out.join(&dead), b"{\"half\": ").unwrap();
    std::fs::write(out.join(&live), b"{\"in progress\": ").unwrap();
    let ns = namespace("filesweep");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let (cfg, http, admin) = write_config(dir.path(), &ns, &state, &folders_config(&outbox, &out));
    let mut bus = BusProcess::spawn(&cfg, http, admin).await;
    assert_eq!(
        file_names(&out),
        vec![live.clone()],
        "only the dead writer's file is swept"
    );
    assert_eq!(bus.terminate(Duration::from_secs(30)).await, Some(0));
    delete_topology(&topology_of(&ns)).await;
}

#[tokio::test]
async fn a_document_described_in_json_reaches_the_receiver_as_a_valid_edxml_package() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, out) = (dir.path().join("outbox"), dir.path().join("stp"));
    std::fs::create_dir(&outbox).unwrap();
    let config = folders_with_route(
        &outbox,
        &out,
        &format!("id = \"documents\"\ntypes = [\"document.edxml\"]\nto = [\"{STP}\"]"),
    );
    let bus = TestBus::start("filedescribed", &config).await;
    let pdf: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // The commune's software: attachment first, then the description renamed into the folder.
    std::fs::write(outbox.join("attachments/cv-88.pdf"), &pdf).unwrap();
    let description = json!({
        "document": {
            "from": {"organ_id": H40, "organ_name": "UBND tỉnh Nam Định"},
            "to": [{"organ_id": STP}],
            "code": {"number": "88", "notation": "UBND-VP"},
            "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
            "document_type": {"type": 1, "type_name": "Công văn"},
            "subject": "V/v rà soát thủ tục hành chính liên thông"
        },
        "attachments": [{"file": "cv-88.pdf", "name": "Công văn 88.pdf"}]
    });
    drop_file(
        &outbox,
        "cv-88.document.json",
        description.to_string().as_bytes(),
    );
    wait_for("the description in done/", Duration::from_secs(30), || {
        let p = outbox.join("done/cv-88.document.json");
        async move { p.exists().then_some(()) }
    })
    .await;
    let written = wait_for(
        "the package at the receiver",
        Duration::from_secs(30),
        || {
            let out = out.clone();
            async move {
                let names = std::fs::read_dir(&out).ok()?;
                let name = names
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "xml"))?;
                std::fs::read(name).ok()
            }
        },
    )
    .await;
    let pkg =
        lienthong_qcvn102::edxml::parse(&written, &Default::default()).expect("a valid package");
    assert_eq!(pkg.from, H40);
    assert_eq!(pkg.to, [STP]);
    assert_eq!(
        pkg.document_id.as_deref(),
        Some(&*format!("{H40},2026/11/27,88/UBND-VP"))
    );
    let mut got = Vec::new();
    lienthong_qcvn102::edxml::decode_attachment(&written, &Default::default(), "cid:1", &mut got)
        .unwrap();
    assert!(got == pdf, "the attachment arrives byte for byte");
    // Attachments are moved right after their description (not in the same rename).
    wait_for(
        "the attachment moved with its description",
        Duration::from_secs(10),
        || {
            let p = outbox.join("done/cv-88.pdf");
            async move { p.exists().then_some(()) }
        },
    )
    .await;
    // The same package offered again, by HTTP and dropped under another name, is the same message: accepted,
    // and not delivered a second time.
    let (s, a) = post_raw(
        &bus.url("/v1/messages"),
        Some("H40"),
        "application/xml",
        written.clone(),
    )
    .await;
    assert_eq!(s, 202, "{a}");
    drop_file(&outbox, "again.xml", &written);
    wait_for("again.xml in done/", Duration::from_secs(30), || {
        let p = outbox.join("done/again.xml");
        async move { p.exists().then_some(()) }
    })
    .await;
    let delivered: Vec<String> = file_names(&out)
        .into_iter()
        .filter(|n| n.ends_with(".xml"))
        .collect();
    assert_eq!(delivered, [format!("{}.xml", a["id"].as_str().unwrap())]);
    // Both offers were answered as duplicates at ingress: nothing was published a second time.
    let metrics = reqwest::get(bus.admin("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let duplicates: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lienthong_ingress_duplicates_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(duplicates >= 2.0, "{metrics}");
    bus.stop().await;
}

/// Every entry of `dir`, of any kind (`file_names` lists regular files only).
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn links_and_pipes_in_the_folder_are_set_aside_and_never_deliver_what_they_point_to() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let (outbox, out) = (dir.path().join("outbox"), dir.path().join("stp"));
    let rejected = outbox.join("rejected");
    std::fs::create_dir(&outbox).unwrap();
    let bus = TestBus::start("filelinks", &folders_config(&outbox, &out)).await;

    // Files outside the folder that the bus can read: a valid message of H40's, and a "PDF".
    let secret_id = new_id();
    let secret = envelope(Some(&secret_id), H40, &[STP], dossier("SECRET-91"));
    std::fs::write(dir.path().join("secret.json"), secret.to_string()).unwrap();
    std::fs::write(dir.path().join("secret.pdf"), b"%PDF SECRET-92").unwrap();
    // The writing system puts links to them, and a pipe, where files are expected.
    symlink(dir.path().join("secret.json"), outbox.join("leak.json")).unwrap();
    symlink(
        dir.path().join("secret.pdf"),
        outbox.join("attachments/leak.pdf"),
    )
    .unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(outbox.join("pipe.json"))
            .status()
            .unwrap()
            .success()
    );
    let description = json!({
        "document": {
            "from": {"organ_id": H40, "organ_name": "UBND tỉnh Nam Định"},
            "to": [{"organ_id": STP}],
            "code": {"number": "91", "notation": "UBND-VP"},
            "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
            "document_type": {"type": 1, "type_name": "Công văn"},
            "subject": "V/v thử"
        },
        "attachments": [{"file": "leak.pdf"}]
    });
    drop_file(
        &outbox,
        "leak.document.json",
        description.to_string().as_bytes(),
    );
    let good_id = new_id();
    drop_file(
        &outbox,
        "good.json",
        envelope(Some(&good_id), H40, &[STP], dossier("G-1"))
            .to_string()
            .as_bytes(),
    );

    let own: BTreeSet<String> = ["attachments", "done", "rejected"].map(String::from).into();
    wait_for(
        "every entry handled and the good message written",
        Duration::from_secs(60),
        || {
            let (outbox, out, own) = (outbox.clone(), out.clone(), own.clone());
            let good = format!("{good_id}.json");
            async move {
                let left: BTreeSet<String> = entries(&outbox).difference(&own).cloned().collect();
                let attachment_moved = entries(&outbox.join("attachments")).is_empty();
                (left.is_empty() && attachment_moved && out.join(good).exists()).then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        file_names(&out),
        vec![format!("{good_id}.json")],
        "only the good message is delivered"
    );
    for name in file_names(&out) {
        let bytes = std::fs::read(out.join(name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("SECRET-9"), "{text}");
    }
    let kind = |n: &str| {
        std::fs::symlink_metadata(rejected.join(n))
            .unwrap()
            .file_type()
    };
    assert!(
        kind("leak.json").is_symlink(),
        "the link is set aside as a link"
    );
    assert!(
        kind("leak.pdf").is_symlink(),
        "the attachment link goes with its description"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(kind("pipe.json").is_fifo());
    for (name, says) in [
        ("leak.json", "symbolic link"),
        ("pipe.json", "pipe"),
        ("leak.document.json", "symbolic link"),
    ] {
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(rejected.join(format!("{name}.error.json"))).unwrap(),
        )
        .unwrap();
        let message = report["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {report}");
        assert_eq!(report["file"], name);
    }
    assert_eq!(
        std::fs::read(dir.path().join("secret.json")).unwrap(),
        secret.to_string().as_bytes(),
        "the target is untouched"
    );
    bus.stop().await;
}
