//! What the domain's admin endpoints judge: portal status names, the Vietnam clock, and whether a dossier is on
//! time.

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

/// Now in Vietnam (UTC+7) as `yyyyMMddHHmmss`, the portal's date format.
pub fn now_vn_14() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(7);
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

/// Whether a dossier is on time: finished by its appointment date, or not yet past it.
pub fn timing(
    status: Option<i64>,
    due: Option<&str>,
    finished: Option<&str>,
    now: &str,
) -> serde_json::Value {
    let done = matches!(status, Some(3 | 7 | 8 | 9 | 10));
    let valid = |s: &str| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit());
    let due = due.filter(|d| valid(d));
    let (state, on_time) = match (due, done, finished.filter(|f| valid(f))) {
        (None, _, _) => ("no appointment date", None),
        (Some(d), true, Some(f)) => (
            if f <= d {
                "finished on time"
            } else {
                "finished late"
            },
            Some(f <= d),
        ),
        (Some(_), true, None) => ("finished (no finish date sent)", None),
        (Some(d), false, _) => (
            if now <= d {
                "open, on track"
            } else {
                "open, OVERDUE"
            },
            Some(now <= d),
        ),
    };
    serde_json::json!({ "state": state, "on_time": on_time, "due": due, "now": now })
}

#[cfg(test)]
mod tests {
    use super::timing;

    #[test]
    fn on_time_is_judged_against_the_appointment_date() {
        let now = "20261127120000";
        let t = |st, due, fin| {
            timing(st, due, fin, now)["state"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(t(Some(4), Some("20261130170000"), None), "open, on track");
        assert_eq!(t(Some(4), Some("20261120170000"), None), "open, OVERDUE");
        assert_eq!(
            t(Some(10), Some("20261130170000"), Some("20261129090000")),
            "finished on time"
        );
        assert_eq!(
            t(Some(9), Some("20261130170000"), Some("20261201090000")),
            "finished late"
        );
        assert_eq!(t(Some(2), None, None), "no appointment date");
        assert_eq!(
            timing(Some(4), Some("20261120170000"), None, now)["on_time"],
            false
        );
    }
}
