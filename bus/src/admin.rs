//! The operator's HTTP API: health, readiness, metrics, the dead-letter parking lot, the audit log, and
//! adapter lookups (e.g. what the national portal holds for a dossier).
//!
//! Read endpoints are open on `admin.listen` (keep it on loopback or an operator network); endpoints that change
//! things (replay, purge) require `Authorization: Bearer <token>` when `admin.token_env` is set, and record the
//! `X-Actor` header (default `admin-api`) in the audit log.

use crate::error::{ApiError, code};
use crate::http_api::{bearer_token, error_response};
use crate::runtime::Shared;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their summaries when nobody scrapes `/metrics`.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder once per process, with its upkeep thread.
///
/// Why the thread: the recorder keeps every histogram sample until upkeep folds it in, and upkeep otherwise runs
/// only on a scrape. A bus nobody scrapes (no Prometheus yet, a quiet commune server) would grow by every
/// delivery and state batch it times: measured at about 12 MiB a minute at 1,000 msg/s.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread; memory grows until /metrics is scraped");
            }
            Some(handle)
        })
        .as_ref()
}

#[derive(Clone)]
struct AdminState {
    shared: Arc<Shared>,
    token: Option<String>,
}

/// The admin app; `extra` holds a plugin's read endpoints, merged in.
pub fn router(
    shared: Arc<Shared>,
    env: &dyn Fn(&str) -> Option<String>,
    extra: Option<Router>,
) -> Router {
    metrics_handle();
    let token = shared.config.admin.token_env.as_deref().and_then(env);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/dlq", get(dlq_list))
        .route("/v1/dlq/replay", post(dlq_replay_all))
        .route("/v1/dlq/purge", post(dlq_purge_all))
        .route("/v1/dlq/{id}", get(dlq_show))
        .route("/v1/dlq/{id}/replay", post(dlq_replay))
        .route("/v1/dlq/{id}/purge", post(dlq_purge))
        .route("/v1/audit", get(audit))
        .route("/v1/topology", get(topology))
        .route("/v1/adapters/{id}/lookup/{key}", get(lookup))
        .with_state(AdminState { shared, token })
        .merge(extra.unwrap_or_default())
}

async fn readyz(State(s): State<AdminState>) -> Response {
    let broker = s.shared.broker.is_ready();
    let body = serde_json::json!({
        "ready": broker,
        "broker": if broker { "connected" } else { "disconnected" },
        "broker_error": s.shared.broker.last_error(),
        "state": s.shared.state.backend(),
    });
    let status = if broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics() -> Response {
    match metrics_handle() {
        Some(h) => {
            h.run_upkeep();
            h.render().into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}

/// `?adapter=&from=`: narrow a DLQ request to one adapter and/or one sender (ids are scoped by sender, so
/// two agencies' messages may share an id).
#[derive(serde::Deserialize)]
struct AdapterQuery {
    adapter: Option<String>,
    from: Option<String>,
}

impl AdapterQuery {
    fn select<'a>(&'a self, id: Option<&'a str>) -> crate::runtime::dlq::Select<'a> {
        crate::runtime::dlq::Select {
            id,
            adapter: self.adapter.as_deref(),
            from: self.from.as_deref(),
        }
    }
}

fn state_error(e: crate::state::StateError) -> Response {
    error_response(&ApiError::new(code::STATE_UNAVAILABLE, e.to_string()))
}

async fn dlq_list(State(s): State<AdminState>, Query(q): Query<AdapterQuery>) -> Response {
    match s.shared.state.dlq_list(q.adapter.as_deref()).await {
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

/// A parked entry with its payload (as text when UTF-8, else base64).
pub fn entry_json(e: &crate::state::DlqEntry) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        match std::str::from_utf8(&e.payload) {
            Ok(t) => m.insert("payload".into(), serde_json::Value::String(t.into())),
            Err(_) => {
                use base64::Engine;
                m.insert(
                    "payload_base64".into(),
                    serde_json::Value::String(
                        base64::engine::general_purpose::STANDARD.encode(&e.payload),
                    ),
                )
            }
        };
    }
    v
}

async fn dlq_show(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    match s
        .shared
        .state
        .dlq_get(&id, q.adapter.as_deref(), q.from.as_deref())
        .await
    {
        Ok(v) if v.is_empty() => error_response(&ApiError::new(
            code::NOT_FOUND,
            format!("no parked message `{id}`"),
        )),
        Ok(v) => axum::Json(v.iter().map(entry_json).collect::<Vec<_>>()).into_response(),
        Err(e) => state_error(e),
    }
}

fn authorize(s: &AdminState, headers: &HeaderMap) -> Result<String, Box<Response>> {
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
    which: crate::runtime::dlq::Select<'_>,
    replay: bool,
) -> Response {
    let actor = match authorize(&s, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let ops = s.shared.dlq_ops();
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

async fn dlq_replay(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(Some(&id)), true).await
}
async fn dlq_purge(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(Some(&id)), false).await
}
async fn dlq_replay_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(None), true).await
}
async fn dlq_purge_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, q.select(None), false).await
}

async fn audit(State(s): State<AdminState>) -> Response {
    match s.shared.state.audit_list(500).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => state_error(e),
    }
}

async fn topology(State(s): State<AdminState>) -> Response {
    let n = &s.shared.names;
    let mut queues = vec![n.ingress_queue(), n.rejected_queue()];
    let mut ids: Vec<_> = s.shared.sinks.keys().cloned().collect();
    ids.sort();
    for a in &ids {
        queues.push(n.deliver_queue(a));
        queues.push(n.dead_queue(a));
    }
    for t in &s.shared.retry_tiers {
        queues.push(n.retry_tier(*t));
    }
    let mut out = Vec::new();
    for q in queues {
        let depth = s.shared.broker.queue_depth(&q).await;
        out.push(serde_json::json!({"queue": q, "messages": depth}));
    }
    axum::Json(serde_json::json!({"namespace": n.namespace, "queues": out})).into_response()
}

async fn lookup(State(s): State<AdminState>, Path((id, key)): Path<(String, String)>) -> Response {
    let Some(l) = s.shared.lookups.get(&id) else {
        return error_response(&ApiError::new(
            code::NOT_FOUND,
            format!("adapter `{id}` has no lookup"),
        ));
    };
    match l.lookup(&key).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&ApiError::new(code::UPSTREAM_ERROR, e.reason)),
    }
}
