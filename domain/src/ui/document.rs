//! One edXML document's state at each receiving agency: the same view as `GET /v1/documents/{id}`.

use super::{error_box, s};
use crate::admin::AdminState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lienthong_bus::ui::{Viewer, esc};
use serde_json::Value;
use std::fmt::Write as _;

fn yes(v: &Viewer, b: &Value) -> String {
    match b.as_bool() {
        Some(true) => format!("<span class=\"warn\">{}</span>", v.t("có", "yes")),
        Some(false) => v.t("không", "no").to_owned(),
        None => "—".into(),
    }
}

/// `GET /ui/document?id=<DocumentId>`.
pub(super) async fn page(
    State(st): State<AdminState>,
    Extension(v): Extension<Viewer>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let id = raw
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let title = v.t("Văn bản điện tử", "edXML document");
    let mut body = format!(
        "<form method=\"get\" action=\"/ui/document\" class=\"filters\" id=\"document-lookup\">\
         <label>{}<input name=\"id\" id=\"document-id\" size=\"48\" value=\"{}\"></label>\
         <button type=\"submit\">{}</button></form>",
        v.t("Mã văn bản (DocumentId)", "DocumentId"),
        esc(&id),
        v.t("Tra cứu", "Look up"),
    );
    if id.is_empty() {
        return v.page(title, body);
    }
    let d = match crate::admin::document_value(&st, &id).await {
        Ok(d) => d,
        Err(e) => {
            body.push_str(&error_box(&v, &e));
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::NOT_FOUND);
            return v.page_with(status, title, body, None);
        }
    };
    let doc = &d["document"];
    if doc.is_null() {
        let _ = write!(
            body,
            "<p class=\"notice\">{}</p>",
            v.t(
                "Bản thân văn bản không đi qua trục này; chỉ có các trạng thái về nó.",
                "The document itself did not pass through this bus; only statuses about it did."
            )
        );
    } else {
        let list = |k: &str, f: &dyn Fn(&Value) -> String| {
            doc[k]
                .as_array()
                .map(|a| a.iter().map(f).collect::<Vec<_>>().join("<br>"))
                .unwrap_or_default()
        };
        let rows = vec![
            vec![
                v.t("Cơ quan gửi", "Sender").to_owned(),
                esc(s(doc, "sender")),
            ],
            vec![
                v.t("Mã tin", "Message id").to_owned(),
                esc(s(doc, "message_id")),
            ],
            vec![
                v.t("Tuyến", "Routes").to_owned(),
                list("routes", &|r| esc(r.as_str().unwrap_or_default())),
            ],
            vec![
                v.t("Đã chuyển tới", "Delivered to").to_owned(),
                list("delivered", &|x| {
                    format!(
                        "{} <span class=\"muted\">{}</span>",
                        esc(s(x, "adapter")),
                        esc(s(x, "at"))
                    )
                }),
            ],
            vec![
                v.t("Hàng đợi lỗi", "Dead-lettered").to_owned(),
                list("dead_lettered", &|x| {
                    format!(
                        "{} <span class=\"bad\">{}</span> {}",
                        esc(s(x, "adapter")),
                        esc(s(x, "reason")),
                        esc(s(x, "last_error"))
                    )
                }),
            ],
        ];
        body.push_str(&lienthong_bus::ui::html::table(
            "document",
            &[v.t("Mục", "Field"), v.t("Giá trị", "Value")],
            &rows,
        ));
    }
    let names = |code: &str| {
        st.name(code)
            .map(|n| format!("{} ({})", esc(&n), esc(code)))
            .unwrap_or_else(|| esc(code))
    };
    let receivers: Vec<Vec<String>> = d["receivers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let statuses = r["statuses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            format!(
                                "{} <span class=\"muted\">{} · {}</span>",
                                esc(s(x, "code")),
                                esc(s(x, "judged")),
                                esc(s(x, "at"))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                })
                .unwrap_or_default();
            let next = r["allowed_next"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(esc)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            vec![
                names(s(r, "organ")),
                esc(s(r, "last_status")),
                esc(if r["error"].is_null() {
                    s(r, "description")
                } else {
                    s(r, "error")
                }),
                yes(&v, &r["recall_pending"]),
                yes(&v, &r["update_pending"]),
                next,
                statuses,
                esc(s(r, "updated_at")),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Tại từng cơ quan nhận", "At each receiving agency"),
        if receivers.is_empty() {
            format!(
                "<p class=\"muted\">{}</p>",
                v.t(
                    "Chưa có cơ quan nào báo trạng thái.",
                    "No receiver has reported a status yet."
                )
            )
        } else {
            lienthong_bus::ui::html::table(
                "receivers",
                &[
                    v.t("Cơ quan nhận", "Receiver"),
                    v.t("Trạng thái cuối", "Last status"),
                    v.t("Mô tả", "Description"),
                    v.t("Chờ thu hồi", "Recall pending"),
                    v.t("Chờ cập nhật", "Update pending"),
                    v.t("Có thể tiếp theo", "May come next"),
                    v.t("Các trạng thái (kiểm tra · lúc)", "Statuses (judged · at)"),
                    v.t("Cập nhật lúc", "Updated at"),
                ],
                &receivers,
            )
        }
    );
    v.page(title, body)
}
