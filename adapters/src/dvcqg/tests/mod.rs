mod redirects;

use super::record::{self, Kind, Rules};
use super::standin::{Expiry, Fault, PASSWORD, Portal, USER};
use super::*;
use crate::testing::{build, check};
use bytes::Bytes;
use lienthong_bus::adapter::ErrorClass;
use lienthong_bus::message::{Message, Meta};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const STATUS_MAP: &str = r#"{ "moi-dang-ky" = 1, "da-tiep-nhan" = 2, "khong-tiep-nhan" = 3, "dang-xu-ly" = 4,
  "cho-bo-sung" = 5, "cho-nghia-vu-tai-chinh" = 6, "rut-ho-so" = 7, "dung-xu-ly" = 8, "da-xu-ly" = 9,
  "da-tra-ket-qua" = 10 }"#;

fn spec(options: &str) -> AdapterSpec {
    AdapterSpec {
        index: 0,
        id: "dvcqg".into(),
        kind: "dvcqg".into(),
        options: options.parse().unwrap(),
        base_dir: ".".into(),
    }
}

/// Config for the stand-in; `extra` lines are added (and may not repeat the keys set here).
fn config(portal: &Portal, extra: &str) -> DvcqgConfig {
    let mut text = format!(
        "base_url = \"{}\"\nusername_env = \"PATH\"\npassword_env = \"PATH\"\nmadonvi = \"000.00.00.H40\"\n\
         dstcode = \"VN:GOV:000.00.00.G22:vpcpdvcprovider\"\nstatus_map = {STATUS_MAP}\n",
        portal.url()
    );
    if !extra.contains("timeout") {
        text.push_str("timeout = \"5s\"\n");
    }
    text.push_str(extra);
    spec(&text).parse_options().unwrap()
}

fn adapter(portal: &Portal, extra: &str) -> Arc<Dvcqg> {
    Arc::new(Dvcqg::new(&config(portal, extra), USER.into(), PASSWORD.into()).unwrap())
}

fn delivery(kind: &str, payload: &Value) -> Delivery {
    Delivery {
        message: Message {
            meta: Meta {
                id: uuid::Uuid::now_v7().to_string(),
                kind: kind.into(),
                version: 1,
                from: "000.00.12.H40".into(),
                to: vec!["000.00.00.H40".into()],
                correlation_id: None,
                created_at: "2026-01-05T08:00:00Z".into(),
            },
            content: ContentKind::Json,
            payload: Bytes::from(serde_json::to_vec(payload).unwrap()),
        },
        route: "to-dvcqg".into(),
        adapter: "dvcqg".into(),
        attempt: 1,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    }
}

fn dossier(code: &str, local_status: &str) -> Value {
    json!({
        "MaHoSo": code,
        "MaTTHC": "1.011442.000.00.00.H40",
        "TenTTHC": "Cấp giấy phép xây dựng",
        "MaLinhVuc": "G03-GD10",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Văn A",
        "LoaiDoiTuong": 1,
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "036090001234"}],
        "TrichYeuHoSo": "Đề nghị cấp giấy phép xây dựng nhà ở riêng lẻ",
        "NgayNopHoSo": "20260105080000",
        "NgayTiepNhan": "20260105083000",
        "NgayHenTra": "20260119170000",
        "NgayTra": "",
        "TrangThaiNoiBo": local_status,
        "HinhThuc": 0,
        "HoSoCoThanhPhanSoHoa": 1,
        "TaiLieuNop": [{"TepDinhKemId": "t1", "TenTepDinhKem": "don.pdf", "DuocSoHoa": 1, "IsDeleted": 0,
                        "DuongDanTaiTepTin": "https://dvc.example.gov.vn/files/t1"}],
        "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": 75000, "HinhThucThu": 1}],
        "DanhSachHoSoBoSung": [{"HoSoBoSungId": "1", "NgayBoSung": "20260106090000"}],
    })
}

fn progress(code: &str, local_status: &str, n: usize) -> Value {
    json!({
        "MaHoSo": code,
        "NguoiXuLy": "Trần Thị B",
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": format!("202601060900{:02}", n % 60),
        "PhongBanXuLy": "Phòng Quản lý đô thị",
        "NoiDungXuLy": format!("Bước xử lý {n}"),
        "TrangThaiNoiBo": local_status,
        "NgayBatDau": "20260106090000",
        "NgayKetThucTheoQuyDinh": "",
    })
}

