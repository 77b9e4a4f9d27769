//! The parking lot on the admin API: list and inspect parked messages, replay and purge them (bearer token
//! when `admin.token_env` is set; `X-Actor` recorded in the audit log), and read that log.

use super::AdminState;
use crate::error::{ApiError, code};
use crate::http_api::{bearer_token, error_response};
use crate::state::DlqEntry;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

/// `?adapter=&from=`: narrow a DLQ request to one adapter and/or one sender (ids are scoped by sender, so
/// two agencies' messages may share an id).
#[derive(serde::Deserialize)]
pub(super) struct AdapterQuery {
    adapter: Option<String>,
    from: Option<String>,
}

impl AdapterQuery {
    fn select<'a>(&'a self, id: Option<&'a str>) -> crate::dlq::Select<'a> {
        crate::dlq::Select {
            id,
            adapter: self.adapter.as_deref(),
            from: self.from.as_deref(),
        }
    }
}

fn state_error(e: crate::state::StateError) -> Response {
    error_response(&e.into())
}

pub(super) async fn dlq_list(
    State(s): State<AdminState>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    match s.ctx.state.dlq_list(q.adapter.as_deref()).await {
        Ok(v) => {
            let v: Vec<_> = v
                .into_iter()
                .filter(|e| q.from.as_deref().is_none_or(|f| e.from == f))
                .collect();
            axum::Json(v).into_response()
        }
        Err(e) => state_error(e),
    }
}

pub(super) async fn dlq_show(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    match s
        .ctx
        .state
        .dlq_get(&id, q.adapter.as_deref(), q.from.as_deref())
        .await
    {
        Ok(v) if v.is_empty() => error_response(&ApiError::new(
            code::NOT_FOUND,
            format!("no parked message `{id}`"),
        )),
        Ok(v) => axum::Json(v.iter().map(DlqEntry::to_json).collect::<Vec<_>>()).into_response(),
        Err(e) => state_error(e),
    }
}

pub(super) fn authorize(s: &AdminState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if let Some(token) = &s.token
        && bearer_token(headers).ok() != Some(token.as_str())
    {
        return Err(Box::new(error_response(&ApiError::new(
            code::UNAUTHENTICATED,
            "this admin endpoint needs `Authorization: Bearer <admin token>`",
        ))));
    }
    Ok(headers
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("admin-api")
        .chars()
        .take(100)
        .collect())
}

async fn act(
    s: AdminState,
    headers: HeaderMap,
    which: crate::dlq::Select<'_>,
    replay: bool,
) -> Response {
    let actor = match authorize(&s, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let ops = s.ctx.dlq_ops();
    let r = if replay {
        ops.replay(&which, &actor).await
    } else {
        ops.purge(&which, &actor).await
    };
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

pub(super) async fn dlq_replay(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(Some(&id)), true).await
}
pub(super) async fn dlq_purge(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(Some(&id)), false).await
}
pub(super) async fn dlq_replay_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(None), true).await
}
pub(super) async fn dlq_purge_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(None), false).await
}

pub(super) async fn audit(State(s): State<AdminState>) -> Response {
    match s.ctx.state.audit_list(500).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => state_error(e),
    }
}
