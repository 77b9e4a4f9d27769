//! `[[rights]]` / `[[groups]]` against the real RabbitMQ: allowed, denied, wildcard parts, wildcard types and
//! groups, enforced alike on HTTP (403 naming the missing right at `/to/<i>`), AMQP (into
//! `<namespace>.rejected` with the same error JSON) and a `file-in` folder (the error report); a config
//! without rights keeps the old behaviour and `lienthong check` warns about it and about unusable routes.

mod common;

use common::*;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::path::Path;
use std::time::Duration;

const RIGHTS: &str = r#"
[[groups]]
name = "departments"
members = ["000.00.12.H40", "000.00.13.H40"]

# Departments send any dossier.* message to the province.
[[rights]]
from = ["group:departments"]
types = ["dossier.*"]
to = ["000.00.00.H40"]

# Any agency of the province sends submissions to the justice department.
[[rights]]
from = ["000.*.*.H40"]
types = ["dossier.submitted"]
to = ["000.00.12.H40"]
"#;

fn body(rx: &Receiver, outbox: &Path) -> String {
    format!(
        r#"
[[adapters]]
id = "inbox"
type = "webhook"
url = "{}"

[[adapters]]
id = "h40-outbox"
type = "file-in"
path = "{}"
agency = "{H40}"
poll_interval = "100ms"

[[routes]]
id = "all"
types = ["dossier.submitted"]
deliver = ["inbox"]
{RIGHTS}"#,
        rx.url(),
        outbox.display()
    )
}

fn no_right(from: &str, to: &str) -> String {
    format!("no right for {from} to send dossier.submitted to {to}")
}

