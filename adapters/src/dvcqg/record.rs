//! Turning a payload into the record the portal gets: local status mapped, dates checked, long fields handled.

use super::OnOverflow;
use lienthong_bus::adapter::DeliveryError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Field holding the sender's local workflow status; mapped through `status_map`, never sent.
pub const LOCAL_STATUS: &str = "TrangThaiNoiBo";

/// Code and yes/no fields the bus's schemas carry as JSON integers and the portal takes as strings
/// (`"2"`, flags `"0"`/`"1"`), at any depth (`DinhDanhCHS[].LoaiDinhDanh`, `TaiLieuNop[].DuocSoHoa`…).
/// Amounts and counts (`Gia`, `SoLuong`…) are passed through as the sender wrote them.
const PORTAL_STRINGS: &[&str] = &[
    "KenhThucHien",
    "LoaiDoiTuong",
    "LoaiDinhDanh",
    "TrangThaiHoSo",
    "TrangThai",
    "HinhThuc",
    "HoSoCoThanhPhanSoHoa",
    "TaiKhoanDuocXacThucVoiVNeID",
    "DuocThanhToanTrucTuyen",
    "IsDeleted",
    "DuocSoHoa",
    "DuocTaiSuDung",
    "DuocLayTuKhoDMQG",
    "TrangThaiBoSung",
];

/// Which portal record a message type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `dossier.submitted` → a `DongBoHoSoMC` dossier.
    Dossier,
    /// `dossier.status-changed` → a `CapNhatTienDoHoSoMC` progress row.
    Progress,
}

impl Kind {
    pub fn from_type(kind: &str) -> Option<Self> {
        match kind {
            "dossier.submitted" => Some(Kind::Dossier),
            "dossier.status-changed" => Some(Kind::Progress),
            _ => None,
        }
    }

    /// Where the portal status code goes.
    fn status_field(self) -> &'static str {
        match self {
            Kind::Dossier => "TrangThaiHoSo",
            Kind::Progress => "TrangThai",
        }
    }

    /// Portal length limits, in characters (the national public-service portal's integration guide).
    fn limits(self) -> &'static [(&'static str, usize)] {
        match self {
            Kind::Dossier => &[("TrichYeuHoSo", 1000)],
            Kind::Progress => &[("NguoiXuLy", 50)],
        }
    }
}

/// The payload rules from config.
#[derive(Debug, Clone)]
pub struct Rules {
    pub status_map: BTreeMap<String, i64>,
    pub on_overflow: OnOverflow,
}

/// A record ready for the portal.
#[derive(Debug, Clone)]
pub struct Record {
    /// The dossier code, for logs and errors (never personal data).
    pub ma_ho_so: String,
    /// The JSON object sent in `data`.
    pub body: Value,
}

/// Checks and adapts one payload. Every refusal is permanent: sending it again cannot help.
pub fn prepare(kind: Kind, payload: &[u8], rules: &Rules) -> Result<Record, DeliveryError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| DeliveryError::permanent(format!("payload is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(DeliveryError::permanent(
            "payload must be one JSON object with the portal's field names",
        ));
    };
    let ma_ho_so = match obj.get("MaHoSo") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(DeliveryError::permanent(
                "payload has no MaHoSo (dossier code)",
            ));
        }
    };
    map_status(kind, &mut obj, rules)?;
    portal_strings(&mut obj);
    let mut bad = Vec::new();
    check_dates(&obj, "", &mut bad);
    if !bad.is_empty() {
        return Err(DeliveryError::permanent(format!(
            "dossier {ma_ho_so}: date field(s) not in yyyyMMddHHmmss: {}",
            bad.join(", ")
        )));
    }
    for &(field, max) in kind.limits() {
        limit(&mut obj, field, max, &ma_ho_so, rules.on_overflow)?;
    }
    Ok(Record {
        ma_ho_so,
        body: Value::Object(obj),
    })
}