async fn deliver(a: &Dvcqg, kind: &str, payload: &Value) -> Result<(), DeliveryError> {
    a.deliver(&delivery(kind, payload)).await
}

#[tokio::test]
async fn insert_then_update_on_already_exists() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    deliver(
        &a,
        "dossier.submitted",
        &dossier("H40-260105-00001", "da-tiep-nhan"),
    )
    .await
    .unwrap();
    let mut changed = dossier("H40-260105-00001", "dang-xu-ly");
    changed["TrichYeuHoSo"] = json!("Đề nghị cấp giấy phép xây dựng (bổ sung bản vẽ)");
    deliver(&a, "dossier.submitted", &changed).await.unwrap();

    let calls = portal.calls("DongBoHoSoMC");
    let updating: Vec<_> = calls
        .iter()
        .map(|c| c.is_updating.clone().unwrap())
        .collect();
    assert_eq!(updating, ["False", "False", "True"]);
    assert!(
        calls
            .iter()
            .all(|c| c.madonvi == "000.00.00.H40" && c.rows == 1)
    );
    let stored = portal.with(|s| s.dossiers["H40-260105-00001"].clone());
    assert_eq!(stored["TrangThaiHoSo"], "4");
    // Codes and flags, integers in the bus's schema, reach the portal as its strings; amounts stay numbers.
    assert_eq!(stored["KenhThucHien"], "2");
    assert_eq!(stored["LoaiDoiTuong"], "1");
    assert_eq!(stored["HinhThuc"], "0");
    assert_eq!(stored["HoSoCoThanhPhanSoHoa"], "1");
    assert_eq!(stored["DinhDanhCHS"][0]["LoaiDinhDanh"], "1");
    assert_eq!(stored["TaiLieuNop"][0]["DuocSoHoa"], "1");
    assert_eq!(stored["TaiLieuNop"][0]["IsDeleted"], "0");
    assert_eq!(stored["DanhSachLePhi"][0]["Gia"], 75000);
    assert_eq!(
        stored["TrichYeuHoSo"],
        "Đề nghị cấp giấy phép xây dựng (bổ sung bản vẽ)"
    );
    assert!(
        stored.get("TrangThaiNoiBo").is_none(),
        "local status must not reach the portal"
    );
    assert_eq!(portal.auth_calls(), 1, "one login, cached session");
    portal.with(|s| {
        assert_eq!(
            s.auth_dstcodes,
            [Some("VN:GOV:000.00.00.G22:vpcpdvcprovider".to_owned())]
        );
        assert_eq!(
            s.auth_bodies[0],
            json!({"username": USER, "password": PASSWORD})
        );
    });
}

#[tokio::test]
async fn a_code_3_about_something_else_is_a_refusal_not_an_update() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let d = dossier("H40-260105-00077", "da-tiep-nhan");
    portal.inject(
        "DongBoHoSoMC",
        1,
        Fault::Code("3", "Mã đơn vị không hợp lệ"),
    );
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Permanent, Some(3)),
        "{e:?}"
    );
    assert!(e.reason.contains("Mã đơn vị không hợp lệ"), "{}", e.reason);
    let updating: Vec<_> = portal
        .calls("DongBoHoSoMC")
        .iter()
        .map(|c| c.is_updating.clone().unwrap())
        .collect();
    assert_eq!(updating, ["False"], "no update was tried");
}

