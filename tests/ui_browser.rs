//! Issue 13, the operator console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) over WebDriver, against a bus process of its own per test on the real RabbitMQ. Each
//! test saves screenshots of its pages under `target/ui-screenshots/`.
//!
//! Without the browser these tests skip, except under `CI` or `LT_REQUIRE_BROWSER`, where they fail
//! (see `common::browser`).

mod common;

use common::browser::Browser;
use common::console::{PASSWORD, operators};
use common::process::{BusProcess, write_config};
use common::*;
use serde_json::json;
use std::time::Duration;

/// A bus process under a namespace of its own, with operators `an` and `binh`, delivering dossiers to one
/// webhook (`stp`, route `to-stp`, no retry: a refusal parks the message at once).
struct Bus {
    process: BusProcess,
    ns: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    async fn start(test: &str, rx: &Receiver) -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let ns = namespace(test);
        let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
        let body = format!(
            "{}\n[[adapters]]\nid = \"stp\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\
             [[routes]]\nid = \"to-stp\"\ntypes = [\"dossier.submitted\", \"dossier.status-changed\"]\n\
             deliver = [\"stp\"]\nretry = {{ attempts = 0, backoff = [\"1s\"] }}\n",
            operators(&["an", "binh"]),
            rx.url()
        );
        let (file, http, admin) = write_config(dir.path(), &ns, &state, &body);
        let process = BusProcess::spawn(&file, http, admin).await;
        Bus {
            process,
            ns,
            _dir: dir,
        }
    }

    fn admin(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.admin)
    }

    async fn post(&self, token: &str, env: &serde_json::Value) -> (u16, serde_json::Value) {
        post_raw(
            &self.process.url(),
            Some(token),
            "application/json",
            env.to_string().into_bytes(),
        )
        .await
    }

    async fn admin_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.admin()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Stops the process and removes its queues.
    async fn stop(mut self) {
        self.process.terminate(Duration::from_secs(20)).await;
        let names = lienthong_bus::broker::topology::Names::new(&self.ns);
        let tiers = [Duration::from_secs(1)].into_iter().collect();
        let topo = lienthong_bus::broker::topology::build(&names, &["stp".to_owned()], &tiers, 1);
        delete_topology(&topo).await;
    }
}

/// A `dossier.status-changed` envelope from `from` about dossier `code`.
fn progress(from: &str, payload: serde_json::Value) -> serde_json::Value {
    let mut e = envelope(Some(&new_id()), from, &[H40], payload);
    e["type"] = json!("dossier.status-changed");
    e
}

fn number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[tokio::test]
async fn log_in_send_messages_and_see_the_overview_counters_move() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let rx = Receiver::start().await;
    let bus = Bus::start("ui-overview", &rx).await;
    let admin = bus.admin();
    // Not logged in: the console sends the browser to its log-in page.
    browser.goto(&format!("{admin}/ui/overview")).await;
    browser.wait("#login").await;
    assert!(browser.url().await.ends_with("/ui/login"));
    browser.screenshot("login").await;
    // A wrong password is refused on the page.
    browser.type_into("#name", "an").await;
    browser.type_into("#password", "sai").await;
    browser.click("#login-submit").await;
    let err = browser.text("#login-error").await;
    assert!(err.contains("Sai tên đăng nhập hoặc mật khẩu"), "{err}");
    browser.login(&admin, "an", PASSWORD).await;
    assert_eq!(browser.text("#operator").await, "an");
    assert_eq!(browser.text("#broker-state").await, "đã kết nối");
    assert_eq!(number(&browser.text("#adapter-stp-delivered").await), 0);

    for i in 0..3 {
        let (s, a) = bus
            .post(
                "H40",
                &envelope(Some(&new_id()), H40, &[STP], dossier(&format!("ov-{i}"))),
            )
            .await;
        assert_eq!(s, 202, "{a}");
    }
    rx.wait_calls(3, Duration::from_secs(20)).await;
    browser
        .reload_until("#adapter-stp-delivered", "3 delivered", |t| number(t) == 3)
        .await;
    assert_eq!(number(&browser.text("#route-to-stp-accepted").await), 3);
    assert_eq!(number(&browser.text("#route-to-stp-delivered").await), 3);
    assert_eq!(number(&browser.text("#accepted-total").await), 3);
    // A refused message shows among the errors by code.
    let (s, _) = bus.post("H40", &json!({"type": "dossier.submitted"})).await;
    assert_eq!(s, 400);
    browser
        .reload_until("#refused-invalid_envelope", "the refusal counted", |t| {
            number(t) == 1
        })
        .await;
    browser.screenshot("overview").await;
    // English on request, remembered.
    browser.goto(&format!("{admin}/ui/overview?lang=en")).await;
    assert_eq!(browser.text("h1").await, "Overview");
    browser.goto(&format!("{admin}/ui/dlq")).await;
    assert_eq!(browser.text("h1").await, "Dead letters");
    browser.screenshot("overview-dlq-empty-en").await;
    browser.close().await;
    bus.stop().await;
}

