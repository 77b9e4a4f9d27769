//! Issue 15, the seed's remaining message kinds: citizens' feedback and petitions (`feedback.submitted`,
//! `feedback.answered`) and the satisfaction rating of a handled dossier (`rating.submitted`). Their schemas
//! accept what they document and refuse what they rule out, each problem at its pointer; and routed like the
//! example config routes them — to the responsible department, the answer back to the system that took the
//! feedback in — they are delivered over the real RabbitMQ with the payload unchanged.

mod common;

use common::*;
use lienthong_bus::schema::SchemaRegistry;
use serde_json::{Value, json};
use std::time::Duration;

fn submitted() -> Value {
    json!({
        "MaPhanAnh": "PAKN-000.00.00.H40-261127-00012",
        "LoaiPhanAnh": "phan-anh",
        "TieuDe": "Chậm trả kết quả cấp phiếu lý lịch tư pháp",
        "NoiDung": "Tôi nộp hồ sơ ngày 10/11, hẹn trả 20/11 nhưng đến nay chưa nhận được kết quả.",
        "NgayGui": "20261127081500",
        "NgayTiepNhan": "20261127083000",
        "HanTraLoi": "20261211170000",
        "NguoiGui": {"HoTen": "Nguyễn Thị Lan", "SoDienThoai": "0912 345 678", "Email": "lan.nt@example.vn"},
        "KenhTiepNhan": "cong-dich-vu-cong",
        "LinhVuc": "Tư pháp",
        "MaHoSo": "000.00.12.H40-261110-00042",
        "DonViXuLy": STP,
        "CongKhai": 1,
        "TepDinhKem": ["https://dichvucong.namdinh.gov.vn/pakn/12/giay-hen.pdf"]
    })
}

fn answered() -> Value {
    json!({
        "MaPhanAnh": "PAKN-000.00.00.H40-261127-00012",
        "DonViTraLoi": STP,
        "NgayTiepNhan": "20261127090000",
        "NgayTraLoi": "20261202150000",
        "NoiDungTraLoi": "Hồ sơ chậm do chờ xác minh; kết quả đã trả ngày 02/12. Sở xin lỗi bà vì sự chậm trễ.",
        "KetQua": "da-tra-loi",
        "NguoiTraLoi": "Trần Văn Hùng",
        "CongKhai": 1
    })
}

fn rating() -> Value {
    json!({
        "MaHoSo": "000.00.12.H40-261110-00042",
        "MaTTHC": "2.000488",
        "DonViXuLy": STP,
        "NgayDanhGia": "20261202160000",
        "MucDoHaiLong": 2,
        "TieuChi": [
            {"TenTieuChi": "Thời gian giải quyết", "Diem": 1},
            {"MaTieuChi": "TD", "TenTieuChi": "Thái độ cán bộ", "Diem": 4}
        ],
        "YKien": "Trả kết quả trễ hẹn.",
        "KenhDanhGia": "ung-dung"
    })
}

fn registry() -> SchemaRegistry {
    SchemaRegistry::load(&repo().join("schemas")).unwrap_or_else(|p| panic!("{p:#?}"))
}

fn problems(kind: &str, payload: &Value) -> Vec<String> {
    match registry().validate(kind, 1, payload) {
        Ok(()) => Vec::new(),
        Err(details) => details.into_iter().map(|d| d.path).collect(),
    }
}