#[tokio::test]
async fn progress_rows_are_batched_and_all_stored() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "progress_batch_linger = \"300ms\"\n");
    let statuses = ["dang-xu-ly", "cho-bo-sung", "da-xu-ly"];
    let results = futures::future::join_all((0..25).map(|i| {
        let a = a.clone();
        async move {
            let row = progress(&format!("H40-260105-{i:05}"), statuses[i % 3], i);
            deliver(&a, "dossier.status-changed", &row).await
        }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let sizes: Vec<usize> = portal
        .calls("CapNhatTienDoHoSoMC")
        .iter()
        .map(|c| c.rows)
        .collect();
    assert!(sizes.iter().all(|n| *n <= 10), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 25, "{sizes:?}");
    assert_eq!(
        sizes.len(),
        3,
        "25 concurrent rows should go in 3 calls: {sizes:?}"
    );
    let stored = portal.with(|s| s.progress.clone());
    assert_eq!(stored.len(), 25);
    let row7 = stored
        .iter()
        .find(|r| r["MaHoSo"] == "H40-260105-00007")
        .unwrap();
    assert_eq!(row7["TrangThai"], "5", "cho-bo-sung maps to 5");
    assert!(row7.get("TrangThaiNoiBo").is_none());
}

#[tokio::test]
async fn a_refused_batch_is_resent_row_by_row_so_only_the_bad_row_fails() {
    let portal = Portal::start().await;
    portal.with(|s| {
        s.reject_progress_of.insert("BAD-1".into());
    });
    let a = adapter(&portal, "");
    let codes = ["H40-1", "H40-2", "BAD-1", "H40-3", "H40-4"];
    let results = futures::future::join_all(codes.iter().enumerate().map(|(i, code)| {
        let a = a.clone();
        async move {
            deliver(
                &a,
                "dossier.status-changed",
                &progress(code, "dang-xu-ly", i),
            )
            .await
        }
    }))
    .await;
    for (code, r) in codes.iter().zip(&results) {
        if *code == "BAD-1" {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.class, ErrorClass::Permanent);
            assert_eq!(e.status, Some(7));
            assert!(e.reason.contains("BAD-1"), "{}", e.reason);
        } else {
            assert!(r.is_ok(), "{code}: {r:?}");
        }
    }
    let sizes: Vec<usize> = portal
        .calls("CapNhatTienDoHoSoMC")
        .iter()
        .map(|c| c.rows)
        .collect();
    assert_eq!(sizes, [5, 1, 1, 1, 1, 1]);
    assert_eq!(portal.with(|s| s.progress.len()), 4);
}

#[tokio::test]
async fn expired_session_is_renewed_once_for_concurrent_deliveries() {
    let portal = Portal::start().await;
    portal.with(|s| s.auth_delay = Duration::from_millis(100));
    let a = adapter(&portal, "");
    deliver(&a, "dossier.submitted", &dossier("H40-0", "da-tiep-nhan"))
        .await
        .unwrap();
    assert_eq!(portal.auth_calls(), 1);

    portal.expire_all();
    let results = futures::future::join_all((1..=8).map(|i| {
        let a = a.clone();
        async move {
            deliver(
                &a,
                "dossier.submitted",
                &dossier(&format!("H40-{i}"), "da-tiep-nhan"),
            )
            .await
        }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        portal.auth_calls(),
        2,
        "one renewal for all concurrent deliveries"
    );
    let calls = portal.calls("DongBoHoSoMC");
    assert_eq!(calls.iter().filter(|c| !c.session_ok).count(), 8);
    assert!(
        calls
            .iter()
            .filter(|c| c.session_ok)
            .skip(1)
            .all(|c| c.session == "sess-2")
    );
    assert_eq!(portal.with(|s| s.dossiers.len()), 9);
}

#[tokio::test]
async fn session_refused_with_http_401_after_n_calls_is_renewed() {
    let portal = Portal::start().await;
    portal.with(|s| {
        s.expiry = Expiry::Http401;
        s.session_max_calls = Some(2);
    });
    let a = adapter(&portal, "");
    for i in 0..5 {
        deliver(
            &a,
            "dossier.submitted",
            &dossier(&format!("H40-{i}"), "da-tiep-nhan"),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        portal.auth_calls(),
        3,
        "sessions of 2 calls each for 5 calls"
    );
    assert_eq!(portal.with(|s| s.dossiers.len()), 5);
}

#[tokio::test]
async fn a_fresh_session_refused_again_is_transient() {
    let portal = Portal::start().await;
    portal.with(|s| s.session_max_calls = Some(0));
    let a = adapter(&portal, "");
    let e = deliver(&a, "dossier.submitted", &dossier("H40-1", "da-tiep-nhan"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.reason.contains("freshly issued session"), "{}", e.reason);
    assert_eq!(portal.auth_calls(), 2);
}

#[tokio::test]
async fn wrong_password_is_transient_and_never_shown() {
    let portal = Portal::start().await;
    let a = Dvcqg::new(&config(&portal, ""), USER.into(), "wrong-pass-123".into()).unwrap();
    let e = deliver(&a, "dossier.submitted", &dossier("H40-1", "da-tiep-nhan"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.reason.contains("refused the login"), "{}", e.reason);
    let all = format!("{e:?}");
    assert!(!all.contains("wrong-pass-123"), "{all}");
    assert!(portal.calls("DongBoHoSoMC").is_empty());
    assert_eq!(portal.auth_calls(), 1);

    // Deliveries queued behind a failing login share its failure instead of each trying again.
    portal.with(|s| s.auth_delay = Duration::from_millis(200));
    let a = Arc::new(a);
    let results = futures::future::join_all((0..6).map(|i| {
        let a = a.clone();
        async move {
            deliver(
                &a,
                "dossier.submitted",
                &dossier(&format!("H40-{i}"), "da-tiep-nhan"),
            )
            .await
        }
    }))
    .await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.class == ErrorClass::Transient))
    );
    assert_eq!(
        portal.auth_calls(),
        2,
        "one more login for six queued deliveries"
    );
}

#[tokio::test]
async fn each_error_class() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let d = dossier("H40-1", "da-tiep-nhan");

    portal.inject("DongBoHoSoMC", 1, Fault::Http(503));
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Transient, Some(503)),
        "{e:?}"
    );

    portal.inject(
        "DongBoHoSoMC",
        1,
        Fault::Code("-1", "Lỗi hệ thống, vui lòng thử lại sau"),
    );
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Transient, Some(-1)),
        "{e:?}"
    );

    portal.inject(
        "DongBoHoSoMC",
        1,
        Fault::Code("11", "Mã TTHC không tồn tại trong CSDL quốc gia"),
    );
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Permanent, Some(11)),
        "{e:?}"
    );
    assert!(e.reason.contains("Mã TTHC không tồn tại"), "{}", e.reason);
    assert!(
        e.body_excerpt
            .as_deref()
            .unwrap()
            .contains("Mã TTHC không tồn tại")
    );

    portal.inject("DongBoHoSoMC", 1, Fault::Http(400));
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Permanent, Some(400)),
        "{e:?}"
    );

    portal.inject("DongBoHoSoMC", 1, Fault::Http(429));
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Transient, Some(429)),
        "{e:?}"
    );

    // "Phiên bản" is "version", not a session: no renewal.
    portal.inject(
        "DongBoHoSoMC",
        1,
        Fault::Code("12", "Phiên bản dữ liệu không được hỗ trợ"),
    );
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(
        (e.class, e.status),
        (ErrorClass::Permanent, Some(12)),
        "{e:?}"
    );
    assert_eq!(portal.auth_calls(), 1);

    // Faults used up: the same dossier now goes through.
    deliver(&a, "dossier.submitted", &d).await.unwrap();
    assert_eq!(portal.with(|s| s.dossiers.len()), 1);
}

