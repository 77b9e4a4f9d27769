//! The parking lot in the console: list with filters, one message with its payload and history, and replay
//! or purge after a confirmation page. The actions go through [`crate::dlq::Ops`], as the admin API's and the
//! CLI's do, with the logged-in operator as the actor in the audit log.

use super::html::{csrf_field, esc, table, url};
use super::{Ui, Viewer, field};
use crate::state::DlqEntry;
use axum::Extension;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::fmt::Write as _;

/// `?adapter=&from=&reason=&id=&action=`: which parked messages (empty = any).
#[derive(serde::Deserialize, Default)]
pub(super) struct Filter {
    adapter: Option<String>,
    from: Option<String>,
    reason: Option<String>,
    id: Option<String>,
    action: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filter {
    fn keeps(&self, e: &DlqEntry) -> bool {
        given(&self.from).is_none_or(|f| e.from == f)
            && given(&self.reason).is_none_or(|r| e.reason == r)
            && given(&self.id).is_none_or(|i| e.id.contains(i))
    }

    /// `adapter=…&from=…&id=…` of one entry.
    fn of(e: &DlqEntry) -> String {
        format!(
            "id={}&adapter={}&from={}",
            url(&e.id),
            url(&e.adapter),
            url(&e.from)
        )
    }
}

fn error_page(v: &Viewer, status: StatusCode, msg: &str) -> Response {
    v.page_with(
        status,
        v.t("Hàng đợi lỗi", "Dead letters"),
        format!(
            "<p class=\"error\">{}</p><p><a href=\"/ui/dlq\">{}</a></p>",
            esc(msg),
            v.t("Về danh sách", "Back to the list")
        ),
        None,
    )
}

/// `GET /ui/dlq`.
pub(super) async fn list(
    State(ui): State<Ui>,
    Extension(v): Extension<Viewer>,
    Query(f): Query<Filter>,
) -> Response {
    let entries = match ui.ctx.state.dlq_list(given(&f.adapter)).await {
        Ok(l) => l,
        Err(e) => return error_page(&v, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let entries: Vec<&DlqEntry> = entries.iter().filter(|e| f.keeps(e)).collect();
    let declared = ui
        .ctx
        .queues
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut adapters: Vec<&String> = declared.sinks.iter().chain(&declared.mailboxes).collect();
    adapters.sort();
    let mut body = String::new();
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/ui/dlq\" class=\"filters\" id=\"dlq-filters\">\
         <label>{}<select name=\"adapter\"><option value=\"\">{}</option>",
        v.t("Bộ chuyển đổi", "Adapter"),
        v.t("(tất cả)", "(all)")
    );
    for a in adapters {
        let _ = write!(
            body,
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(a),
            if given(&f.adapter) == Some(a.as_str()) {
                " selected"
            } else {
                ""
            }
        );
    }
    let input = |name: &str, label: &str, value: &Option<String>| {
        format!(
            "<label>{}<input name=\"{name}\" value=\"{}\"></label>",
            esc(label),
            esc(given(value).unwrap_or_default())
        )
    };
    let _ = write!(
        body,
        "</select></label>{}{}{}<button type=\"submit\">{}</button></form>",
        input("from", v.t("Cơ quan gửi", "Sender"), &f.from),
        input("reason", v.t("Lý do", "Reason"), &f.reason),
        input("id", v.t("Mã tin", "Message id"), &f.id),
        v.t("Lọc", "Filter")
    );
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let q = Filter::of(e);
            vec![
                format!("<a href=\"/ui/dlq/show?{}\" class=\"dlq-id\">{}</a>", esc(&q), esc(&e.id)),
                esc(&e.from),
                esc(&e.kind),
                esc(&e.route),
                esc(&e.adapter),
                esc(&e.reason),
                e.attempts.to_string(),
                esc(&e.dead_lettered_at),
                esc(&truncate(e.last_error.as_deref().unwrap_or_default(), 120)),
                format!(
                    "<a class=\"button\" href=\"/ui/dlq/confirm?action=replay&amp;{0}\">{1}</a> \
                     <a class=\"button danger\" href=\"/ui/dlq/confirm?action=purge&amp;{0}\">{2}</a>",
                    esc(&q),
                    v.t("Gửi lại", "Replay"),
                    v.t("Xoá", "Purge")
                ),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<p id=\"dlq-count\">{} {}</p>",
        entries.len(),
        v.t("tin đang nằm trong hàng đợi lỗi", "parked message(s)")
    );
    if !entries.is_empty() {
        body.push_str(&table(
            "dlq",
            &[
                v.t("Mã tin", "Id"),
                v.t("Cơ quan gửi", "Sender"),
                v.t("Loại", "Type"),
                v.t("Tuyến", "Route"),
                v.t("Bộ chuyển đổi", "Adapter"),
                v.t("Lý do", "Reason"),
                v.t("Số lần thử", "Attempts"),
                v.t("Lúc vào hàng đợi lỗi", "Dead-lettered at"),
                v.t("Lỗi cuối", "Last error"),
                "",
            ],
            &rows,
        ));
        // Acting on everything listed is offered only when the list is what an action would select.
        if given(&f.reason).is_none() && given(&f.id).is_none() {
            let q = format!(
                "adapter={}&from={}",
                url(given(&f.adapter).unwrap_or_default()),
                url(given(&f.from).unwrap_or_default())
            );
            let _ = write!(
                body,
                "<p><a class=\"button\" href=\"/ui/dlq/confirm?action=replay&amp;{0}\">{1}</a> \
                 <a class=\"button danger\" href=\"/ui/dlq/confirm?action=purge&amp;{0}\">{2}</a></p>",
                esc(&q),
                v.t("Gửi lại tất cả tin trên", "Replay all listed"),
                v.t("Xoá tất cả tin trên", "Purge all listed")
            );
        }
    }
    v.page(v.t("Hàng đợi lỗi", "Dead letters"), body)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// The payload as text for people: pretty JSON when it is JSON, the text when UTF-8, else its size.
fn payload_text(e: &DlqEntry) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&e.payload) {
        return serde_json::to_string_pretty(&v).unwrap_or_default();
    }
    match std::str::from_utf8(&e.payload) {
        Ok(t) => t.to_owned(),
        Err(_) => format!("({} bytes, not UTF-8)", e.payload.len()),
    }
}

/// `GET /ui/dlq/show?id=&adapter=&from=`: each parked copy with its history, payload and audit entries.
pub(super) async fn show(
    State(ui): State<Ui>,
    Extension(v): Extension<Viewer>,
    Query(f): Query<Filter>,
) -> Response {
    let Some(id) = given(&f.id) else {
        return error_page(
            &v,
            StatusCode::BAD_REQUEST,
            v.t("Thiếu mã tin.", "No message id given."),
        );
    };
    let entries = match ui
        .ctx
        .state
        .dlq_get(id, given(&f.adapter), given(&f.from))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&v, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if entries.is_empty() {
        return error_page(
            &v,
            StatusCode::NOT_FOUND,
            v.t(
                "Không có tin này trong hàng đợi lỗi (có thể đã được gửi lại hoặc xoá).",
                "No such parked message (it may have been replayed or purged).",
            ),
        );
    }
    let audit = ui.ctx.state.audit_list(500).await.unwrap_or_default();
    let mut body = String::new();
    for e in &entries {
        let opt = |o: &Option<String>| esc(o.as_deref().unwrap_or("—"));
        let rows = vec![
            vec![
                v.t("Mã tin", "Id").to_owned(),
                format!("<span id=\"dlq-show-id\">{}</span>", esc(&e.id)),
            ],
            vec![v.t("Cơ quan gửi", "Sender").to_owned(), esc(&e.from)],
            vec![v.t("Loại", "Type").to_owned(), esc(&e.kind)],
            vec![v.t("Tuyến", "Route").to_owned(), esc(&e.route)],
            vec![v.t("Bộ chuyển đổi", "Adapter").to_owned(), esc(&e.adapter)],
            vec![v.t("Lý do", "Reason").to_owned(), esc(&e.reason)],
            vec![
                v.t("Số lần thử", "Attempts").to_owned(),
                e.attempts.to_string(),
            ],
            vec![
                v.t("Lần thử đầu", "First attempt").to_owned(),
                opt(&e.first_attempt_at),
            ],
            vec![
                v.t("Lần thử cuối", "Last attempt").to_owned(),
                opt(&e.last_attempt_at),
            ],
            vec![
                v.t("Lỗi cuối", "Last error").to_owned(),
                format!("<span id=\"dlq-last-error\">{}</span>", opt(&e.last_error)),
            ],
            vec![
                v.t("Mã trạng thái bên nhận", "Receiver's status")
                    .to_owned(),
                e.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".into()),
            ],
            vec![
                v.t("Trả lời bên nhận", "Receiver's answer").to_owned(),
                opt(&e.body_excerpt),
            ],
            vec![
                v.t("Lúc vào hàng đợi lỗi", "Dead-lettered at").to_owned(),
                esc(&e.dead_lettered_at),
            ],
            vec![
                v.t("Kiểu nội dung", "Content type").to_owned(),
                esc(&e.content_type),
            ],
        ];
        let q = Filter::of(e);
        let _ = write!(
            body,
            "<h2>{} {}</h2>{}<p><a class=\"button\" id=\"replay-link\" href=\"/ui/dlq/confirm?action=replay&amp;{q}\">{}</a> \
             <a class=\"button danger\" id=\"purge-link\" href=\"/ui/dlq/confirm?action=purge&amp;{q}\">{}</a></p>\
             <h2>{}</h2><pre id=\"dlq-payload\">{}</pre>",
            v.t("Bản gửi tới", "Copy for"),
            esc(&e.adapter),
            table(
                "dlq-entry",
                &[v.t("Mục", "Field"), v.t("Giá trị", "Value")],
                &rows
            ),
            v.t("Gửi lại", "Replay"),
            v.t("Xoá", "Purge"),
            v.t("Nội dung", "Payload"),
            esc(&payload_text(e)),
            q = esc(&q),
        );
        let history: Vec<Vec<String>> = audit
            .iter()
            .filter(|a| {
                a.id == e.id && a.adapter == e.adapter && (a.from.is_empty() || a.from == e.from)
            })
            .map(|a| vec![esc(&a.at), esc(&a.actor), esc(&a.action), esc(&a.detail)])
            .collect();
        if !history.is_empty() {
            let _ = write!(
                body,
                "<h2>{}</h2>{}",
                v.t("Lịch sử xử lý", "Operator history"),
                table(
                    "dlq-history",
                    &[
                        v.t("Lúc", "At"),
                        v.t("Người làm", "Actor"),
                        v.t("Việc", "Action"),
                        v.t("Chi tiết", "Detail")
                    ],
                    &history
                )
            );
        }
    }
    v.page(v.t("Tin trong hàng đợi lỗi", "Parked message"), body)
}

fn action_words<'a>(v: &Viewer, action: &str) -> Option<(&'a str, &'a str)> {
    match action {
        "replay" => Some(match v.lang {
            super::Lang::Vi => (
                "Gửi lại",
                "Gửi lại tin sau để chuyển phát (cùng mã tin, số lần thử mới)?",
            ),
            super::Lang::En => (
                "Replay",
                "Send these back for delivery (same id, a fresh attempt budget)?",
            ),
        }),
        "purge" => Some(match v.lang {
            super::Lang::Vi => (
                "Xoá",
                "Xoá hẳn các tin sau khỏi hàng đợi lỗi? Không thể hoàn tác.",
            ),
            super::Lang::En => (
                "Purge",
                "Remove these from the parking lot for good? This cannot be undone.",
            ),
        }),
        _ => None,
    }
}

