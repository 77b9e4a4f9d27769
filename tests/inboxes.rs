//! `[[agencies]] inbox` and `deliver = ["@to"]`, and communes onboarded as included files, against the real
//! RabbitMQ: each receiver gets exactly one copy through its own inbox; a receiver without one is refused
//! with 422 `no_route` naming it, and nobody gets that message.

mod common;

use common::*;
use std::time::Duration;

fn webhook(id: &str, url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    )
}

const COMMUNE: &str = "000.01.30.H40";

#[tokio::test]
async fn at_to_delivers_through_each_receivers_inbox_including_an_included_commune() {
    let (h40, stp, syt, xa) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    // The commune is onboarded by one file of its own: its agency and its inbox adapter.
    let communes = tempfile::tempdir().unwrap();
    std::fs::write(
        communes.path().join("my-loc.toml"),
        format!(
            "[[agencies]]\ncode = \"{COMMUNE}\"\namqp_user = \"xa-my-loc\"\ninbox = \"xa-in\"\n{}",
            webhook("xa-in", &xa.url())
        ),
    )
    .unwrap();
    let include = format!("include = [\"{}/*.toml\"]\n", communes.path().display());
    let edit = move |h: String| {
        let h = h
            .replace(
                "token_env = \"H40\"",
                "token_env = \"H40\"\ninbox = \"h40-in\"",
            )
            .replace(
                "token_env = \"STP\"",
                "token_env = \"STP\"\ninbox = \"stp-in\"",
            )
            .replace(
                "token_env = \"SYT\"",
                "token_env = \"SYT\"\ninbox = \"syt-in\"",
            );
        format!("{include}{h}")
    };
    let body = webhook("h40-in", &h40.url())
        + &webhook("stp-in", &stp.url())
        + &webhook("syt-in", &syt.url())
        + "\n[[routes]]\nid = \"to-inboxes\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"@to\"]\n";
    let bus = TestBus::start_custom(
        "inboxes",
        AMQP,
        &edit,
        &body,
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await;

    // A receiver the province does not know: refused, naming it, and no one gets a copy.
    let refused = new_id();
    let (status, answer) = bus
        .post(
            "H40",
            &envelope(
                Some(&refused),
                H40,
                &[STP, "000.09.99.H40"],
                dossier("refused"),
            ),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "no_route");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("000.09.99.H40"),
        "{answer}"
    );
    assert_eq!(answer["error"]["details"][0]["path"], "/to/1");

    // One message to a department and the commune: one copy each, through their own inboxes.
    let id = new_id();
    let (status, answer) = bus
        .post(
            "H40",
            &envelope(Some(&id), H40, &[STP, COMMUNE], dossier("both")),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["routes"], serde_json::json!(["to-inboxes"]));
    for rx in [&stp, &xa] {
        let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].json()["id"], id.as_str());
    }
    // The refused message reached no one, and nothing went to agencies not addressed. Deliveries of the
    // accepted message are done (seen above); give stray copies the time a delivery takes here.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        assert!(h40.calls().is_empty() && syt.calls().is_empty());
        assert_eq!(stp.calls().len() + xa.calls().len(), 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bus.stop().await;
}
