//! Issue 13, against the running bus on the real RabbitMQ: citizens look a dossier up on the public listener
//! and see nothing personal, the 31st lookup in a minute is refused, and operators search dossiers and read
//! on-time rates on the admin API.

mod common;

use common::*;
use serde_json::json;

fn webhook(id: &str, url: &str) -> String {
    format!(
        "\n[[adapters]]\nid = \"{id}\"\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    )
}

fn route_all(deliver: &str) -> String {
    format!(
        "\n[[routes]]\nid = \"all\"\ntypes = [\"dossier.submitted\", \"dossier.status-changed\"]\ndeliver = [\"{deliver}\"]\n"
    )
}

/// A `dossier.status-changed` envelope from `from`.
fn progress(from: &str, payload: serde_json::Value) -> serde_json::Value {
    let mut e = envelope(Some(&new_id()), from, &[H40], payload);
    e["type"] = json!("dossier.status-changed");
    e
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn a_citizen_looks_a_dossier_up_and_sees_nothing_personal() {
    let rx = Receiver::start().await;
    let bus = TestBus::start_with_public(
        "public-view",
        "",
        &(webhook("stp", &rx.url()) + &route_all("stp")),
    )
    .await;
    let personal = [
        "Nguyễn Văn An",
        "001088012345",
        "Số 12 đường Trần Hưng Đạo, phường Vị Xuyên",
        "0912345678",
        "an.nguyen@example.vn",
        "Trần Thị Bình",
    ];
    let mut submitted = dossier("public-1");
    let code = submitted["MaHoSo"].as_str().unwrap().to_owned();
    submitted["ChuHoSo"] = json!(personal[0]);
    submitted["SoGiayToChuHoSo"] = json!(personal[1]);
    submitted["DinhDanhCHS"] = json!([{"LoaiDinhDanh": 1, "SoDinhDanh": personal[1]}]);
    submitted["DiaChiThuongTru"] = json!(personal[2]);
    submitted["SoDienThoai"] = json!(personal[3]);
    submitted["Email"] = json!(personal[4]);
    submitted["TrichYeuHoSo"] = json!(format!("Đăng ký khai sinh cho con của {}", personal[0]));
    let (s, a) = bus
        .post("H40", &envelope(Some(&new_id()), H40, &[STP], submitted))
        .await;
    assert_eq!(s, 202, "{a}");
    let (s, a) = bus
        .post(
            "STP",
            &progress(
                STP,
                json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261127100000",
                       "NguoiXuLy": personal[5],
                       "NoiDungXuLy": format!("Đã gọi {} theo số {}", personal[0], personal[3])}),
            ),
        )
        .await;
    assert_eq!(s, 202, "{a}");

    let (status, headers, body) = get(&bus.public(&format!("/public/dossiers/{code}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    for p in personal {
        assert!(!body.contains(p), "{p} leaked into {body}");
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["procedure"], "Đăng ký khai sinh");
    assert_eq!(v["status"], 4);
    assert_eq!(v["status_name"], "Đang xử lý");
    assert_eq!(v["appointment_date"], "20261130170000");
    assert!(v["state"].is_string());
    assert_eq!(
        v["steps"],
        json!([
            {"status": 2, "status_name": "Đã tiếp nhận", "agency": "UBND tỉnh Nam Định",
             "date": "20261127090000"},
            {"status": 4, "status_name": "Đang xử lý", "agency": "Sở Tư pháp", "date": "20261127100000"},
        ])
    );
    // Only the allowed fields, whatever the payload carried.
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "appointment_date",
            "code",
            "procedure",
            "state",
            "state_name",
            "status",
            "status_name",
            "steps"
        ]
    );

    // The page shows the same, server-rendered.
    let (status, headers, page) = get(&bus.public(&format!("/public/?code={code}"))).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(
        page.contains("Sở Tư pháp") && page.contains("17:00 ngày 30/11/2026"),
        "{page}"
    );
    for p in personal {
        assert!(!page.contains(p), "{p} leaked into the page");
    }
    let (status, _, form) = get(&bus.public("/public/")).await;
    assert_eq!(status, 200);
    assert!(form.contains("<form") && form.contains("Tra cứu"), "{form}");

    // An unknown code and a malformed one get the very same answer.
    let unknown = get(&bus.public("/public/dossiers/000.00.12.H40-261127-99999")).await;
    let malformed = get(&bus.public("/public/dossiers/not-a-code")).await;
    assert_eq!(unknown.0, 404);
    assert_eq!((unknown.0, &unknown.2), (malformed.0, &malformed.2));
    // Not even text is malformed too: the same 404, not a 400 that tells a prober about the format.
    let not_text = get(&bus.public("/public/dossiers/%FF")).await;
    assert_eq!((not_text.0, &not_text.2), (malformed.0, &malformed.2));
    // The page's "not found" is the page (Vietnamese, with its form), for any code, never a JSON refusal.
    for q in ["000.00.12.H40-261127-99999", "not-a-code", "%FF"] {
        let (status, headers, page) = get(&bus.public(&format!("/public/?code={q}"))).await;
        assert_eq!(status, 404, "{q}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{q}"
        );
        assert!(
            page.contains("<form") && page.contains("Không tìm thấy"),
            "{q}: {page}"
        );
    }
    // The public listener serves nothing of the admin API.
    for path in [
        format!("/v1/dossiers/{code}"),
        "/v1/dlq".into(),
        "/metrics".into(),
    ] {
        assert_eq!(get(&bus.public(&path)).await.0, 404, "{path}");
    }
    bus.stop().await;
}

