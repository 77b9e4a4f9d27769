//! The Prometheus recorder, installed once per process, and `GET /metrics`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

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

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics() -> Response {
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
