//! edXML packages on ingress (`Content-Type: application/xml`): the bus's XML [`Format`].
//!
//! The package is parsed as a stream (no DOCTYPE or entity declarations, bounded depth and size, attachments'
//! base64 checked without a decoded copy), the sender must be the caller (by any of its codes), the header —
//! mapped to JSON — is validated against `document.edxml` or `document.status` like any payload, and a status
//! report must be a legal next step from what the bus saw of that document at that agency — the first status
//! seen is taken as reported (docs/qcvn102.md). The package bytes travel unchanged.

use crate::documents::DocumentStore;
use crate::qcvn::edxml::{self, PackageKind};
use async_trait::async_trait;
use lienthong_bus::adapter::{Caller, Submission};
use lienthong_bus::error::{ApiError, code};
use lienthong_bus::message::{ContentKind, Message, Meta, now_rfc3339};
use lienthong_bus::plugin::{Format, Prepared, Schemas};
use lienthong_bus::state::StateStore;

/// The edXML format: what it needs to judge a package.
pub struct EdxmlFormat {
    /// For "was this status package accepted before?" (ingress idempotency).
    pub state: StateStore,
    pub documents: DocumentStore,
}

#[async_trait]
impl Format for EdxmlFormat {
    fn content(&self) -> ContentKind {
        ContentKind::Xml
    }

    async fn prepare(&self, sub: &Submission, schemas: &Schemas<'_>) -> Result<Prepared, ApiError> {
        prepare(self, sub, schemas).await
    }

    /// `order_by = "/payload/…"` on an edXML route: the pointer into the package's header as JSON (element
    /// local names as keys, as the `document.*` schemas see it, e.g. `/payload/Subject`), with
    /// `/payload/DocumentId` the document the package is about (a status's ResponseFor document too). The
    /// package is parsed again, once per ordered copy; `/correlation_id` names the same DocumentId without that.
    fn order_key(&self, message: &Message, pointer: &str) -> Option<String> {
        order_key(&message.payload, pointer)
    }
}

