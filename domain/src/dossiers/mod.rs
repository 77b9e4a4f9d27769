//! Dossier tracking: where a citizen's dossier is, and whether it is on time.
//!
//! Every accepted `dossier.*` message says something about one dossier (`MaHoSo`): its portal status
//! (`TrangThaiHoSo`, 1–10), its appointment date (`NgayHenTra`), when it was received and finished. The
//! [`Tracker`] observes accepted messages, picks those facts out of the payload (field names of the national
//! portal's integration guide; see docs/dossiers.md) and keeps the latest per dossier with every message about
//! it, which the admin API shows at `GET /v1/dossiers/{code}`.

pub mod store;

use async_trait::async_trait;
use lienthong_bus::message::Meta;
use lienthong_bus::plugin::Observer;
pub use store::{DossierEvent, DossierFacts, DossierStore, DossierView};

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

/// Picks the tracking facts out of a dossier payload (portal field names).
pub fn facts(payload: &serde_json::Value) -> Option<DossierFacts> {
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let n = |k: &str| {
        payload.get(k).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(DossierFacts {
        code: s("MaHoSo")?,
        status: n("TrangThaiHoSo").or_else(|| n("TrangThai")),
        local_status: s("TrangThaiNoiBo"),
        received: s("NgayTiepNhan"),
        due: s("NgayHenTra").or_else(|| s("NgayKetThucTheoQuyDinh")),
        finished: s("NgayKetThucXuLy").or_else(|| s("NgayTra")),
        note: s("NoiDungXuLy").map(|t| t.chars().take(200).collect()),
        ..Default::default()
    })
}
