//! Issue 10 items 3, 11 and 12, against the running bus: the listeners' connection cap and timeouts (no client
//! can hold connections for ever or starve the admin API), and every protocol-level refusal answered with the
//! documented JSON error — an ambiguous `Transfer-Encoding` + `Content-Length` request among them.

mod common;

use common::raw::Raw;
use common::*;
use std::time::Duration;

/// Starts a bus with extra `[http]` and `[admin]` keys.
async fn bus_with(test: &str, http: &str, admin: &str, body: &str) -> TestBus {
    let (h, a) = (
        "[http]\nlisten = \"127.0.0.1:0\"\n",
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
    );
    let edit = |head: String| {
        assert!(head.contains(h) && head.contains(a), "head() changed");
        head.replacen(h, &format!("{h}{http}\n"), 1)
            .replacen(a, &format!("{a}{admin}\n"), 1)
    };
    TestBus::start_custom(
        test,
        AMQP,
        &edit,
        body,
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await
}

fn webhook_route(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n"
    )
}

const GET_NOTHING: &[u8] = b"GET /nothing HTTP/1.1\r\nHost: bus\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_answers_while_ingress_is_full_of_idle_connections() {
    let bus = bus_with(
        "full",
        "max_connections = 20\nheader_read_timeout = \"60s\"",
        "",
        "",
    )
    .await;
    // Ten times the cap: 20 are served (and idle), the rest wait in the listen queue.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(Raw::connect(bus.bus.http_addr).await);
    }
    let mut late = Raw::connect(bus.bus.http_addr).await;
    late.send(GET_NOTHING).await.unwrap();
    assert!(
        late.quiet_for(Duration::from_millis(500)).await,
        "ingress is at its cap: a new connection is not served"
    );
    wait_for("admin /healthz", Duration::from_secs(5), || async {
        healthy(&bus.admin("/healthz")).await.then_some(())
    })
    .await;
    let ready = reqwest::get(bus.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    // Once the idle ones go, ingress serves again.
    drop(idle);
    late.answer(Duration::from_secs(10))
        .await
        .expect("served once slots are free")
        .assert_error(404, "not_found");
    bus.stop().await;
}

#[tokio::test]
async fn over_the_cap_a_connection_waits_and_is_served_once_a_slot_frees() {
    let bus = bus_with(
        "cap",
        "max_connections = 3\nheader_read_timeout = \"60s\"",
        "",
        "",
    )
    .await;
    let addr = bus.bus.http_addr;
    let (mut a, b, _c) = (
        Raw::connect(addr).await,
        Raw::connect(addr).await,
        Raw::connect(addr).await,
    );
    let mut d = Raw::connect(addr).await;
    d.send(GET_NOTHING).await.unwrap();
    assert!(
        d.quiet_for(Duration::from_secs(1)).await,
        "the fourth connection is over the cap of 3: not served"
    );
    // Under the cap, connections are served.
    a.send(GET_NOTHING).await.unwrap();
    a.answer(Duration::from_secs(5))
        .await
        .expect("a connection under the cap is served")
        .assert_error(404, "not_found");
    drop(b);
    d.answer(Duration::from_secs(5))
        .await
        .expect("served once a slot is free")
        .assert_error(404, "not_found");
    bus.stop().await;
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_within_their_timeouts() {
    let bus = bus_with(
        "idle",
        "header_read_timeout = \"1s\"\nidle_timeout = \"2s\"",
        "header_read_timeout = \"1s\"\nidle_timeout = \"2s\"",
        "",
    )
    .await;
    for addr in [bus.bus.http_addr, bus.bus.admin_addr] {
        // A new connection that never sends: closed after header_read_timeout, without an answer.
        let mut silent = Raw::connect(addr).await;
        let took = silent
            .closed_within(Duration::from_secs(4))
            .await
            .expect("a silent connection is closed");
        assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
        assert!(silent.answer(Duration::ZERO).await.is_none());
        // A kept-alive connection after an answer: closed after idle_timeout.
        let mut kept = Raw::connect(addr).await;
        kept.send(GET_NOTHING).await.unwrap();
        kept.answer(Duration::from_secs(5)).await.unwrap();
        let took = kept
            .closed_within(Duration::from_secs(5))
            .await
            .expect("an idle kept-alive connection is closed");
        assert!(
            took >= Duration::from_millis(1900),
            "idle_timeout (2s), not header_read_timeout (1s): {took:?}"
        );
    }
    bus.stop().await;
}

/// Sends `first`, then `trickle` one byte every 100 ms; returns the answer that arrives within `within`.
async fn slow_send(
    raw: &mut Raw,
    first: &[u8],
    trickle: &[u8],
    within: Duration,
) -> common::raw::Answer {
    raw.send(first).await.unwrap();
    let mut trickle = trickle.to_vec();
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(a) = raw.answer(Duration::from_millis(100)).await {
            return a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer within {within:?}"
        );
        if !trickle.is_empty() {
            let _ = raw.send(&[trickle.remove(0)]).await;
        }
    }
}

