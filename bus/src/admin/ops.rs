//! What an operator checks first: is the bus ready (broker connected, topology declared), and how deep is each
//! of its queues.

use super::AdminState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `GET /readyz`: 200 only while the broker is connected and the topology declared.
pub(super) async fn readyz(State(s): State<AdminState>) -> Response {
    let broker = s.ctx.broker.is_ready();
    let body = serde_json::json!({
        "ready": broker,
        "broker": if broker { "connected" } else { "disconnected" },
        "broker_error": s.ctx.broker.last_error(),
        "state": s.ctx.state.backend(),
    });
    let status = if broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Every queue of this namespace and its depth (none when the broker cannot say now): what `/v1/topology`
/// and the console's overview show.
pub(crate) async fn queue_depths(ctx: &crate::context::Context) -> Vec<(String, Option<u32>)> {
    let n = &ctx.names;
    let mut queues = vec![n.ingress_queue(), n.rejected_queue()];
    let declared = ctx.queues.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut ids: Vec<_> = declared.sinks.iter().chain(&declared.mailboxes).collect();
    ids.sort();
    let (ordered, _) = crate::order::ordered_adapters(&ctx.live.current().config);
    for a in ids {
        queues.push(n.deliver_queue(a));
        for p in 0..ordered.get(a).copied().unwrap_or(0) {
            queues.push(n.order_queue(a, p));
        }
        queues.push(n.dead_queue(a));
    }
    for t in &ctx.live.current().retry_tiers {
        queues.push(n.retry_tier(*t));
    }
    let mut out = Vec::new();
    for q in queues {
        let depth = ctx.broker.queue_depth(&q).await;
        out.push((q, depth));
    }
    out
}

/// `GET /v1/topology`: every queue of this namespace and its depth.
pub(super) async fn topology(State(s): State<AdminState>) -> Response {
    let out: Vec<_> = queue_depths(&s.ctx)
        .await
        .into_iter()
        .map(|(q, depth)| serde_json::json!({"queue": q, "messages": depth}))
        .collect();
    axum::Json(serde_json::json!({"namespace": s.ctx.names.namespace, "queues": out}))
        .into_response()
}