#[tokio::test]
async fn replay_a_dead_lettered_message_from_the_dlq_page_and_see_it_delivered() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // The receiver refuses the first delivery (a permanent error: parked at once), then takes everything.
    let rx = Receiver::scripted(&[422], 200).await;
    let bus = Bus::start("ui-replay", &rx).await;
    let admin = bus.admin();
    let id = new_id();
    let (s, a) = bus
        .post(
            "H40",
            &envelope(Some(&id), H40, &[STP], dossier("replay-1")),
        )
        .await;
    assert_eq!(s, 202, "{a}");
    wait_for("the message parked", Duration::from_secs(20), || async {
        let v = bus.admin_json("/v1/dlq").await;
        (v.as_array()?.len() == 1).then_some(())
    })
    .await;
    browser.login(&admin, "binh", PASSWORD).await;
    browser.click("header nav a[href='/ui/dlq']").await;
    assert_eq!(number(&browser.text("#dlq-count").await), 1);
    browser.screenshot("dlq-list").await;
    browser.click("a.dlq-id").await;
    assert_eq!(browser.text("#dlq-show-id").await, id);
    assert!(browser.text("#dlq-last-error").await.contains("422"));
    assert!(
        browser
            .text("#dlq-payload")
            .await
            .contains("Đăng ký khai sinh")
    );
    browser.screenshot("dlq-show").await;
    // Replay asks first; nothing happens until it is confirmed.
    browser.click("#replay-link").await;
    let q = browser.text("#confirm-question").await;
    assert!(q.contains("Gửi lại"), "{q}");
    assert_eq!(rx.calls().len(), 1);
    browser.screenshot("dlq-confirm").await;
    browser.click("#confirm-submit").await;
    let result = browser.text("#act-result").await;
    assert!(result.starts_with("1/1"), "{result}");
    // Delivered: the receiver got it again (same id), the parking lot is empty, the overview counts it.
    let calls = rx.wait_calls(2, Duration::from_secs(20)).await;
    assert_eq!(
        calls[1].header("idempotency-key").as_deref(),
        Some(id.as_str())
    );
    browser.screenshot("dlq-replayed").await;
    browser.goto(&format!("{admin}/ui/dlq")).await;
    assert_eq!(number(&browser.text("#dlq-count").await), 0);
    browser.goto(&format!("{admin}/ui/overview")).await;
    browser
        .reload_until(
            "#adapter-stp-delivered",
            "the replayed message delivered",
            |t| number(t) == 1,
        )
        .await;
    assert_eq!(number(&browser.text("#adapter-stp-dead_lettered").await), 1);
    // The audit log names the operator who replayed it.
    let audit = bus.admin_json("/v1/audit").await;
    assert_eq!(audit[0]["actor"], "binh", "{audit}");
    assert_eq!(audit[0]["action"], "replay", "{audit}");
    browser.close().await;
    bus.stop().await;
}