fn order_key(package: &[u8], pointer: &str) -> Option<String> {
    let limits = edxml::Limits {
        max_bytes: package.len(),
        ..Default::default()
    };
    let pkg = edxml::parse(package, &limits).ok()?;
    if pointer == "/DocumentId" {
        return pkg.document_id.filter(|d| !d.is_empty());
    }
    match pkg.header.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn prepare(
    ingress: &EdxmlFormat,
    sub: &Submission,
    schemas: &Schemas<'_>,
) -> Result<Prepared, ApiError> {
    let limits = edxml::Limits {
        max_bytes: schemas.max_body_bytes.max(sub.body.len()),
        ..Default::default()
    };
    let pkg = edxml::parse(&sub.body, &limits).map_err(|e| {
        let err = ApiError::new(code::INVALID_XML, e.to_string());
        match e.path() {
            Some(p) => err.at(p, e.to_string()),
            None => err,
        }
    })?;
    let Caller::Agency(caller) = &sub.caller;
    // Which codes are the caller's (`[[agencies]] code`, `qd20_code`, `other_codes`), by the config in force.
    let config = schemas.config;
    if !config.is_code_of(caller, &pkg.from) {
        return Err(
            lienthong_bus::ingress::forbidden_sender("From/OrganId", &pkg.from, caller).at(
                "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId",
                "must be one of the authenticated agency's codes (`code`, `qd20_code`, `other_codes`)",
            ),
        );
    }
    // The sender as the bus names it, whichever of its codes the package carries: ids, records and routes go by
    // this, so the same document sent under two of an agency's codes is one message.
    let sender = caller.as_str();
    let kind = pkg.message_type();
    let version = schemas.resolve_version(kind, None)?;
    schemas.validate("edXML header", kind, version, &pkg.header)?;
    let document_id = pkg.document_id.clone().unwrap_or_default();
    // 0 new, 1 revoke, 2 update, 3 replace.
    let business = pkg
        .header
        .pointer("/TraceHeaderList/Bussiness/BussinessDocType")
        .and_then(|v| v.as_str())
        .map(str::trim)
        .unwrap_or("0");
    let id_source = match &pkg.kind {
        PackageKind::Document => {
            if business.is_empty() || business == "0" {
                document_id_source(sender, &document_id)
            } else {
                // A revoke, update or replace (1/2/3) carries the DocumentId of the document it changes: each
                // distinct one is a message of its own, the same bytes again are the same message.
                let content = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &sub.body);
                format!("doc|{sender}|{document_id}|{business}|{content}")
            }
        }
        PackageKind::Status { code, .. } => {
            let ts = pkg
                .header
                .get("Timestamp")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            format!("status|{sender}|{document_id}|{}|{ts}", code.as_str())
        }
    };
    // A package is identified by what it is (sender + DocumentId; for a revoke/update/replace also its type
    // and bytes; for a status + code and time), whichever way it came (HTTP, AMQP, a folder, the axis) and
    // whatever id that channel would give it: receivers de-duplicate documents by sender and DocumentId
    // (`docs/qcvn102.md`, "Ids"), and a document offered again — resubmitted, re-dropped under another name, re-listed
    // by the axis under another docId — is the same message, delivered once.
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id_source.as_bytes()).to_string();
    if let PackageKind::Status { code: status, .. } = &pkg.kind
        && status.is_sent_by_sender()
    {
        // A DocumentId starts with the agency that issued the document (schema-checked); only that agency may
        // recall it, or any agency could freeze another's document at its receivers. Every ResponseFor counts.
        let items = pkg.header.get("ResponseFor").and_then(|v| v.as_array());
        for (i, item) in items.into_iter().flatten().enumerate() {
            let doc = item
                .get("DocumentId")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let issuer = doc.split(',').next().unwrap_or_default();
            if !config.is_code_of(caller, issuer) {
                return Err(ApiError::new(
                    code::FORBIDDEN,
                    format!(
                        "status 13 (recall) of document {doc} comes from {}, but only its issuer {issuer} \
                         can recall it",
                        pkg.from
                    ),
                )
                .at(
                    format!("/ResponseFor/{i}/DocumentId"),
                    "a recall must come from the agency the DocumentId starts with",
                ));
            }
        }
    }
    if let PackageKind::Status { code: status, .. } = &pkg.kind {
        // A status package accepted before is answered as before (in `publish`); checking it again against a
        // document that has moved on since would refuse a plain resubmission.
        let seen = ingress
            .state
            .ingress_lookup(sender, &id)
            .await
            .map_err(state_unavailable)?
            .is_some();
        if !seen {
            // A document's flow is kept per receiving agency: the reporter for the receiver's codes, the
            // addressees (ResponseFor/OrganId) for the sender's recall 13, so that their 15/16 answers it.
            // Organs are named as the bus names them, so an agency's statuses meet whichever code it used.
            let organs: Vec<&str> = if status.is_sent_by_sender() {
                pkg.to.iter().map(|t| config.canonical_code(t)).collect()
            } else {
                vec![sender]
            };
            // A document the bus carried itself has its whole flow checked; only for one it never saw is a
            // receiver's first status taken as reported (`docs/qcvn102.md`, "What the bus did not see").
            let issuer = config.canonical_code(document_id.split(',').next().unwrap_or_default());
            let carried = ingress
                .state
                .ingress_lookup(issuer, &document_message_id(issuer, &document_id))
                .await
                .map_err(state_unavailable)?
                .is_some();
            for organ in organs {
                check_transition(ingress, &document_id, organ, *status, &id, carried).await?;
            }
        }
    }
    if matches!(pkg.kind, PackageKind::Document) && matches!(business, "2" | "3") {
        // An update or replacement may be answered by each receiver with 15 or 16 (`docs/qcvn102.md`, "Status codes"), under the
        // DocumentId it carries or the one its business information names.
        let mut targets = vec![document_id.as_str()];
        if let Some(about) = pkg
            .header
            .pointer("/TraceHeaderList/Bussiness/DocumentId")
            .and_then(|v| v.as_str())
            .filter(|d| !d.is_empty() && *d != document_id)
        {
            targets.push(about);
        }
        for target in targets.into_iter().filter(|t| !t.is_empty()) {
            for organ in &pkg.to {
                mark_update(ingress, target, config.canonical_code(organ)).await?;
            }
        }
    }
    Ok(Prepared {
        observed: None,
        client_id: Some(id.clone()),
        message: Message {
            meta: Meta {
                id,
                kind: kind.to_owned(),
                version,
                from: sender.to_owned(),
                to: pkg.to.clone(),
                correlation_id: pkg.document_id.clone(),
                created_at: now_rfc3339(),
            },
            content: ContentKind::Xml,
            payload: sub.body.clone(),
        },
    })
}

fn document_id_source(from: &str, document_id: &str) -> String {
    format!("doc|{from}|{document_id}")
}

