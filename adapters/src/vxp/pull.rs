//! One poll of the axis: list, then for each document fetch, submit to the bus and mark it, in that order, so
//! that nothing is marked at the axis before the bus has accepted it (see the module docs of `vxp`).

use super::axis::{FetchError, Listed};
use super::{PollStats, VxpPull};
use lienthong_bus::adapter::{Caller, Submission, Submit};
use lienthong_bus::error::ApiError;
use lienthong_bus::message::ContentKind;
use lienthong_qcvn102::agency::AgencyCode;

/// Longest `reason` sent with `fail`.
const MAX_REASON_CHARS: usize = 1000;

impl VxpPull {
    /// One round: list, then fetch, submit and mark each document in turn.
    pub async fn poll_once(&self, ingress: &dyn Submit) -> PollStats {
        let mut stats = PollStats::default();
        let mut listed = Vec::new();
        for service in &self.service_types {
            match self.list(service).await {
                Ok(l) => listed.extend(l),
                Err(e) => {
                    tracing::warn!(servicetype = %service, error = %e, "cannot list pending items at the axis; will try again");
                }
            }
        }
        stats.listed = listed.len();
        for item in listed {
            match self.take(&item, ingress).await {
                Outcome::Done => stats.done += 1,
                Outcome::Failed => stats.failed += 1,
                Outcome::Left => stats.left += 1,
            }
        }
        if stats.listed > 0 {
            tracing::info!(
                listed = stats.listed,
                done = stats.done,
                failed = stats.failed,
                left = stats.left,
                "pulled documents from the axis"
            );
        }
        stats
    }

    async fn take(&self, item: &Listed, ingress: &dyn Submit) -> Outcome {
        let doc = item.doc_id.as_str();
        let svc = item.service.as_str();
        let body = match self.fetch(doc, svc).await {
            Ok(b) => b,
            Err(FetchError::TooLarge(n)) => {
                let reason = format!(
                    "package is larger than the bus accepts ({n} bytes read, limit {} bytes)",
                    self.max_bytes
                );
                return self.mark_failed(doc, svc, &reason).await;
            }
            Err(FetchError::Retry(e)) => {
                tracing::warn!(doc_id = doc, error = %e, "cannot fetch document; left pending");
                return Outcome::Left;
            }
        };
        let agency_code = |f: &str| {
            let code = self.qd20.get(f).map(String::as_str).unwrap_or(f);
            AgencyCode::parse(code).is_ok().then(|| code.to_owned())
        };
        let written = package_sender(&body);
        let sender = item
            .from
            .as_deref()
            .and_then(agency_code)
            .or_else(|| written.as_deref().and_then(agency_code));
        let Some(sender) = sender else {
            let reason = if written.is_none() && item.from.is_none() {
                "sender unknown: the list item names no sender, and the package's MessageHeader/From/OrganId \
                 cannot be read (is it a well-formed edXML package?)"
            } else {
                "sender unknown: neither the list item's `from` nor the package's \
                 MessageHeader/From/OrganId is a QCVN 102 agency code or another code of a \
                 configured agency"
            };
            return self.mark_failed(doc, svc, reason).await;
        };
        let submission = Submission {
            caller: Caller::Agency(sender),
            content: ContentKind::Xml,
            body,
            traceparent: None,
            // Documents keep the id they always had; other service types get their own, so that ids listed
            // under two service types can never be taken for one another.
            fallback_id: Some(match svc {
                "eDoc" => format!("vxp-{doc}"),
                other => format!("vxp-{}-{doc}", other.to_lowercase()),
            }),
        };
        match ingress.submit(submission).await {
            Ok(accepted) => {
                tracing::debug!(doc_id = doc, id = %accepted.id, "document accepted by the bus");
                match self.mark(doc, svc, "done", None).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => {
                        tracing::warn!(
                            doc_id = doc, id = %accepted.id, error = %e,
                            "accepted by the bus but not marked done at the axis; it will be offered again \
                             and resubmitted with the same id"
                        );
                        Outcome::Left
                    }
                }
            }
            Err(e) if !e.retry_later() => self.mark_failed(doc, svc, &refusal(&e)).await,
            Err(e) => {
                tracing::warn!(doc_id = doc, code = %e.code, error = %e.message, "bus unavailable; left pending");
                Outcome::Left
            }
        }
    }

    async fn mark_failed(&self, doc: &str, svc: &str, reason: &str) -> Outcome {
        tracing::warn!(
            doc_id = doc,
            reason,
            "document refused; marking it failed at the axis"
        );
        match self.mark(doc, svc, "fail", Some(reason)).await {
            Ok(()) => Outcome::Failed,
            Err(e) => {
                tracing::warn!(doc_id = doc, error = %e, "cannot mark document failed; left pending");
                Outcome::Left
            }
        }
    }
}

enum Outcome {
    Done,
    Failed,
    Left,
}

/// The reason sent with `fail`: the bus's code, message and details, cut to a sane length.
fn refusal(e: &ApiError) -> String {
    let mut s = format!("bus refused the document: {}: {}", e.code, e.message);
    for d in &e.details {
        s.push_str(&format!("; {}: {}", d.path, d.message));
    }
    if s.chars().count() > MAX_REASON_CHARS {
        s = s.chars().take(MAX_REASON_CHARS - 1).collect();
        s.push('…');
    }
    s
}

/// `MessageHeader/From/OrganId` of an edXML package (any namespace prefix), reading only the header.
pub(crate) fn package_sender(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let in_sender = |stack: &[String]| {
        stack.len() >= 3 && stack[stack.len() - 3..] == ["MessageHeader", "From", "OrganId"]
    };
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if name == "edXMLBody" || name == "AttachmentEncoded" {
                    return None;
                }
                stack.push(name);
            }
            Event::End(_) => {
                if in_sender(&stack) {
                    let v = value.trim();
                    return (!v.is_empty()).then(|| v.to_owned());
                }
                stack.pop();
            }
            Event::Text(t) if in_sender(&stack) => value.push_str(&t.xml10_content()),
            Event::Eof => return None,
            _ => {}
        }
    }
}