#[tokio::test]
async fn a_slow_portal_is_a_transient_timeout() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "timeout = \"300ms\"\n");
    portal.inject("DongBoHoSoMC", 1, Fault::Delay(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let e = deliver(&a, "dossier.submitted", &dossier("H40-1", "da-tiep-nhan"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.reason.contains("did not answer"), "{}", e.reason);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unknown_local_status_is_permanent_and_nothing_is_sent() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let e = deliver(&a, "dossier.submitted", &dossier("H40-1", "cho-phe-duyet"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.reason.contains("`cho-phe-duyet`"), "{}", e.reason);
    let e = deliver(
        &a,
        "dossier.status-changed",
        &progress("H40-1", "cho-phe-duyet", 1),
    )
    .await
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.reason.contains("`cho-phe-duyet`"), "{}", e.reason);
    assert_eq!(portal.auth_calls(), 0);
    assert!(portal.with(|s| s.calls.is_empty()));
}

#[tokio::test]
async fn portal_status_without_local_status_is_kept_when_valid() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let mut d = dossier("H40-1", "x");
    d.as_object_mut().unwrap().remove("TrangThaiNoiBo");
    d["TrangThaiHoSo"] = json!("9");
    deliver(&a, "dossier.submitted", &d).await.unwrap();
    assert_eq!(
        portal.with(|s| s.dossiers["H40-1"]["TrangThaiHoSo"].clone()),
        "9"
    );
    d["TrangThaiHoSo"] = json!("11");
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.reason.contains("1-10"), "{}", e.reason);
}

