//! Dossier search, and one dossier with its steps drawn as a timeline (inline SVG, drawn here).

use super::{agency, api_params, date, error_box, s, state_badge, status_label};
use crate::admin::AdminState;
use crate::dossiers::rules::State as DossierState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lienthong_bus::ui::{Lang, Viewer, esc, url};
use serde_json::Value;
use std::fmt::Write as _;

fn param<'a>(raw: &'a [(String, String)], k: &str) -> &'a str {
    raw.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// The search form, filled in with what was asked.
fn search_form(v: &Viewer, s: &AdminState, raw: &[(String, String)]) -> String {
    let mut h = format!(
        "<form method=\"get\" action=\"/ui/dossier\" class=\"filters\" id=\"lookup\">\
         <label>{}<input name=\"code\" id=\"lookup-code\" size=\"32\" value=\"{}\"></label>\
         <button type=\"submit\" id=\"lookup-submit\">{}</button></form>\
         <form method=\"get\" action=\"/ui/dossiers\" class=\"filters\" id=\"search\">\
         <label>{}<select name=\"agency\"><option value=\"\">{}</option>",
        v.t("Mã hồ sơ", "Dossier code"),
        esc(param(raw, "code")),
        v.t("Tra cứu", "Look up"),
        v.t("Cơ quan xử lý", "Handling agency"),
        v.t("(tất cả)", "(all)"),
    );
    let sel = |cur: &str, val: &str| if cur == val { " selected" } else { "" };
    let names = s.agency_names.all();
    for (code, name) in names.iter() {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            esc(code),
            sel(param(raw, "agency"), code),
            esc(name.as_deref().unwrap_or(code))
        );
    }
    let _ = write!(
        h,
        "</select></label><label>{}<select name=\"status\"><option value=\"\">{}</option>",
        v.t("Trạng thái", "Status"),
        v.t("(tất cả)", "(all)")
    );
    for c in 1..=10 {
        let _ = write!(
            h,
            "<option value=\"{c}\"{}>{}</option>",
            sel(param(raw, "status"), &c.to_string()),
            esc(&status_label(v.lang, Some(c)))
        );
    }
    let _ = write!(
        h,
        "</select></label><label>{}<select name=\"state\"><option value=\"\">{}</option>",
        v.t("Tình trạng", "State"),
        v.t("(tất cả)", "(all)")
    );
    for st in DossierState::ALL {
        let name = match v.lang {
            Lang::Vi => st.name_vi().to_owned(),
            Lang::En => st.as_str().replace('_', " "),
        };
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            st.as_str(),
            sel(param(raw, "state"), st.as_str()),
            esc(&name)
        );
    }
    let _ = write!(
        h,
        "</select></label><label>{}<input type=\"date\" name=\"received_from\" value=\"{}\"></label>\
         <label>{}<input type=\"date\" name=\"received_to\" value=\"{}\"></label>\
         <button type=\"submit\" id=\"search-submit\">{}</button></form>",
        v.t("Tiếp nhận từ ngày", "Received from"),
        esc(param(raw, "received_from")),
        v.t("đến ngày", "to"),
        esc(param(raw, "received_to")),
        v.t("Tìm", "Search"),
    );
    h
}

/// `GET /ui/dossiers?…`: the search form and a page of results.
pub(super) async fn search(
    State(st): State<AdminState>,
    Extension(v): Extension<Viewer>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let raw = api_params(raw);
    let mut body = search_form(&v, &st, &raw);
    let mut asked = raw.clone();
    if !asked.iter().any(|(k, _)| k == "per_page") {
        asked.push(("per_page".into(), "50".into()));
    }
    match crate::admin::search::search_value(&st, asked).await {
        Err(e) => body.push_str(&error_box(&v, &e)),
        Ok(r) => {
            let total = r["total"].as_u64().unwrap_or(0);
            let page = r["page"].as_u64().unwrap_or(1);
            let per = r["per_page"].as_u64().unwrap_or(50).max(1);
            let _ = write!(
                body,
                "<p id=\"search-total\">{total} {}</p>",
                v.t("hồ sơ", "dossier(s)")
            );
            let rows: Vec<Vec<String>> = r["dossiers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    vec![
                        format!(
                            "<a href=\"/ui/dossier?code={}\" class=\"dossier-link\">{}</a>",
                            esc(&url(s(d, "code"))),
                            esc(s(d, "code"))
                        ),
                        esc(s(d, "procedure")),
                        agency(&d["receiving_agency_name"], s(d, "receiving_agency")),
                        agency(&d["agency_name"], s(d, "agency")),
                        esc(&status_label(v.lang, d["status"].as_i64())),
                        date(s(d, "received")),
                        date(s(d, "due")),
                        state_badge(v.lang, s(d, "state")),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                body.push_str(&lienthong_bus::ui::html::table(
                    "dossiers",
                    &[
                        v.t("Mã hồ sơ", "Code"),
                        v.t("Thủ tục", "Procedure"),
                        v.t("Nơi tiếp nhận", "Received by"),
                        v.t("Cơ quan xử lý", "Handled by"),
                        v.t("Trạng thái", "Status"),
                        v.t("Ngày tiếp nhận", "Received"),
                        v.t("Ngày hẹn trả", "Appointment"),
                        v.t("Tình trạng", "State"),
                    ],
                    &rows,
                ));
            }
            let link = |p: u64| {
                let mut q: Vec<String> = raw
                    .iter()
                    .filter(|(k, _)| k != "page")
                    .map(|(k, val)| format!("{}={}", url(k), url(val)))
                    .collect();
                q.push(format!("page={p}"));
                esc(&q.join("&"))
            };
            let pages = total.div_ceil(per).max(1);
            body.push_str("<div class=\"pager\">");
            if page > 1 {
                let _ = write!(
                    body,
                    "<a href=\"/ui/dossiers?{}\">« {}</a>",
                    link(page - 1),
                    v.t("Trước", "Previous")
                );
            }
            let _ = write!(body, "<span>{} {page}/{pages}</span>", v.t("Trang", "Page"));
            if page < pages {
                let _ = write!(
                    body,
                    "<a href=\"/ui/dossiers?{}\">{} »</a>",
                    link(page + 1),
                    v.t("Sau", "Next")
                );
            }
            body.push_str("</div>");
        }
    }
    v.page(v.t("Tìm hồ sơ", "Dossier search"), body)
}

