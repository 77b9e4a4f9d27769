//! Where an accepted message goes: the routes in force, the refusals when nothing (or not every receiver) is
//! served, and each ordered route's key and partition.

use super::Ingress;
use crate::error::{ApiError, code};
use crate::live::Snapshot;
use crate::message::{Message, Meta};
use crate::router::Decision;

/// Where a prepared message goes by the routes in force: every matching route and one target per adapter;
/// `no_route` when none.
pub(super) fn route(live: &Snapshot, meta: &Meta) -> Result<Decision, ApiError> {
    let decision = live.router.route(&meta.kind, &meta.from, &meta.to);
    if !decision.unreachable.is_empty() {
        let mut e = ApiError::new(
            code::NO_ROUTE,
            format!(
                "no inbox for {}: a route delivering to each receiver's inbox (`deliver = [\"@to\"]`) \
                     matched, and these receivers have no `[[agencies]] inbox`",
                decision
                    .unreachable
                    .iter()
                    .map(|(route, to)| format!("{to} (route {route})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        for (_, to) in &decision.unreachable {
            if let Some(i) = meta.to.iter().position(|t| t == to) {
                e = e.at(format!("/to/{i}"), format!("{to} has no inbox"));
            }
        }
        return Err(e);
    }
    if decision.targets.is_empty() || !decision.unserved.is_empty() {
        return Err(no_route(meta, &decision.unserved));
    }
    Ok(decision)
}

impl Ingress {
    /// For each target, its order key and partition when its route keeps per-key order (`order_by`). A
    /// message with no key where an ordered route looks is refused (422 `schema_violation` at the pointer):
    /// sent unordered, it could overtake or be overtaken by the messages its route promises to keep in order.
    pub(super) fn order_keys(
        &self,
        live: &Snapshot,
        message: &Message,
        decision: &Decision,
    ) -> Result<Vec<Option<(String, u16)>>, ApiError> {
        let router = &live.router;
        let format = self.formats.iter().find(|f| f.content() == message.content);
        let payload_key = |m: &Message, below: &str| format.and_then(|f| f.order_key(m, below));
        decision
            .targets
            .iter()
            .map(|t| {
                let Some((pointer, partitions)) = router.order_of(&t.route) else {
                    return Ok(None);
                };
                match crate::order::key_of(message, pointer, &payload_key) {
                    Some(key) => {
                        let p = crate::order::partition(&key, partitions);
                        Ok(Some((key, p)))
                    }
                    None => Err(ApiError::new(
                        code::SCHEMA_VIOLATION,
                        format!(
                            "route `{}` keeps its messages in order by `{pointer}`, and this message has no \
                             string or number there",
                            t.route
                        ),
                    )
                    .at(pointer, "required by the route's order_by: a string or a number")),
                }
            })
            .collect()
    }
}

/// 422 `no_route`: nothing carries the message, or some addressee would get nothing. Every such addressee is
/// named, in the message and as a detail at `/to/<its position in the message's receivers>`; nothing is sent.
fn no_route(meta: &Meta, unserved: &[usize]) -> ApiError {
    let names: Vec<&str> = unserved.iter().map(|i| meta.to[*i].as_str()).collect();
    let message = if names.is_empty() {
        format!(
            "no route carries `{}` from {} to [{}]",
            meta.kind,
            meta.from,
            meta.to.join(", ")
        )
    } else {
        format!(
            "no route carries `{}` from {} to {} (of receivers [{}]); nothing was sent",
            meta.kind,
            meta.from,
            names.join(", "),
            meta.to.join(", ")
        )
    };
    let mut e = ApiError::new(code::NO_ROUTE, message);
    for (i, name) in unserved.iter().zip(&names) {
        e = e.at(
            format!("/to/{i}"),
            format!("no route serves receiver `{name}`"),
        );
    }
    e
}
