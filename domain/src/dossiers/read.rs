//! Reading one dossier back: its row, every message about it in order, and what follows from them — the
//! timeline of steps (each with its own deadline judged) and the history of its appointment date.

use super::row::{COLUMNS, dossier_from_row};
use super::rules::{self, Clock, Dossier, State};
use super::store::DossierStore;
use lienthong_bus::state::{rfc3339_from_millis, text};
use serde::Serialize;
use sqlx::Row;

/// One message about a dossier, as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DossierEvent {
    /// Its place among the dossier's messages, from 1, in the order they were accepted.
    pub seq: i64,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sender: String,
    pub status: Option<i64>,
    pub note: Option<String>,
    /// When the bus accepted it (RFC 3339, UTC).
    pub at: String,
    /// When the step it reports happened (`ThoiDiemXuLy`, else when the bus accepted it), Vietnam time.
    pub step_at: String,
    /// The step's own deadline (`NgayKetThucTheoQuyDinh`).
    pub step_deadline: Option<String>,
    /// The appointment date it carried (`NgayHenTra`).
    pub due: Option<String>,
    /// Whether that appointment date was put in force (false: its sender was not handling the dossier).
    pub due_applied: Option<bool>,
}

/// A dossier as it stands, with every message about it oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DossierView {
    #[serde(flatten)]
    pub dossier: Dossier,
    pub first_seen_at: String,
    pub updated_at: String,
    pub events: Vec<DossierEvent>,
}

impl std::ops::Deref for DossierView {
    type Target = Dossier;
    fn deref(&self) -> &Dossier {
        &self.dossier
    }
}

/// One step of a dossier's timeline: a message that reported a status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub seq: i64,
    pub status: i64,
    /// The agency that reported it.
    pub agency: String,
    /// When it happened (`yyyyMMddHHmmss`, Vietnam time).
    pub at: String,
    /// Its own deadline, and that deadline's verdict: never the dossier's.
    pub deadline: Option<String>,
    pub deadline_state: Option<State>,
    pub note: Option<String>,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One appointment date a message carried: the one it replaced, and whether it was put in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DueEntry {
    pub due: String,
    pub previous: Option<String>,
    pub applied: bool,
    pub from: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the bus accepted the message (RFC 3339, UTC).
    pub at: String,
}

impl DossierView {
    /// Its state by `clock`.
    pub fn state(&self, clock: &Clock) -> State {
        self.dossier.state(clock)
    }

    /// The steps, oldest first. A step ends when the next one happens; the last one ends with it when the
    /// dossier's handling is over (finished, withdrawn, refused), and is judged by `clock` while it is open.
    pub fn steps(&self, clock: &Clock) -> Vec<Step> {
        let over = self.finished.is_some() || matches!(self.status, Some(3 | 7 | 8));
        let with_status: Vec<(&DossierEvent, i64)> = self
            .events
            .iter()
            .filter_map(|e| e.status.map(|s| (e, s)))
            .collect();
        with_status
            .iter()
            .enumerate()
            .map(|(i, (e, status))| {
                let ended = match with_status.get(i + 1) {
                    Some((next, _)) => Some(next.step_at.as_str()),
                    None if over => Some(e.step_at.as_str()),
                    None => None,
                };
                Step {
                    seq: e.seq,
                    status: *status,
                    agency: e.sender.clone(),
                    at: e.step_at.clone(),
                    deadline: e.step_deadline.clone(),
                    deadline_state: e
                        .step_deadline
                        .as_deref()
                        .map(|d| rules::judge_step(d, ended, clock)),
                    note: e.note.clone(),
                    message_id: e.message_id.clone(),
                    kind: e.kind.clone(),
                }
            })
            .collect()
    }

    /// Every change of the appointment date, and every one sent but not put in force, oldest first. A
    /// message repeating the date in force is not a change.
    pub fn due_history(&self) -> Vec<DueEntry> {
        let mut in_force: Option<String> = None;
        let mut out = Vec::new();
        for e in &self.events {
            let Some(due) = &e.due else { continue };
            let applied = e.due_applied.unwrap_or(true);
            if applied && in_force.as_ref() == Some(due) {
                continue;
            }
            out.push(DueEntry {
                due: due.clone(),
                previous: in_force.clone(),
                applied,
                from: e.sender.clone(),
                message_id: e.message_id.clone(),
                kind: e.kind.clone(),
                at: e.at.clone(),
            });
            if applied {
                in_force = Some(due.clone());
            }
        }
        out
    }
}

impl DossierStore {
    /// The dossier `code`, with its messages in the order they were accepted.
    pub async fn get(&self, code: &str) -> Result<Option<DossierView>, sqlx::Error> {
        let state = self.state();
        let code = text(code);
        let Some(r) = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lt_dossier WHERE ns = $1 AND code = $2"
        ))
        .bind(state.namespace())
        .bind(&code)
        .fetch_optional(state.pool())
        .await?
        else {
            return Ok(None);
        };
        let dossier = dossier_from_row(&r)?;
        let events = sqlx::query(
            "SELECT seq, message_id, kind, sender, status, note, at_ms, step_at, step_deadline, due, due_applied
             FROM lt_dossier_event WHERE ns = $1 AND code = $2 ORDER BY seq, at_ms, sender, message_id",
        )
        .bind(state.namespace())
        .bind(&code)
        .fetch_all(state.pool())
        .await?
        .into_iter()
        .map(|e| {
            let at_ms: i64 = e.try_get("at_ms")?;
            let step_at: Option<String> = e.try_get("step_at")?;
            let applied: Option<i64> = e.try_get("due_applied")?;
            Ok(DossierEvent {
                seq: e.try_get("seq")?,
                message_id: e.try_get("message_id")?,
                kind: e.try_get("kind")?,
                sender: e.try_get("sender")?,
                status: e.try_get("status")?,
                note: e.try_get("note")?,
                at: rfc3339_from_millis(at_ms),
                step_at: step_at.unwrap_or_else(|| rules::vn14_from_millis(at_ms)),
                step_deadline: e.try_get("step_deadline")?,
                due: e.try_get("due")?,
                due_applied: applied.map(|a| a != 0),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(DossierView {
            first_seen_at: rfc3339_from_millis(dossier.first_seen_ms),
            updated_at: rfc3339_from_millis(dossier.updated_ms),
            dossier,
            events,
        }))
    }
}