/// `GET /ui/dlq/confirm?action=replay|purge&id=&adapter=&from=`: what would be done, and the form that does it.
pub(super) async fn confirm(
    State(ui): State<Ui>,
    Extension(v): Extension<Viewer>,
    Query(f): Query<Filter>,
) -> Response {
    let action = f.action.clone().unwrap_or_default();
    let Some((verb, question)) = action_words(&v, &action) else {
        return error_page(
            &v,
            StatusCode::BAD_REQUEST,
            "action must be replay or purge",
        );
    };
    let entries = match given(&f.id) {
        Some(id) => {
            ui.ctx
                .state
                .dlq_get(id, given(&f.adapter), given(&f.from))
                .await
        }
        None => ui.ctx.state.dlq_list(given(&f.adapter)).await.map(|l| {
            l.into_iter()
                .filter(|e| given(&f.from).is_none_or(|x| e.from == x))
                .collect()
        }),
    };
    let entries = match entries {
        Ok(l) => l,
        Err(e) => return error_page(&v, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| vec![esc(&e.id), esc(&e.from), esc(&e.adapter), esc(&e.reason)])
        .collect();
    let hidden = |name: &str, value: Option<&str>| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            esc(value.unwrap_or_default())
        )
    };
    let body = format!(
        "<p class=\"notice\" id=\"confirm-question\">{}</p>{}\
         <form method=\"post\" action=\"/ui/dlq/act\" id=\"confirm-form\">{}{}{}{}{}\
         <button type=\"submit\" id=\"confirm-submit\"{}>{} ({})</button> \
         <a class=\"button secondary\" href=\"/ui/dlq\">{}</a></form>",
        esc(question),
        table(
            "confirm-list",
            &[
                v.t("Mã tin", "Id"),
                v.t("Cơ quan gửi", "Sender"),
                v.t("Bộ chuyển đổi", "Adapter"),
                v.t("Lý do", "Reason")
            ],
            &rows
        ),
        csrf_field(&v.csrf),
        hidden("action", Some(&action)),
        hidden("id", given(&f.id)),
        hidden("adapter", given(&f.adapter)),
        hidden("from", given(&f.from)),
        if action == "purge" {
            " class=\"danger\""
        } else {
            ""
        },
        esc(verb),
        entries.len(),
        v.t("Huỷ", "Cancel"),
    );
    v.page(v.t("Xác nhận", "Confirm"), body)
}

