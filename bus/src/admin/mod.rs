//! The operator's HTTP API on `admin.listen`. When `admin.token_env` is set, every endpoint but `/healthz`,
//! `/readyz` (and `/metrics` with `admin.open_metrics`) requires `Authorization: Bearer <token>` (`guard.rs`),
//! the plugin's endpoints included; without it the API is open to whoever reaches `listen`, which `check`
//! allows only on loopback or behind `[admin.tls] client_ca`. Endpoints that change things record the
//! `X-Actor` header (default `admin-api`) in the audit log.
//!
//! | endpoint | file |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /v1/topology` | `ops.rs` |
//! | `GET /metrics` | `metrics.rs` |
//! | the admin token on all the others | `guard.rs` |
//! | `GET /v1/dlq[?adapter=&from=]`, `GET /v1/dlq/{id}`, `POST /v1/dlq/{id}/replay`, `POST /v1/dlq/replay`, `POST /v1/dlq/{id}/purge`, `POST /v1/dlq/purge`, `GET /v1/audit` | `dlq.rs` |
//! | `GET /v1/evidence/{id}[?from=]` | `evidence.rs` |
//! | `GET /v1/adapters/{id}/lookup/{key}` | `lookup.rs` |
//! | `/ui/…`: the operator console (session login, not the bearer token) | `crate::ui` |
//! | `GET /v1/config`, `POST /v1/reload` | `config.rs` |
//! | a plugin's read endpoints (e.g. the province's dossier and document views) | the plugin's crate |

mod config;
mod dlq;
mod evidence;
mod guard;
mod lookup;
pub(crate) mod metrics;
pub(crate) mod ops;

pub use metrics::metrics_handle;

use crate::context::Context;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

#[derive(Clone)]
struct AdminState {
    ctx: Arc<Context>,
    token: Option<String>,
    reloader: Option<crate::runtime::reload::Reloader>,
}

/// The admin app; `extra` holds a plugin's read endpoints, merged in; `ui` a plugin's console pages (the
/// console itself, under `/ui/`, is always served: see [`crate::ui`]).
pub fn router(
    ctx: Arc<Context>,
    env: &dyn Fn(&str) -> Option<String>,
    extra: Option<Router>,
    ui: Option<crate::ui::UiPages>,
    reloader: Option<crate::runtime::reload::Reloader>,
) -> Router {
    metrics_handle();
    let token = ctx.config.admin.token_env.as_deref().and_then(env);
    let open_metrics = ctx.config.admin.open_metrics;
    let ui_ctx = ctx.clone();
    let state = AdminState {
        ctx,
        token: token.clone(),
        reloader,
    };
    let metrics_route = Router::new().route("/metrics", get(metrics::metrics));
    let mut open = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ops::readyz))
        .with_state(state.clone());
    let mut guarded = Router::new()
        .route("/v1/dlq", get(dlq::dlq_list))
        .route("/v1/dlq/replay", post(dlq::dlq_replay_all))
        .route("/v1/dlq/purge", post(dlq::dlq_purge_all))
        .route("/v1/dlq/{id}", get(dlq::dlq_show))
        .route("/v1/dlq/{id}/replay", post(dlq::dlq_replay))
        .route("/v1/dlq/{id}/purge", post(dlq::dlq_purge))
        .route("/v1/audit", get(dlq::audit))
        .route("/v1/evidence/{id}", get(evidence::evidence))
        .route("/v1/topology", get(ops::topology))
        .route("/v1/adapters/{id}/lookup/{key}", get(lookup::lookup))
        .route("/v1/config", get(config::current))
        .route("/v1/reload", post(config::reload))
        .with_state(state)
        .merge(extra.unwrap_or_default());
    if open_metrics {
        open = open.merge(metrics_route);
    } else {
        guarded = guarded.merge(metrics_route);
    }
    if let Some(token) = token {
        // `route_layer`: only matched routes are guarded, so an unknown path is still 404 and a wrong method 405.
        guarded = guarded.route_layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            guard::require_token,
        ));
    }
    // The console has its own login (a session, not the bearer token).
    open.merge(guarded).merge(crate::ui::router(ui_ctx, ui))
}
