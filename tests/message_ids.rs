//! A message is named by its sender and its id together, everywhere (issue 10, items 1 and 7), against the
//! real RabbitMQ: two agencies choosing the same id send two messages, each delivered and each parked on its
//! own; a resubmission under an id is answered as the first only when it is the same message, and refused
//! with 409 `conflict` when it is not, also when many variants race.

mod common;

use common::*;
use std::time::Duration;

fn config(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"syt\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         \n[[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"syt\"]\n"
    )
}

fn payload_label(call: &Call) -> String {
    call.json()["payload"]["TrichYeuHoSo"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_same_id_from_two_agencies_is_delivered_twice() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("ids-deliver", &config(&rx.url())).await;
    let id = format!("collide-{}", new_id());
    // Sở Tư pháp takes the id first; UBND tỉnh's real message with the same id must still arrive.
    let (s1, a1) = bus
        .post("STP", &envelope(Some(&id), STP, &[SYT], dossier("C first")))
        .await;
    assert_eq!(s1, 202, "{a1}");
    rx.wait_calls(1, Duration::from_secs(20)).await;
    let (s2, a2) = bus
        .post("H40", &envelope(Some(&id), H40, &[SYT], dossier("A real")))
        .await;
    assert_eq!(s2, 202, "{a2}");
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    let mut got: Vec<(String, String)> = calls
        .iter()
        .map(|c| {
            (
                c.json()["from"].as_str().unwrap().to_owned(),
                payload_label(c),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                H40.to_owned(),
                "Đăng ký khai sinh cho con (A real)".to_owned()
            ),
            (
                STP.to_owned(),
                "Đăng ký khai sinh cho con (C first)".to_owned()
            ),
        ]
    );
    bus.stop().await;
}

#[tokio::test]
async fn the_same_id_from_two_agencies_is_parked_twice_and_replayed_by_sender() {
    let rx = Receiver::scripted(&[], 400).await;
    let bus = TestBus::start("ids-dlq", &config(&rx.url())).await;
    let id = format!("collide-{}", new_id());
    for (token, from, label) in [("H40", H40, "A real"), ("STP", STP, "C copy")] {
        let (s, a) = bus
            .post(token, &envelope(Some(&id), from, &[SYT], dossier(label)))
            .await;
        assert_eq!(s, 202, "{a}");
    }
    let http = reqwest::Client::new();
    let parked = wait_for("both messages parked", Duration::from_secs(20), || {
        let url = bus.admin(&format!("/v1/dlq/{id}"));
        let http = http.clone();
        async move {
            let v: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
            (v.as_array()?.len() == 2).then_some(v)
        }
    })
    .await;
    let mut senders: Vec<&str> = parked
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["from"].as_str().unwrap())
        .collect();
    senders.sort();
    assert_eq!(senders, [H40, STP], "{parked}");
    for e in parked.as_array().unwrap() {
        let label = if e["from"] == H40 { "A real" } else { "C copy" };
        assert!(
            e["payload"].as_str().unwrap().contains(label),
            "each parked entry keeps its own payload: {e}"
        );
    }

    // Replaying the id without saying whose is refused; with `from` only that sender's message goes.
    let r = http
        .post(bus.admin(&format!("/v1/dlq/{id}/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert_eq!(body["error"]["details"][0]["path"], "/from", "{body}");

    rx.set_then(200);
    let before = rx.calls().len();
    let r = http
        .post(bus.admin(&format!("/v1/dlq/{id}/replay?from={H40}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let outcome: serde_json::Value = r.json().await.unwrap();
    assert_eq!(outcome.as_array().unwrap().len(), 1, "{outcome}");
    assert_eq!(outcome[0]["from"], H40, "{outcome}");
    let calls = rx.wait_calls(before + 1, Duration::from_secs(20)).await;
    let replayed = &calls[before];
    assert_eq!(replayed.json()["from"], H40);
    assert_eq!(
        payload_label(replayed),
        "Đăng ký khai sinh cho con (A real)"
    );
    // STP's message is still parked, untouched.
    let left: serde_json::Value = http
        .get(bus.admin(&format!("/v1/dlq/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["from"], STP);
    bus.stop().await;
}

#[tokio::test]
async fn a_different_body_under_an_accepted_id_is_a_conflict() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("ids-conflict", &config(&rx.url())).await;
    let id = new_id();
    let first = envelope(Some(&id), H40, &[SYT], dossier("first"));
    let (s1, a1) = bus.post("H40", &first).await;
    assert_eq!(s1, 202, "{a1}");
    let (s2, a2) = bus
        .post("H40", &envelope(Some(&id), H40, &[SYT], dossier("changed")))
        .await;
    assert_eq!(s2, 409, "{a2}");
    assert_eq!(a2["error"]["code"], "conflict");
    assert_eq!(a2["error"]["details"][0]["path"], "/id");
    let (s3, a3) = bus.post("H40", &first).await;
    assert_eq!((s3, &a3), (202, &a1), "the same body gets the first answer");
    // Another agency may use the id for its own message.
    let (s4, a4) = bus
        .post("STP", &envelope(Some(&id), STP, &[SYT], dossier("changed")))
        .await;
    assert_eq!(s4, 202, "{a4}");
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    let h40: Vec<String> = calls
        .iter()
        .filter(|c| c.json()["from"] == H40)
        .map(payload_label)
        .collect();
    assert_eq!(h40, ["Đăng ký khai sinh cho con (first)"]);
    bus.stop().await;
}

#[tokio::test]
async fn of_fifty_concurrent_variants_of_one_id_exactly_one_is_accepted_and_delivered() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("ids-race", &config(&rx.url())).await;
    let id = new_id();
    let posts = (0..50).map(|i| {
        let env = envelope(Some(&id), H40, &[SYT], dossier(&format!("variant {i}")));
        let bus = &bus;
        async move { (i, bus.post("H40", &env).await) }
    });
    let answers = futures::future::join_all(posts).await;
    let accepted: Vec<usize> = answers
        .iter()
        .filter(|(_, (s, _))| *s == 202)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    for (_, (s, a)) in &answers {
        assert!(
            *s == 202 || (*s == 409 && a["error"]["code"] == "conflict"),
            "{s} {a}"
        );
    }
    let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
    assert_eq!(
        payload_label(&calls[0]),
        format!("Đăng ký khai sinh cho con (variant {})", accepted[0]),
        "the delivered payload is the one that got the 202"
    );
    // Nothing else arrives: a later message is the next call.
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[SYT], dossier("later")),
        )
        .await;
    assert_eq!(s, 202);
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 2, "no second variant was delivered");
    assert_eq!(
        payload_label(&calls[1]),
        "Đăng ký khai sinh cho con (later)"
    );
    bus.stop().await;
}

/// A message refused before it is published (here 422 `no_route`: one receiver is served by no route) does not
/// take its id: the corrected message sent under the same id is accepted and delivered, not refused as a
/// different message under a used id.
#[tokio::test]
async fn a_message_refused_for_no_route_does_not_take_its_id() {
    let rx = Receiver::start().await;
    let config = format!(
        "\n[[adapters]]\nid = \"syt\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\
         \n[[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\nto = [\"{SYT}\"]\ndeliver = [\"syt\"]\n",
        rx.url()
    );
    let bus = TestBus::start("ids-noroute", &config).await;
    let id = format!("fixed-{}", new_id());
    let (s1, a1) = bus
        .post(
            "STP",
            &envelope(Some(&id), STP, &[SYT, H40], dossier("to two")),
        )
        .await;
    assert_eq!(s1, 422, "{a1}");
    assert_eq!(a1["error"]["code"], "no_route", "{a1}");
    let (s2, a2) = bus
        .post("STP", &envelope(Some(&id), STP, &[SYT], dossier("to one")))
        .await;
    assert_eq!(s2, 202, "the corrected message under the same id: {a2}");
    let calls = rx.wait_calls(1, Duration::from_secs(20)).await;
    assert_eq!(
        payload_label(&calls[0]),
        "Đăng ký khai sinh cho con (to one)"
    );
    bus.stop().await;
}
