//! The admin token on every admin endpoint but the probes. Why one layer rather than a check per handler: the
//! admin API shows dossiers, parked payloads and evidence — personal data — and a handler added later (by the
//! core or a plugin) must not be open by forgetting a line. The layer wraps every route of the merged router,
//! the plugin's included; only `/healthz`, `/readyz` (and `/metrics` with `admin.open_metrics`) are left out.

use crate::error::{ApiError, code};
use crate::http_api::{bearer_token, error_response};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Refuses (401 `unauthenticated`) a request without `Authorization: Bearer <admin token>`.
pub(super) async fn require_token(
    State(token): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = bearer_token(request.headers()).ok();
    if presented.is_some_and(|p| same(p.as_bytes(), token.as_bytes())) {
        next.run(request).await
    } else {
        error_response(&ApiError::new(
            code::UNAUTHENTICATED,
            "this admin endpoint needs `Authorization: Bearer <admin token>`",
        ))
    }
}

/// Compares without stopping at the first differing byte, so the answer's timing tells nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_compares_whole_tokens() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
    }
}
