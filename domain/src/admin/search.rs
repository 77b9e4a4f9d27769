//! Search and on-time rates on the admin API: `GET /v1/dossiers?…` and `GET /v1/stats/on-time?…`.
//!
//! Query parameters are checked strictly (an unknown or repeated one, or a malformed value, is 400
//! `invalid_query` naming it) because a mistyped filter that is silently ignored gives a wrong count that
//! looks right. An empty value is an absent one, as an HTML form sends it.

use super::{AdminState, error_response, status_name};
use crate::dossiers::rules::{State as DossierState, is_date14};
use crate::dossiers::{Search, StatsRow};
use crate::feedback::FeedbackRow;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use lienthong_bus::error::{ApiError, code};
use std::collections::BTreeMap;

/// Most results per page.
const MAX_PER_PAGE: u32 = 500;

type Params = BTreeMap<String, String>;

fn bad(name: &str, why: impl Into<String>) -> ApiError {
    let why = why.into();
    ApiError::new(
        code::INVALID_QUERY,
        format!("query parameter `{name}`: {why}"),
    )
    .at(name, why)
}

/// The parameters, each at most once and each one of `allowed`; empty values left out.
fn params(raw: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
    let mut out = Params::new();
    for (k, v) in raw {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(
                &k,
                format!("unknown; expected one of: {}", allowed.join(", ")),
            ));
        }
        if out.contains_key(&k) {
            return Err(bad(&k, "given twice"));
        }
        if !v.is_empty() {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// A date bound: `yyyy-MM-dd` or `yyyyMMdd` (the whole day: from its first second, or to its last) or an
/// exact `yyyyMMddHHmmss`, Vietnam time.
fn date_bound(p: &Params, name: &str, end_of_day: bool) -> Result<Option<String>, ApiError> {
    let Some(v) = p.get(name) else {
        return Ok(None);
    };
    let b = v.as_bytes();
    let day = match v.len() {
        8 => Some(v.clone()),
        10 if b[4] == b'-' && b[7] == b'-' => Some(v.replace('-', "")),
        _ => None,
    };
    let full = match day {
        Some(d) => format!("{d}{}", if end_of_day { "235959" } else { "000000" }),
        None => v.clone(),
    };
    if is_date14(&full) {
        Ok(Some(full))
    } else {
        Err(bad(
            name,
            format!("`{v}` is not a date; write yyyy-MM-dd, yyyyMMdd or yyyyMMddHHmmss"),
        ))
    }
}

fn number(p: &Params, name: &str, min: u32, max: u32, default: u32) -> Result<u32, ApiError> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                bad(
                    name,
                    format!("`{v}` is not a whole number from {min} to {max}"),
                )
            }),
    }
}

fn search_query(p: &Params) -> Result<Search, ApiError> {
    let status = match p.get("status") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| bad("status", format!("`{v}` is not a portal status (1 to 10)")))?,
        ),
    };
    let state = match p.get("state") {
        None => None,
        Some(v) => Some(DossierState::parse(v).ok_or_else(|| {
            let names: Vec<&str> = DossierState::ALL.iter().map(|s| s.as_str()).collect();
            bad(
                "state",
                format!(
                    "`{v}` is not a state; expected one of: {}",
                    names.join(", ")
                ),
            )
        })?),
    };
    Ok(Search {
        agency: p.get("agency").cloned(),
        status,
        state,
        received_from: date_bound(p, "received_from", false)?,
        received_to: date_bound(p, "received_to", true)?,
        page: number(p, "page", 1, 1_000_000, 1)?,
        per_page: number(p, "per_page", 1, MAX_PER_PAGE, 50)?,
    })
}