fn map_status(
    kind: Kind,
    obj: &mut Map<String, Value>,
    rules: &Rules,
) -> Result<(), DeliveryError> {
    let field = kind.status_field();
    match obj.remove(LOCAL_STATUS) {
        Some(Value::String(local)) => {
            let code = rules.status_map.get(&local).ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "local status `{local}` ({LOCAL_STATUS}) has no portal code in status_map"
                ))
            })?;
            let given = obj.get(field).and_then(|v| match v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            });
            if let Some(given) = given.filter(|g| g != code) {
                tracing::warn!(
                    local = %local, mapped = code, given,
                    "{field} {given} differs from what status_map gives for {LOCAL_STATUS} `{local}`; sending {code}"
                );
            }
            obj.insert(field.into(), Value::String(code.to_string()));
            Ok(())
        }
        Some(Value::Null) | None => match obj.get(field) {
            None | Some(Value::Null) => Err(DeliveryError::permanent(format!(
                "payload has neither {field} (portal status) nor {LOCAL_STATUS} (local status)"
            ))),
            Some(v) => {
                let code = match v {
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                };
                match code {
                    Some(1..=10) => Ok(()),
                    _ => Err(DeliveryError::permanent(format!(
                        "{field} {v} is not a portal status (1-10)"
                    ))),
                }
            }
        },
        Some(other) => Err(DeliveryError::permanent(format!(
            "{LOCAL_STATUS} must be a string, not {other}"
        ))),
    }
}

/// Writes the integer codes and flags of [`PORTAL_STRINGS`] as the portal's strings, at any depth.
fn portal_strings(obj: &mut Map<String, Value>) {
    for (key, value) in obj.iter_mut() {
        match value {
            Value::Number(n) if PORTAL_STRINGS.contains(&key.as_str()) => {
                if let Some(i) = n.as_i64() {
                    *value = Value::String(i.to_string());
                }
            }
            Value::Object(inner) => portal_strings(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        portal_strings(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// True for the names of date fields (`NgayTiepNhan`, `ThoiDiemXuLy`, ...).
fn is_date_field(name: &str) -> bool {
    name.starts_with("Ngay") || name.starts_with("ThoiDiem")
}

/// True for `yyyyMMddHHmmss` naming a real instant.
pub fn is_portal_date(s: &str) -> bool {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year][month][day][hour][minute][second]");
    s.len() == 14
        && s.bytes().all(|b| b.is_ascii_digit())
        && time::PrimitiveDateTime::parse(s, FORMAT).is_ok()
}

/// Collects `path = value` of every malformed date field. Empty strings and nulls are "no date".
fn check_dates(obj: &Map<String, Value>, path: &str, bad: &mut Vec<String>) {
    for (k, child) in obj {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if is_date_field(k) {
            match child {
                Value::Null => {}
                Value::String(s) if s.is_empty() || is_portal_date(s) => {}
                Value::String(s) => bad.push(format!("{p} = {s:?}")),
                other => bad.push(format!("{p} = {other} (must be a string)")),
            }
        } else {
            check_dates_in(child, &p, bad);
        }
    }
}

fn check_dates_in(v: &Value, path: &str, bad: &mut Vec<String>) {
    match v {
        Value::Object(m) => check_dates(m, path, bad),
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_dates_in(child, &format!("{path}[{i}]"), bad);
            }
        }
        _ => {}
    }
}

/// Applies the portal's length limit on one text field.
fn limit(
    obj: &mut Map<String, Value>,
    field: &'static str,
    max: usize,
    ma_ho_so: &str,
    on_overflow: OnOverflow,
) -> Result<(), DeliveryError> {
    let Some(Value::String(s)) = obj.get_mut(field) else {
        return Ok(());
    };
    let len = s.chars().count();
    if len <= max {
        return Ok(());
    }
    match on_overflow {
        OnOverflow::Refuse => Err(DeliveryError::permanent(format!(
            "dossier {ma_ho_so}: {field} is {len} characters; the portal takes at most {max} \
             (on_overflow = \"refuse\")"
        ))),
        OnOverflow::Truncate => {
            let mut cut: String = s.chars().take(max - 1).collect();
            cut.push('…');
            *s = cut;
            metrics::counter!("lienthong_dvcqg_truncated_total", "field" => field).increment(1);
            tracing::warn!(dossier = %ma_ho_so, field, chars = len, max, "field over the portal's limit; truncated");
            Ok(())
        }
    }
}
