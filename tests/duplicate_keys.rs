//! Issue 10 item 6, against the real RabbitMQ: a key twice in one JSON object — in the envelope or anywhere in
//! its payload — is refused with 400 `invalid_json` and the key's JSON pointer, over HTTP and over AMQP
//! ingress alike, and nothing of it is delivered. (The schema was checked on the last value while the bytes
//! went out with both: a receiver keeping the first saw a value that never passed the schema.)

mod common;

use common::*;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::Duration;

fn config(rx: &Receiver) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n",
        rx.url()
    )
}

/// A valid envelope's text with `extra` (e.g. `"TrangThaiHoSo":"evil<script>",`) inserted first in its payload.
fn with_in_payload(label: &str, extra: &str) -> String {
    let text = envelope(None, H40, &[STP], dossier(label)).to_string();
    assert!(text.contains("\"payload\":{"), "{text}");
    text.replacen("\"payload\":{", &format!("\"payload\":{{{extra}"), 1)
}

#[tokio::test]
async fn a_key_twice_anywhere_in_the_body_is_400_invalid_json_with_its_path() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("dupkeys", &config(&rx)).await;
    let url = bus.url("/v1/messages");

    // The attack as seen: the first value is what a first-wins receiver reads, the second passes the schema.
    let body = with_in_payload("D-1", "\"TrangThaiHoSo\":\"evil<script>\",");
    let (status, answer) = post_raw(&url, Some("H40"), "application/json", body.into()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_json", "{answer}");
    assert_eq!(
        answer["error"]["details"][0]["path"], "/payload/TrangThaiHoSo",
        "{answer}"
    );
    assert!(
        answer["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TrangThaiHoSo")),
        "{answer}"
    );

    // Deeper in the payload, and in the envelope itself (a second `from` must not pick the sender).
    let deep = with_in_payload(
        "D-2",
        "\"GiayTo\":[{\"Ten\":\"a\"},{\"Ten\":\"b\",\"Ten\":\"c\"}],",
    );
    let (status, answer) = post_raw(&url, Some("H40"), "application/json", deep.into()).await;
    assert_eq!(
        (status, &answer["error"]["details"][0]["path"]),
        (400, &serde_json::json!("/payload/GiayTo/1/Ten")),
        "{answer}"
    );
    let two_froms = envelope(None, H40, &[STP], dossier("D-3"))
        .to_string()
        .replacen("\"from\":", &format!("\"from\":\"{STP}\",\"from\":"), 1);
    let (status, answer) = post_raw(&url, Some("H40"), "application/json", two_froms.into()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_json", "{answer}");
    assert_eq!(answer["error"]["details"][0]["path"], "/from", "{answer}");

    // The same envelope without the repeat is accepted: it was the duplicate that was refused.
    let fine = with_in_payload("D-4", "\"GiayTo\":[{\"Ten\":\"a\"},{\"Ten\":\"b\"}],");
    let (status, answer) = post_raw(&url, Some("H40"), "application/json", fine.into()).await;
    assert_eq!(status, 202, "{answer}");
    let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 1, "only the accepted message is delivered");
    bus.stop().await;
}

#[tokio::test]
async fn amqp_ingress_refuses_a_key_twice_the_same_way() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("dupkeysamqp", &config(&rx)).await;
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let body = with_in_payload("D-5", "\"TrangThaiHoSo\":\"evil<script>\",");
    let confirm = ch
        .basic_publish(
            bus.names().ingress_exchange().as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
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
    let mut rejected = ch
        .basic_consume(
            bus.names().rejected_queue().as_str().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(20), rejected.next())
        .await
        .expect("the refused message in <ns>.rejected within 20 s")
        .unwrap()
        .unwrap();
    let err = rejected_error(&d);
    assert_eq!(err["error"]["code"], "invalid_json", "{err}");
    assert_eq!(
        err["error"]["details"][0]["path"], "/payload/TrangThaiHoSo",
        "{err}"
    );
    d.ack(BasicAckOptions::default()).await.unwrap();
    assert!(
        rx.calls().is_empty(),
        "a refused message is never delivered"
    );
    let _ = conn.close(200, "bye".into()).await;
    bus.stop().await;
}
