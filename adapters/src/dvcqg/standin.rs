//! A stand-in for the portal's integration adapter, behaving as the portal's integration guide describes: sessions from
//! `/auth`, `DongBoHoSoMC` insert/update with "already exists", `CapNhatTienDoHoSoMC` rows, `TraCuuHoSo`.
//! It records every call and can expire sessions (after N calls or on demand) and inject faults. Also used by
//! the workspace's integration tests (feature `test-util`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const USER: &str = "lienthong-h40";
pub const PASSWORD: &str = "s3cret-p@ss";

/// How the stand-in says a session is no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// HTTP 401.
    Http401,
    /// HTTP 200 with a non-zero code and a message about the session.
    Message,
}

#[derive(Debug, Clone)]
pub enum Fault {
    Http(u16),
    Code(&'static str, &'static str),
    /// Wait this long, then answer normally.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub session: String,
    pub madonvi: String,
    pub is_updating: Option<String>,
    pub rows: usize,
    /// Whether the session was accepted.
    pub session_ok: bool,
    pub body: Value,
}

pub struct PortalState {
    pub expiry: Expiry,
    /// Each session answers this many service calls, then is expired.
    pub session_max_calls: Option<u32>,
    pub auth_delay: Duration,
    pub auth_calls: u32,
    pub auth_dstcodes: Vec<Option<String>>,
    pub auth_bodies: Vec<Value>,
    sessions: HashMap<String, u32>,
    next_session: u32,
    pub calls: Vec<Call>,
    pub dossiers: BTreeMap<String, Value>,
    pub progress: Vec<Value>,
    /// (service, remaining, fault)
    faults: Vec<(String, u32, Fault)>,
    /// Progress batches containing a row for one of these dossiers are refused with error_code 7.
    pub reject_progress_of: HashSet<String>,
    /// The account `/auth` accepts (default [`USER`], [`PASSWORD`]).
    pub user: String,
    pub password: String,
    /// As the real portal: a progress row for a dossier it does not hold is refused with error_code 4
    /// "không tồn tại" (does not exist). Off by default.
    pub progress_needs_dossier: bool,
    /// Inserts (`DongBoHoSoMC`) of these dossiers are answered with this HTTP status this many more times.
    pub fail_inserts_of: HashMap<String, (u32, u16)>,
    /// What the portal took, in the order it took it: (`MaHoSo`, `"insert"`/`"update"`/`"progress"`, row).
    pub taken: Vec<(String, &'static str, Value)>,
}

#[derive(Clone)]
pub struct Portal {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<PortalState>>,
}

impl Portal {
    pub async fn start() -> Portal {
        let state = Arc::new(Mutex::new(PortalState {
            expiry: Expiry::Message,
            session_max_calls: None,
            auth_delay: Duration::ZERO,
            auth_calls: 0,
            auth_dstcodes: Vec::new(),
            auth_bodies: Vec::new(),
            sessions: HashMap::new(),
            next_session: 0,
            calls: Vec::new(),
            dossiers: BTreeMap::new(),
            progress: Vec::new(),
            faults: Vec::new(),
            reject_progress_of: HashSet::new(),
            user: USER.into(),
            password: PASSWORD.into(),
            progress_needs_dossier: false,
            fail_inserts_of: HashMap::new(),
            taken: Vec::new(),
        }));
        let app = Router::new()
            .route("/auth", post(auth))
            .route("/service", post(service))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Portal { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut PortalState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Every issued session stops working now.
    pub fn expire_all(&self) {
        self.with(|s| s.sessions.clear());
    }

    /// The next `times` calls of `service` get `fault`.
    pub fn inject(&self, service: &str, times: u32, fault: Fault) {
        self.with(|s| s.faults.push((service.to_owned(), times, fault)));
    }

    pub fn calls(&self, service: &str) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.service == service)
                .cloned()
                .collect()
        })
    }

    pub fn auth_calls(&self) -> u32 {
        self.with(|s| s.auth_calls)
    }
}

