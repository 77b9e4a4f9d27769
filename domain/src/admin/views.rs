//! What the domain's admin endpoints say about a dossier: portal status names, and one dossier as JSON —
//! its state, the timeline of its steps with their own deadlines judged, and its appointment date's history.

use crate::dossiers::DossierView;
use crate::dossiers::rules::{Clock, State};

/// Portal status names (the national portal's dossier status codes; see docs/dossiers.md), for people reading
/// the answer at 2 a.m.
pub fn status_name(code: i64) -> &'static str {
    match code {
        1 => "newly registered online",
        2 => "received by the one-stop desk",
        3 => "not received (refused)",
        4 => "processing",
        5 => "request for more papers",
        6 => "request to pay financial obligations",
        7 => "applicant withdrew",
        8 => "processing stopped",
        9 => "processing done",
        10 => "result returned",
        _ => "unknown",
    }
}

/// The same in Vietnamese, for citizens.
pub fn status_name_vi(code: i64) -> &'static str {
    match code {
        1 => "Mới đăng ký trực tuyến",
        2 => "Đã tiếp nhận",
        3 => "Không tiếp nhận",
        4 => "Đang xử lý",
        5 => "Yêu cầu bổ sung giấy tờ",
        6 => "Yêu cầu thực hiện nghĩa vụ tài chính",
        7 => "Công dân xin rút hồ sơ",
        8 => "Dừng xử lý",
        9 => "Đã xử lý xong",
        10 => "Đã trả kết quả",
        _ => "Không xác định",
    }
}

/// The verdict in the words of the first version of this endpoint (`timing.state`), kept for whoever reads
/// them; `state` is the name to branch on.
fn legacy_words(state: State) -> &'static str {
    match state {
        State::OnTime => "open, on track",
        State::DueSoon => "open, due soon",
        State::Overdue => "open, OVERDUE",
        State::FinishedOnTime => "finished on time",
        State::FinishedLate => "finished late",
        State::Withdrawn => "withdrawn",
        State::Refused => "refused",
        State::NoDueDate => "no appointment date",
    }
}

/// `timing`: `{state, verdict, on_time, due, now}` — `verdict` is the dossier's state, `due` the
/// appointment date it is judged against (for a finished dossier, the one in force when it finished).
pub fn timing(view: &DossierView, clock: &Clock) -> serde_json::Value {
    let state = view.state(clock);
    let due = if view.finished.is_some() {
        view.finished_due.as_deref()
    } else {
        view.due.as_deref()
    };
    let on_time = match state {
        State::OnTime | State::DueSoon | State::FinishedOnTime => Some(true),
        State::Overdue | State::FinishedLate => Some(false),
        State::Withdrawn | State::Refused | State::NoDueDate => None,
    };
    serde_json::json!({
        "state": legacy_words(state),
        "verdict": state,
        "on_time": on_time,
        "due": due,
        "now": clock.now,
    })
}

/// One dossier for `GET /v1/dossiers/{code}` (without `messages`, which the handler adds): the stored facts
/// and events, and what follows from them by `clock`. `name` gives an agency's configured name.
pub fn dossier_json(
    view: &DossierView,
    clock: &Clock,
    name: &dyn Fn(&str) -> Option<String>,
) -> serde_json::Value {
    let mut body = serde_json::to_value(view).unwrap_or_default();
    let state = view.state(clock);
    body["state"] = serde_json::json!(state);
    body["status_name"] = serde_json::json!(view.status.map(status_name));
    body["agency_name"] = serde_json::json!(name(&view.agency));
    body["receiving_agency_name"] = serde_json::json!(name(&view.receiving_agency));
    body["timing"] = timing(view, clock);
    body["due_history"] = serde_json::json!(view.due_history());
    body["steps"] = view
        .steps(clock)
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["status_name"] = status_name(s.status).into();
            v["agency_name"] = serde_json::json!(name(&s.agency));
            v
        })
        .collect();
    body
}