/// `GET /v1/dossiers?agency=&status=&state=&received_from=&received_to=&page=&per_page=`: dossiers newest
/// received first, `per_page` (default 50, at most 500) at a time.
pub(super) async fn search(
    State(s): State<AdminState>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    match search_value(&s, raw).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

/// The search's answer as JSON (what `GET /v1/dossiers` answers; the console draws it too).
pub(crate) async fn search_value(
    s: &AdminState,
    raw: Vec<(String, String)>,
) -> Result<serde_json::Value, ApiError> {
    const ALLOWED: &[&str] = &[
        "agency",
        "status",
        "state",
        "received_from",
        "received_to",
        "page",
        "per_page",
    ];
    let mut q = params(raw, ALLOWED).and_then(|p| search_query(&p))?;
    // Any of an agency's codes finds its dossiers, as routes and receivers take any of them.
    q.agency = q.agency.map(|a| s.agency_names.canonical(&a));
    let clock = s.clock();
    let page = s
        .dossiers
        .search(&q, &clock)
        .await
        .map_err(|e| ApiError::new(code::STATE_UNAVAILABLE, e.to_string()))?;
    let dossiers: Vec<serde_json::Value> = page
        .dossiers
        .iter()
        .map(|(d, state)| {
            serde_json::json!({
                "code": d.code,
                "procedure": d.procedure,
                "procedure_code": d.procedure_code,
                "receiving_agency": d.receiving_agency,
                "receiving_agency_name": s.name(&d.receiving_agency),
                "agency": d.agency,
                "agency_name": s.name(&d.agency),
                "status": d.status,
                "status_name": d.status.map(status_name),
                "received": d.received_key,
                "due": d.due,
                "finished": d.finished,
                "state": state,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "page": q.page,
        "per_page": q.per_page,
        "total": page.total,
        "now": clock.now,
        "dossiers": dossiers,
    }))
}

/// One row of the on-time table, with its name and rate.
fn stats_json(
    agency: Option<&str>,
    name: Option<String>,
    r: &StatsRow,
    fb: &FeedbackRow,
) -> serde_json::Value {
    serde_json::json!({
        "agency": agency,
        "name": name,
        "received": r.received,
        "finished": r.finished,
        "finished_on_time": r.finished_on_time,
        "finished_late": r.finished_late,
        "open_overdue": r.open_overdue,
        "on_time_rate": rate(r),
        "feedback_received": fb.feedback_received,
        "feedback_answered": fb.feedback_answered,
        "answer_hours_avg": fb.answer_hours_avg(),
        "ratings": fb.ratings,
        "rating_avg": fb.rating_avg(),
    })
}

/// Finished on time out of those finished and judged (on time or late), in percent with two decimals; none
/// when nothing was judged.
pub fn rate(r: &StatsRow) -> Option<f64> {
    let judged = r.finished_on_time + r.finished_late;
    (judged > 0).then(|| ((r.finished_on_time as f64) * 10_000.0 / judged as f64).round() / 100.0)
}

/// `GET /v1/stats/on-time?from=&to=&agency=[&format=csv]`: per agency (every configured one, and any other
/// with dossiers in the period) and for the province.
pub(super) async fn on_time(
    State(s): State<AdminState>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let t = match on_time_table(&s, raw).await {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    if t.csv {
        let mut out = String::from(
            "\u{feff}agency,name,received,finished,finished_on_time,finished_late,open_overdue,on_time_rate\r\n",
        );
        for r in t.rows.values() {
            csv_row(
                &mut out,
                &r.agency,
                s.name(&r.agency).as_deref().unwrap_or(""),
                r,
            );
        }
        csv_row(&mut out, "", TOTAL_NAME, &t.total);
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"on-time.csv\"",
                ),
            ],
            out,
        )
            .into_response();
    }
    axum::Json(on_time_json(&s, &t)).into_response()
}

/// The province total's name.
const TOTAL_NAME: &str = "Toàn tỉnh";

/// The on-time table of a period: one row per agency, and the total.
pub(crate) struct OnTimeTable {
    from: Option<String>,
    to: Option<String>,
    csv: bool,
    now: String,
    rows: BTreeMap<String, StatsRow>,
    total: StatsRow,
    /// Feedback and ratings per department (absent: none), and for the province.
    feedback: BTreeMap<String, FeedbackRow>,
    feedback_total: FeedbackRow,
}

