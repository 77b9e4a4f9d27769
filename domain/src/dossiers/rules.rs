//! The rules of dossier tracking, apart from storage so they can be read and tested on their own
//! (docs/dossiers.md states them in words):
//!
//! * who handles a dossier, and so which appointment date (`NgayHenTra`) is in force ([`apply`]);
//! * when it finished, and against which appointment date that is judged;
//! * its state now: `on_time` / `due_soon` / `overdue` while open, `finished_on_time` / `finished_late`,
//!   `withdrawn` / `refused`, or `no_due_date` ([`judge`]); and each step against its own deadline
//!   (`NgayKetThucTheoQuyDinh`), which is never the dossier's due date ([`judge_step`]).
//!
//! Dates are the portal's `yyyyMMddHHmmss` in Vietnam local time (UTC+7); being fixed-width digits, they
//! compare correctly as text, which the SQL of search and statistics relies on too.

use super::DossierFacts;
use serde::Serialize;
use std::time::Duration;

/// Vietnam's offset from UTC, in seconds (no daylight saving).
const VN_OFFSET_SECS: i64 = 7 * 3600;

/// Portal statuses that mean an agency is handling the dossier (4 processing … 10 result returned); 1–3
/// are the reception desk's.
fn is_handling(status: i64) -> bool {
    (4..=10).contains(&status)
}

/// Portal statuses that finish a dossier: 9 processing done, 10 result returned.
pub fn is_finish(status: i64) -> bool {
    matches!(status, 9 | 10)
}

/// A dossier's state, as the admin API, the statistics and the public lookup name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    OnTime,
    DueSoon,
    Overdue,
    FinishedOnTime,
    FinishedLate,
    Withdrawn,
    Refused,
    /// No appointment date to judge by (none sent yet, or none in force when it finished).
    NoDueDate,
}

impl State {
    pub const ALL: [State; 8] = [
        State::OnTime,
        State::DueSoon,
        State::Overdue,
        State::FinishedOnTime,
        State::FinishedLate,
        State::Withdrawn,
        State::Refused,
        State::NoDueDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::OnTime => "on_time",
            State::DueSoon => "due_soon",
            State::Overdue => "overdue",
            State::FinishedOnTime => "finished_on_time",
            State::FinishedLate => "finished_late",
            State::Withdrawn => "withdrawn",
            State::Refused => "refused",
            State::NoDueDate => "no_due_date",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// In Vietnamese, for citizens.
    pub fn name_vi(self) -> &'static str {
        match self {
            State::OnTime => "Trong hạn",
            State::DueSoon => "Sắp đến hạn trả",
            State::Overdue => "Quá hạn",
            State::FinishedOnTime => "Đã giải quyết đúng hạn",
            State::FinishedLate => "Đã giải quyết quá hạn",
            State::Withdrawn => "Đã rút hồ sơ",
            State::Refused => "Không tiếp nhận hoặc dừng xử lý",
            State::NoDueDate => "Chưa có ngày hẹn trả",
        }
    }
}

/// Whether `s` is a real `yyyyMMddHHmmss` date-time.
pub fn is_date14(s: &str) -> bool {
    parse14(s).is_some()
}

fn parse14(s: &str) -> Option<time::PrimitiveDateTime> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let month = time::Month::try_from(n(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(n(0..4)? as i32, month, n(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t))
}

/// Seconds from the date `from` to the date `to` (negative when `to` is earlier); `None` when either is not a
/// date.
pub fn seconds_between(from: &str, to: &str) -> Option<i64> {
    Some((parse14(to)? - parse14(from)?).whole_seconds())
}

fn format14(t: time::PrimitiveDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The instant `ms` (epoch milliseconds) in Vietnam, as `yyyyMMddHHmmss`.
pub fn vn14_from_millis(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000) + VN_OFFSET_SECS)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format14(time::PrimitiveDateTime::new(t.date(), t.time()))
}

/// Now in Vietnam, as `yyyyMMddHHmmss`.
pub fn now_vn14() -> String {
    vn14_from_millis(lienthong_bus::message::now_millis())
}

/// `d` later than the date `s` (saturating at the end of year 9999); `None` when `s` is not a date.
pub fn add14(s: &str, d: Duration) -> Option<String> {
    let t = parse14(s)?;
    let later = time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d));
    Some(
        later
            .map(format14)
            .unwrap_or_else(|| "99991231235959".into()),
    )
}

/// The clock a judgement is made with: now, and how far ahead counts as due soon.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: String,
    /// `now` plus `[tracking] due_soon`.
    pub soon: String,
}

impl Clock {
    pub fn new(now: String, due_soon: Duration) -> Clock {
        let soon = add14(&now, due_soon).unwrap_or_else(|| now.clone());
        Clock { now, soon }
    }