/// The message id the bus gives a (new, `BussinessDocType` 0) document package: derived from its sender and
/// DocumentId, so the admin API can find the document's deliveries from the DocumentId alone.
pub(crate) fn document_message_id(from: &str, document_id: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        document_id_source(from, document_id).as_bytes(),
    )
    .to_string()
}

fn state_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(code::STATE_UNAVAILABLE, e.to_string())
}

/// What the state store holds for `document_id` at `organ`: the stored text (for the compare-and-set) and
/// the state it means.
async fn document_state(
    ingress: &EdxmlFormat,
    document_id: &str,
    organ: &str,
) -> Result<(Option<String>, edxml::status::DocState), ApiError> {
    let prev = ingress
        .documents
        .status(document_id, organ)
        .await
        .map_err(state_unavailable)?;
    let current = match prev.as_deref() {
        None => edxml::status::DocState::new(),
        Some(s) => edxml::status::DocState::from_storage(s)
            .map_err(|e| ApiError::new(code::INTERNAL, e.to_string()))?,
    };
    Ok((prev, current))
}

/// Records that `organ` may answer an update of `document_id` with 15 or 16.
async fn mark_update(
    ingress: &EdxmlFormat,
    document_id: &str,
    organ: &str,
) -> Result<(), ApiError> {
    // A status arriving at the same moment can win the compare-and-set; read again and retry a few times.
    for _ in 0..5 {
        let (prev, current) = document_state(ingress, document_id, organ).await?;
        if current.is_update_pending() {
            return Ok(());
        }
        let after = current.with_update().to_storage();
        if ingress
            .documents
            .set_status(document_id, organ, prev.as_deref(), &after)
            .await
            .map_err(state_unavailable)?
        {
            return Ok(());
        }
    }
    Err(ApiError::new(
        code::CONFLICT,
        "statuses for this document kept arriving at the same time; send it again",
    )
    .retryable())
}

/// Applies status `next` (message `message_id`) to `document_id` at `organ`: checked against what the bus saw
/// there, or — for a document the bus never `carried`, the first status seen when the rules would not allow it
/// first — taken as reported. Either way it is recorded with that judgement, for the document view.
async fn check_transition(
    ingress: &EdxmlFormat,
    document_id: &str,
    organ: &str,
    next: edxml::StatusCode,
    message_id: &str,
    carried: bool,
) -> Result<(), ApiError> {
    let (prev, current) = document_state(ingress, document_id, organ).await?;
    let judged = if carried {
        current
            .apply(next)
            .map(|s| (s, edxml::status::Judgement::Checked))
    } else {
        current.accept(next)
    };
    let (after, judged) = judged.map_err(|e| {
        ApiError::new(code::INVALID_TRANSITION, e.to_string()).at("/StatusCode", e.to_string())
    })?;
    if judged == edxml::status::Judgement::TakenAsReported {
        tracing::info!(
            document_id,
            organ,
            status = next.as_str(),
            "No earlier status of this document at this agency passed through the bus: first seen at {}, taken \
             as reported",
            next.as_str()
        );
    }
    let changed = ingress
        .documents
        .set_status(document_id, organ, prev.as_deref(), &after.to_storage())
        .await
        .map_err(state_unavailable)?;
    if !changed {
        return Err(ApiError::new(
            code::CONFLICT,
            "another status for this document arrived at the same time; send it again",
        )
        .retryable());
    }
    ingress
        .documents
        .record_status(
            document_id,
            organ,
            message_id,
            next.as_str(),
            judged.as_str(),
        )
        .await
        .map_err(state_unavailable)?;
    Ok(())
}

#[cfg(test)]
mod order_tests {
    #[test]
    fn an_edxml_package_is_ordered_by_its_header() {
        let sample = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config/samples/05-document-edxml.xml"),
        )
        .unwrap();
        let pkg = super::edxml::parse(&sample, &Default::default()).unwrap();
        let id = pkg.document_id.clone().unwrap();
        assert_eq!(
            super::order_key(&sample, "/DocumentId").as_deref(),
            Some(id.as_str())
        );
        let subject = pkg.header["Subject"].as_str().unwrap().to_owned();
        assert_eq!(
            super::order_key(&sample, "/Subject").as_deref(),
            Some(subject.as_str())
        );
        assert_eq!(super::order_key(&sample, "/NoSuchElement"), None);
        assert_eq!(super::order_key(b"<not-edxml/>", "/DocumentId"), None);
    }
}
