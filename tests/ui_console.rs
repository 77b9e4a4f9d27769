//! Issue 13, the operator console over plain HTTP (no browser): pages need a session, every POST needs the
//! session's CSRF token, failed logins are rate-limited, the bearer token still works for the API (and is not
//! a console login), and whatever agencies sent is escaped on every page — against the real RabbitMQ.

mod common;

use common::console::*;
use common::*;
use std::time::Duration;

fn body(url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [[routes]]\nid = \"to-stp\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"stp\"]\n\
         retry = {{ attempts = 0, backoff = [\"1s\"] }}\n"
    )
}

async fn start(test: &str, rx: &Receiver, admin_token: bool) -> TestBus {
    let edit = move |head: String| {
        let head = if admin_token {
            head.replace(
                "[admin]\nlisten = \"127.0.0.1:0\"",
                "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"ADMIN\"",
            )
        } else {
            head
        };
        head + &operators(&["an", "binh"])
    };
    TestBus::start_custom(
        test,
        AMQP,
        &edit,
        &body(&rx.url()),
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await
}

#[tokio::test]
async fn pages_need_a_session_and_the_bearer_token_is_for_the_api_only() {
    let rx = Receiver::scripted(&[400], 200).await;
    let bus = start("ui-session", &rx, true).await;
    let admin = bus.admin("");
    let http = client();
    for path in [
        "/ui/overview",
        "/ui/dlq",
        "/ui/dossiers",
        "/ui/on-time",
        "/ui/document",
        "/ui/dossier?code=x",
    ] {
        let r = http.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/login", "{path}");
        // The admin token is not a console login.
        let r = http
            .get(format!("{admin}{path}"))
            .bearer_auth("tok-ADMIN")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path} with the bearer token");
    }
    // A forged or expired session cookie is no session either.
    let r = http
        .get(format!("{admin}/ui/overview"))
        .header("cookie", "lt_session=0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // A POST without a session is refused, and nothing happens.
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("UI-S1")),
        )
        .await;
    assert_eq!(s, 202);
    let parked = bus.first_parked(Duration::from_secs(20)).await;
    let id = parked["id"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{admin}/ui/dlq/act"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("action", "purge"), ("id", &id), ("csrf", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // The session cookie: HttpOnly, SameSite=Strict, not Secure without TLS; the pages carry a CSP.
    let a = try_login(&admin, "an", PASSWORD).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = a.session_cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let console = Console::login(&admin, "an").await;
    let r = console
        .http
        .get(format!("{admin}/ui/overview"))
        .header("cookie", format!("lt_session={}", console.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    // The session cookie is not an API credential: the API's actions still want the bearer token...
    let r = http
        .post(format!("{admin}/v1/dlq/{id}/replay"))
        .header("cookie", format!("lt_session={}", console.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // ... which works as before.
    let r = http
        .get(format!("{admin}/v1/dlq"))
        .bearer_auth("tok-ADMIN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Logging out ends the session.
    let (_, page) = console.get("/ui/overview").await;
    let token = csrf_in(&page).unwrap();
    let (s, _) = console.post("/ui/logout", &[("csrf", &token)]).await;
    assert_eq!(s, 303);
    let (s, _) = console.get("/ui/overview").await;
    assert_eq!(s, 303, "logged out");
    bus.stop().await;
}

#[tokio::test]
async fn a_post_without_the_session_csrf_token_is_refused_and_does_nothing() {
    let rx = Receiver::scripted(&[400], 200).await;
    let bus = start("ui-csrf", &rx, false).await;
    let admin = bus.admin("");
    let (s, _) = bus
        .post(
            "H40",
            &envelope(Some(&new_id()), H40, &[STP], dossier("UI-C1")),
        )
        .await;
    assert_eq!(s, 202);
    let parked = bus.first_parked(Duration::from_secs(20)).await;
    let (id, from) = (
        parked["id"].as_str().unwrap(),
        parked["from"].as_str().unwrap(),
    );
    let an = Console::login(&admin, "an").await;
    let binh = Console::login(&admin, "binh").await;
    let (_, page) = binh.get("/ui/overview").await;
    let binh_token = csrf_in(&page).unwrap();
    let fields = |csrf: &'static str| {
        vec![
            ("action", "purge"),
            ("id", id),
            ("adapter", "stp"),
            ("from", from),
            ("csrf", csrf),
        ]
    };
    // No token, an empty one, a wrong one, another session's.
    for csrf in [
        None,
        Some(String::new()),
        Some("0".repeat(64)),
        Some(binh_token.clone()),
    ] {
        let mut f: Vec<(&str, &str)> = fields("")
            .into_iter()
            .filter(|(k, _)| *k != "csrf")
            .collect();
        if let Some(c) = &csrf {
            f.push(("csrf", c));
        }
        let (s, body) = an.post("/ui/dlq/act", &f).await;
        assert_eq!(s, 403, "csrf {csrf:?}: {body}");
        assert!(body.contains("id=\"refusal\""), "{body}");
    }
    assert_eq!(
        bus.admin_json("/v1/dlq")
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1,
        "still parked"
    );
    // The login form wants its own token too (its cookie and its field).
    let r = client()
        .post(format!("{admin}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("name", "an"),
            ("password", PASSWORD),
            ("csrf", "abc"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(set_cookie(&r, "lt_session").is_none());
    // With the right token the same purge works, and the audit log names the operator.
    let (_, page) = an.get("/ui/dlq").await;
    let token = csrf_in(&page).unwrap();
    let mut f: Vec<(&str, &str)> = fields("")
        .into_iter()
        .filter(|(k, _)| *k != "csrf")
        .collect();
    f.push(("csrf", &token));
    let (s, body) = an.post("/ui/dlq/act", &f).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("1/1"), "{body}");
    assert_eq!(
        bus.admin_json("/v1/dlq").await.unwrap(),
        serde_json::json!([])
    );
    let audit = bus.admin_json("/v1/audit").await.unwrap();
    assert_eq!(audit[0]["actor"], "an", "{audit}");
    assert_eq!(audit[0]["action"], "purge", "{audit}");
    bus.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address_and_per_name() {
    let rx = Receiver::start().await;
    let bus = start("ui-ratelimit", &rx, false).await;
    let admin = bus.admin("");
    for i in 0..5 {
        let a = try_login(&admin, "an", "wrong").await;
        assert_eq!(a.status, 401, "attempt {i}: {}", a.body);
        assert!(a.session.is_none());
        assert!(a.body.contains("id=\"login-error\""));
    }
    // The sixth is refused before the password is looked at: even the right one.
    let a = try_login(&admin, "an", PASSWORD).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.session.is_none());
    let wait: u64 = a.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // The address is held back for other names too.
    assert_eq!(try_login(&admin, "binh", PASSWORD).await.status, 429);
    assert_eq!(try_login(&admin, "nobody", "x").await.status, 429);
    bus.stop().await;
}

#[tokio::test]
async fn hostile_payload_text_is_escaped_on_every_page() {
    const XSS: &str = "<script>alert('xss')</script>\"><img src=x onerror=alert(1)>";
    let rx = Receiver::scripted(&[400], 200).await;
    let bus = start("ui-escape", &rx, false).await;
    let admin = bus.admin("");
    let mut d = dossier("UI-X1");
    d["TrichYeuHoSo"] = XSS.into();
    d["TenTTHC"] = XSS.into();
    let code = d["MaHoSo"].as_str().unwrap().to_owned();
    let id = format!("{}-<b>id</b>", new_id());
    let (s, a) = bus.post("H40", &envelope(Some(&id), H40, &[STP], d)).await;
    assert_eq!(s, 202, "{a}");
    bus.first_parked(Duration::from_secs(20)).await;
    let an = Console::login(&admin, "an").await;
    let q = |s: &str| lienthong_bus::ui::url(s);
    let pages = [
        "/ui/dlq".to_owned(),
        format!("/ui/dlq/show?id={}&adapter=stp&from={}", q(&id), q(H40)),
        format!(
            "/ui/dlq/confirm?action=replay&id={}&adapter=stp&from={}",
            q(&id),
            q(H40)
        ),
        format!("/ui/dossier?code={}", q(&code)),
        "/ui/dossiers".to_owned(),
        format!("/ui/dlq?from={}", q(XSS)),
        format!("/ui/document?id={}", q(XSS)),
        format!("/ui/dossier?code={}", q(XSS)),
    ];
    for p in &pages {
        let (s, html) = an.get(p).await;
        assert!(s == 200 || s == 404, "{p}: {s}");
        for raw in ["<script", "<img", "<b>id"] {
            assert!(
                !html.contains(raw),
                "{p} carries `{raw}` unescaped:\n{html}"
            );
        }
    }
    // It is shown, escaped, where it belongs.
    let (_, html) = an.get(&pages[1]).await;
    assert!(
        html.contains("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;id&lt;/b&gt;"), "{html}");
    let (_, html) = an.get(&pages[3]).await;
    assert!(html.contains("&lt;script&gt;"), "{html}");
    bus.stop().await;
}

#[test]
fn hash_password_prints_an_argon2_hash_of_the_password_on_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    for args in [
        &["hash-password"][..],
        &["hash-password", "--password-stdin"][..],
    ] {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"mat khau 1\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hash = String::from_utf8(out.stdout).unwrap();
        let hash = hash.trim();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(lienthong_bus::ui::password::verify("mat khau 1", hash));
        assert!(!lienthong_bus::ui::password::verify("mat khau 1\n", hash));
    }
    // Nothing on stdin: refused, nothing printed.
    let out = Command::new(bin())
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn an_edxml_document_is_shown_at_each_receiver() {
    use lienthong_qcvn102::edxml::{self, DocumentDescription, StatusDescription};
    let rx = Receiver::start().await;
    let out = tempfile::tempdir().unwrap();
    let body = format!(
        "\n[[adapters]]\nid = \"stp-folder\"\ntype = \"file-out\"\npath = \"{}\"\n\
         [[adapters]]\nid = \"h40-hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[routes]]\nid = \"docs\"\ntypes = [\"document.edxml\"]\nto = [\"{STP}\"]\ndeliver = [\"stp-folder\"]\n\
         [[routes]]\nid = \"status-back\"\ntypes = [\"document.status\"]\nto = [\"{H40}\"]\ndeliver = [\"h40-hook\"]\n",
        out.path().join("stp").display(),
        rx.url()
    );
    let edit = |head: String| head + &operators(&["an"]);
    let bus = TestBus::start_custom(
        "ui-document",
        AMQP,
        &edit,
        &body,
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await;
    let doc: DocumentDescription = serde_json::from_value(serde_json::json!({
        "from": {"organ_id": H40, "organ_name": "UBND tỉnh Nam Định"},
        "to": [{"organ_id": STP}],
        "code": {"number": "901", "notation": "UBND-VP"},
        "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
        "document_type": {"type": 1, "type_detail": 0, "type_name": "Công văn"},
        "subject": "V/v <b>thử</b> bảng điều khiển",
        "content": "Nội dung",
        "signer": {"competence": "TM. UBND", "position": "Chủ tịch", "full_name": "Nguyễn Văn A"},
        "priority": 0
    }))
    .unwrap();
    let post = |token: &'static str, xml: Vec<u8>| {
        let url = bus.url("/v1/messages");
        async move { post_raw(&url, Some(token), "application/xml", xml).await }
    };
    let (s, a) = post("H40", edxml::build(&doc, &[]).unwrap()).await;
    assert_eq!(s, 202, "{a}");
    let doc_id = format!("{H40},2026/11/27,901/UBND-VP");
    for (i, code) in ["03", "05"].into_iter().enumerate() {
        let st: StatusDescription = serde_json::from_value(serde_json::json!({
            "response_for": {"organ_id": H40, "code": "901/UBND-VP", "promulgation_date": "2026/11/27",
                             "document_id": doc_id},
            "from": {"organ_id": STP, "organ_name": "Sở Tư pháp"},
            "status_code": code,
            "timestamp": format!("2026-11-27T10:00:{i:02}"),
            "staff": {"department": "Văn thư", "staff": "Lê Văn C"}
        }))
        .unwrap();
        let (s, a) = post("STP", edxml::build_status(&st).unwrap()).await;
        assert_eq!(s, 202, "{a}");
    }
    let an = Console::login(&bus.admin(""), "an").await;
    let (s, html) = an
        .get(&format!(
            "/ui/document?id={}",
            lienthong_bus::ui::url(&doc_id)
        ))
        .await;
    assert_eq!(s, 200, "{html}");
    let receivers = &html[html.find("id=\"receivers\"").expect("the receivers table")..];
    assert!(
        receivers.contains("Sở Tư pháp (000.00.12.H40)"),
        "{receivers}"
    );
    assert!(
        receivers.contains("<td>05</td>"),
        "last status 05: {receivers}"
    );
    assert!(
        html.contains("docs"),
        "the route it was accepted on: {html}"
    );
    // An unknown document: the page says so, as a page.
    let (s, html) = an.get("/ui/document?id=nothing").await;
    assert_eq!(s, 404);
    assert!(html.contains("id=\"page-error\""), "{html}");
    bus.stop().await;
}