#[test]
fn the_schemas_take_what_they_document_and_point_at_what_they_refuse() {
    for (kind, good) in [
        ("feedback.submitted", submitted()),
        ("feedback.answered", answered()),
        ("rating.submitted", rating()),
    ] {
        assert_eq!(problems(kind, &good), Vec::<String>::new(), "{kind}");
        // Fields the schema does not list pass through.
        let mut more = good.clone();
        more["TruongRieng"] = json!("x");
        assert_eq!(problems(kind, &more), Vec::<String>::new(), "{kind}");
    }
    // Only HoTen is required of the sender; a petition is the other kind.
    let mut minimal = submitted();
    minimal["NguoiGui"] = json!({"HoTen": "Ẩn danh"});
    minimal["LoaiPhanAnh"] = json!("kien-nghi");
    assert_eq!(
        problems("feedback.submitted", &minimal),
        Vec::<String>::new()
    );

    let cases: [(&str, Value, &[&str]); 7] = [
        (
            "feedback.submitted",
            {
                let mut v = submitted();
                v["LoaiPhanAnh"] = json!("khieu-nai");
                v["NgayGui"] = json!("20261131081500");
                v.as_object_mut().unwrap().remove("NoiDung");
                v
            },
            &[
                "/payload/LoaiPhanAnh",
                "/payload/NgayGui",
                "/payload/NoiDung",
            ],
        ),
        (
            "feedback.submitted",
            {
                let mut v = submitted();
                v["NguoiGui"] = json!({"Email": "không phải email"});
                v["TepDinhKem"] = json!(["giay-hen.pdf"]);
                v
            },
            &[
                "/payload/NguoiGui/Email",
                "/payload/NguoiGui/HoTen",
                "/payload/TepDinhKem/0",
            ],
        ),
        (
            "feedback.submitted",
            {
                let mut v = submitted();
                v["MaPhanAnh"] = json!("PAKN 12");
                v
            },
            &["/payload/MaPhanAnh"],
        ),
        (
            "feedback.answered",
            {
                let mut v = answered();
                v["KetQua"] = json!("chuyen-co-quan-khac");
                v
            },
            // A transfer must say to whom.
            &["/payload/ChuyenDen"],
        ),
        (
            "feedback.answered",
            {
                let mut v = answered();
                v["DonViTraLoi"] = json!("Sở Tư pháp");
                v["NoiDungTraLoi"] = json!("");
                v
            },
            &["/payload/DonViTraLoi", "/payload/NoiDungTraLoi"],
        ),
        (
            "rating.submitted",
            {
                let mut v = rating();
                v["MucDoHaiLong"] = json!(6);
                v["TieuChi"][0]["Diem"] = json!(0);
                v
            },
            &["/payload/MucDoHaiLong", "/payload/TieuChi/0/Diem"],
        ),
        (
            "rating.submitted",
            {
                let mut v = rating();
                v["MucDoHaiLong"] = json!("4");
                v["MaHoSo"] = json!("HS-42");
                v
            },
            &["/payload/MaHoSo", "/payload/MucDoHaiLong"],
        ),
    ];
    for (kind, payload, want) in cases {
        assert_eq!(problems(kind, &payload), want, "{kind}: {payload}");
    }
    // The transfer with its target is fine.
    let mut transferred = answered();
    transferred["KetQua"] = json!("chuyen-co-quan-khac");
    transferred["ChuyenDen"] = json!("H37.02.02");
    assert_eq!(
        problems("feedback.answered", &transferred),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn feedback_goes_to_the_department_and_the_answer_comes_back() {
    let stp = Receiver::start().await;
    let portal = Receiver::start().await;
    // As config/example.toml routes them: to the responsible department, the answer back to the portal.
    let body = format!(
        "\n[[adapters]]\nid = \"stp-inbox\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         \n[[adapters]]\nid = \"h40-pakn\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         \n[[routes]]\nid = \"feedback-to-stp\"\ntypes = [\"feedback.submitted\", \"rating.submitted\"]\n\
         to = [\"{STP}\"]\ndeliver = [\"stp-inbox\"]\n\
         \n[[routes]]\nid = \"feedback-answers-to-h40\"\ntypes = [\"feedback.answered\"]\nto = [\"{H40}\"]\n\
         deliver = [\"h40-pakn\"]\n",
        stp.url(),
        portal.url()
    );
    let bus = TestBus::start("feedback", &body).await;
    let sent = [
        (
            "H40",
            envelope(None, H40, &[STP], submitted()),
            "feedback.submitted",
            "feedback-to-stp",
        ),
        (
            "H40",
            // Addressed by the department's tax code: still the department's rating.
            envelope(None, H40, &[STP_TAX_CODE], rating()),
            "rating.submitted",
            "feedback-to-stp",
        ),
        (
            "STP",
            envelope(None, STP, &[H40], answered()),
            "feedback.answered",
            "feedback-answers-to-h40",
        ),
    ];
    for (token, env, kind, route) in &sent {
        let mut env = env.clone();
        env["type"] = json!(kind);
        let (s, a) = bus.post(token, &env).await;
        assert_eq!(s, 202, "{kind}: {a}");
        assert_eq!(a["routes"], json!([route]), "{kind}: {a}");
    }
    let at_stp = stp.wait_calls(2, Duration::from_secs(30)).await;
    let at_portal = portal.wait_calls(1, Duration::from_secs(30)).await;
    let payload_of = |calls: &[Call], kind: &str| -> Value {
        calls
            .iter()
            .map(Call::json)
            .find(|v| v["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))["payload"]
            .clone()
    };
    assert_eq!(payload_of(&at_stp, "feedback.submitted"), submitted());
    assert_eq!(payload_of(&at_stp, "rating.submitted"), rating());
    assert_eq!(payload_of(&at_portal, "feedback.answered"), answered());

    // The department's answer time and rating, beside its on-time rate. Counted when accepted (the 202 comes
    // after the rows are committed).
    let stats = bus
        .admin_json(&format!("/v1/stats/on-time?agency={STP}"))
        .await
        .expect("stats");
    let row = &stats["agencies"][0];
    assert_eq!(row["agency"], STP, "{stats}");
    assert_eq!(row["feedback_received"], 1, "{stats}");
    assert_eq!(row["feedback_answered"], 1, "{stats}");
    // Received 27 Nov 08:30, answered 2 Dec 15:00: 5 days 6½ hours.
    assert_eq!(row["answer_hours_avg"], json!(126.5), "{stats}");
    assert_eq!(row["ratings"], 1, "{stats}");
    assert_eq!(row["rating_avg"], json!(2.0), "{stats}");
    assert_eq!(stats["total"]["rating_avg"], json!(2.0), "{stats}");
    // Every row is an agency by its configured code: none for the code the rating was addressed by, and
    // asking by that code answers for the agency.
    let all = bus.admin_json("/v1/stats/on-time").await.expect("stats");
    assert!(
        all["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["agency"] != STP_TAX_CODE),
        "{all}"
    );
    let by_tax_code = bus
        .admin_json(&format!("/v1/stats/on-time?agency={STP_TAX_CODE}"))
        .await
        .expect("stats");
    assert_eq!(by_tax_code["agencies"], stats["agencies"]);
    // Outside the period: nothing.
    let before = bus
        .admin_json(&format!("/v1/stats/on-time?agency={STP}&to=20261101000000"))
        .await
        .expect("stats");
    assert_eq!(before["agencies"][0]["feedback_received"], 0, "{before}");
    assert_eq!(before["agencies"][0]["rating_avg"], Value::Null, "{before}");

    // A feedback for a department no route serves is refused, naming it.
    let mut env = envelope(None, H40, &[SYT], submitted());
    env["type"] = json!("feedback.submitted");
    let (s, a) = bus.post("H40", &env).await;
    assert_eq!(s, 422, "{a}");
    assert_eq!(a["error"]["code"], "no_route");
    assert!(a["error"]["message"].as_str().unwrap().contains(SYT), "{a}");
    assert_eq!(stp.calls().len(), 2);
    bus.stop().await;
}