#[tokio::test]
async fn malformed_dates_are_permanent() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let mut d = dossier("H40-1", "da-tiep-nhan");
    d["NgayHenTra"] = json!("2026-01-19 17:00:00");
    d["DanhSachHoSoBoSung"][0]["NgayBoSung"] = json!("20261306090000");
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.reason.contains("NgayHenTra"), "{}", e.reason);
    assert!(
        e.reason.contains("DanhSachHoSoBoSung[0].NgayBoSung"),
        "{}",
        e.reason
    );
    let mut p = progress("H40-1", "dang-xu-ly", 1);
    p["ThoiDiemXuLy"] = json!(20260106090000_i64);
    let e = deliver(&a, "dossier.status-changed", &p).await.unwrap_err();
    assert!(e.reason.contains("ThoiDiemXuLy"), "{}", e.reason);
    assert!(portal.with(|s| s.calls.is_empty()));
}

#[tokio::test]
async fn long_fields_are_truncated_by_default() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let mut d = dossier("H40-1", "da-tiep-nhan");
    let long: String = "Đề nghị cấp phép xây dựng. "
        .chars()
        .cycle()
        .take(1200)
        .collect();
    d["TrichYeuHoSo"] = json!(long);
    deliver(&a, "dossier.submitted", &d).await.unwrap();
    let stored = portal.with(|s| {
        s.dossiers["H40-1"]["TrichYeuHoSo"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    assert_eq!(stored.chars().count(), 1000);
    assert!(stored.ends_with('…'));
    assert!(long.starts_with(stored.trim_end_matches('…')));

    let mut p = progress("H40-1", "dang-xu-ly", 1);
    p["NguoiXuLy"] = json!("Nguyễn Thị Phương Thảo, Phó Trưởng phòng Quản lý đô thị huyện");
    deliver(&a, "dossier.status-changed", &p).await.unwrap();
    let who = portal.with(|s| s.progress[0]["NguoiXuLy"].as_str().unwrap().to_owned());
    assert_eq!(who.chars().count(), 50);
}

#[tokio::test]
async fn long_fields_are_refused_when_configured() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "on_overflow = \"refuse\"\n");
    let mut d = dossier("H40-1", "da-tiep-nhan");
    d["TrichYeuHoSo"] = json!("ạ".repeat(1001));
    let e = deliver(&a, "dossier.submitted", &d).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(
        e.reason.contains("TrichYeuHoSo is 1001 characters"),
        "{}",
        e.reason
    );
    // 1000 multi-byte characters are within the limit (characters, not bytes).
    d["TrichYeuHoSo"] = json!("ạ".repeat(1000));
    deliver(&a, "dossier.submitted", &d).await.unwrap();

    let mut p = progress("H40-1", "dang-xu-ly", 1);
    p["NguoiXuLy"] = json!("x".repeat(51));
    let e = deliver(&a, "dossier.status-changed", &p).await.unwrap_err();
    assert!(
        e.reason.contains("NguoiXuLy is 51 characters"),
        "{}",
        e.reason
    );
}

/// A recorder counting `lienthong_dvcqg_truncated_total` by its `field` label.
#[derive(Default)]
struct Counts(Arc<std::sync::Mutex<BTreeMap<String, u64>>>);

struct CountHandle(String, Arc<std::sync::Mutex<BTreeMap<String, u64>>>);

