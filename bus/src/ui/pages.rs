//! What a plugin hands the console: its pages. Apart from `mod.rs` (which needs the running bus's context) so
//! the plugin seam can name it without depending on the console's machinery.

use super::html::NavLink;
use axum::Router;

/// Pages a plugin adds to the console: its routes (paths under `/ui/`, GET only — anything that changes
/// state belongs in the core, where the CSRF check is) and their links in the navigation bar. Handlers read
/// the [`super::Viewer`] from the request's extensions (`axum::Extension<Viewer>`).
#[derive(Default)]
pub struct UiPages {
    pub router: Router,
    pub nav: Vec<NavLink>,
}
