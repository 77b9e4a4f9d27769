//! Hot reload, acknowledged, against the real RabbitMQ: a reload adding a route and an adapter while 2,000
//! messages stream in over HTTP loses, duplicates and misroutes none (each is delivered exactly where the
//! routes its 202 named say); a broken reload changes nothing and says why; an adapter removed with messages
//! queued delivers every one of them before it stops; and two communes are onboarded by adding two files and
//! sending SIGHUP to the running binary (one with a webhook, one with a pull mailbox); a changed adapter
//! delivers with its new options.

mod common;

use axum::http::StatusCode;
use common::process::{BusProcess, free_port};
use common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn webhook(id: &str, url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    )
}

fn route(id: &str, deliver: &str) -> String {
    format!(
        "\n[[routes]]\nid = \"{id}\"\ntypes = [\"dossier.submitted\"]\nto = [\"{STP}\"]\ndeliver = [\"{deliver}\"]\n"
    )
}

/// A message id and the routes its 202 named.
type Answer = (String, Vec<String>);

/// The ids in the envelopes a receiver got, with how many times each.
fn ids_of(calls: &[Call]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for c in calls {
        *out.entry(c.json()["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

async fn reload(bus: &TestBus) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(bus.admin("/v1/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn config_file(bus: &TestBus) -> std::path::PathBuf {
    bus.dir.path().join("bus.toml")
}

fn append(file: &Path, text: &str) {
    let mut t = std::fs::read_to_string(file).unwrap();
    t.push_str(text);
    std::fs::write(file, t).unwrap();
}

#[tokio::test]
async fn a_reload_adding_a_route_and_an_adapter_midstream_loses_duplicates_and_misroutes_none() {
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let bus = TestBus::start(
        "reload-midstream",
        &(webhook("stp-hook", &first.url()) + &route("to-stp", "stp-hook")),
    )
    .await;
    let before = bus.admin_json("/v1/config").await.unwrap();
    assert_eq!(before["hash"].as_str().unwrap().len(), 64, "{before}");

    // 2,000 messages, 32 at a time; each 202 names the routes it was accepted with.
    const N: usize = 2000;
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stream = {
        let (url, answers) = (bus.url("/v1/messages"), answers.clone());
        tokio::spawn(async move {
            use futures::StreamExt;
            let client = reqwest::Client::new();
            futures::stream::iter(0..N)
                .for_each_concurrent(32, |i| {
                    let (client, url, answers) = (client.clone(), url.clone(), answers.clone());
                    async move {
                        let id = format!("mid-{i}");
                        let body = envelope(Some(&id), H40, &[STP], dossier(&id)).to_string();
                        let r = client
                            .post(&url)
                            .bearer_auth("tok-H40")
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), StatusCode::ACCEPTED);
                        let v: serde_json::Value = r.json().await.unwrap();
                        let routes = v["routes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r.as_str().unwrap().to_owned())
                            .collect();
                        answers.lock().unwrap().push((id, routes));
                    }
                })
                .await;
        })
    };
    wait_for("500 messages accepted", Duration::from_secs(60), || async {
        (answers.lock().unwrap().len() >= 500).then_some(())
    })
    .await;
    append(
        &config_file(&bus),
        &(webhook("stp-copy", &second.url()) + &route("copy-to-stp", "stp-copy")),
    );
    let (status, after) = reload(&bus).await;
    assert_eq!(status, 200, "{after}");
    assert_ne!(after["hash"], before["hash"]);
    assert_eq!(bus.admin_json("/v1/config").await.unwrap(), after);
    stream.await.unwrap();

    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), N);
    let with_copy: BTreeSet<&str> = answers
        .iter()
        .filter(|(_, r)| r.iter().any(|r| r == "copy-to-stp"))
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(
        !with_copy.is_empty() && with_copy.len() < N,
        "the reload landed mid-stream: {} of {N} had the new route",
        with_copy.len()
    );
    for (_, routes) in &answers {
        assert!(routes.iter().any(|r| r == "to-stp"), "{routes:?}");
    }
    first.wait_calls(N, Duration::from_secs(120)).await;
    second
        .wait_calls(with_copy.len(), Duration::from_secs(120))
        .await;
    // Everything was delivered; give a duplicate no chance to hide: the queues are empty.
    wait_for("empty delivery queues", Duration::from_secs(30), || async {
        let t = bus.admin_json("/v1/topology").await?;
        let busy = t["queues"]
            .as_array()?
            .iter()
            .any(|q| q["messages"].as_u64() != Some(0));
        (!busy).then_some(())
    })
    .await;
    let got_first = ids_of(&first.calls());
    let got_second = ids_of(&second.calls());
    assert_eq!(
        got_first.len(),
        N,
        "every message reached the first route's adapter"
    );
    assert!(
        got_first.values().all(|n| *n == 1),
        "a duplicate at stp-hook"
    );
    let second_ids: BTreeSet<&str> = got_second.keys().map(String::as_str).collect();
    assert_eq!(
        second_ids, with_copy,
        "stp-copy got exactly the messages accepted with its route"
    );
    assert!(
        got_second.values().all(|n| *n == 1),
        "a duplicate at stp-copy"
    );
    bus.stop().await;
}

#[tokio::test]
async fn a_broken_reload_changes_nothing_and_names_each_problem() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "reload-broken",
        &(webhook("stp-hook", &rx.url()) + &route("to-stp", "stp-hook")),
    )
    .await;
    let before = bus.admin_json("/v1/config").await.unwrap();
    let file = config_file(&bus);
    let good = std::fs::read_to_string(&file).unwrap();
    // A route to an adapter that does not exist, and a change a reload cannot make.
    std::fs::write(
        &file,
        good.replace("publish_timeout = \"3s\"", "publish_timeout = \"4s\"")
            + &route("to-nowhere", "no-such-adapter"),
    )
    .unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_config");
    let paths: Vec<&str> = answer["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"routes[1].deliver[0]"), "{answer}");
    // The running config stays, and works.
    assert_eq!(bus.admin_json("/v1/config").await.unwrap(), before);
    let (s, v) = bus
        .post(
            "H40",
            &envelope(Some("after-broken"), H40, &[STP], dossier("x")),
        )
        .await;
    assert_eq!(
        (s, &v["routes"]),
        (202, &serde_json::json!(["to-stp"])),
        "{v}"
    );
    rx.wait_calls(1, Duration::from_secs(20)).await;
    let metrics = reqwest::get(bus.admin("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("lienthong_config_reload_failures_total ")),
        "{metrics}"
    );
    let info = format!(
        "lienthong_config_info{{hash=\"{}\"}} 1",
        before["hash"].as_str().unwrap()
    );
    assert!(metrics.contains(&info), "{metrics}");
    // Only a change of [bus]: refused too, naming the section.
    std::fs::write(
        &file,
        good.replace("publish_timeout = \"3s\"", "publish_timeout = \"4s\""),
    )
    .unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["details"][0]["path"], "bus", "{answer}");
    // Evidence switched on by a reload would record nothing: refused too, naming it.
    let key = bus.dir.path().join("evidence.pem");
    lienthong_bus::evidence::keygen(&key).unwrap();
    std::fs::write(
        &file,
        format!("{good}\n[evidence]\nsigning_key = \"{}\"\n", key.display()),
    )
    .unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["error"]["details"][0]["path"], "evidence",
        "{answer}"
    );
    bus.stop().await;
}