impl metrics::CounterFn for CountHandle {
    fn increment(&self, value: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl metrics::Recorder for Counts {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        metrics::Counter::from_arc(Arc::new(CountHandle(name, self.0.clone())))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn truncation_is_counted_per_field() {
    let rules = Rules {
        status_map: [("da-tiep-nhan".to_owned(), 2)].into(),
        on_overflow: OnOverflow::Truncate,
    };
    let counts = Counts::default();
    let mut d = dossier("H40-1", "da-tiep-nhan");
    d["TrichYeuHoSo"] = json!("a".repeat(1500));
    let mut p = progress("H40-1", "da-tiep-nhan", 1);
    p["NguoiXuLy"] = json!("b".repeat(80));
    metrics::with_local_recorder(&counts, || {
        record::prepare(Kind::Dossier, &serde_json::to_vec(&d).unwrap(), &rules).unwrap();
        record::prepare(Kind::Progress, &serde_json::to_vec(&p).unwrap(), &rules).unwrap();
        record::prepare(Kind::Progress, &serde_json::to_vec(&p).unwrap(), &rules).unwrap();
    });
    let got = counts.0.lock().unwrap().clone();
    assert_eq!(
        got["lienthong_dvcqg_truncated_total{field=TrichYeuHoSo}"],
        1
    );
    assert_eq!(got["lienthong_dvcqg_truncated_total{field=NguoiXuLy}"], 2);
}

#[test]
fn portal_dates_are_checked_for_real_instants() {
    assert!(!record::is_portal_date("20260229000000"));
    assert!(record::is_portal_date("20280229235959"));
    assert!(!record::is_portal_date("2026010508300"));
    assert!(!record::is_portal_date("20260105083060"));
    assert!(!record::is_portal_date("+2026010508300"));
}

#[tokio::test]
async fn other_message_types_and_xml_are_permanent() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "");
    let e = deliver(&a, "feedback.submitted", &json!({"MaHoSo": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    let mut d = delivery("dossier.submitted", &dossier("H40-1", "da-tiep-nhan"));
    d.message.content = ContentKind::Xml;
    assert_eq!(
        a.deliver(&d).await.unwrap_err().class,
        ErrorClass::Permanent
    );
    let e = deliver(&a, "dossier.submitted", &json!({"TrichYeuHoSo": "x"}))
        .await
        .unwrap_err();
    assert!(e.reason.contains("MaHoSo"), "{}", e.reason);
}

#[tokio::test]
async fn lookup_returns_what_the_portal_holds() {
    let portal = Portal::start().await;
    let a = adapter(&portal, "progress_batch_linger = \"10ms\"\n");
    deliver(
        &a,
        "dossier.submitted",
        &dossier("H40-260105-00042", "da-tiep-nhan"),
    )
    .await
    .unwrap();
    deliver(
        &a,
        "dossier.status-changed",
        &progress("H40-260105-00042", "dang-xu-ly", 1),
    )
    .await
    .unwrap();
    deliver(
        &a,
        "dossier.status-changed",
        &progress("H40-260105-00042", "da-xu-ly", 2),
    )
    .await
    .unwrap();

    let got = a.lookup("H40-260105-00042").await.unwrap();
    assert_eq!(got["error_code"], "0");
    let held = &got["result"][0];
    assert_eq!(held["MaHoSo"], "H40-260105-00042");
    assert_eq!(held["TrangThaiHoSo"], "2");
    let steps: Vec<&str> = held["QuaTrinhXuLy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["TrangThai"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["4", "9"]);
    let call = portal.calls("TraCuuHoSo").pop().unwrap();
    assert_eq!(call.body["mahoso"], "H40-260105-00042");
    assert_eq!(call.body["madonvi"], "000.00.00.H40");

    let none = a.lookup("H40-NOPE").await.unwrap();
    assert_eq!(none["result"], json!([]));
}

// ---- check() ----

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// Schemas as the project designs them: the dossier schema refers to a shared definition of the local statuses.
fn schemas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let all = [
        "moi-dang-ky",
        "da-tiep-nhan",
        "khong-tiep-nhan",
        "dang-xu-ly",
        "cho-bo-sung",
        "cho-nghia-vu-tai-chinh",
        "rut-ho-so",
        "dung-xu-ly",
        "da-xu-ly",
        "da-tra-ket-qua",
    ];
    write(
        dir.path(),
        "common.schema.json",
        &json!({
            "$id": "https://lienthong.example/schemas/common.schema.json",
            "$defs": { "TrangThaiNoiBo": { "type": "string", "enum": all } }
        }),
    );
    write(
        dir.path(),
        "dossier.submitted.v1.schema.json",
        &json!({
            "type": "object",
            "properties": {
                "MaHoSo": {"type": "string"},
                "TrangThaiNoiBo": {"$ref": "common.schema.json#/$defs/TrangThaiNoiBo"}
            }
        }),
    );
    write(
        dir.path(),
        "dossier.status-changed.v1.schema.json",
        &json!({
            "type": "object",
            "allOf": [{"$ref": "#/$defs/row"}],
            "$defs": { "row": { "properties": {
                "TrangThaiNoiBo": {"anyOf": [{"enum": ["dang-xu-ly", "cho-bo-sung"]}, {"const": "tam-dung"}]}
            } } }
        }),
    );
    // Not one of ours: ignored.
    write(
        dir.path(),
        "feedback.submitted.v1.schema.json",
        &json!({
            "properties": {"TrangThaiNoiBo": {"enum": ["khac"]}}
        }),
    );
    dir
}

fn full_config(schemas: &Path, adapter_keys: &str) -> Config {
    let text = format!(
        r#"
[bus]
schemas_dir = "{}"
[[agencies]]
code = "000.00.00.H40"
[[adapters]]
id = "dvcqg"
type = "dvcqg"
{adapter_keys}
[[routes]]
id = "to-portal"
types = ["dossier.submitted", "feedback.submitted", "dossier.status-changed"]
deliver = ["dvcqg"]
"#,
        schemas.display()
    );
    Config::parse(Path::new("/etc/lienthong/bus.toml"), &text).unwrap()
}

#[test]
fn check_reports_every_problem_with_its_key_path() {
    let dir = schemas();
    let config = full_config(
        dir.path(),
        r#"base_url = "https://lgsp.example.gov.vn/dvcqg"
username_env = "PATH"
password_env = "LIENTHONG_TEST_SURELY_UNSET_PASSWORD_VAR"
madonvi = "000.00.00.H40"
progress_batch_size = 0
transient_error_codes = [-1, "BUSY"]
permanent_error_codes = ["-01", 0]
status_map = { "moi-dang-ky" = 1, "da-tiep-nhan" = 2, "khong-tiep-nhan" = 3, "dang-xu-ly" = 11,
  "cho-bo-sung" = 5, "cho-nghia-vu-tai-chinh" = 6, "dung-xu-ly" = 8, "da-xu-ly" = 9, "da-tra-ket-qua" = 10,
  "" = 2, "a b" = 0 }
"#,
    );
    let problems = check(&config.adapters[0], &config);
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    let has = |path: &str, word: &str| {
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(word))
    };
    assert!(
        has("adapters[0].status_map.dang-xu-ly", "1-10"),
        "{text:#?}"
    );
    assert!(has("adapters[0].status_map.\"\"", "empty"), "{text:#?}");
    assert!(has("adapters[0].status_map.\"a b\"", "1-10"), "{text:#?}");
    assert!(
        has(
            "adapters[0].status_map.rut-ho-so",
            "dossier.submitted.v1.schema.json"
        ),
        "{text:#?}"
    );
    assert!(
        has(
            "adapters[0].status_map.tam-dung",
            "dossier.status-changed.v1.schema.json"
        ),
        "{text:#?}"
    );
    assert!(
        has(
            "adapters[0].password_env",
            "LIENTHONG_TEST_SURELY_UNSET_PASSWORD_VAR` is not set"
        ),
        "{text:#?}"
    );
    assert!(
        has("adapters[0].progress_batch_size", "between 1"),
        "{text:#?}"
    );
    assert!(
        has("adapters[0].permanent_error_codes[0]", "also in transient"),
        "{text:#?}"
    );
    assert!(
        has("adapters[0].permanent_error_codes[1]", "success"),
        "{text:#?}"
    );
    assert!(has("routes[0].types[1]", "feedback.submitted"), "{text:#?}");
    assert!(
        !problems.iter().any(|p| p.path.ends_with("username_env")),
        "{text:#?}"
    );
    assert!(!text.iter().any(|t| t.contains("khac")), "{text:#?}");
    assert_eq!(problems.len(), 10, "{text:#?}");
}

#[test]
fn a_complete_config_checks_clean_and_builds() {
    let dir = schemas();
    let keys = format!(
        "base_url = \"https://lgsp.example.gov.vn/dvcqg/\"\nusername_env = \"PATH\"\npassword_env = \"PATH\"\n\
         madonvi = \"000.00.00.H40\"\nstatus_map = {}\n",
        STATUS_MAP.replace(
            "\"dang-xu-ly\" = 4,",
            "\"dang-xu-ly\" = 4, \"tam-dung\" = 8,"
        )
    );
    let mut config = full_config(dir.path(), &keys);
    config.routes[0].types.retain(|t| t != "feedback.submitted");
    let problems = check(&config.adapters[0], &config);
    assert!(problems.is_empty(), "{problems:#?}");
    let built = build(&config.adapters[0], &config).unwrap();
    assert!(built.sink.is_some() && built.lookup.is_some() && built.source.is_none());

    let cfg: DvcqgConfig = config.adapters[0].parse_options().unwrap();
    assert_eq!(cfg.auth_path, "/auth");
    assert_eq!(cfg.service_path, "/service");
    assert_eq!(cfg.timeout.get(), Duration::from_secs(15));
    assert_eq!(cfg.progress_batch_size, 10);
    assert_eq!(cfg.progress_batch_linger.get(), Duration::from_millis(200));
    assert_eq!(cfg.on_overflow, OnOverflow::Truncate);
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let config = full_config(
        Path::new("/nonexistent"),
        "base_url = \"x\"\nusername_env = \"PATH\"\npassword_env = \"PATH\"\nmadonvi = \"m\"\nsesion = \"x\"\n",
    );
    let problems = check(&config.adapters[0], &config);
    assert_eq!(problems[0].path, "adapters[0].sesion", "{problems:?}");
    assert!(problems[0].message.contains("sesion"), "{problems:?}");
    // The unknown key hides nothing: the bad `base_url` is reported beside it.
    assert!(
        problems.iter().any(|p| p.path == "adapters[0].base_url"),
        "{problems:?}"
    );

    let config = full_config(
        Path::new("/nonexistent"),
        "base_url = \"ftp://x\"\nusername_env = \"\"\npassword_env = \"PATH\"\nmadonvi = \" \"\n\
         auth_path = \"auth\"\non_overflow = \"truncate\"\n",
    );
    let paths: Vec<String> = check(&config.adapters[0], &config)
        .into_iter()
        .map(|p| p.path)
        .collect();
    for want in [
        "adapters[0].base_url",
        "adapters[0].username_env",
        "adapters[0].madonvi",
        "adapters[0].auth_path",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} in {paths:?}");
    }
}

/// The bus's delivery records as a set of dossier codes whose insert was delivered.
struct Inserted(std::collections::HashSet<String>);

#[async_trait::async_trait]
impl lienthong_bus::adapter::Deliveries for Inserted {
    async fn delivered_about(
        &self,
        adapter: &str,
        kind: &str,
        subject: &str,
    ) -> Result<bool, String> {
        assert_eq!((adapter, kind), ("dvcqg", "dossier.submitted"));
        Ok(self.0.contains(subject))
    }
}

#[tokio::test]
async fn does_not_exist_on_progress_waits_for_an_insert_not_yet_delivered() {
    let portal = Portal::start().await;
    portal.with(|s| s.progress_needs_dossier = true);
    let row = progress("H40-260105-00001", "dang-xu-ly", 1);
    // Without the bus's records the portal's answer stands: permanent.
    let a = adapter(&portal, "");
    let e = deliver(&a, "dossier.status-changed", &row)
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e:?}");
    assert!(e.reason.contains("không tồn tại"), "{}", e.reason);
    // The insert was not delivered by this bus yet: the row waits for it (transient).
    let a = adapter(&portal, "");
    a.attach(Arc::new(Inserted(Default::default())));
    let e = deliver(&a, "dossier.status-changed", &row)
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e:?}");
    assert!(
        e.reason.contains("insert has not been delivered"),
        "{}",
        e.reason
    );
    // The insert was delivered, and the portal still says it does not exist: permanent.
    let a = adapter(&portal, "");
    a.attach(Arc::new(Inserted(["H40-260105-00001".to_string()].into())));
    let e = deliver(&a, "dossier.status-changed", &row)
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e:?}");
    // Other refusals are untouched.
    portal.with(|s| {
        s.reject_progress_of.insert("H40-260105-00002".into());
    });
    let a = adapter(&portal, "");
    a.attach(Arc::new(Inserted(Default::default())));
    let e = deliver(
        &a,
        "dossier.status-changed",
        &progress("H40-260105-00002", "dang-xu-ly", 2),
    )
    .await
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e:?}");
}
