//! Dossier tracking: where a citizen's dossier is, and whether it is on time.
//!
//! Every accepted `dossier.*` message says something about one dossier (`MaHoSo`): its portal status
//! (`TrangThaiHoSo`, 1–10), its appointment date (`NgayHenTra`), a step's own deadline
//! (`NgayKetThucTheoQuyDinh`), when it was received and finished. The [`Tracker`] observes accepted messages,
//! picks those facts out of the payload (field names of the national portal's integration guide; see
//! docs/dossiers.md) and folds them into one row per dossier by the [`rules`], keeping every message about it
//! as a step of its timeline. The admin API shows one dossier, searches them and counts on-time rates; the
//! public lookup shows a citizen the little they may see.

mod delivered;
mod query;
mod read;
mod row;
pub mod rules;
pub mod store;

use async_trait::async_trait;
pub use delivered::Delivered;
use lienthong_bus::message::Meta;
use lienthong_bus::plugin::Observer;
pub use query::{Page, Search, StatsRow};
pub use read::{DossierEvent, DossierView};
pub use store::{DossierFacts, DossierStore};

/// The observer that records dossier facts.
pub struct Tracker {
    pub store: DossierStore,
}

#[async_trait]
impl Observer for Tracker {
    fn wants(&self, kind: &str) -> bool {
        kind.starts_with("dossier.")
    }

    async fn accepted(&self, meta: &Meta, payload: &serde_json::Value) {
        let Some(mut facts) = facts(payload) else {
            return;
        };
        facts.sender = meta.from.clone();
        facts.kind = meta.kind.clone();
        facts.message_id = meta.id.clone();
        if let Err(e) = self.store.record(facts.clone()).await {
            tracing::warn!(dossier = %facts.code, error = %e, "Could not record dossier tracking");
        }
    }
}

/// Picks the tracking facts out of a dossier payload (portal field names; docs/dossiers.md). A date that is
/// not a real `yyyyMMddHHmmss` counts as absent.
pub fn facts(payload: &serde_json::Value) -> Option<DossierFacts> {
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let date = |k: &str| s(k).filter(|d| rules::is_date14(d));
    let n = |k: &str| {
        payload.get(k).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let capped = |v: String, max: usize| v.chars().take(max).collect::<String>();
    let status = n("TrangThaiHoSo").or_else(|| n("TrangThai"));
    // When the step happened: its own time, else the date of the record that goes with the status it reports.
    let step_at = date("ThoiDiemXuLy").or_else(|| match status? {
        1 => date("NgayNopHoSo"),
        2 => date("NgayTiepNhan"),
        3 => date("NgayTuChoi"),
        9 => date("NgayKetThucXuLy"),
        10 => date("NgayTra"),
        _ => None,
    });
    Some(DossierFacts {
        code: s("MaHoSo")?,
        status,
        local_status: s("TrangThaiNoiBo"),
        procedure_code: s("MaTTHC").map(|v| capped(v, 100)),
        procedure: s("TenTTHC").map(|v| capped(v, 500)),
        received: date("NgayTiepNhan"),
        due: date("NgayHenTra"),
        finished: date("NgayKetThucXuLy").or_else(|| date("NgayTra")),
        step_deadline: date("NgayKetThucTheoQuyDinh"),
        step_at,
        note: s("NoiDungXuLy").map(|t| capped(t, 200)),
        ..Default::default()
    })
}