#[tokio::test]
async fn look_up_a_dossier_and_see_its_steps() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let rx = Receiver::start().await;
    let bus = Bus::start("ui-dossier", &rx).await;
    let admin = bus.admin();
    // Received by the desk with appointment 30 November; Sở Tư pháp processes it, asks for more papers
    // (a new appointment date, 10 December, and a step deadline already past), processes again, finishes.
    let d = dossier("ui-dossier-1");
    let code = d["MaHoSo"].as_str().unwrap().to_owned();
    let (s, a) = bus
        .post("H40", &envelope(Some(&new_id()), H40, &[STP], d))
        .await;
    assert_eq!(s, 202, "{a}");
    for p in [
        json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261127140000", "NoiDungXuLy": "Đang thẩm định"}),
        json!({"MaHoSo": code, "TrangThai": 5, "ThoiDiemXuLy": "20261128090000", "NgayHenTra": "20261210170000",
               "NgayKetThucTheoQuyDinh": "20261125170000", "NoiDungXuLy": "Chờ bổ sung giấy tờ"}),
        json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261202090000", "NoiDungXuLy": "Đã đủ giấy tờ"}),
        json!({"MaHoSo": code, "TrangThai": 9, "ThoiDiemXuLy": "20261205100000", "NoiDungXuLy": "Đã xử lý xong"}),
    ] {
        let (s, a) = bus.post("STP", &progress(STP, p)).await;
        assert_eq!(s, 202, "{a}");
    }
    browser.login(&admin, "an", PASSWORD).await;
    browser.click("header nav a[href='/ui/dossiers']").await;
    // The search lists it; the look-up opens it.
    let total = browser.text("#search-total").await;
    assert_eq!(number(&total), 1, "{total}");
    browser.screenshot("dossier-search").await;
    browser.type_into("#lookup-code", &code).await;
    browser.click("#lookup-submit").await;
    assert_eq!(browser.text("#dossier-code").await, code);
    assert_eq!(
        browser.text("#dossier-state").await,
        "Đã giải quyết đúng hạn"
    );
    // Five steps on the timeline, in order, and the same in the table.
    browser.wait("svg#timeline").await;
    let src = browser.source().await;
    assert_eq!(src.matches("class=\"step\"").count(), 5, "five steps drawn");
    let steps = browser.text("#steps").await;
    let order: Vec<usize> = [
        "Đã tiếp nhận",
        "Đang xử lý",
        "Yêu cầu bổ sung giấy tờ",
        "Đã xử lý xong",
    ]
    .iter()
    .map(|s| {
        steps
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing in {steps}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{steps}");
    assert!(steps.contains("Sở Tư pháp"), "{steps}");
    // The appointment date's history: 30 November, then 10 December.
    let history = browser.text("#due-history").await;
    assert!(
        history.contains("30/11/2026 17:00") && history.contains("10/12/2026 17:00"),
        "{history}"
    );
    browser.screenshot("dossier").await;
    browser.close().await;
    bus.stop().await;
}

#[tokio::test]
async fn open_the_on_time_chart() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let rx = Receiver::start().await;
    let bus = Bus::start("ui-on-time", &rx).await;
    let admin = bus.admin();
    // Received 27 November, appointment 30 November 17:00. Sở Tư pháp: three on time, one late. Sở Y tế:
    // one late, one withdrawn (counted as neither).
    let plan = [
        ("ot-1", STP, "STP", 9, "20261129100000"),
        ("ot-2", STP, "STP", 9, "20261130160000"),
        ("ot-3", STP, "STP", 10, "20261128100000"),
        ("ot-4", STP, "STP", 9, "20261202100000"),
        ("ot-5", SYT, "SYT", 9, "20261203100000"),
        ("ot-6", SYT, "SYT", 7, "20261128100000"),
    ];
    for (label, handler, token, status, at) in plan {
        let d = dossier(label);
        let code = d["MaHoSo"].as_str().unwrap().to_owned();
        let (s, a) = bus
            .post("H40", &envelope(Some(&new_id()), H40, &[handler], d))
            .await;
        assert_eq!(s, 202, "{a}");
        let (s, a) = bus
            .post(token, &progress(handler, json!({"MaHoSo": code, "TrangThai": status, "ThoiDiemXuLy": at, "NoiDungXuLy": "Cập nhật"})))
            .await;
        assert_eq!(s, 202, "{a}");
    }
    browser.login(&admin, "an", PASSWORD).await;
    browser.click("header nav a[href='/ui/on-time']").await;
    browser.wait("svg#on-time-chart").await;
    // The period: November and December 2026 (finished ones count in the period they finished in).
    browser
        .goto(&format!("{admin}/ui/on-time?from=2026-11-01&to=2026-12-31"))
        .await;
    browser.screenshot("on-time").await;
    let chart = browser.source().await;
    let table = browser.text("#on-time").await;
    assert!(chart.contains("75.00% (3/4)"), "Sở Tư pháp's bar: {table}");
    assert!(chart.contains("0.00% (0/1)"), "Sở Y tế's bar: {table}");
    assert!(
        chart.contains("60.00% (3/5)"),
        "the province's bar: {table}"
    );
    assert!(
        table.contains("Sở Tư pháp") && table.contains("75.00%"),
        "{table}"
    );
    // Another period has nothing.
    browser
        .goto(&format!("{admin}/ui/on-time?from=2026-10-01&to=2026-10-31"))
        .await;
    assert!(!browser.source().await.contains("75.00%"));
    browser.close().await;
    bus.stop().await;
}