#[tokio::test]
async fn a_renamed_or_added_agency_shows_by_its_new_name_after_a_reload() {
    let rx = Receiver::start().await;
    let bus = TestBus::start(
        "reload-names",
        &(webhook("stp-hook", &rx.url()) + &route("to-stp", "stp-hook")),
    )
    .await;
    let name_of = |stats: &serde_json::Value, code: &str| {
        stats["agencies"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["agency"] == code))
            .map(|r| r["name"].clone())
    };
    let stats = bus.admin_json("/v1/stats/on-time").await.unwrap();
    assert_eq!(
        name_of(&stats, STP),
        Some(serde_json::json!("Sở Tư pháp")),
        "{stats}"
    );
    let file = config_file(&bus);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "name = \"Sở Tư pháp\"",
            "name = \"Sở Tư pháp tỉnh Nam Định\"",
        ) + "\n[[agencies]]\ncode = \"000.00.15.H40\"\nname = \"Sở Xây dựng\"\n",
    )
    .unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 200, "{answer}");
    let stats = bus.admin_json("/v1/stats/on-time").await.unwrap();
    assert_eq!(
        name_of(&stats, STP),
        Some(serde_json::json!("Sở Tư pháp tỉnh Nam Định")),
        "{stats}"
    );
    assert_eq!(
        name_of(&stats, "000.00.15.H40"),
        Some(serde_json::json!("Sở Xây dựng")),
        "{stats}"
    );
    bus.stop().await;
}

