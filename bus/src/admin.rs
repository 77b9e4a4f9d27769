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

pub fn router(shared: Arc<Shared>, env: &dyn Fn(&str) -> Option<String>) -> Router {
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
        .route("/v1/dossiers/{code}", get(dossier))
        .route("/v1/documents", get(document_by_query))
        .route("/v1/documents/{id}", get(document))
        .route("/v1/topology", get(topology))
        .route("/v1/adapters/{id}/lookup/{key}", get(lookup))
        .with_state(AdminState { shared, token })
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

#[derive(serde::Deserialize)]
struct AdapterQuery {
    adapter: Option<String>,
}

fn state_error(e: crate::state::StateError) -> Response {
    error_response(&ApiError::new(code::STATE_UNAVAILABLE, e.to_string()))
}

async fn dlq_list(State(s): State<AdminState>, Query(q): Query<AdapterQuery>) -> Response {
    match s.shared.state.dlq_list(q.adapter.as_deref()).await {
        Ok(v) => axum::Json(v).into_response(),
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
    match s.shared.state.dlq_get(&id, q.adapter.as_deref()).await {
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
    id: Option<String>,
    adapter: Option<String>,
    replay: bool,
) -> Response {
    let actor = match authorize(&s, &headers) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let ops = s.shared.dlq_ops();
    let r = if replay {
        ops.replay(id.as_deref(), adapter.as_deref(), &actor).await
    } else {
        ops.purge(id.as_deref(), adapter.as_deref(), &actor).await
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
    act(s, headers, Some(id), q.adapter, true).await
}
async fn dlq_purge(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, Some(id), q.adapter, false).await
}
async fn dlq_replay_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, None, q.adapter, true).await
}
async fn dlq_purge_all(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<AdapterQuery>,
) -> Response {
    act(s, headers, None, q.adapter, false).await
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

/// Portal status names (REFERENCE §3.3), for people reading the answer at 2 a.m.
fn status_name(code: i64) -> &'static str {
    match code {
        1 => "newly registered online",
        2 => "received by the one-stop desk",
        3 => "not received (refused)",
        4 => "processing",
        5 => "request for more papers",
        6 => "request to pay financial obligations",
        7 => "applicant withdrew",
        8 => "processing stopped",
        9 => "processing done",
        10 => "result returned",
        _ => "unknown",
    }
}

/// Now in Vietnam (UTC+7) as `yyyyMMddHHmmss`, the portal's date format.
pub fn now_vn_14() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(7);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether a dossier is on time: finished by its appointment date, or not yet past it.
pub fn timing(
    status: Option<i64>,
    due: Option<&str>,
    finished: Option<&str>,
    now: &str,
) -> serde_json::Value {
    let done = matches!(status, Some(3 | 7 | 8 | 9 | 10));
    let valid = |s: &str| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit());
    let due = due.filter(|d| valid(d));
    let (state, on_time) = match (due, done, finished.filter(|f| valid(f))) {
        (None, _, _) => ("no appointment date", None),
        (Some(d), true, Some(f)) => (
            if f <= d {
                "finished on time"
            } else {
                "finished late"
            },
            Some(f <= d),
        ),
        (Some(_), true, None) => ("finished (no finish date sent)", None),
        (Some(d), false, _) => (
            if now <= d {
                "open, on track"
            } else {
                "open, OVERDUE"
            },
            Some(now <= d),
        ),
    };
    serde_json::json!({ "state": state, "on_time": on_time, "due": due, "now": now })
}

/// Where one message went: `{"message_id", "delivered": [{adapter, at}], "dead_lettered": [{adapter, reason,
/// last_error}]}` (the dossier and document views both show it).
async fn whereabouts(s: &AdminState, message_id: &str) -> serde_json::Value {
    let state = &s.shared.state;
    let delivered = state.deliveries_of(message_id).await.unwrap_or_default();
    let parked = state.dlq_get(message_id, None).await.unwrap_or_default();
    serde_json::json!({
        "message_id": message_id,
        "delivered": delivered.iter().map(|(a, at)| serde_json::json!({"adapter": a, "at": at})).collect::<Vec<_>>(),
        "dead_lettered": parked.iter().map(|p| serde_json::json!({"adapter": p.adapter, "reason": p.reason, "last_error": p.last_error})).collect::<Vec<_>>(),
    })
}