/// The colour of a step's circle by its own deadline's verdict.
fn step_colour(state: &str) -> &'static str {
    match state {
        "overdue" | "finished_late" => "#b3261e",
        "due_soon" => "#d98a00",
        "on_time" | "finished_on_time" => "#1b7a35",
        _ => "#5c6b7a",
    }
}

/// The steps as a vertical timeline: date on the left, a dot per step on the line (its colour its own
/// deadline's verdict), status, agency and deadline on the right; the appointment date last.
fn timeline_svg(v: &Viewer, d: &Value) -> String {
    let steps = d["steps"].as_array().map(Vec::as_slice).unwrap_or_default();
    let row = 62;
    let top = 30;
    let n = steps.len() + 1;
    let height = top + row * (n - 1) + 30;
    let mut h = format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"{height}\" \
         viewBox=\"0 0 860 {height}\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"150\" y1=\"{}\" x2=\"150\" y2=\"{}\" stroke=\"#9fb0c2\" stroke-width=\"3\"/>",
        esc(v.t("Dòng thời gian", "Timeline")),
        top,
        top + row * (n - 1)
    );
    for (i, st) in steps.iter().enumerate() {
        let y = top + row * i;
        let deadline_state = s(st, "deadline_state");
        let name = status_label(v.lang, st["status"].as_i64());
        let ag = match st["agency_name"].as_str() {
            Some(n) if !n.is_empty() => format!("{n} ({})", s(st, "agency")),
            _ => s(st, "agency").to_owned(),
        };
        let deadline = match s(st, "deadline") {
            "" => String::new(),
            dl => format!(
                "{} {} — {}",
                v.t("Hạn bước:", "Step deadline:"),
                date(dl),
                esc(&super::state_name(v.lang, deadline_state))
            ),
        };
        let _ = write!(
            h,
            "<g class=\"step\"><text x=\"135\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <circle cx=\"150\" cy=\"{y}\" r=\"9\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"2\"/>\
             <text x=\"172\" y=\"{}\" font-weight=\"bold\" class=\"step-status\">{}</text>\
             <text x=\"172\" y=\"{}\">{}</text><text x=\"172\" y=\"{}\" fill=\"#4a5868\">{}</text></g>",
            y + 4,
            date(s(st, "at")),
            step_colour(deadline_state),
            y - 6,
            esc(&name),
            y + 10,
            esc(&ag),
            y + 25,
            deadline,
        );
    }
    let y = top + row * (n - 1);
    let due = d["timing"]["due"].as_str().unwrap_or_default();
    let _ = write!(
        h,
        "<text x=\"135\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <rect x=\"141\" y=\"{}\" width=\"18\" height=\"18\" fill=\"{}\" transform=\"rotate(45 150 {y})\"/>\
         <text x=\"172\" y=\"{}\" font-weight=\"bold\">{}</text></svg>",
        y + 4,
        date(due),
        y - 9,
        step_colour(s(d, "state")),
        y + 4,
        esc(v.t("Ngày hẹn trả (đang áp dụng)", "Appointment date (in force)")),
    );
    h
}

