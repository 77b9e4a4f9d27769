//! The messages the benchmark sends: `dossier.submitted` envelopes padded to a target size.
//!
//! Every message of a run is the same template with only its sequence number changed, written in place at a
//! fixed-width slot inside the envelope `id` (`bench-<run>-<seq:09>`), so the sink can tell which message
//! arrived (for latency) and making a message costs one copy of the template.

use serde_json::{Value, json};

/// Sending agency (UBND tỉnh Nam Định), the one the bench authenticates as.
pub const FROM: &str = "000.00.00.H40";
/// Receiving agency (Sở Tư pháp).
pub const TO: &str = "000.00.12.H40";

/// Width of the zero-padded sequence number at the end of every message id.
const SEQ_WIDTH: usize = 9;

/// Padding text: realistic Vietnamese prose (multi-byte UTF-8), repeated.
const FILLER: &str = "Công dân đề nghị cơ quan tiếp nhận xem xét hồ sơ theo đúng quy định, \
    đính kèm bản sao giấy tờ tùy thân và giấy xác nhận nơi cư trú; đã nộp lệ phí trực tuyến. ";

/// The dossier code of the templates; its last [`DOSSIER_DIGITS`] digits are each message's sequence number.
const DOSSIER_CODE: &str = "000.00.12.H40-261127-00001";
const DOSSIER_DIGITS: usize = 5;

/// A compact but realistic dossier: the schema's required fields plus the fields a one-stop system commonly
/// fills. Used for the ~1 KB messages (the full sample record alone is over 2 KB).
pub fn compact_dossier() -> Value {
    json!({
        "MaHoSo": DOSSIER_CODE,
        "MaTTHC": "2.000635.000.00.00.H40",
        "TenTTHC": "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        "MaLinhVuc": "G11-TP04",
        "TenLinhVuc": "Lý lịch tư pháp",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Thị Minh Thư",
        "LoaiDoiTuong": 1,
        "DinhDanhCHS": [{ "LoaiDinhDanh": 1, "SoDinhDanh": "036195004127" }],
        "SoDienThoai": "0912345678",
        "TrichYeuHoSo": "Đề nghị cấp Phiếu lý lịch tư pháp số 1",
        "NgayNopHoSo": "20261127081532",
        "NgayTiepNhan": "20261127083000",
        "NgayHenTra": "20261208170000",
        "TrangThaiHoSo": 2,
        "TrangThaiNoiBo": "da-tiep-nhan",
        "GhiChu": ""
    })
}

/// The full sample record of `config/samples/01-dossier-submitted.json` (lists of papers and fees included).
pub fn full_dossier() -> Value {
    json!({
        "MaHoSo": DOSSIER_CODE,
        "MaTTHC": "2.000635.000.00.00.H40",
        "TenTTHC": "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam, người nước ngoài đang cư trú tại Việt Nam",
        "MaLinhVuc": "G11-TP04",
        "TenLinhVuc": "Lý lịch tư pháp",
        "KenhThucHien": 2,
        "ChuHoSo": "Nguyễn Thị Minh Thư",
        "SoGiayToChuHoSo": "036195004127",
        "LoaiDoiTuong": 1,
        "MaDoiTuong": "036195004127",
        "DinhDanhCHS": [{ "LoaiDinhDanh": 1, "SoDinhDanh": "036195004127" }],
        "Email": "minhthu.nguyen@example.vn",
        "SoDienThoai": "0912345678",
        "ThongTinKhac": "Địa chỉ: số 12 đường Trần Hưng Đạo, phường Vị Hoàng, tỉnh Nam Định",
        "TrichYeuHoSo": "Đề nghị cấp Phiếu lý lịch tư pháp số 1 cho bà Nguyễn Thị Minh Thư để bổ sung hồ sơ xin việc",
        "NgayNopHoSo": "20261127081532",
        "NgayTiepNhan": "20261127083000",
        "NgayHenTra": "20261208170000",
        "TrangThaiHoSo": 2,
        "TrangThaiNoiBo": "da-tiep-nhan",
        "HinhThuc": 1,
        "DonViXuLy": "Sở Tư pháp tỉnh Nam Định",
        "GhiChu": "Nhận kết quả qua dịch vụ bưu chính công ích",
        "NoiNopHoSo": "2",
        "HoSoCoThanhPhanSoHoa": 1,
        "TaiKhoanDuocXacThucVoiVNeID": 1,
        "DuocThanhToanTrucTuyen": 1,
        "TaiLieuNop": [{
            "TepDinhKemId": "a41f0c3e-2b7d-4f6a-9e18-3c5d7b9a1e02",
            "TenTepDinhKem": "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp (Mẫu số 03/2013/TT-LLTP)",
            "IsDeleted": 0,
            "MaThanhPhanHoSo": "TP-LLTP-01",
            "DuongDanTaiTepTin": "https://dichvucong.namdinh.gov.vn/files/2026/11/27/000.00.12.H40-261127-00001/to-khai.pdf",
            "DuocSoHoa": 1,
            "DuocTaiSuDung": 0,
            "DuocLayTuKhoDMQG": 0
        }],
        "DanhSachLePhi": [{
            "TenPhiLePhi": "Phí cung cấp thông tin lý lịch tư pháp",
            "MaPhiLePhi": "PHI-LLTP", "HinhThucThu": 2, "Gia": 200000, "LoaiPhiLePhi": 1
        }],
        "DSKetNoiCSDL": [{ "MaCSDL": "CSDLQGDC" }]
    })
}