/// `GET /v1/documents?id=<DocumentId>`: the same as `/v1/documents/{id}`, for ids that are awkward in a path.
async fn document_by_query(
    state: State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    match q.get("id") {
        Some(id) => document(state, Path(id.clone())).await,
        None => error_response(
            &ApiError::new(code::NOT_FOUND, "give the DocumentId as ?id=").at("/id", "required"),
        ),
    }
}

/// `GET /v1/documents/{DocumentId}` (percent-encoded: `000.00.00.H40%2C2026%2F11%2F27%2C125%2FUBND-VP`): where an
/// edXML document is — accepted (routes), delivered where or dead-lettered why — and where it stands at each
/// receiving agency: the status flow, and any recall or update unanswered.
async fn document(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let rows = match s.shared.state.document_statuses(&id).await {
        Ok(r) => r,
        Err(e) => return state_error(e),
    };
    // The document itself: its id follows from the issuer (the DocumentId's first part) and the DocumentId.
    let issuer = id.split(',').next().unwrap_or_default();
    let message_id = crate::ingress::xml::document_message_id(issuer, &id);
    let accepted = match s.shared.state.ingress_lookup(issuer, &message_id).await {
        Ok(a) => a,
        Err(e) => return state_error(e),
    };
    if rows.is_empty() && accepted.is_none() {
        return error_response(&ApiError::new(
            code::NOT_FOUND,
            format!("no status about document `{id}` has passed through this bus"),
        ));
    }
    let receivers: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(organ, stored, updated_at)| {
            match crate::edxml::status::DocState::from_storage(&stored) {
                Ok(st) => serde_json::json!({
                    "organ": organ,
                    "last_status": st.last().map(|c| c.as_str()),
                    "flow_status": st.stage().map(|c| c.as_str()),
                    "description": st.to_string(),
                    "recall_pending": st.is_recall_pending(),
                    "recalled": st.is_recalled(),
                    "update_pending": st.is_update_pending(),
                    "allowed_next": st.allowed_next().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "updated_at": updated_at,
                }),
                Err(e) => serde_json::json!({"organ": organ, "stored": stored, "error": e.to_string(), "updated_at": updated_at}),
            }
        })
        .collect();
    let document = match accepted {
        None => serde_json::Value::Null,
        Some(a) => {
            let mut v = whereabouts(&s, &message_id).await;
            v["sender"] = issuer.into();
            v["routes"] = serde_json::json!(a.routes);
            v
        }
    };
    axum::Json(serde_json::json!({"document_id": id, "document": document, "receivers": receivers}))
        .into_response()
}

async fn dossier(State(s): State<AdminState>, Path(code): Path<String>) -> Response {
    let view = match s.shared.state.dossier_get(&code).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return error_response(&ApiError::new(
                code::NOT_FOUND,
                format!("no dossier `{code}` has passed through this bus"),
            ));
        }
        Err(e) => return state_error(e),
    };
    let mut where_ = Vec::new();
    for e in &view.events {
        let mut v = whereabouts(&s, &e.message_id).await;
        v["type"] = e.kind.clone().into();
        where_.push(v);
    }
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["status_name"] = serde_json::json!(view.status.map(status_name));
    body["timing"] = timing(
        view.status,
        view.due.as_deref(),
        view.finished.as_deref(),
        &now_vn_14(),
    );
    body["messages"] = serde_json::Value::Array(where_);
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::timing;

    #[test]
    fn on_time_is_judged_against_the_appointment_date() {
        let now = "20261127120000";
        let t = |st, due, fin| {
            timing(st, due, fin, now)["state"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(t(Some(4), Some("20261130170000"), None), "open, on track");
        assert_eq!(t(Some(4), Some("20261120170000"), None), "open, OVERDUE");
        assert_eq!(
            t(Some(10), Some("20261130170000"), Some("20261129090000")),
            "finished on time"
        );
        assert_eq!(
            t(Some(9), Some("20261130170000"), Some("20261201090000")),
            "finished late"
        );
        assert_eq!(t(Some(2), None, None), "no appointment date");
        assert_eq!(
            timing(Some(4), Some("20261120170000"), None, now)["on_time"],
            false
        );
    }
}