#[tokio::test]
async fn half_sent_heads_and_bodies_are_answered_408_and_closed() {
    let rx = Receiver::start().await;
    let bus = bus_with(
        "slow",
        "header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"",
        "",
        &webhook_route(&rx.url()),
    )
    .await;
    let addr = bus.bus.http_addr;
    let head = "POST /v1/messages HTTP/1.1\r\nHost: bus\r\nContent-Type: application/json\r\n\
                Authorization: Bearer tok-H40\r\nContent-Length: 1000\r\n\r\n";
    let (start, rest) = head.as_bytes().split_at(30);
    for (what, first, trickle, key) in [
        ("half-sent head", start, &[][..], "http.header_read_timeout"),
        ("trickled head", start, rest, "http.header_read_timeout"),
        (
            "half-sent body",
            head.as_bytes(),
            &b"{\"id\":"[..],
            "http.body_read_timeout",
        ),
        (
            "trickled body",
            head.as_bytes(),
            &[b' '; 900][..],
            "http.body_read_timeout",
        ),
    ] {
        let mut raw = Raw::connect(addr).await;
        let t0 = std::time::Instant::now();
        let answer = slow_send(&mut raw, first, trickle, Duration::from_secs(4)).await;
        let v = answer.assert_error(408, "request_timeout");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(key),
            "{what}: {v}"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{what}: too early"
        );
        raw.closed_within(Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("{what}: the connection stays open"));
    }
    assert!(rx.calls().is_empty());
    bus.stop().await;
}

/// A chunked request that also declares a `Content-Length`, with `cl_first` choosing the order.
fn smuggle(body: &[u8], cl_first: bool) -> Vec<u8> {
    let (te, cl) = (
        "Transfer-Encoding: chunked\r\n".to_string(),
        format!("Content-Length: {}\r\n", body.len()),
    );
    let (one, two) = if cl_first { (cl, te) } else { (te, cl) };
    let mut req = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: bus\r\nContent-Type: application/json\r\n\
         Authorization: Bearer tok-H40\r\n{one}{two}\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    req
}

#[tokio::test]
async fn both_transfer_encoding_and_content_length_is_refused_and_nothing_is_accepted() {
    let rx = Receiver::start().await;
    let bus = bus_with("smuggle", "", "", &webhook_route(&rx.url())).await;
    let addr = bus.bus.http_addr;
    for cl_first in [false, true] {
        let id = new_id();
        let body = envelope(Some(&id), H40, &[STP], dossier("SMUGGLE")).to_string();
        let mut raw = Raw::connect(addr).await;
        // Behind an ordinary request on the same connection: that one is answered first, as sent.
        raw.send(&[GET_NOTHING, &smuggle(body.as_bytes(), cl_first)].concat())
            .await
            .unwrap();
        raw.answer(Duration::from_secs(5))
            .await
            .expect("the first request's answer")
            .assert_error(404, "not_found");
        let v = raw
            .answer(Duration::from_secs(5))
            .await
            .expect("the refusal")
            .assert_error(400, "bad_request");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Transfer-Encoding and Content-Length"),
            "{v}"
        );
        raw.closed_within(Duration::from_secs(5))
            .await
            .expect("the connection is closed after the refusal");
        let accepted = bus
            .bus
            .context
            .state
            .ingress_lookup(H40, &id)
            .await
            .unwrap();
        assert!(accepted.is_none(), "the ambiguous request was accepted");
    }
    // The same envelope, chunked alone, is accepted: the refusal is the framing.
    let id = new_id();
    let body = envelope(Some(&id), H40, &[STP], dossier("SMUGGLE")).to_string();
    let chunked_only = String::from_utf8(smuggle(body.as_bytes(), false))
        .unwrap()
        .replace(&format!("Content-Length: {}\r\n", body.len()), "");
    let mut raw = Raw::connect(addr).await;
    raw.send(chunked_only.as_bytes()).await.unwrap();
    let a = raw.answer(Duration::from_secs(10)).await.unwrap();
    assert_eq!(a.status, 202, "{:?}", String::from_utf8_lossy(&a.body));
    bus.stop().await;
}

