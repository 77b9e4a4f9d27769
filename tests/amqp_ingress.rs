//! AMQP ingress against the real RabbitMQ: accepted envelopes are delivered, refused ones land in
//! `<namespace>.rejected` with the error JSON in `x-lt-error` (never dropped).

mod common;

use common::*;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::Duration;

async fn publish(ch: &lapin::Channel, exchange: &str, body: &[u8], user: Option<&str>) {
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    if let Some(u) = user {
        props = props.with_user_id(u.into());
    }
    publish_props(ch, exchange, body, props).await;
}

async fn publish_props(ch: &lapin::Channel, exchange: &str, body: &[u8], props: BasicProperties) {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

#[tokio::test]
async fn amqp_ingress_delivers_and_rejects_with_reason() {
    let rx = Receiver::start().await;
    let bus = TestBus::start_with_head_extra(
        "amqp",
        "max_body_bytes = 8192",
        &format!(
            "[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\n[[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n",
            rx.url()
        ),
    )
    .await;
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let exchange = bus.names().ingress_exchange();

    let id = new_id();
    let good = envelope(Some(&id), H40, &[STP], dossier("A-1"));
    publish(&ch, &exchange, good.to_string().as_bytes(), Some("guest")).await;
    let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
    assert_eq!(calls[0].json()["id"], id.as_str());
    assert_eq!(calls[0].json()["payload"], dossier("A-1"));

    let mut bad = dossier("A-2");
    bad["TrangThaiHoSo"] = serde_json::json!(42);
    publish(
        &ch,
        &exchange,
        envelope(None, H40, &[STP], bad).to_string().as_bytes(),
        Some("guest"),
    )
    .await;
    publish(&ch, &exchange, good.to_string().as_bytes(), None).await;
    // Larger than http.max_body_bytes, which bounds AMQP ingress too.
    let mut big = dossier("A-3");
    big["GhiChu"] = serde_json::json!("x".repeat(9000));
    publish(
        &ch,
        &exchange,
        envelope(None, H40, &[STP], big).to_string().as_bytes(),
        Some("guest"),
    )
    .await;

    // `message_id` names the message as `id` does over HTTP, under the same rule: an empty one is refused.
    let props = || {
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_user_id("guest".into())
    };
    publish_props(
        &ch,
        &exchange,
        envelope(None, H40, &[STP], dossier("A-4"))
            .to_string()
            .as_bytes(),
        props()
            .with_content_type("application/json".into())
            .with_message_id("".into()),
    )
    .await;
    // A media type with parameters is read by its essence, as over HTTP.
    let charset_id = new_id();
    publish_props(
        &ch,
        &exchange,
        envelope(None, H40, &[STP], dossier("A-5"))
            .to_string()
            .as_bytes(),
        props()
            .with_content_type("application/json; charset=utf-8".into())
            .with_message_id(charset_id.as_str().into()),
    )
    .await;
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    assert!(
        calls.iter().any(|c| c.json()["id"] == charset_id.as_str()),
        "the message with a charset parameter is delivered under its message_id"
    );

    let mut consumer = ch
        .basic_consume(
            bus.names().rejected_queue().as_str().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..4 {
        let d = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("a rejected message within 20 s")
            .unwrap()
            .unwrap();
        let err = rejected_error(&d);
        codes.push(err["error"]["code"].as_str().unwrap().to_owned());
        if err["error"]["code"] == "schema_violation" {
            assert_eq!(err["error"]["details"][0]["path"], "/payload/TrangThaiHoSo");
        }
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    codes.sort();
    assert_eq!(
        codes,
        vec![
            "invalid_envelope",
            "payload_too_large",
            "schema_violation",
            "unauthenticated"
        ]
    );
    assert_eq!(
        rx.calls().len(),
        2,
        "refused messages must not be delivered"
    );
    let _ = conn.close(200, "bye".into()).await;
    bus.stop().await;
}
