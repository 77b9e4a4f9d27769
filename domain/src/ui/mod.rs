//! The province's pages in the operator console (`/ui/…` on the admin listener, behind the console's login):
//! dossier search and one dossier with its timeline, on-time rates per department as a chart, and one edXML
//! document's state at each receiver.
//!
//! Each page draws the same JSON the admin API answers (`crate::admin`), so the console and the API never
//! disagree. Values from messages are agencies' text: every one goes through [`esc`].
//!
//! | path | what | file |
//! |---|---|---|
//! | `GET /ui/dossiers?agency=&status=&state=&received_from=&received_to=&page=` | search | `dossiers.rs` |
//! | `GET /ui/dossier?code=` | one dossier, its steps drawn as a timeline, its appointment date's history | `dossiers.rs` |
//! | `GET /ui/on-time?from=&to=` | on-time rate per agency as a bar chart, and the counts | `on_time.rs` |
//! | `GET /ui/document?id=` | one edXML document at each receiving agency | `document.rs` |

mod document;
mod dossiers;
mod on_time;

use crate::admin::AdminState;
use axum::Router;
use axum::routing::get;
use lienthong_bus::ui::{Lang, NavLink, UiPages, Viewer, esc};
use serde_json::Value;

/// The pages and their links in the navigation bar.
pub fn pages(s: AdminState) -> UiPages {
    UiPages {
        router: Router::new()
            .route("/ui/dossiers", get(dossiers::search))
            .route("/ui/dossier", get(dossiers::one))
            .route("/ui/on-time", get(on_time::page))
            .route("/ui/document", get(document::page))
            .with_state(s),
        nav: vec![
            NavLink {
                path: "/ui/dossiers",
                vi: "Hồ sơ",
                en: "Dossiers",
            },
            NavLink {
                path: "/ui/on-time",
                vi: "Tỉ lệ đúng hạn",
                en: "On-time rates",
            },
            NavLink {
                path: "/ui/document",
                vi: "Văn bản",
                en: "Documents",
            },
        ],
    }
}

/// The query's parameters without the console's own (`lang`), for the admin API's strict parsers.
fn api_params(raw: Vec<(String, String)>) -> Vec<(String, String)> {
    raw.into_iter().filter(|(k, _)| k != "lang").collect()
}

/// A string field of `v`, or empty.
fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// `yyyyMMddHHmmss` as `dd/MM/yyyy HH:mm` (escaped as it is otherwise; `—` when empty).
fn date(d: &str) -> String {
    if d.is_empty() {
        return "—".into();
    }
    if d.len() != 14 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return esc(d);
    }
    format!(
        "{}/{}/{} {}:{}",
        &d[6..8],
        &d[4..6],
        &d[0..4],
        &d[8..10],
        &d[10..12]
    )
}

/// A dossier state's name in the operator's language.
fn state_name(lang: Lang, state: &str) -> String {
    crate::dossiers::rules::State::parse(state)
        .map(|st| match lang {
            Lang::Vi => st.name_vi().to_owned(),
            Lang::En => st.as_str().replace('_', " "),
        })
        .unwrap_or_else(|| state.to_owned())
}

/// A dossier state's name in the operator's language, as a coloured badge.
fn state_badge(lang: Lang, state: &str) -> String {
    let name = state_name(lang, state);
    format!("<span class=\"state {}\">{}</span>", esc(state), esc(&name))
}

/// A portal status's name in the operator's language.
fn status_label(lang: Lang, status: Option<i64>) -> String {
    match status {
        None => "—".into(),
        Some(c) => format!(
            "{} ({c})",
            match lang {
                Lang::Vi => crate::admin::status_name_vi(c),
                Lang::En => crate::admin::status_name(c),
            }
        ),
    }
}

/// An agency as `name (code)`, or its code.
fn agency(name: &Value, code: &str) -> String {
    match name.as_str().filter(|n| !n.is_empty()) {
        Some(n) => format!("{} <span class=\"muted\">({})</span>", esc(n), esc(code)),
        None => esc(code),
    }
}

/// The error of a failed lookup, on the page.
fn error_box(v: &Viewer, e: &lienthong_bus::error::ApiError) -> String {
    let mut out = format!("<p class=\"error\" id=\"page-error\">{}", esc(&e.message));
    for d in &e.details {
        out.push_str(&format!(" — {}: {}", esc(&d.path), esc(&d.message)));
    }
    out.push_str("</p>");
    let _ = v;
    out
}
