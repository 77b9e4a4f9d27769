//! `GET /v1/evidence/{message_id}[?from=]`: a message's records in the evidence log, in order, each with its
//! content, previous hash and hash (to check them offline, export a bundle: `lienthong audit export`).

use super::AdminState;
use crate::error::{ApiError, code};
use crate::http_api::error_response;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

#[derive(serde::Deserialize)]
pub(super) struct FromQuery {
    from: Option<String>,
}

pub(super) async fn evidence(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Query(q): Query<FromQuery>,
) -> Response {
    let records = match s.ctx.state.evidence_of(&id, q.from.as_deref()).await {
        Ok(r) => r,
        Err(e) => return error_response(&e.into()),
    };
    let mut senders: Vec<&str> = records.iter().map(|r| r.from.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    match senders.as_slice() {
        [] => error_response(&ApiError::new(
            code::NOT_FOUND,
            format!(
                "no evidence of message `{id}`{}{}",
                q.from
                    .as_deref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default(),
                if s.ctx.state.evidence_on() {
                    ""
                } else {
                    " (this bus keeps no evidence: no [evidence] section)"
                }
            ),
        )),
        [from] => axum::Json(serde_json::json!({
            "id": id,
            "from": from,
            "records": records,
        }))
        .into_response(),
        several => error_response(
            &ApiError::new(
                code::CONFLICT,
                format!(
                    "id `{id}` names messages of several senders ({}); say whose with `from`",
                    several.join(", ")
                ),
            )
            .at("/from", "required when several senders used this id"),
        ),
    }
}
