//! A portal address that redirects to another origin (another port here) never receives the account's user
//! name, password or session there: redirects are not followed (see `crate::http_client`).

use super::*;
use crate::dvcqg::standin::{PASSWORD, USER};
use crate::http_client::redirect_trap::{Trap, redirect, redirector, serve};
use axum::http::Uri;
use axum::routing::post;

const SESSION: &str = "session-token-7f3a";

fn config_at(base_url: &str) -> DvcqgConfig {
    spec(&format!(
        "base_url = \"{base_url}\"\nusername_env = \"PATH\"\npassword_env = \"PATH\"\nmadonvi = \"000.00.00.H40\"\n\
         timeout = \"5s\"\nstatus_map = {STATUS_MAP}\n"
    ))
    .parse_options()
    .unwrap()
}

#[tokio::test]
async fn a_redirected_login_never_carries_the_password_to_another_origin() {
    let trap = Trap::start().await;
    for status in [307, 308, 301, 302, 303] {
        let target = redirector(status, &trap.url).await;
        let a = Dvcqg::new(&config_at(&target), USER.into(), PASSWORD.into()).unwrap();
        let e = deliver(&a, "dossier.submitted", &dossier("H40-1", "da-tiep-nhan"))
            .await
            .unwrap_err();
        trap.assert_never_saw(PASSWORD);
        trap.assert_never_saw(USER);
        assert_eq!(
            (e.class, e.status),
            (ErrorClass::Transient, Some(status.into())),
            "{status}: {e:?}"
        );
        assert!(e.reason.contains("redirect"), "{status}: {}", e.reason);
    }
    trap.assert_never_saw(PASSWORD);
    trap.assert_never_saw(USER);
}

#[tokio::test]
async fn a_redirected_service_call_never_carries_the_session_to_another_origin() {
    let trap = Trap::start().await;
    for status in [307, 308, 302] {
        let to = trap.url.clone();
        let app = axum::Router::new()
            .route(
                "/auth",
                post(|| async { axum::Json(json!({"session": SESSION, "error_code": 0})) }),
            )
            .fallback(move |uri: Uri| {
                let to = to.clone();
                async move { redirect(status, &to, &uri) }
            });
        let portal = serve(app).await;
        let a = Dvcqg::new(&config_at(&portal), USER.into(), PASSWORD.into()).unwrap();

        let delivered = deliver(&a, "dossier.submitted", &dossier("H40-1", "da-tiep-nhan")).await;
        trap.assert_never_saw(SESSION);
        let e = delivered.unwrap_err();
        assert_eq!(
            (e.class, e.status),
            (ErrorClass::Permanent, Some(status.into())),
            "{status}: {e:?}"
        );
        assert!(e.reason.contains("redirect"), "{status}: {}", e.reason);
        let looked_up = a.lookup("H40-1").await;
        trap.assert_never_saw(SESSION);
        let e = looked_up.unwrap_err();
        assert_eq!(e.status, Some(status.into()), "{status}: {e:?}");
    }
    trap.assert_never_saw(SESSION);
    trap.assert_never_saw(PASSWORD);
}