/// A receiver that takes `delay` over each request, so messages wait in the adapter's queue.
async fn slow_receiver(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new().fallback({
        let got = got.clone();
        move |body: bytes::Bytes| {
            let got = got.clone();
            async move {
                tokio::time::sleep(delay).await;
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                got.lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_owned());
                "ok"
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/inbox", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test]
async fn an_adapter_removed_with_messages_queued_delivers_them_all_then_stops() {
    let (slow_url, slow_got) = slow_receiver(Duration::from_millis(100)).await;
    let fast = Receiver::start().await;
    let edit = |h: String| {
        h.replace(
            "publish_timeout = \"3s\"",
            "publish_timeout = \"3s\"\nprefetch = 1",
        )
    };
    let bus = TestBus::start_custom(
        "reload-remove",
        AMQP,
        &edit,
        &(webhook("slow", &slow_url) + &route("to-slow", "slow")),
        Arc::new(lienthong_adapters::Factory),
    )
    .await;
    const N: usize = 100;
    for i in 0..N {
        let id = format!("queued-{i}");
        let (s, v) = bus
            .post("H40", &envelope(Some(&id), H40, &[STP], dossier(&id)))
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let queue = bus.names().deliver_queue("slow");
    let depth = bus.bus.context.broker.queue_depth(&queue).await.unwrap();
    assert!(
        depth >= 10,
        "messages must still be queued at the reload: {depth}"
    );
    // The new config routes to another adapter and no longer has `slow` at all.
    let file = config_file(&bus);
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = text.find("\n[[adapters]]").unwrap();
    std::fs::write(
        &file,
        format!(
            "{}{}{}",
            &text[..cut],
            webhook("fast", &fast.url()),
            route("to-fast", "fast")
        ),
    )
    .unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 200, "{answer}");
    let (s, v) = bus
        .post(
            "H40",
            &envelope(Some("after"), H40, &[STP], dossier("after")),
        )
        .await;
    assert_eq!(
        (s, &v["routes"]),
        (202, &serde_json::json!(["to-fast"])),
        "{v}"
    );
    fast.wait_calls(1, Duration::from_secs(20)).await;
    // Every queued message reaches the removed adapter's receiver, once; then its worker stops.
    wait_for(
        "the removed adapter to drain and stop",
        Duration::from_secs(60),
        || async {
            let declared = bus.bus.context.queues.read().unwrap().clone();
            (!declared.sinks.iter().any(|s| s == "slow")).then_some(())
        },
    )
    .await;
    let got = slow_got.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), distinct.len()),
        (N, N),
        "every queued message, once"
    );
    assert_eq!(bus.bus.context.broker.queue_depth(&queue).await, Some(0));
    // The old queue is gone from what the bus tears down, so remove it here.
    let names = bus.names();
    let topo =
        lienthong_bus::broker::topology::build(&names, &["slow".into()], &Default::default(), 1);
    bus.stop().await;
    delete_topology(&topo).await;
}

#[tokio::test]
async fn two_communes_are_onboarded_by_adding_two_files_and_sending_sighup() {
    const MY_LOC: &str = "000.01.30.H40";
    const NAM_VAN: &str = "000.02.30.H40";
    let (a, province) = (Receiver::start().await, Receiver::start().await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("communes")).unwrap();
    let ns = namespace("reload-communes");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let (http, admin) = (free_port(), free_port());
    let text = format!(
        "include = [\"communes/*.toml\"]\n{}",
        head(&ns, AMQP, &state)
    )
    .replace(
        "listen = \"127.0.0.1:0\"\n\n[admin]",
        &format!("listen = \"127.0.0.1:{http}\"\n\n[admin]"),
    )
    .replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\""),
    ) + &webhook("province-inbox", &province.url())
        + "\n[[routes]]\nid = \"to-inboxes\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"@to\"]\n";
    // The province's own agencies share one inbox here; each commune brings its own.
    let text = text.replace("token_env = \"SYT\"", "inbox = \"province-inbox\"");
    let text = ["H40", "STP"].iter().fold(text, |t, var| {
        t.replace(
            &format!("token_env = \"{var}\""),
            &format!("token_env = \"{var}\"\ninbox = \"province-inbox\""),
        )
    });
    let file = dir.path().join("bus.toml");
    std::fs::write(&file, text).unwrap();
    let mut bus = BusProcess::spawn(&file, http, admin).await;
    let post = |to: Vec<&'static str>, id: &'static str| {
        let url = bus.url();
        async move {
            post_raw(
                &url,
                Some("H40"),
                "application/json",
                envelope(Some(id), H40, &to, dossier(id))
                    .to_string()
                    .into_bytes(),
            )
            .await
        }
    };
    let (s, v) = post(vec![MY_LOC], "before").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("no_route")),
        "{v}"
    );
    let admin_json = |path: &'static str| async move {
        reqwest::get(format!("http://127.0.0.1:{admin}{path}"))
            .await
            .ok()?
            .json::<serde_json::Value>()
            .await
            .ok()
    };
    let before = admin_json("/v1/config").await.unwrap();

    // Xã Mỹ Lộc receives on a webhook; xã Nam Vân sits behind NAT and polls a mailbox.
    std::fs::write(
        dir.path().join("communes/my-loc.toml"),
        format!(
            "[[agencies]]\ncode = \"{MY_LOC}\"\namqp_user = \"xa-my-loc\"\ninbox = \"my-loc-inbox\"\n{}",
            webhook("my-loc-inbox", &a.url())
        ),
    )
    .unwrap();
    // Its token comes in a file of its own beside its config (an env var cannot reach a running process).
    std::fs::write(dir.path().join("communes/nam-van.token"), "tok-nam-van\n").unwrap();
    std::fs::write(
        dir.path().join("communes/nam-van.toml"),
        format!(
            "[[agencies]]\ncode = \"{NAM_VAN}\"\ntoken_file = \"nam-van.token\"\ninbox = \"nam-van-mailbox\"\n\n\
             [[adapters]]\nid = \"nam-van-mailbox\"\ntype = \"mailbox\"\n"
        ),
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &bus.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let after = wait_for(
        "the new config in force",
        Duration::from_secs(30),
        || async {
            let v = admin_json("/v1/config").await?;
            (v["hash"] != before["hash"]).then_some(v)
        },
    )
    .await;
    assert_eq!(after["files"].as_array().unwrap().len(), 3, "{after}");
    let (s, v) = post(vec![MY_LOC, NAM_VAN], "after").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        a.wait_calls(1, Duration::from_secs(20)).await[0].json()["id"],
        "after"
    );
    let inbox = format!("http://127.0.0.1:{http}/v1/inbox");
    let listed = wait_for(
        "the message in Nam Vân's mailbox",
        Duration::from_secs(20),
        || {
            let inbox = inbox.clone();
            async move {
                let v: serde_json::Value = reqwest::Client::new()
                    .get(&inbox)
                    .bearer_auth("tok-nam-van")
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (v.as_array()?.len() == 1).then_some(v)
            }
        },
    )
    .await;
    assert_eq!(listed[0]["id"], "after");
    let r = reqwest::Client::new()
        .post(format!("{inbox}/after/ack"))
        .bearer_auth("tok-nam-van")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(bus.terminate(Duration::from_secs(30)).await == Some(0));
    let names = lienthong_bus::broker::topology::Names::new(&ns);
    let topo = lienthong_bus::broker::topology::build(
        &names,
        &["my-loc-inbox".into(), "province-inbox".into()],
        &Default::default(),
        1,
    )
    .with_mailboxes(&names, &["nam-van-mailbox".into()]);
    delete_topology(&topo).await;
}

#[tokio::test]
async fn a_changed_adapter_delivers_with_its_new_options_from_the_next_message() {
    let (old, new) = (Receiver::start().await, Receiver::start().await);
    let bus = TestBus::start(
        "reload-change",
        &(webhook("stp-hook", &old.url()) + &route("to-stp", "stp-hook")),
    )
    .await;
    let (s, v) = bus
        .post(
            "H40",
            &envelope(Some("to-old"), H40, &[STP], dossier("to-old")),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    old.wait_calls(1, Duration::from_secs(20)).await;
    let file = config_file(&bus);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&old.url(), &new.url())).unwrap();
    let (status, answer) = reload(&bus).await;
    assert_eq!(status, 200, "{answer}");
    let (s, v) = bus
        .post(
            "H40",
            &envelope(Some("to-new"), H40, &[STP], dossier("to-new")),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let calls = new.wait_calls(1, Duration::from_secs(20)).await;
    assert_eq!(calls[0].json()["id"], "to-new");
    assert_eq!(old.calls().len(), 1, "the old URL got nothing more");
    bus.stop().await;
}