#[tokio::test]
async fn rights_are_enforced_on_http_amqp_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let rx = Receiver::start().await;
    let bus = TestBus::start("rights", &body(&rx, &outbox)).await;
    let msg =
        |from: &str, to: &[&str], label: &str| envelope(Some(&new_id()), from, to, dossier(label));

    // HTTP. Allowed by the wildcard-part right, and by the group right with a wildcard type.
    for (token, from, to, label) in [
        ("H40", H40, STP, "H40-STP"),
        ("SYT", SYT, STP, "SYT-STP"),
        ("STP", STP, H40, "STP-H40"),
    ] {
        let (status, json) = bus.post(token, &msg(from, &[to], label)).await;
        assert_eq!(status, 202, "{label}: {json}");
    }
    // Denied: no right covers the receiver; the detail names the first receiver without one.
    for (token, from, to, at) in [
        ("H40", H40, vec![SYT], "/to/0"),
        ("H40", H40, vec![STP, SYT], "/to/1"),
        ("STP", STP, vec![SYT], "/to/0"),
    ] {
        let (status, json) = bus.post(token, &msg(from, &to, "DENIED")).await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{json}"
        );
        let missing = to[at[4..].parse::<usize>().unwrap()];
        assert_eq!(json["error"]["details"][0]["path"], at, "{json}");
        assert_eq!(
            json["error"]["details"][0]["message"],
            no_right(from, missing),
            "{json}"
        );
    }

    // AMQP: the same refusal, in <ns>.rejected.
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (to, label) in [(SYT, "AMQP-DENIED"), (STP, "AMQP-OK")] {
        let confirm = ch
            .basic_publish(
                bus.names().ingress_exchange().as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                msg(H40, &[to], label).to_string().as_bytes(),
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_user_id("guest".into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
    let mut consumer = ch
        .basic_consume(
            bus.names().rejected_queue().as_str().into(),
            "rights-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(20), consumer.next())
        .await
        .expect("a rejected message within 20 s")
        .unwrap()
        .unwrap();
    let err = rejected_error(&d);
    assert_eq!(err["error"]["code"], "forbidden", "{err}");
    assert_eq!(
        err["error"]["details"][0]["message"],
        no_right(H40, SYT),
        "{err}"
    );
    d.ack(BasicAckOptions::default()).await.unwrap();

    // A folder: the refused file is set aside with its report; the allowed one is taken.
    for (name, to, label) in [
        ("denied.json", SYT, "FILE-DENIED"),
        ("ok.json", STP, "FILE-OK"),
    ] {
        let tmp = outbox.join(format!("{name}.tmp"));
        std::fs::write(&tmp, msg(H40, &[to], label).to_string()).unwrap();
        std::fs::rename(&tmp, outbox.join(name)).unwrap();
    }
    let report = wait_for("the refused file's report", Duration::from_secs(30), || {
        let p = outbox.join("rejected").join("denied.json.error.json");
        async move { std::fs::read(p).ok() }
    })
    .await;
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["error"]["code"], "forbidden", "{report}");
    assert_eq!(
        report["error"]["details"][0]["message"],
        no_right(H40, SYT),
        "{report}"
    );

    // Exactly the allowed ones are delivered.
    let allowed = ["H40-STP", "SYT-STP", "STP-H40", "AMQP-OK", "FILE-OK"];
    rx.wait_calls(allowed.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: Vec<String> = rx
        .calls()
        .iter()
        .map(|c| String::from_utf8_lossy(&c.body).into_owned())
        .collect();
    for l in allowed {
        assert!(bodies.iter().any(|b| b.contains(l)), "{l} not delivered");
    }
    assert_eq!(
        bodies.len(),
        allowed.len(),
        "a refused message was delivered"
    );
    let _ = conn.close(200, "bye".into()).await;
    bus.stop().await;
}

fn check(dir: &Path, text: &str) -> (Option<i32>, String, String) {
    let file = dir.join("bus.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&file)
        .env("STP", "a")
        .env("H40", "b")
        .env("SYT", "c")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_warns_without_rights_and_about_routes_no_right_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let head = head("rights-check", AMQP, "sqlite://x.db");
    let routes = "\n[[adapters]]\nid = \"inbox\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\n\
                  [[routes]]\nid = \"to-syt\"\ntypes = [\"dossier.submitted\"]\nto = [\"000.00.13.H40\"]\ndeliver = [\"inbox\"]\n";
    let (code, out, err) = check(dir.path(), &format!("{head}{routes}"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("warning: rights: no [[rights]]"), "{out}");

    // With the rights above, nobody may send to SYT: the route is reported, the check still passes.
    let (code, out, err) = check(dir.path(), &format!("{head}{routes}{RIGHTS}"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("warning: routes[0]: route `to-syt`"), "{out}");
    assert!(!out.contains("no [[rights]]"), "{out}");

    // Unknown groups and agencies are errors.
    let bad = "\n[[rights]]\nfrom = [\"group:communes\"]\ntypes = [\"dossier.*\"]\nto = [\"000.00.99.H40\"]\n";
    let (code, out, err) = check(dir.path(), &format!("{head}{routes}{bad}"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("rights[0].from[0]") && err.contains("`communes`"),
        "{err}"
    );
    assert!(
        err.contains("rights[0].to[0]") && err.contains("matches no agency"),
        "{err}"
    );
}

/// The same rules on the embedded broker (a second, broker-independent look at the HTTP answers; the test
/// above is the one against RabbitMQ).
#[tokio::test]
async fn http_rights_on_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let rx = Receiver::start().await;
    let bus = TestBus::start_with("rights-mem", "memory://", &body(&rx, &outbox)).await;
    let (status, json) = bus
        .post(
            "SYT",
            &envelope(Some(&new_id()), SYT, &[STP], dossier("MEM-OK")),
        )
        .await;
    assert_eq!(status, 202, "{json}");
    let (status, json) = bus
        .post(
            "SYT",
            &envelope(Some(&new_id()), SYT, &[H40, SYT], dossier("MEM-NO")),
        )
        .await;
    assert_eq!(status, 403, "{json}");
    assert_eq!(json["error"]["details"][0]["path"], "/to/1", "{json}");
    assert_eq!(
        json["error"]["details"][0]["message"],
        no_right(SYT, SYT),
        "{json}"
    );
    rx.wait_calls(1, Duration::from_secs(20)).await;
    bus.bus.shutdown().await;
}
