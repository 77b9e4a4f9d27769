//! The mailbox on the ingress API: `GET /v1/inbox`, `GET /v1/inbox/{id}`, `POST /v1/inbox/{id}/ack`,
//! `POST /v1/inbox/{id}/nack`, with the agency's own credentials (the same token or client certificate rules as
//! `POST /v1/messages`).
//!
//! Why on the ingress listener: it is the one an agency's system already reaches with its credentials; the
//! admin API is for operators. An agency reads only its own mailbox: `?agency=` may name any of its own codes
//! and anything else is 403, as is an id held in another agency's mailbox; an agency without a mailbox gets
//! 404, as does an id no mailbox holds.

use super::{Mailbox, Settled};
use crate::error::{ApiError, code};
use crate::http_api::error_response;
use crate::ingress::Ingress;
use crate::message::ContentKind;
use crate::tls::ClientCert;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The most messages one listing returns, and the default.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;
/// The longest refusal reason kept (longer ones are cut).
const MAX_REASON: usize = 1000;

type Cert = Option<axum::Extension<ClientCert>>;

/// The query parameters of the inbox endpoints; anything else is 400 `invalid_query` naming it.
struct InboxQuery {
    limit: usize,
    from: Option<String>,
    agency: Option<String>,
}

fn query(q: &HashMap<String, String>, allowed: &[&str]) -> Result<InboxQuery, ApiError> {
    let invalid = |key: &str, m: String| {
        ApiError::new(code::INVALID_QUERY, format!("query parameter `{key}`: {m}")).at(key, m)
    };
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            k,
            format!("unknown here; known: {}", allowed.join(", ")),
        ));
    }
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(invalid("limit", format!("must be 1 to {MAX_LIMIT}"))),
        },
    };
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match q.get(k) {
            Some(v) if v.trim().is_empty() => Err(invalid(k, "must not be empty".into())),
            v => Ok(v.cloned()),
        }
    };
    Ok(InboxQuery {
        limit,
        from: text("from")?,
        agency: text("agency")?,
    })
}

/// The caller's mailbox: 401 without credentials, 403 for another agency's (`?agency=`), 404 when it has none.
fn mailbox(
    ingress: &Ingress,
    headers: &HeaderMap,
    cert: Cert,
    q: &InboxQuery,
) -> Result<Arc<Mailbox>, ApiError> {
    let cert = cert.map(|axum::Extension(ClientCert(c))| c);
    let caller = ingress.caller(headers, cert.as_deref())?;
    let live = ingress.ctx().live.current();
    if let Some(asked) = &q.agency
        && !live.config.is_code_of(&caller, asked)
    {
        return Err(ApiError::new(
            code::FORBIDDEN,
            format!("{caller} may read only its own mailbox, not {asked}'s"),
        )
        .at("agency", "is not a code of the authenticated agency"));
    }
    live.mailboxes.of_agency(&caller).cloned().ok_or_else(|| {
        ApiError::new(
            code::NOT_FOUND,
            format!("{caller} has no mailbox (an adapter of type `mailbox` for it)"),
        )
    })
}

/// A 404 for message `id` becomes 403 `forbidden` when the message waits in another agency's mailbox than
/// `own`: the caller is asking for what is not its own, and is told so rather than that nothing is there.
fn refused_if_elsewhere(
    ingress: &Ingress,
    own: Option<&Arc<Mailbox>>,
    id: &str,
    from: Option<&str>,
    e: ApiError,
) -> ApiError {
    if e.code != code::NOT_FOUND {
        return e;
    }
    let live = ingress.ctx().live.current();
    let elsewhere = live
        .mailboxes
        .all()
        .filter(|m| own.is_none_or(|o| !Arc::ptr_eq(o, m)))
        .any(|m| m.holds(id, from));
    if !elsewhere {
        return e;
    }
    ApiError::new(
        code::FORBIDDEN,
        format!("message `{id}` waits in another agency's mailbox; an agency reads only its own"),
    )
}

/// [`open`] for the endpoints of one message `id`: a caller with no mailbox asking for a message another
/// agency's mailbox holds is 403, not 404.
fn open_for(
    ingress: &Ingress,
    headers: &HeaderMap,
    cert: Cert,
    raw: &HashMap<String, String>,
    id: &str,
) -> Result<(InboxQuery, Arc<Mailbox>), ApiError> {
    open(ingress, headers, cert, raw, &["from", "agency"]).map_err(|e| {
        let from = raw.get("from").map(String::as_str);
        refused_if_elsewhere(ingress, None, id, from, e)
    })
}

