//! The operator's HTTP API on `admin.listen`. Read endpoints are open (keep the listener on loopback or an
//! operator network); endpoints that change things require `Authorization: Bearer <token>` when
//! `admin.token_env` is set, and record the `X-Actor` header (default `admin-api`) in the audit log.
//!
//! | endpoint | file |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /v1/topology` | `ops.rs` |
//! | `GET /metrics` | `metrics.rs` |
//! | `GET /v1/dlq[?adapter=&from=]`, `GET /v1/dlq/{id}`, `POST /v1/dlq/{id}/replay`, `POST /v1/dlq/replay`, `POST /v1/dlq/{id}/purge`, `POST /v1/dlq/purge`, `GET /v1/audit` | `dlq.rs` |
//! | `GET /v1/adapters/{id}/lookup/{key}` | `lookup.rs` |
//! | `GET /v1/config`, `POST /v1/reload` | `config.rs` |
//! | a plugin's read endpoints (e.g. the province's dossier and document views) | the plugin's crate |

mod config;
mod dlq;
mod lookup;
mod metrics;
mod ops;

pub use metrics::metrics_handle;

use crate::context::Context;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

#[derive(Clone)]
struct AdminState {
    ctx: Arc<Context>,
    token: Option<String>,
    reloader: Option<crate::runtime::Reloader>,
}

/// The admin app; `extra` holds a plugin's read endpoints, merged in.
pub fn router(
    ctx: Arc<Context>,
    env: &dyn Fn(&str) -> Option<String>,
    extra: Option<Router>,
    reloader: Option<crate::runtime::Reloader>,
) -> Router {
    metrics_handle();
    let token = ctx.config.admin.token_env.as_deref().and_then(env);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/dlq", get(dlq::dlq_list))
        .route("/v1/dlq/replay", post(dlq::dlq_replay_all))
        .route("/v1/dlq/purge", post(dlq::dlq_purge_all))
        .route("/v1/dlq/{id}", get(dlq::dlq_show))
        .route("/v1/dlq/{id}/replay", post(dlq::dlq_replay))
        .route("/v1/dlq/{id}/purge", post(dlq::dlq_purge))
        .route("/v1/audit", get(dlq::audit))
        .route("/v1/topology", get(ops::topology))
        .route("/v1/adapters/{id}/lookup/{key}", get(lookup::lookup))
        .route("/v1/config", get(config::current))
        .route("/v1/reload", post(config::reload))
        .with_state(AdminState {
            ctx,
            token,
            reloader,
        })
        .merge(extra.unwrap_or_default())
}
