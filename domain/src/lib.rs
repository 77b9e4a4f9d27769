//! The provincial domain of Liên Thông, plugged into the generic bus through [`lienthong_bus::plugin`].
//!
//! The bus moves envelopes between parties; this crate is what makes those parties a Vietnamese province's
//! agencies and those messages its documents and dossiers:
//!
//! * the province's agencies are named by QCVN 102:2016 agency codes ([`Province::check_party`]); receivers
//!   and an agency's other codes by any code the national network uses ([`Province::check_receiver`]);
//! * a client certificate names its agency with a subjectAltName URI `urn:qcvn102:<code>` ([`cert_party`]);
//! * edXML packages (QCVN 102:2016) are an ingress format, with the document-flow rules: a package's id is
//!   what it is, a recall only from the issuer, status codes in a legal order ([`edxml_ingress`],
//!   docs/qcvn102.md);
//! * accepted `dossier.*` messages are tracked per dossier and judged on time or not ([`dossiers`],
//!   docs/dossiers.md);
//! * both have tables in the state database ([`tables`]) and read endpoints on the admin API ([`admin`]):
//!   one dossier, search, on-time rates per agency;
//! * operators see dossiers, on-time rates and documents in the console ([`ui`]);
//! * citizens look their dossier up on a listener of its own ([`public`]);
//! * its settings are the config file's `[tracking]` and `[public]` sections ([`config`]).

pub mod admin;
pub mod config;
pub mod documents;
pub mod dossiers;
pub mod edxml_ingress;
pub mod feedback;
pub mod names;
pub mod public;
mod tables;
#[cfg(test)]
mod tests;
pub mod ui;

/// The QCVN 102 format crate, as this crate uses it.
pub(crate) use lienthong_qcvn102 as qcvn;

use lienthong_bus::config::{Config, Problem};
use lienthong_bus::plugin::{Hooks, Plugin, PluginContext, PluginListener};
use lienthong_bus::state::TableSet;
use std::sync::Arc;

/// The province's rules, as one plugin.
pub struct Province;

/// The URI scheme by which a client certificate's subjectAltName names an agency: `urn:qcvn102:<code>`.
pub const CERT_URI_PREFIX: &str = "urn:qcvn102:";

/// The agency code a certificate's subjectAltName URIs name, when they name exactly one valid agency code
/// (two different codes name no one: the bus never guesses).
pub fn cert_party(uris: &[String]) -> Option<String> {
    let mut codes = uris
        .iter()
        .filter_map(|u| u.strip_prefix(CERT_URI_PREFIX))
        .filter(|c| qcvn::agency::AgencyCode::parse(c).is_ok());
    let first = codes.next()?;
    codes.all(|c| c == first).then(|| first.to_owned())
}

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

    fn party_from_certificate(&self, cert: &lienthong_bus::tls::CertInfo) -> Option<String> {
        cert_party(&cert.uris)
    }

    fn openapi(&self) -> Option<&'static str> {
        Some(admin::OPENAPI)
    }

    fn tables(&self) -> Vec<TableSet> {
        vec![tables::TABLES]
    }

    fn sections(&self) -> &[&'static str] {
        config::SECTIONS
    }

    fn check_config(&self, config: &Config) -> Vec<Problem> {
        config::DomainConfig::read(config).1
    }

    fn start(&self, ctx: &PluginContext) -> Hooks {
        // Checked before start (`check_config`), so the problems are known to be none.
        let (cfg, _) = config::DomainConfig::read(&ctx.config);
        let due_soon = cfg.tracking.due_soon.get();
        let agency_names = names::AgencyNames::new(ctx.config_in_force.clone());
        let documents = documents::DocumentStore::new(ctx.state.clone());
        let dossiers = dossiers::DossierStore::start(ctx.state.clone());
        let listeners = cfg
            .public
            .listen
            .map(|addr| PluginListener {
                key: "public.listen",
                addr,
                app: public::router(public::PublicState {
                    dossiers: dossiers.clone(),
                    due_soon,
                    agency_names: agency_names.clone(),
                    limiter: Arc::new(public::limit::Limiter::new(cfg.public.rate)),
                }),
                max_connections: public::MAX_CONNECTIONS,
                idle_timeout: public::IDLE_TIMEOUT,
                request_timeout: public::REQUEST_TIMEOUT,
            })
            .into_iter()
            .collect();
        let admin_state = admin::AdminState {
            state: ctx.state.clone(),
            dossiers: dossiers.clone(),
            documents: documents.clone(),
            due_soon,
            agency_names,
            config: ctx.config.clone(),
        };
        Hooks {
            formats: vec![Arc::new(edxml_ingress::EdxmlFormat {
                state: ctx.state.clone(),
                documents: documents.clone(),
            })],
            observers: vec![
                Arc::new(dossiers::Tracker {
                    store: dossiers.clone(),
                }),
                Arc::new(feedback::FeedbackTracker::new(
                    ctx.state.clone(),
                    ctx.config_in_force.clone(),
                )),
            ],
            admin: Some(admin::router(admin_state.clone())),
            ui: Some(ui::pages(admin_state)),
            listeners,
            deliveries: Some(Arc::new(dossiers::Delivered {
                state: ctx.state.clone(),
            })),
        }
    }
}

#[cfg(test)]
mod cert_tests {
    use super::cert_party;

    fn uris(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_certificate_names_one_agency_by_its_urn_or_no_one() {
        assert_eq!(
            cert_party(&uris(&["https://x.example", "urn:qcvn102:000.00.12.H40"])),
            Some("000.00.12.H40".into())
        );
        // The same code twice is still one agency; two codes are none (never a guess).
        assert_eq!(
            cert_party(&uris(&[
                "urn:qcvn102:000.00.12.H40",
                "urn:qcvn102:000.00.12.H40"
            ])),
            Some("000.00.12.H40".into())
        );
        assert_eq!(
            cert_party(&uris(&[
                "urn:qcvn102:000.00.12.H40",
                "urn:qcvn102:000.00.13.H40"
            ])),
            None
        );
        assert_eq!(cert_party(&uris(&["urn:qcvn102:not-a-code"])), None);
        assert_eq!(cert_party(&uris(&["urn:other:000.00.12.H40"])), None);
        assert_eq!(cert_party(&[]), None);
    }
}
