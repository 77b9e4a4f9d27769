//! AMQP ingress: agencies' systems publish envelopes to exchange `<namespace>.ingress`.
//!
//! Identity comes from the AMQP `user_id` property: RabbitMQ refuses a publish whose `user_id` is not the
//! connection's user, so `user_id` names the RabbitMQ user, and `[[agencies]] amqp_user` maps that user to an
//! agency code. A message without `user_id`, or from an unmapped user, is refused like any other bad input:
//! it goes to `<namespace>.rejected` with the error JSON in header `x-lt-error` — never dropped. The ingress
//! message is acked only after its copies (or its rejection) are confirmed by the broker.

use super::Ingress;
use crate::adapter::{Caller, Submission, Submit};
use crate::broker::{BrokerError, Envelope, HeaderValue, Incoming};
use crate::error::{ApiError, code};
use crate::message::ContentKind;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Consumes `<namespace>.ingress` until `shutdown`, re-subscribing after connection losses.
pub async fn run(ingress: Arc<Ingress>, shutdown: CancellationToken) {
    let ctx = ingress.ctx().clone();
    let queue = ctx.names.ingress_queue();
    let (prefetch, grace) = (
        ctx.config.bus.prefetch,
        ctx.config.bus.shutdown_timeout.get(),
    );
    crate::broker::supervise::consume_until(
        &ctx.broker,
        &queue,
        prefetch,
        grace,
        &shutdown,
        |incoming| {
            let ingress = ingress.clone();
            async move { handle(&ingress, incoming).await }
        },
    )
    .await;
}

async fn handle(ingress: &Ingress, incoming: Incoming) {
    let env = &incoming.envelope;
    // As over HTTP: the media type's essence, parameters (`; charset=utf-8`) ignored; none is JSON.
    let content = match env.content_type.as_deref() {
        None => Some(ContentKind::Json),
        Some(ct) => ContentKind::of_media_type(ct),
    };
    let limit = ingress.ctx().config.http.max_body_bytes;
    // Refusals before the shared pipeline; the pipeline counts its own.
    let refused = |e: ApiError| Err(super::counted(e));
    let result = match (content, env.user_id.as_deref()) {
        _ if env.body.len() > limit => refused(ApiError::new(
            code::PAYLOAD_TOO_LARGE,
            format!(
                "body of {} bytes is larger than http.max_body_bytes = {limit} bytes",
                env.body.len()
            ),
        )),
        (None, _) => refused(ApiError::new(
            code::UNSUPPORTED_MEDIA_TYPE,
            "content_type must be application/json or application/xml",
        )),
        (_, None) => refused(ApiError::new(
            code::UNAUTHENTICATED,
            "the message has no user_id property; set it to your RabbitMQ user name",
        )),
        // `message_id` names the message as the envelope's `id` does over HTTP, under the same rule.
        _ if env
            .message_id
            .as_deref()
            .is_some_and(|id| !crate::envelope::is_message_id(id)) =>
        {
            refused(
                ApiError::new(
                    code::INVALID_ENVELOPE,
                    format!(
                        "message_id must be 1–{} printable characters (a UUID is recommended)",
                        crate::envelope::MAX_ID_LEN
                    ),
                )
                .at("message_id", "not a usable message id"),
            )
        }
        (Some(content), Some(user)) => match ingress.agency_for_amqp_user(user) {
            None => refused(ApiError::new(
                code::UNAUTHENTICATED,
                format!("RabbitMQ user `{user}` is not mapped to an agency (agencies[].amqp_user)"),
            )),
            Some(agency) => {
                let traceparent = env.header_str("traceparent").map(str::to_owned);
                ingress
                    .submit(Submission {
                        caller: Caller::Agency(agency.to_owned()),
                        content,
                        body: env.body.clone(),
                        traceparent,
                        fallback_id: env.message_id.clone(),
                    })
                    .await
            }
        },
    };
    match result {
        Ok(_) => {
            let _ = incoming.acker.ack().await;
        }
        Err(e) if e.retry_later() => {
            // Not accepted and not the sender's fault: leave it queued and try again.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = incoming.acker.reject(true).await;
        }
        Err(e) => {
            if let Err(pe) = reject(ingress, env, &e).await {
                tracing::warn!(error = %pe, "Could not park a refused AMQP message; leaving it queued");
                let _ = incoming.acker.reject(true).await;
                return;
            }
            tracing::info!(
                code = %e.code,
                "Refused an AMQP ingress message; it is in the rejected queue"
            );
            let _ = incoming.acker.ack().await;
        }
    }
}

async fn reject(ingress: &Ingress, original: &Envelope, e: &ApiError) -> Result<(), BrokerError> {
    let ctx = ingress.ctx();
    let mut env = original.clone();
    env.user_id = None;
    env.headers.insert(
        crate::wire::ERROR.into(),
        HeaderValue::Str(e.to_json().to_string()),
    );
    if let Some(u) = &original.user_id {
        env.headers
            .insert("x-lt-user-id".into(), HeaderValue::Str(u.clone()));
    }
    ctx.broker
        .publish(
            "",
            &ctx.names.rejected_queue(),
            &env,
            ctx.config.bus.publish_timeout.get(),
        )
        .await
}