/// `GET /ui/dossier?code=`: one dossier.
pub(super) async fn one(
    State(s_): State<AdminState>,
    Extension(v): Extension<Viewer>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let code = param(&raw, "code").trim().to_owned();
    let title = v.t("Hồ sơ", "Dossier");
    let mut body = search_form(&v, &s_, &[("code".to_owned(), code.clone())]);
    if code.is_empty() {
        return v.page(title, body);
    }
    let d = match crate::admin::dossier_value(&s_, &code).await {
        Ok(d) => d,
        Err(e) => {
            body.push_str(&error_box(&v, &e));
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::NOT_FOUND);
            return v.page_with(status, title, body, None);
        }
    };
    let facts = vec![
        vec![
            v.t("Mã hồ sơ", "Code").to_owned(),
            format!("<span id=\"dossier-code\">{}</span>", esc(s(&d, "code"))),
        ],
        vec![
            v.t("Thủ tục", "Procedure").to_owned(),
            esc(s(&d, "procedure")),
        ],
        vec![
            v.t("Tình trạng", "State").to_owned(),
            format!(
                "<span id=\"dossier-state\">{}</span>",
                state_badge(v.lang, s(&d, "state"))
            ),
        ],
        vec![
            v.t("Trạng thái", "Status").to_owned(),
            esc(&status_label(v.lang, d["status"].as_i64())),
        ],
        vec![
            v.t("Ngày hẹn trả", "Appointment date").to_owned(),
            date(s(&d, "due")),
        ],
        vec![
            v.t("Nơi tiếp nhận", "Received by").to_owned(),
            agency(&d["receiving_agency_name"], s(&d, "receiving_agency")),
        ],
        vec![
            v.t("Cơ quan xử lý", "Handled by").to_owned(),
            agency(&d["agency_name"], s(&d, "agency")),
        ],
        vec![
            v.t("Ngày tiếp nhận", "Received").to_owned(),
            date(s(&d, "received")),
        ],
        vec![
            v.t("Ngày xử lý xong", "Finished").to_owned(),
            date(s(&d, "finished")),
        ],
    ];
    let _ = write!(
        body,
        "{}<h2>{}</h2>{}",
        lienthong_bus::ui::html::table(
            "dossier",
            &[v.t("Mục", "Field"), v.t("Giá trị", "Value")],
            &facts
        ),
        v.t("Các bước xử lý", "Steps"),
        timeline_svg(&v, &d)
    );
    // The steps again as a table (for copying, and for screen readers).
    let steps: Vec<Vec<String>> = d["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|st| {
            vec![
                date(s(st, "at")),
                esc(&status_label(v.lang, st["status"].as_i64())),
                agency(&st["agency_name"], s(st, "agency")),
                date(s(st, "deadline")),
                match s(st, "deadline_state") {
                    "" => "—".into(),
                    x => state_badge(v.lang, x),
                },
                esc(s(st, "note")),
            ]
        })
        .collect();
    body.push_str(&lienthong_bus::ui::html::table(
        "steps",
        &[
            v.t("Lúc", "At"),
            v.t("Trạng thái", "Status"),
            v.t("Cơ quan", "Agency"),
            v.t("Hạn của bước", "Step deadline"),
            v.t("Đánh giá bước", "Step verdict"),
            v.t("Ghi chú", "Note"),
        ],
        &steps,
    ));
    let history: Vec<Vec<String>> = d["due_history"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                date(s(e, "due")),
                date(s(e, "previous")),
                if e["applied"].as_bool() == Some(true) {
                    v.t("áp dụng", "in force").to_owned()
                } else {
                    v.t(
                        "không áp dụng (không phải cơ quan xử lý)",
                        "not applied (not the handling agency)",
                    )
                    .to_owned()
                },
                esc(s(e, "from")),
                esc(s(e, "type")),
                esc(s(e, "at")),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Lịch sử ngày hẹn trả", "Appointment date history"),
        lienthong_bus::ui::html::table(
            "due-history",
            &[
                v.t("Ngày hẹn", "Appointment"),
                v.t("Thay cho", "Replaced"),
                v.t("Áp dụng", "Applied"),
                v.t("Từ cơ quan", "From"),
                v.t("Loại tin", "Message type"),
                v.t("Lúc nhận", "Accepted at"),
            ],
            &history
        )
    );
    let messages: Vec<Vec<String>> = d["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let list = |k: &str, f: &dyn Fn(&Value) -> String| {
                m[k].as_array()
                    .map(|a| a.iter().map(f).collect::<Vec<_>>().join("<br>"))
                    .unwrap_or_default()
            };
            vec![
                esc(s(m, "message_id")),
                esc(s(m, "type")),
                esc(s(m, "from")),
                list("delivered", &|x| format!("{} <span class=\"muted\">{}</span>", esc(s(x, "adapter")), esc(s(x, "at")))),
                list("dead_lettered", &|x| {
                    format!(
                        "<a href=\"/ui/dlq/show?id={}&amp;adapter={}&amp;from={}\">{}</a> <span class=\"bad\">{}</span>",
                        esc(&url(s(m, "message_id"))),
                        esc(&url(s(x, "adapter"))),
                        esc(&url(s(m, "from"))),
                        esc(s(x, "adapter")),
                        esc(s(x, "reason"))
                    )
                }),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Các tin về hồ sơ", "Messages about it"),
        lienthong_bus::ui::html::table(
            "messages",
            &[
                v.t("Mã tin", "Message id"),
                v.t("Loại", "Type"),
                v.t("Từ", "From"),
                v.t("Đã chuyển tới", "Delivered to"),
                v.t("Hàng đợi lỗi", "Dead-lettered"),
            ],
            &messages
        )
    );
    v.page(title, body)
}