#[tokio::test]
async fn the_31st_lookup_in_a_minute_gets_429() {
    let rx = Receiver::start().await;
    let bus = TestBus::start_with_public(
        "public-rate",
        "",
        &(webhook("stp", &rx.url()) + &route_all("stp")),
    )
    .await;
    // `[public] rate` defaults to 30 a minute; lookups that find nothing count too.
    for i in 1..=30 {
        let (status, _, body) =
            get(&bus.public(&format!("/public/dossiers/000.00.12.H40-261127-{i:05}"))).await;
        assert_eq!(status, 404, "lookup {i}: {body}");
    }
    let (status, headers, body) =
        get(&bus.public("/public/dossiers/000.00.12.H40-261127-00031")).await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (55..=61).contains(&wait),
        "the first lookup leaves the minute's window about a minute after it was made: {wait}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    // The page's lookup is the same lookup; the empty form is not one.
    let (status, headers, page) =
        get(&bus.public("/public/?code=000.00.12.H40-261127-00032")).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert!(
        page.contains("<form") && page.contains("Quá nhiều lượt tra cứu"),
        "{page}"
    );
    assert_eq!(get(&bus.public("/public/")).await.0, 200);
    bus.stop().await;
}

#[tokio::test]
async fn operators_search_dossiers_and_read_on_time_rates() {
    let rx = Receiver::start().await;
    let bus = TestBus::start("search", &(webhook("stp", &rx.url()) + &route_all("stp"))).await;
    // Three dossiers received by the desk (H40) on 27 November, appointment 30 November 17:00: one handled
    // by STP and finished on time, one by STP finished late, one by SYT still open.
    let mut codes = Vec::new();
    for (label, handler, token, finish) in [
        ("search-a", STP, "STP", Some("20261129100000")),
        ("search-b", STP, "STP", Some("20261201100000")),
        ("search-c", SYT, "SYT", None),
    ] {
        let d = dossier(label);
        let code = d["MaHoSo"].as_str().unwrap().to_owned();
        let (s, a) = bus
            .post("H40", &envelope(Some(&new_id()), H40, &[handler], d))
            .await;
        assert_eq!(s, 202, "{a}");
        let (s, a) = bus
            .post(
                token,
                &progress(
                    handler,
                    json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261127140000",
                           "NoiDungXuLy": "Đang thẩm định"}),
                ),
            )
            .await;
        assert_eq!(s, 202, "{a}");
        if let Some(at) = finish {
            let (s, a) = bus
                .post(
                    token,
                    &progress(
                        handler,
                        json!({"MaHoSo": code, "TrangThai": 9, "ThoiDiemXuLy": at,
                               "NoiDungXuLy": "Đã xử lý xong"}),
                    ),
                )
                .await;
            assert_eq!(s, 202, "{a}");
        }
        codes.push(code);
    }

    let v = bus
        .admin_json(&format!(
            "/v1/dossiers?agency={STP}&received_from=2026-11-27&received_to=20261127"
        ))
        .await
        .unwrap();
    assert_eq!(v["total"], 2, "{v}");
    let first = &v["dossiers"][0];
    for key in [
        "code",
        "procedure",
        "receiving_agency",
        "status",
        "due",
        "state",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(first["receiving_agency"], H40);
    assert_eq!(first["agency"], STP);
    assert_eq!(first["procedure"], "Đăng ký khai sinh");
    assert_eq!(first["due"], "20261130170000");
    let late = bus
        .admin_json(&format!("/v1/dossiers?state=finished_late&agency={STP}"))
        .await
        .unwrap();
    assert_eq!(late["total"], 1);
    assert_eq!(late["dossiers"][0]["code"], codes[1].as_str());
    // Any of the agency's codes finds the same dossiers.
    let by_tax_code = bus
        .admin_json(&format!(
            "/v1/dossiers?state=finished_late&agency={STP_TAX_CODE}"
        ))
        .await
        .unwrap();
    assert_eq!(by_tax_code["dossiers"], late["dossiers"]);
    let bad = reqwest::get(bus.admin("/v1/dossiers?state=late"))
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let bad: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["code"], "invalid_query");
    assert_eq!(bad["error"]["details"][0]["path"], "state");

    let stats = bus
        .admin_json("/v1/stats/on-time?from=2026-11-01&to=2026-12-31")
        .await
        .unwrap();
    let row = |code: &str| {
        stats["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["agency"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {code}: {stats}"))
    };
    let stp = row(STP);
    assert_eq!(stp["name"], "Sở Tư pháp");
    assert_eq!(
        (
            &stp["received"],
            &stp["finished"],
            &stp["finished_on_time"],
            &stp["finished_late"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(1))
    );
    assert_eq!(stp["on_time_rate"], 50.0);
    assert_eq!(row(SYT)["received"], 1);
    assert_eq!(
        row(H40)["received"],
        0,
        "attributed to the handling agency, not the desk"
    );
    assert_eq!(stats["total"]["received"], 3);
    assert_eq!(stats["total"]["name"], "Toàn tỉnh");

    let csv = reqwest::get(bus.admin("/v1/stats/on-time?from=2026-11-01&to=2026-12-31&format=csv"))
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = csv.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte order mark");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "agency,name,received,finished,finished_on_time,finished_late,open_overdue,on_time_rate"
    );
    assert!(
        lines.contains(&format!("{STP},Sở Tư pháp,2,2,1,1,0,50.00").as_str()),
        "{text}"
    );
    assert!(
        lines.last().unwrap().starts_with(",Toàn tỉnh,3,2,1,1,"),
        "{text}"
    );
    bus.stop().await;
}

#[tokio::test]
async fn a_public_listener_that_cannot_bind_stops_the_start_naming_its_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace("public-bind");
    let state = format!("sqlite://{}/state.db?mode=rwc", dir.path().display());
    let text = format!(
        "{}\n[public]\nlisten = \"{addr}\"\n{}{}",
        head(&ns, "memory://", &state),
        webhook("stp", "http://127.0.0.1:9/"),
        route_all("stp")
    );
    let file = dir.path().join("bus.toml");
    std::fs::write(&file, text).unwrap();
    let config = lienthong_bus::config::Config::load(&file).unwrap();
    let err = match lienthong_bus::runtime::start(
        config,
        std::sync::Arc::new(lienthong_adapters::Factory),
        std::sync::Arc::new(lienthong_domain::Province),
        std::sync::Arc::new(env),
    )
    .await
    {
        Ok(_) => panic!("started on a taken address"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("public.listen") && err.contains(&addr.to_string()),
        "{err}"
    );
}
