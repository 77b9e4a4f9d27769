//! The provincial domain of Liên Thông, plugged into the generic bus through [`lienthong_bus::plugin`].
//!
//! The bus moves envelopes between parties; this crate is what makes those parties a Vietnamese province's
//! agencies and those messages its documents and dossiers:
//!
//! * the province's agencies are named by QCVN 102:2016 agency codes ([`Province::check_party`]); receivers
//!   and an agency's other codes by any code the national network uses ([`Province::check_receiver`]);
//! * edXML packages (QCVN 102:2016) are an ingress format, with the document-flow rules: a package's id is
//!   what it is, a recall only from the issuer, status codes in a legal order ([`edxml_ingress`],
//!   docs/qcvn102.md);
//! * accepted `dossier.*` messages are tracked per dossier ([`dossiers`], docs/dossiers.md);
//! * both have tables in the state database ([`tables`]) and read endpoints on the admin API ([`admin`]).

pub mod admin;
pub mod documents;
pub mod dossiers;
pub mod edxml_ingress;
mod tables;
#[cfg(test)]
mod tests;

/// The QCVN 102 format crate, as this crate uses it.
pub(crate) use lienthong_qcvn102 as qcvn;

use lienthong_bus::plugin::{Hooks, Plugin, PluginContext};
use lienthong_bus::state::TableSet;
use std::sync::Arc;

/// The province's rules, as one plugin.
pub struct Province;

impl Plugin for Province {
    fn check_party(&self, code: &str) -> Result<(), String> {
        qcvn::agency::AgencyCode::parse(code)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Real traffic addresses `G12`, `H37.02.02` or a company's tax code (docs/qcvn102.md, "Agency codes").
    fn check_receiver(&self, code: &str) -> Result<(), String> {
        qcvn::agency::check_network_code(code).map_err(|e| e.to_string())
    }

    fn tables(&self) -> Vec<TableSet> {
        vec![tables::TABLES]
    }

    fn start(&self, ctx: &PluginContext) -> Hooks {
        let documents = documents::DocumentStore::new(ctx.state.clone());
        let dossiers = dossiers::DossierStore::start(ctx.state.clone());
        Hooks {
            formats: vec![Arc::new(edxml_ingress::EdxmlFormat {
                state: ctx.state.clone(),
                documents: documents.clone(),
                config: ctx.config.clone(),
            })],
            observers: vec![Arc::new(dossiers::Tracker {
                store: dossiers.clone(),
            })],
            admin: Some(admin::router(admin::AdminState {
                state: ctx.state.clone(),
                dossiers,
                documents,
                config: ctx.config.clone(),
            })),
        }
    }
}