/// Counts the on-time table for `?from=&to=&agency=&format=`.
pub(crate) async fn on_time_table(
    s: &AdminState,
    raw: Vec<(String, String)>,
) -> Result<OnTimeTable, ApiError> {
    let (from, to, agency, csv) =
        params(raw, &["from", "to", "agency", "format"]).and_then(|p| {
            let from = date_bound(&p, "from", false)?;
            let to = date_bound(&p, "to", true)?;
            let csv = match p.get("format").map(String::as_str) {
                None | Some("json") => false,
                Some("csv") => true,
                Some(other) => {
                    return Err(bad("format", format!("`{other}`: expected json or csv")));
                }
            };
            Ok((from, to, p.get("agency").cloned(), csv))
        })?;
    let agency = agency.map(|a| s.agency_names.canonical(&a));
    let clock = s.clock();
    let lo = from.clone().unwrap_or_else(|| "00000000000000".into());
    let hi = to.clone().unwrap_or_else(|| "99999999999999".into());
    let counted = s
        .dossiers
        .on_time(&lo, &hi, agency.as_deref(), &clock)
        .await
        .map_err(|e| ApiError::new(code::STATE_UNAVAILABLE, e.to_string()))?;
    // Every configured agency has a row (zeros included); a filter keeps only its own.
    let mut rows: BTreeMap<String, StatsRow> = BTreeMap::new();
    let names = s.agency_names.all();
    for code in names.keys() {
        if agency.as_ref().is_none_or(|a| a == code) {
            rows.insert(
                code.clone(),
                StatsRow {
                    agency: code.clone(),
                    ..Default::default()
                },
            );
        }
    }
    for r in counted {
        rows.insert(r.agency.clone(), r);
    }
    // Feedback answer times and ratings beside the on-time counts (feedback.rs says what each counts).
    let feedback = crate::feedback::stats(&s.state, &lo, &hi, agency.as_deref())
        .await
        .map_err(|e| ApiError::new(code::STATE_UNAVAILABLE, e.to_string()))?;
    for code in feedback.keys() {
        rows.entry(code.clone()).or_insert_with(|| StatsRow {
            agency: code.clone(),
            ..Default::default()
        });
    }
    let mut fb_total = FeedbackRow::default();
    for f in feedback.values() {
        fb_total.add(f);
    }
    let mut total = StatsRow::default();
    for r in rows.values() {
        total.received += r.received;
        total.finished += r.finished;
        total.finished_on_time += r.finished_on_time;
        total.finished_late += r.finished_late;
        total.open_overdue += r.open_overdue;
    }
    Ok(OnTimeTable {
        from,
        to,
        csv,
        now: clock.now,
        rows,
        total,
        feedback,
        feedback_total: fb_total,
    })
}

/// The table as `GET /v1/stats/on-time` answers it.
pub(crate) fn on_time_json(s: &AdminState, t: &OnTimeTable) -> serde_json::Value {
    serde_json::json!({
        "from": t.from,
        "to": t.to,
        "now": t.now,
        "agencies": t
            .rows
            .values()
            .map(|r| {
                let fb = t.feedback.get(&r.agency).cloned().unwrap_or_default();
                stats_json(Some(&r.agency), s.name(&r.agency), r, &fb)
            })
            .collect::<Vec<_>>(),
        "total": stats_json(None, Some(TOTAL_NAME.into()), &t.total, &t.feedback_total),
    })
}

fn csv_row(out: &mut String, agency: &str, name: &str, r: &StatsRow) {
    let field = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    let rate = rate(r).map(|x| format!("{x:.2}")).unwrap_or_default();
    out.push_str(&format!(
        "{},{},{},{},{},{},{},{}\r\n",
        field(agency),
        field(name),
        r.received,
        r.finished,
        r.finished_on_time,
        r.finished_late,
        r.open_overdue,
        rate
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters_are_checked_and_named() {
        let q = params(
            p(&[
                ("agency", ""),
                ("status", "4"),
                ("received_from", "2026-11-01"),
            ]),
            &["agency", "status", "received_from"],
        )
        .unwrap();
        assert!(!q.contains_key("agency"), "empty is absent");
        let s = search_query(&q).unwrap();
        assert_eq!(s.status, Some(4));
        assert_eq!(s.received_from.as_deref(), Some("20261101000000"));
        assert_eq!(
            date_bound(
                &params(p(&[("to", "20261130")]), &["to"]).unwrap(),
                "to",
                true
            )
            .unwrap()
            .as_deref(),
            Some("20261130235959")
        );
        for (raw, path) in [
            (p(&[("stat", "4")]), "stat"),
            (p(&[("status", "4"), ("status", "5")]), "status"),
        ] {
            let e = params(raw, &["status"]).unwrap_err();
            assert_eq!(
                (e.code, e.details[0].path.as_str()),
                (code::INVALID_QUERY, path)
            );
        }
        for (k, v) in [
            ("status", "11"),
            ("state", "late"),
            ("received_from", "2026-13-01"),
            ("received_to", "yesterday"),
            ("page", "0"),
            ("per_page", "501"),
        ] {
            let q = params(p(&[(k, v)]), &[k]).unwrap();
            let e = search_query(&q).unwrap_err();
            assert_eq!(e.details[0].path, k, "{e:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn the_rate_is_on_time_out_of_judged_in_percent() {
        let r = |on, late| StatsRow {
            finished_on_time: on,
            finished_late: late,
            ..Default::default()
        };
        assert_eq!(rate(&r(0, 0)), None);
        assert_eq!(rate(&r(7671, 100)), Some(98.71));
        assert_eq!(rate(&r(2, 1)), Some(66.67));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = String::new();
        csv_row(
            &mut out,
            "000.00.12.H40",
            "Sở Tư pháp, \"STP\"",
            &StatsRow::default(),
        );
        assert_eq!(
            out,
            "000.00.12.H40,\"Sở Tư pháp, \"\"STP\"\"\",0,0,0,0,0,\r\n"
        );
    }
}