/// What every `/v1/inbox` request starts with: its query (only the `allowed` parameters) and the caller's
/// mailbox.
fn open(
    ingress: &Ingress,
    headers: &HeaderMap,
    cert: Cert,
    raw: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<(InboxQuery, Arc<Mailbox>), ApiError> {
    let q = query(raw, allowed)?;
    let mb = mailbox(ingress, headers, cert, &q)?;
    Ok((q, mb))
}

/// `GET /v1/inbox[?limit=N]`: held messages not under a lease, oldest first.
pub async fn list(
    State(ingress): State<Arc<Ingress>>,
    cert: Cert,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match open(&ingress, &headers, cert, &q, &["limit", "agency"]) {
        Ok((q, mb)) => axum::Json(mb.list_waiting(q.limit).await).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `GET /v1/inbox/{id}[?from=]`: the message (its envelope JSON, or its XML document), leased for the mailbox's
/// `lease`.
pub async fn fetch(
    State(ingress): State<Arc<Ingress>>,
    cert: Cert,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let run = || {
        let (q, mb) = open_for(&ingress, &headers, cert, &q, &id)?;
        let (copy, lease_until) = mb
            .fetch(&id, q.from.as_deref())
            .map_err(|e| refused_if_elsewhere(&ingress, Some(&mb), &id, q.from.as_deref(), e))?;
        let m = &copy.message;
        let mut resp = match m.content {
            ContentKind::Json => (
                [(header::CONTENT_TYPE, "application/json")],
                m.envelope_json(None),
            )
                .into_response(),
            ContentKind::Xml => (
                [(header::CONTENT_TYPE, "application/xml")],
                Body::from(m.payload.clone()),
            )
                .into_response(),
        };
        let h = resp.headers_mut();
        for (name, value) in [
            ("x-lt-message-id", m.meta.id.as_str()),
            ("x-lt-type", m.meta.kind.as_str()),
            ("x-lt-from", m.meta.from.as_str()),
            ("x-lt-lease-until", lease_until.as_str()),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        if !copy.traceparent.is_empty()
            && let Ok(v) = HeaderValue::from_str(&copy.traceparent)
        {
            h.insert("traceparent", v);
        }
        Ok::<_, ApiError>(resp)
    };
    run().unwrap_or_else(|e| error_response(&e))
}

fn settled(s: Settled, status: &str) -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"id": s.id, "from": s.from, "status": status})),
    )
        .into_response()
}

/// `POST /v1/inbox/{id}/ack[?from=]`: done; recorded as delivered and removed.
pub async fn ack(
    State(ingress): State<Arc<Ingress>>,
    cert: Cert,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (q, mb) = match open_for(&ingress, &headers, cert, &q, &id) {
        Ok(opened) => opened,
        Err(e) => return error_response(&e),
    };
    match mb.ack(&id, q.from.as_deref()).await {
        Ok(s) => settled(s, "delivered"),
        Err(e) => error_response(&refused_if_elsewhere(
            &ingress,
            Some(&mb),
            &id,
            q.from.as_deref(),
            e,
        )),
    }
}

/// `{"reason": "…"}` of a nack.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

/// `POST /v1/inbox/{id}/nack[?from=]` with `{"reason": "…"}`: refused; dead-lettered with that reason.
pub async fn nack(
    State(ingress): State<Arc<Ingress>>,
    cert: Cert,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let (q, mb) = match open_for(&ingress, &headers, cert, &q, &id) {
        Ok(opened) => opened,
        Err(e) => return error_response(&e),
    };
    let reason = match serde_json::from_slice::<Refusal>(&body) {
        Ok(r) if !r.reason.trim().is_empty() => r.reason,
        Ok(_) => {
            return error_response(
                &ApiError::new(code::INVALID_JSON, "`reason` must not be empty")
                    .at("/reason", "must not be empty"),
            );
        }
        Err(e) => {
            return error_response(
                &ApiError::new(
                    code::INVALID_JSON,
                    format!("the body must be {{\"reason\": \"…\"}}: {e}"),
                )
                .at("/reason", "required: why the message is refused"),
            );
        }
    };
    let reason: String = reason.trim().chars().take(MAX_REASON).collect();
    match mb.nack(&id, q.from.as_deref(), &reason).await {
        Ok(s) => settled(s, "dead_lettered"),
        Err(e) => error_response(&refused_if_elsewhere(
            &ingress,
            Some(&mb),
            &id,
            q.from.as_deref(),
            e,
        )),
    }
}