/// `POST /ui/dlq/act` (form: csrf, action, id, adapter, from): replay or purge, as the logged-in operator.
pub(super) async fn act(
    State(ui): State<Ui>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), super::MAX_FORM).await else {
        return error_page(&v, StatusCode::PAYLOAD_TOO_LARGE, "form too large");
    };
    let fields = super::form_fields(bytes).await.unwrap_or_default();
    let opt = |k: &str| field(&fields, k).map(str::trim).filter(|s| !s.is_empty());
    let action = opt("action").unwrap_or_default();
    let which = crate::dlq::Select {
        id: opt("id"),
        adapter: opt("adapter"),
        from: opt("from"),
    };
    let ops = ui.ctx.dlq_ops();
    let result = match action {
        "replay" => ops.replay(&which, &v.name).await,
        "purge" => ops.purge(&which, &v.name).await,
        _ => {
            return error_page(
                &v,
                StatusCode::BAD_REQUEST,
                "action must be replay or purge",
            );
        }
    };
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error_page(&v, status, &e.message);
        }
    };
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                esc(&o.id),
                esc(&o.from),
                esc(&o.adapter),
                format!(
                    "<span class=\"{}\">{}</span>",
                    if o.done { "ok" } else { "bad" },
                    esc(match o.message.as_str() {
                        "replayed" => v.t("đã gửi lại", "replayed"),
                        "purged" => v.t("đã xoá", "purged"),
                        m => m,
                    })
                ),
            ]
        })
        .collect();
    let done = outcomes.iter().filter(|o| o.done).count();
    let body = format!(
        "<p class=\"notice\" id=\"act-result\">{done}/{} {}</p>{}<p><a href=\"/ui/dlq\">{}</a></p>",
        outcomes.len(),
        v.t("tin đã xử lý", "done"),
        table(
            "act-outcomes",
            &[
                v.t("Mã tin", "Id"),
                v.t("Cơ quan gửi", "Sender"),
                v.t("Bộ chuyển đổi", "Adapter"),
                v.t("Kết quả", "Result")
            ],
            &rows
        ),
        v.t("Về hàng đợi lỗi", "Back to dead letters"),
    );
    v.page(v.t("Kết quả", "Result"), body)
}