/// `text` cut to at most `bytes` bytes on a char boundary, from repeating [`FILLER`].
fn filler(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + FILLER.len());
    while s.len() < bytes {
        s.push_str(FILLER);
    }
    let mut cut = bytes;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s
}

/// The dossier to use for an envelope of about `target` bytes: the compact one below 2 KB, else the full one.
pub fn dossier_for(target: usize) -> Value {
    if target < 2048 {
        compact_dossier()
    } else {
        full_dossier()
    }
}

/// `payload` with `GhiChu` grown so that the envelope around it is as close to `target` bytes as UTF-8 allows
/// (never larger). A payload already larger than `target` is left as is.
fn pad(payload: &Value, id: &str, target: usize) -> (Value, Vec<u8>) {
    let mut p = payload.clone();
    let base = envelope(id, &p);
    let room = target.saturating_sub(base.len());
    let current = p["GhiChu"].as_str().unwrap_or("").to_owned();
    if room > 0 {
        p["GhiChu"] = Value::String(current + &filler(room));
    }
    let body = envelope(id, &p);
    (p, body)
}

fn envelope(id: &str, payload: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "type": "dossier.submitted",
        "version": 1,
        "from": FROM,
        "to": [TO],
        "payload": payload,
    }))
    .expect("JSON serializes")
}

/// One envelope, copied per message with the sequence number written into its id and into its dossier code
/// (`MaHoSo`), so each message is about a dossier of its own, as `dossier.submitted` messages are: tracking
/// then inserts a dossier per message rather than updating one hot row that every batch of every process
/// would lock.
#[derive(Clone)]
pub struct Template {
    body: Vec<u8>,
    /// Offset of the sequence digits in `body`.
    slot: usize,
    /// Offset of the dossier code's last five digits in `body`; none when every message is about one dossier.
    dossier_slot: Option<usize>,
    /// The padded payload (for validation benchmarks).
    pub payload: Value,
}

impl Template {
    /// An envelope of about `target` bytes whose ids are `bench-<run>-<seq>`.
    pub fn new(run: &str, target: usize) -> Template {
        let prefix = format!("bench-{run}-");
        let id = format!("{prefix}{}", "0".repeat(SEQ_WIDTH));
        let (payload, body) = pad(&dossier_for(target), &id, target);
        let needle = format!("\"id\":\"{id}\"");
        let at = find(&body, needle.as_bytes()).expect("id in envelope");
        let slot = at + "\"id\":\"".len() + prefix.len();
        let code = format!("\"MaHoSo\":\"{DOSSIER_CODE}\"");
        let dossier_slot = find(&body, code.as_bytes()).expect("MaHoSo in envelope") + code.len()
            - 1
            - DOSSIER_DIGITS;
        Template {
            body,
            slot,
            dossier_slot: Some(dossier_slot),
            payload,
        }
    }

    /// The same envelope with every message about one dossier (`--one-dossier`: the bench's input before
    /// 2026-11-29, for comparisons with builds of that time): tracking then updates one hot row.
    pub fn one_dossier(mut self) -> Template {
        self.dossier_slot = None;
        self
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The envelope of message `seq`.
    pub fn message(&self, seq: u64) -> Vec<u8> {
        let mut b = self.body.clone();
        let digits = format!("{seq:0width$}", width = SEQ_WIDTH);
        b[self.slot..self.slot + SEQ_WIDTH].copy_from_slice(&digits.as_bytes()[..SEQ_WIDTH]);
        if let Some(at) = self.dossier_slot {
            let code = format!("{:0width$}", seq % 100_000, width = DOSSIER_DIGITS);
            b[at..at + DOSSIER_DIGITS].copy_from_slice(code.as_bytes());
        }
        b
    }
}

/// The sequence number at the end of a bench message id (`bench-<run>-<seq>`).
pub fn seq_of(id: &str) -> Option<u64> {
    id.rsplit('-').next()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Deterministic, incompressible bytes (xorshift64*), for attachments.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hit_their_size_and_carry_the_sequence() {
        for target in [1024, 65536] {
            let t = Template::new("abcd1234", target);
            assert!(t.len() <= target && t.len() + 4 > target, "{}", t.len());
            let m = t.message(42);
            let v: Value = serde_json::from_slice(&m).unwrap();
            let id = v["id"].as_str().unwrap();
            assert_eq!(id, "bench-abcd1234-000000042");
            assert_eq!(seq_of(id), Some(42));
            // Each message is about a dossier of its own; everything else is the template's payload.
            assert_eq!(v["payload"]["MaHoSo"], "000.00.12.H40-261127-00042");
            let mut payload = v["payload"].clone();
            payload["MaHoSo"] = DOSSIER_CODE.into();
            assert_eq!(payload, t.payload);
        }
    }
}