    /// The bus's clock in Vietnam.
    pub fn now(due_soon: Duration) -> Clock {
        Clock::new(now_vn14(), due_soon)
    }

    /// An open deadline: `overdue` once past, `due_soon` within the window, else `on_time`.
    fn open(&self, due: &str) -> State {
        if due < self.now.as_str() {
            State::Overdue
        } else if due <= self.soon.as_str() {
            State::DueSoon
        } else {
            State::OnTime
        }
    }
}

/// What the tracking tables keep per dossier, folded from every message about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dossier {
    pub code: String,
    /// The agency the dossier was first heard from (its reception desk).
    pub receiving_agency: String,
    /// The agency handling it: the sender of the latest message with a handling status (4–10).
    pub handler: Option<String>,
    /// The agency it is attributed to in statistics and search: the handler, else the receiving agency.
    pub agency: String,
    pub status: Option<i64>,
    pub local_status: Option<String>,
    pub procedure_code: Option<String>,
    pub procedure: Option<String>,
    /// `NgayTiepNhan`, as last sent.
    pub received: Option<String>,
    /// When it was received for search and statistics: `received`, else when the bus first heard of it.
    pub received_key: String,
    /// The appointment date in force.
    pub due: Option<String>,
    /// When handling finished: set once, by the first message with status 9 or 10.
    pub finished: Option<String>,
    pub finished_status: Option<i64>,
    /// The appointment date in force when it finished: what `finished` is judged against.
    pub finished_due: Option<String>,
    /// How many messages about it were counted (each once).
    #[serde(rename = "message_count")]
    pub events: i64,
    #[serde(skip)]
    pub first_seen_ms: i64,
    pub sender: String,
    pub last_type: String,
    pub last_message_id: String,
    #[serde(skip)]
    pub updated_ms: i64,
}

impl Dossier {
    /// A dossier first heard of through `f` at `at_ms`, before `f` is applied.
    pub fn new(f: &DossierFacts, at_ms: i64) -> Dossier {
        Dossier {
            code: f.code.clone(),
            receiving_agency: f.sender.clone(),
            agency: f.sender.clone(),
            received_key: vn14_from_millis(at_ms),
            first_seen_ms: at_ms,
            sender: f.sender.clone(),
            last_type: f.kind.clone(),
            last_message_id: f.message_id.clone(),
            updated_ms: at_ms,
            ..Default::default()
        }
    }

    /// Its state by `clock`.
    pub fn state(&self, clock: &Clock) -> State {
        judge(
            self.status,
            self.due.as_deref(),
            self.finished.as_deref(),
            self.finished_due.as_deref(),
            clock,
        )
    }
}

/// What applying one message decided about its appointment date, kept with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueChange {
    /// The message carried none.
    None,
    /// It carried one, now in force.
    Applied,
    /// It carried one from an agency that does not handle the dossier: kept in the history, not in force.
    Ignored,
}

/// Applies one message's facts (accepted at `at_ms`) to the dossier, in arrival order.
pub fn apply(d: &mut Dossier, f: &DossierFacts, at_ms: i64) -> DueChange {
    if let Some(s) = f.status {
        d.status = Some(s);
        if is_handling(s) {
            d.handler = Some(f.sender.clone());
        }
    }
    let keep = |new: &Option<String>, old: &mut Option<String>| {
        if new.is_some() {
            old.clone_from(new);
        }
    };
    keep(&f.local_status, &mut d.local_status);
    keep(&f.procedure_code, &mut d.procedure_code);
    keep(&f.procedure, &mut d.procedure);
    if let Some(r) = &f.received {
        d.received = Some(r.clone());
        d.received_key.clone_from(r);
    }
    // The appointment date is the handling agency's to set; before any agency handles it, the desk's.
    let change = match &f.due {
        None => DueChange::None,
        Some(due) if d.handler.as_ref().is_none_or(|h| *h == f.sender) => {
            d.due = Some(due.clone());
            DueChange::Applied
        }
        Some(_) => DueChange::Ignored,
    };
    if d.finished.is_none()
        && let Some(s) = f.status.filter(|s| is_finish(*s))
    {
        d.finished = Some(
            f.finished
                .clone()
                .or_else(|| f.step_at.clone())
                .unwrap_or_else(|| vn14_from_millis(at_ms)),
        );
        d.finished_status = Some(s);
        d.finished_due.clone_from(&d.due);
    }
    d.agency = d
        .handler
        .clone()
        .unwrap_or_else(|| d.receiving_agency.clone());
    d.sender.clone_from(&f.sender);
    d.last_type.clone_from(&f.kind);
    d.last_message_id.clone_from(&f.message_id);
    d.updated_ms = at_ms;
    d.events += 1;
    change
}