#[tokio::test]
async fn every_protocol_refusal_is_the_documented_json_error() {
    let bus = bus_with("refusals", "", "token_env = \"ADMIN\"", "").await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: bus\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many = format!(
        "GET / HTTP/1.1\r\nHost: bus\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect::<String>()
    );
    let post = |extra: &str| {
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: bus\r\nContent-Type: application/json\r\n\
             Authorization: Bearer tok-H40\r\n{extra}\r\n"
        )
    };
    let ingress = bus.bus.http_addr;
    let admin = bus.bus.admin_addr;
    for (what, addr, request, status, code) in [
        (
            "unknown path",
            ingress,
            "GET /nope HTTP/1.1\r\nHost: bus\r\n\r\n".to_string(),
            404,
            "not_found",
        ),
        (
            "unknown admin path",
            admin,
            "GET /nope HTTP/1.1\r\nHost: bus\r\n\r\n".to_string(),
            404,
            "not_found",
        ),
        (
            "wrong method",
            ingress,
            "GET /v1/messages HTTP/1.1\r\nHost: bus\r\n\r\n".to_string(),
            405,
            "method_not_allowed",
        ),
        (
            "wrong admin method",
            admin,
            "DELETE /v1/dlq HTTP/1.1\r\nHost: bus\r\nAuthorization: Bearer tok-ADMIN\r\n\r\n".to_string(),
            405,
            "method_not_allowed",
        ),
        (
            "bad admin query",
            admin,
            "GET /v1/dlq?adapter=a&adapter=b HTTP/1.1\r\nHost: bus\r\nAuthorization: Bearer tok-ADMIN\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        (
            "Content-Length not a number",
            ingress,
            post("Content-Length: abc\r\n"),
            400,
            "bad_request",
        ),
        (
            "negative Content-Length",
            ingress,
            post("Content-Length: -1\r\n"),
            400,
            "bad_request",
        ),
        (
            "two Content-Lengths",
            ingress,
            post("Content-Length: 2\r\nContent-Length: 3\r\n"),
            400,
            "bad_request",
        ),
        (
            "gzip Transfer-Encoding",
            ingress,
            post("Transfer-Encoding: gzip\r\n"),
            400,
            "bad_request",
        ),
        (
            "garbage request line",
            ingress,
            "GARBAGE\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        (
            "HTTP/2 preface",
            admin,
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        (
            "bad header name",
            ingress,
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        (
            "70 KiB header",
            ingress,
            big.clone(),
            431,
            "headers_too_large",
        ),
        ("150 headers", admin, many.clone(), 431, "headers_too_large"),
    ] {
        let mut raw = Raw::connect(addr).await;
        let _ = raw.send(request.as_bytes()).await;
        let answer = raw
            .answer(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        let v = answer.assert_error(status, code);
        assert_eq!(v["error"]["details"], serde_json::json!([]), "{what}");
        if status == 405 {
            assert!(answer.header("allow").is_some(), "{what}: Allow kept");
        }
    }
    bus.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_on_both_apis() {
    let rx = Receiver::start().await;
    let bus = bus_with(
        "bearer",
        "",
        "token_env = \"ADMIN\"",
        &webhook_route(&rx.url()),
    )
    .await;
    let client = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = client
            .post(bus.url("/v1/messages"))
            .header("authorization", format!("{scheme} tok-H40"))
            .header("content-type", "application/json")
            .body(envelope(Some(&new_id()), H40, &[STP], dossier("BEARER")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "ingress, {scheme}");
        let r = client
            .post(bus.admin("/v1/dlq/purge?adapter=stp"))
            .header("authorization", format!("{scheme} tok-ADMIN"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "admin, {scheme}");
    }
    let r = client
        .post(bus.admin("/v1/dlq/purge?adapter=stp"))
        .header("authorization", "Basic tok-ADMIN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthenticated");
    bus.stop().await;
}