async fn auth(
    State(st): State<Arc<Mutex<PortalState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let delay = {
        let mut s = st.lock().unwrap();
        s.auth_calls += 1;
        s.auth_dstcodes.push(
            headers
                .get("dstcode")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        s.auth_bodies
            .push(serde_json::from_str(&body).unwrap_or(Value::Null));
        s.auth_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (user, password) = {
        let s = st.lock().unwrap();
        (s.user.clone(), s.password.clone())
    };
    if v["username"] != user || v["password"] != password {
        return axum::Json(json!({"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"}))
            .into_response();
    }
    let mut s = st.lock().unwrap();
    s.next_session += 1;
    let token = format!("sess-{}", s.next_session);
    s.sessions.insert(token.clone(), 0);
    axum::Json(json!({"session": token, "error_code": 0})).into_response()
}

fn answer(code: &str, message: &str) -> Response {
    axum::Json(json!({"error_code": code, "message": message})).into_response()
}

async fn service(State(st): State<Arc<Mutex<PortalState>>>, body: String) -> Response {
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "not JSON").into_response(),
    };
    let service = body["service"].as_str().unwrap_or_default().to_owned();
    let session = body["session"].as_str().unwrap_or_default().to_owned();
    let (session_ok, fault, expiry) = {
        let mut s = st.lock().unwrap();
        let max = s.session_max_calls;
        let ok = match s.sessions.get_mut(&session) {
            Some(used) if max.is_none_or(|m| *used < m) => {
                *used += 1;
                true
            }
            Some(_) => {
                s.sessions.remove(&session);
                false
            }
            None => false,
        };
        s.calls.push(Call {
            service: service.clone(),
            session: session.clone(),
            madonvi: body["madonvi"].as_str().unwrap_or_default().to_owned(),
            is_updating: body["isUpdating"].as_str().map(str::to_owned),
            rows: body["data"].as_array().map(Vec::len).unwrap_or(0),
            session_ok: ok,
            body: body.clone(),
        });
        let mut fault = None;
        if ok
            && let Some(f) = s
                .faults
                .iter_mut()
                .find(|(svc, n, _)| *svc == service && *n > 0)
        {
            f.1 -= 1;
            fault = Some(f.2.clone());
        }
        (ok, fault, s.expiry)
    };
    if !session_ok {
        return match expiry {
            Expiry::Http401 => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
            Expiry::Message => answer("-2", "Phiên làm việc đã hết hạn, vui lòng đăng nhập lại"),
        };
    }
    match fault {
        Some(Fault::Http(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "<html>upstream error</html>",
            )
                .into_response();
        }
        Some(Fault::Code(code, msg)) => return answer(code, msg),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let mut s = st.lock().unwrap();
    match service.as_str() {
        "DongBoHoSoMC" => {
            let Some(rows) = body["data"].as_array() else {
                return answer("2", "Thiếu data");
            };
            for row in rows {
                if let Err(e) = valid_dossier(row) {
                    return answer("2", &format!("Dữ liệu không hợp lệ: {e}"));
                }
                let code = row["MaHoSo"].as_str().unwrap_or_default().to_owned();
                if let Some((left, status)) = s.fail_inserts_of.get_mut(&code)
                    && *left > 0
                {
                    *left -= 1;
                    return (
                        StatusCode::from_u16(*status).unwrap(),
                        "<html>upstream error</html>",
                    )
                        .into_response();
                }
                let exists = s.dossiers.contains_key(&code);
                match (body["isUpdating"].as_str(), exists) {
                    (Some("False"), true) => {
                        return answer("-3", &format!("Hồ sơ {code} đã tồn tại trên hệ thống"));
                    }
                    (Some("True"), false) => {
                        return answer("4", &format!("Hồ sơ {code} không tồn tại"));
                    }
                    (Some(flag @ ("False" | "True")), _) => {
                        let what = if flag == "False" { "insert" } else { "update" };
                        s.taken.push((code.clone(), what, row.clone()));
                        s.dossiers.insert(code, row.clone());
                    }
                    _ => return answer("2", "isUpdating phải là True hoặc False"),
                }
            }
            answer("0", "Đồng bộ thành công")
        }
        "CapNhatTienDoHoSoMC" => {
            let Some(rows) = body["data"].as_array() else {
                return answer("2", "Thiếu data");
            };
            for row in rows {
                if let Err(e) = valid_progress(row) {
                    return answer("2", &format!("Dữ liệu không hợp lệ: {e}"));
                }
                let code = row["MaHoSo"].as_str().unwrap_or_default();
                if s.reject_progress_of.contains(code) {
                    return answer("7", &format!("Mã hồ sơ {code} không hợp lệ"));
                }
                if s.progress_needs_dossier && !s.dossiers.contains_key(code) {
                    return answer("4", &format!("Hồ sơ {code} không tồn tại"));
                }
            }
            for row in rows {
                let code = row["MaHoSo"].as_str().unwrap_or_default().to_owned();
                s.taken.push((code, "progress", row.clone()));
            }
            s.progress.extend(rows.iter().cloned());
            answer("0", "Cập nhật tiến độ thành công")
        }
        "TraCuuHoSo" => {
            let code = body["mahoso"].as_str().unwrap_or_default();
            let result: Vec<Value> = s
                .dossiers
                .get(code)
                .map(|d| {
                    let mut d = d.clone();
                    let rows: Vec<Value> = s
                        .progress
                        .iter()
                        .filter(|p| p["MaHoSo"] == code)
                        .cloned()
                        .collect();
                    d["QuaTrinhXuLy"] = Value::Array(rows);
                    vec![d]
                })
                .unwrap_or_default();
            axum::Json(json!({"error_code": "0", "message": "", "result": result})).into_response()
        }
        _ => answer("9", "Dịch vụ không được hỗ trợ"),
    }
}

fn valid_date(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => {
            s.is_empty() || (s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

fn valid_status(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| s.parse::<u8>().ok())
        .is_some_and(|n| (1..=10).contains(&n))
}

fn valid_dossier(row: &Value) -> Result<(), String> {
    if row.get("TrangThaiNoiBo").is_some() {
        return Err("trường TrangThaiNoiBo không được hỗ trợ".into());
    }
    // The portal takes codes as strings ("2"), as the reference clients send them.
    for k in [
        "KenhThucHien",
        "LoaiDoiTuong",
        "HinhThuc",
        "HoSoCoThanhPhanSoHoa",
    ] {
        if row.get(k).is_some_and(|v| !v.is_string()) {
            return Err(format!("{k} phải là chuỗi"));
        }
    }
    let ids = row["DinhDanhCHS"].as_array().into_iter().flatten();
    if ids
        .into_iter()
        .any(|d| d.get("LoaiDinhDanh").is_some_and(|v| !v.is_string()))
    {
        return Err("LoaiDinhDanh phải là chuỗi".into());
    }
    if !valid_status(&row["TrangThaiHoSo"]) {
        return Err("TrangThaiHoSo".into());
    }
    if row["TrichYeuHoSo"]
        .as_str()
        .is_some_and(|s| s.chars().count() > 1000)
    {
        return Err("TrichYeuHoSo quá 1000 ký tự".into());
    }
    for k in [
        "NgayNopHoSo",
        "NgayTiepNhan",
        "NgayHenTra",
        "NgayKetThucXuLy",
        "NgayTra",
        "NgayTuChoi",
    ] {
        if !valid_date(&row[k]) {
            return Err(k.into());
        }
    }
    Ok(())
}

fn valid_progress(row: &Value) -> Result<(), String> {
    if row.get("TrangThaiNoiBo").is_some() {
        return Err("trường TrangThaiNoiBo không được hỗ trợ".into());
    }
    if !valid_status(&row["TrangThai"]) {
        return Err("TrangThai".into());
    }
    if row["NguoiXuLy"]
        .as_str()
        .is_some_and(|s| s.chars().count() > 50)
    {
        return Err("NguoiXuLy quá 50 ký tự".into());
    }
    for k in ["ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh"] {
        if !valid_date(&row[k]) {
            return Err(k.into());
        }
    }
    Ok(())
}