/// A dossier's state: finished (judged once, against the appointment date in force then) comes first; then
/// withdrawn (7) or refused (3 not received, 8 processing stopped) by the current status; else open, judged
/// by `clock` against the appointment date in force.
pub fn judge(
    status: Option<i64>,
    due: Option<&str>,
    finished: Option<&str>,
    finished_due: Option<&str>,
    clock: &Clock,
) -> State {
    if let Some(f) = finished {
        return match finished_due {
            None => State::NoDueDate,
            Some(d) if f <= d => State::FinishedOnTime,
            Some(_) => State::FinishedLate,
        };
    }
    match status {
        Some(7) => State::Withdrawn,
        Some(3 | 8) => State::Refused,
        _ => match due {
            None => State::NoDueDate,
            Some(d) => clock.open(d),
        },
    }
}

/// One step against its own deadline (`NgayKetThucTheoQuyDinh`): a step that has ended (`ended` is when the
/// next step began, or its own date when the dossier's handling is over) is finished on time or late; the
/// current step of an open dossier is judged by `clock`.
pub fn judge_step(deadline: &str, ended: Option<&str>, clock: &Clock) -> State {
    match ended {
        Some(e) if e <= deadline => State::FinishedOnTime,
        Some(_) => State::FinishedLate,
        None => clock.open(deadline),
    }
}

/// The same judgement as [`judge`] as an SQL expression over the `lt_dossier` columns, with `now` and `soon`
/// the placeholders of the clock's two dates. Search and statistics filter and count with it.
pub fn state_sql(now: &str, soon: &str) -> String {
    format!(
        "(CASE
            WHEN finished IS NOT NULL THEN
                CASE WHEN finished_due IS NULL THEN 'no_due_date'
                     WHEN finished <= finished_due THEN 'finished_on_time'
                     ELSE 'finished_late' END
            WHEN status = 7 THEN 'withdrawn'
            WHEN status IN (3, 8) THEN 'refused'
            WHEN due IS NULL THEN 'no_due_date'
            WHEN due < {now} THEN 'overdue'
            WHEN due <= {soon} THEN 'due_soon'
            ELSE 'on_time'
        END)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new("20261127120000".into(), Duration::from_secs(2 * 86_400))
    }

    #[test]
    fn dates_are_checked_formatted_and_added_in_vietnam_time() {
        assert!(is_date14("20240229235959"));
        assert!(!is_date14("20230229000000"));
        assert!(!is_date14("2026112712000"));
        assert!(!is_date14("2026112712000x"));
        // 2026-11-27T05:00:00Z is noon in Vietnam.
        assert_eq!(vn14_from_millis(1_795_755_600_000), "20261127120000");
        assert_eq!(
            add14("20261231230000", Duration::from_secs(3600)).as_deref(),
            Some("20270101000000")
        );
        assert_eq!(clock().soon, "20261129120000");
    }

    #[test]
    fn open_dossiers_are_judged_by_their_appointment_date() {
        let c = clock();
        let j = |st, due| judge(st, due, None, None, &c);
        assert_eq!(j(Some(4), Some("20261210170000")), State::OnTime);
        assert_eq!(j(Some(4), Some("20261129120000")), State::DueSoon);
        assert_eq!(j(Some(4), Some("20261127120000")), State::DueSoon);
        assert_eq!(j(Some(4), Some("20261127115959")), State::Overdue);
        assert_eq!(j(Some(2), None), State::NoDueDate);
        assert_eq!(j(Some(7), Some("20261101000000")), State::Withdrawn);
        assert_eq!(j(Some(3), Some("20261101000000")), State::Refused);
        assert_eq!(j(Some(8), None), State::Refused);
    }

    #[test]
    fn finished_dossiers_are_judged_against_the_due_date_in_force_then() {
        let c = clock();
        let j = |fin, fdue| judge(Some(10), Some("20261101000000"), Some(fin), fdue, &c);
        assert_eq!(
            j("20261201090000", Some("20261201170000")),
            State::FinishedOnTime
        );
        assert_eq!(
            j("20261201180000", Some("20261201170000")),
            State::FinishedLate
        );
        assert_eq!(j("20261201180000", None), State::NoDueDate);
        // Finished first, withdrawn later: still judged as finished.
        assert_eq!(
            judge(
                Some(7),
                None,
                Some("20261120000000"),
                Some("20261130000000"),
                &c
            ),
            State::FinishedOnTime
        );
    }

    #[test]
    fn steps_are_judged_against_their_own_deadline() {
        let c = clock();
        assert_eq!(
            judge_step("20261125170000", Some("20261125160000"), &c),
            State::FinishedOnTime
        );
        assert_eq!(
            judge_step("20261125170000", Some("20261126080000"), &c),
            State::FinishedLate
        );
        assert_eq!(judge_step("20261125170000", None, &c), State::Overdue);
        assert_eq!(judge_step("20261128170000", None, &c), State::DueSoon);
    }

    #[test]
    fn state_names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(State::parse("late"), None);
    }
}
