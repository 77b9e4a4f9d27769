//! The domain's read endpoints on the admin listener:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /v1/dossiers/{MaHoSo}` | where a dossier is: its state, status, appointment date and that date's history, the timeline of its steps (each with its own deadline judged), every message about it and where each went |
//! | `GET /v1/dossiers?agency=&status=&state=&received_from=&received_to=&page=&per_page=` | search, newest received first, paged |
//! | `GET /v1/stats/on-time?from=&to=&agency=[&format=csv]` | on-time counts and rate per agency and for the province |
//! | `GET /v1/documents?id=<DocumentId>`, `GET /v1/documents/{DocumentId}` | where an edXML document is: accepted with which routes, delivered where or dead-lettered why, and its status flow at each receiving agency, each status checked or taken as reported |
//! | `GET /v1/openapi`, `GET /openapi.json` | the OpenAPI 3.1 document of the ingress and admin APIs as this build serves them (`docs/openapi.json`, embedded; served here because only the build with the domain serves all of those routes) |

pub(crate) mod search;
mod views;

use crate::documents::DocumentStore;
use crate::dossiers::DossierStore;
use crate::dossiers::rules::Clock;
use crate::qcvn::edxml;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lienthong_bus::config::Config;
use lienthong_bus::error::{ApiError, code};
use lienthong_bus::state::StateStore;
use std::sync::Arc;
use std::time::Duration;
pub use views::{status_name, status_name_vi, timing};

/// What the endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub state: StateStore,
    pub dossiers: DossierStore,
    pub documents: DocumentStore,
    /// Which agency a code names (a DocumentId's issuer may be written with any of its codes).
    pub config: Arc<Config>,
    /// `[tracking] due_soon`.
    pub due_soon: Duration,
    /// Configured agency names by code (`[[agencies]] name`).
    pub agency_names: crate::names::AgencyNames,
}

impl AdminState {
    /// The clock dossiers are judged by now.
    pub fn clock(&self) -> Clock {
        Clock::now(self.due_soon)
    }

    /// The configured name of agency `code`.
    pub fn name(&self, code: &str) -> Option<String> {
        self.agency_names.get(code)
    }
}

/// The routes, to be merged into the bus's admin router.
pub fn router(s: AdminState) -> Router {
    Router::new()
        .route("/v1/dossiers", get(search::search))
        .route("/v1/stats/on-time", get(search::on_time))
        .route("/v1/dossiers/{code}", get(dossier))
        .route("/v1/documents", get(document_by_query))
        .route("/v1/documents/{id}", get(document))
        .route("/v1/openapi", get(openapi))
        .route("/openapi.json", get(openapi))
        .with_state(s)
}

/// `docs/openapi.json`: the ingress and admin APIs (the core's and these), kept in the repository and
/// checked against the routers by `tests/openapi.rs`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    e.clone().into_response()
}

/// Where one message went: `{"message_id", "delivered": [{adapter, at}], "dead_lettered": [{adapter, reason,
/// last_error}]}` (the dossier and document views both show it).
async fn whereabouts(s: &AdminState, sender: &str, message_id: &str) -> serde_json::Value {
    let state = &s.state;
    let delivered = state
        .deliveries_of(sender, message_id)
        .await
        .unwrap_or_default();
    let parked = state
        .dlq_get(message_id, None, Some(sender))
        .await
        .unwrap_or_default();
    serde_json::json!({
        "message_id": message_id,
        "from": sender,
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
            &ApiError::new(
                code::INVALID_QUERY,
                "query parameter `id`: required (the DocumentId, as ?id=)",
            )
            .at("id", "required"),
        ),
    }
}

/// `GET /v1/documents/{DocumentId}` (percent-encoded: `000.00.00.H40%2C2026%2F11%2F27%2C125%2FUBND-VP`): where an
/// edXML document is — accepted (routes), delivered where or dead-lettered why — and where it stands at each
/// receiving agency: the status flow, any recall or update unanswered, and every status accepted with whether
/// it was checked against what the bus saw or taken as reported (`first_seen_at`: the first status the bus saw
/// from that agency; `document: null` when the bus never carried the document itself).
async fn document(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    match document_value(&s, &id).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(code::STATE_UNAVAILABLE, e.to_string())
}

/// What `GET /v1/documents/{id}` answers (the console draws it too).
pub(crate) async fn document_value(
    s: &AdminState,
    id: &str,
) -> Result<serde_json::Value, ApiError> {
    let id = id.to_owned();
    let (rows, events) =
        tokio::try_join!(s.documents.statuses(&id), s.documents.status_events(&id))
            .map_err(|e| unavailable(&e))?;
    // The document itself: its id follows from the issuer (the DocumentId's first part, as the bus names that
    // agency) and the DocumentId.
    let issuer = s
        .config
        .canonical_code(id.split(',').next().unwrap_or_default());
    let message_id = crate::edxml_ingress::document_message_id(issuer, &id);
    let accepted = s
        .state
        .ingress_lookup(issuer, &message_id)
        .await
        .map_err(|e| unavailable(&e))?;
    if rows.is_empty() && accepted.is_none() {
        return Err(ApiError::new(
            code::NOT_FOUND,
            format!("no status about document `{id}` has passed through this bus"),
        ));
    }
    let receivers: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(organ, stored, updated_at)| {
            let seen: Vec<&crate::documents::StatusEvent> =
                events.iter().filter(|e| e.organ == organ).collect();
            let statuses: Vec<serde_json::Value> = seen
                .iter()
                .map(|e| serde_json::json!({"code": e.code, "judged": e.judged, "message_id": e.message_id, "at": e.at}))
                .collect();
            let first_seen_at = seen.first().map(|e| e.code.clone());
            match edxml::status::DocState::from_storage(&stored) {
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
                    "first_seen_at": first_seen_at,
                    "statuses": statuses,
                }),
                Err(e) => serde_json::json!({"organ": organ, "stored": stored, "error": e.to_string(), "updated_at": updated_at}),
            }
        })
        .collect();
    let document = match accepted {
        None => serde_json::Value::Null,
        Some(a) => {
            let mut v = whereabouts(s, issuer, &message_id).await;
            v["sender"] = issuer.into();
            v["routes"] = serde_json::json!(a.routes);
            v
        }
    };
    Ok(serde_json::json!({"document_id": id, "document": document, "receivers": receivers}))
}

async fn dossier(State(s): State<AdminState>, Path(code): Path<String>) -> Response {
    match dossier_value(&s, &code).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

/// What `GET /v1/dossiers/{code}` answers (the console draws it too).
pub(crate) async fn dossier_value(
    s: &AdminState,
    code: &str,
) -> Result<serde_json::Value, ApiError> {
    let view = match s.dossiers.get(code).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(ApiError::new(
                code::NOT_FOUND,
                format!("no dossier `{code}` has passed through this bus"),
            ));
        }
        Err(e) => return Err(unavailable(&e)),
    };
    let mut where_ = Vec::new();
    for e in &view.events {
        let mut v = whereabouts(s, &e.sender, &e.message_id).await;
        v["type"] = e.kind.clone().into();
        where_.push(v);
    }
    let mut body = views::dossier_json(&view, &s.clock(), &|c| s.name(c));
    body["messages"] = serde_json::Value::Array(where_);
    Ok(body)
}
