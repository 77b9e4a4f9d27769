//! `GET /v1/adapters/{id}/lookup/{key}`: a read-only question to an adapter's peer (e.g. what the national
//! portal holds for a case), answered as the peer answered it.

use super::AdminState;
use crate::error::{ApiError, code};
use crate::http_api::error_response;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

pub(super) async fn lookup(
    State(s): State<AdminState>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let found = s
        .ctx
        .lookups
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(l) = found else {
        return error_response(&ApiError::new(
            code::NOT_FOUND,
            format!("adapter `{id}` has no lookup"),
        ));
    };
    if key.trim().is_empty() {
        // A question without its subject is the caller's mistake, not the peer's failure.
        return error_response(
            &ApiError::new(code::INVALID_QUERY, "the lookup key must not be empty")
                .at("key", "empty"),
        );
    }
    match l.lookup(&key).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&ApiError::new(code::UPSTREAM_ERROR, e.reason)),
    }
}
