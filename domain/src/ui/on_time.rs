//! On-time rates per department over a chosen period, as a bar chart drawn here (inline SVG) and the counts
//! behind it — the same table as `GET /v1/stats/on-time`.

use super::{api_params, error_box, s};
use crate::admin::AdminState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use lienthong_bus::ui::{Viewer, esc, url};
use serde_json::Value;
use std::fmt::Write as _;

/// `yyyyMMdd…` as `yyyy-MM-dd`.
fn day(d14: &str) -> String {
    format!("{}-{}-{}", &d14[0..4], &d14[4..6], &d14[6..8])
}

/// Bar colour by rate: green from 95%, amber from 80%, red below.
fn colour(rate: f64) -> &'static str {
    if rate >= 95.0 {
        "#1b7a35"
    } else if rate >= 80.0 {
        "#d98a00"
    } else {
        "#b3261e"
    }
}

fn label(row: &Value) -> String {
    let name = row["name"].as_str().filter(|n| !n.is_empty());
    let code = s(row, "agency");
    let full = match name {
        Some(n) => n.to_owned(),
        None => code.to_owned(),
    };
    if full.chars().count() > 34 {
        full.chars().take(33).collect::<String>() + "…"
    } else {
        full
    }
}

/// One bar per agency and one for the province: the on-time rate, with finished-on-time out of judged.
fn chart(v: &Viewer, rows: &[&Value]) -> String {
    let (left, width, bar, gap) = (260, 420, 22, 12);
    let height = 40 + rows.len() * (bar + gap);
    let mut h = format!(
        "<svg id=\"on-time-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(v.t("Tỉ lệ giải quyết đúng hạn", "On-time rate")),
        w = left + width + 190
    );
    for pct in [0, 25, 50, 75, 100] {
        let x = left + width * pct / 100;
        let _ = write!(
            h,
            "<line x1=\"{x}\" y1=\"22\" x2=\"{x}\" y2=\"{}\" stroke=\"#e1e7ee\"/>\
             <text x=\"{x}\" y=\"15\" text-anchor=\"middle\" fill=\"#6b7785\">{pct}%</text>",
            height - 8
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 28 + i * (bar + gap);
        let rate = r["on_time_rate"].as_f64();
        let on = r["finished_on_time"].as_u64().unwrap_or(0);
        let judged = on + r["finished_late"].as_u64().unwrap_or(0);
        let _ = write!(
            h,
            "<g class=\"bar\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\"{}>{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{width}\" height=\"{bar}\" fill=\"#eef2f6\"/>",
            left - 10,
            y + 16,
            if r["agency"].is_null() {
                " font-weight=\"bold\""
            } else {
                ""
            },
            esc(&label(r))
        );
        match rate {
            Some(rate) => {
                let w = (width as f64 * rate.clamp(0.0, 100.0) / 100.0).round() as usize;
                let _ = write!(
                    h,
                    "<rect x=\"{left}\" y=\"{y}\" width=\"{w}\" height=\"{bar}\" fill=\"{}\"/>\
                     <text x=\"{}\" y=\"{}\" class=\"rate\">{rate:.2}% ({on}/{judged})</text></g>",
                    colour(rate),
                    left + width + 8,
                    y + 16
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<text x=\"{}\" y=\"{}\" fill=\"#6b7785\">— {}</text></g>",
                    left + width + 8,
                    y + 16,
                    esc(v.t("chưa có hồ sơ xong", "none finished"))
                );
            }
        }
    }
    h.push_str("</svg>");
    h
}

/// `GET /ui/on-time?from=&to=`: the period (this month unless chosen), the chart and the counts.
pub(super) async fn page(
    State(st): State<AdminState>,
    Extension(v): Extension<Viewer>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let mut raw: Vec<(String, String)> = api_params(raw)
        .into_iter()
        .filter(|(k, _)| k == "from" || k == "to")
        .collect();
    let today = crate::dossiers::rules::now_vn14();
    let month_start = format!("{}-{}-01", &today[0..4], &today[4..6]);
    if raw.is_empty() {
        raw = vec![
            ("from".into(), month_start.clone()),
            ("to".into(), day(&today)),
        ];
    }
    let get = |k: &str| {
        raw.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (from, to) = (get("from"), get("to"));
    let mut body = format!(
        "<form method=\"get\" action=\"/ui/on-time\" class=\"filters\" id=\"period\">\
         <label>{}<input type=\"date\" name=\"from\" id=\"from\" value=\"{}\"></label>\
         <label>{}<input type=\"date\" name=\"to\" id=\"to\" value=\"{}\"></label>\
         <button type=\"submit\" id=\"period-submit\">{}</button>\
         <a href=\"/ui/on-time?from={}&amp;to={}\">{}</a>\
         <a href=\"/ui/on-time?from={}-01-01&amp;to={}\">{}</a>\
         <a href=\"/ui/on-time?from=&amp;to=\">{}</a></form>",
        v.t("Từ ngày", "From"),
        esc(&from),
        v.t("Đến ngày", "To"),
        esc(&to),
        v.t("Xem", "Show"),
        esc(&month_start),
        esc(&day(&today)),
        v.t("Tháng này", "This month"),
        esc(&today[0..4]),
        esc(&day(&today)),
        v.t("Năm nay", "This year"),
        v.t("Toàn bộ", "All time"),
    );
    match crate::admin::search::on_time_table(&st, raw.clone()).await {
        Err(e) => body.push_str(&error_box(&v, &e)),
        Ok(t) => {
            let j = crate::admin::search::on_time_json(&st, &t);
            let mut rows: Vec<&Value> = j["agencies"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            rows.push(&j["total"]);
            body.push_str(&chart(&v, &rows));
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let n = |k: &str| r[k].as_u64().unwrap_or(0).to_string();
                    vec![
                        esc(s(r, "agency")),
                        esc(s(r, "name")),
                        n("received"),
                        n("finished"),
                        n("finished_on_time"),
                        n("finished_late"),
                        n("open_overdue"),
                        r["on_time_rate"]
                            .as_f64()
                            .map(|x| format!("{x:.2}%"))
                            .unwrap_or_else(|| "—".into()),
                    ]
                })
                .collect();
            let _ = write!(
                body,
                "<h2>{}</h2>{}<p><a href=\"/v1/stats/on-time?format=csv&amp;from={}&amp;to={}\">{}</a></p>",
                v.t("Số liệu", "Counts"),
                lienthong_bus::ui::html::table(
                    "on-time",
                    &[
                        v.t("Mã cơ quan", "Agency"),
                        v.t("Tên", "Name"),
                        v.t("Tiếp nhận", "Received"),
                        v.t("Đã xử lý xong", "Finished"),
                        v.t("Đúng hạn", "On time"),
                        v.t("Quá hạn", "Late"),
                        v.t("Đang quá hạn", "Open, overdue"),
                        v.t("Tỉ lệ đúng hạn", "On-time rate"),
                    ],
                    &cells
                ),
                esc(&url(&from)),
                esc(&url(&to)),
                v.t("Tải về CSV", "Download CSV"),
            );
        }
    }
    v.page(v.t("Tỉ lệ giải quyết đúng hạn", "On-time rates"), body)
}
