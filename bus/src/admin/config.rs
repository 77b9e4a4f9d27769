//! The config in force and its reload: `GET /v1/config` (`{hash, loaded_at, files}`) and `POST /v1/reload`
//! (bearer `admin.token_env` when set; `X-Actor` logged), which answers the new version, or 422
//! `invalid_config` with every problem at its file and key path while the running config stays.

use super::AdminState;
use crate::error::{ApiError, code};
use crate::http_api::error_response;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

/// `GET /v1/config`.
pub(super) async fn current(State(s): State<AdminState>) -> Response {
    axum::Json(s.ctx.live.current().version.clone()).into_response()
}

/// `POST /v1/reload`.
pub(super) async fn reload(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    let actor = match super::dlq::authorize(&s, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some(reloader) = &s.reloader else {
        return error_response(&ApiError::new(
            code::NOT_FOUND,
            "this bus was started without its config file; nothing to reload",
        ));
    };
    tracing::info!(actor = %actor, "Config reload requested on the admin API");
    match reloader.reload().await {
        Ok(version) => axum::Json(version).into_response(),
        Err(e) => {
            let mut err = ApiError::new(code::INVALID_CONFIG, e.to_string());
            for p in &e.problems {
                let path = match &p.file {
                    Some(f) => format!("{}: {}", f.display(), p.path),
                    None => p.path.clone(),
                };
                err = err.at(path, p.message.clone());
            }
            error_response(&err)
        }
    }
}
