//! The narrow hooks through which a domain plugs into this generic bus.
//!
//! The core knows envelopes, schemas, routes, queues and a state store; it does not know any country's
//! document format or any province's dossier rules. Those come in through one [`Plugin`], handed to
//! [`crate::runtime::start`] by the binary, which may:
//!
//! * say what a party (agency) code looks like ([`Plugin::check_party`]), checked in config and on every
//!   message, and what code may name a receiver or another code of an agency ([`Plugin::check_receiver`]),
//!   which can be wider: messages are addressed to parties this bus does not configure;
//! * take a non-JSON format at ingress ([`Format`]: parse, check the sender, validate, name the message);
//! * watch accepted messages ([`Observer`], e.g. to track where a case file is);
//! * own tables in the state database ([`Plugin::tables`]) and serve read endpoints on the admin API
//!   ([`Hooks::admin`]) and pages in the operator console ([`Hooks::ui`]);
//! * say which party a verified client certificate belongs to ([`Plugin::party_from_certificate`]);
//! * tell sinks what was delivered before ([`Hooks::deliveries`], e.g. whether a case file's first message
//!   reached an adapter), and find a route's order key inside a non-JSON message ([`Format::order_key`]);
//! * own top-level sections of the config file ([`Plugin::sections`], read with [`Config::section`] and
//!   checked by [`Plugin::check_config`]), and listeners of its own ([`Hooks::listeners`]), e.g. a page meant
//!   for the public that must not share a port with the admin API.
//!
//! [`NoPlugin`] is the bus alone: JSON envelopes, any printable party code.

use crate::adapter::Submission;
use crate::config::{Config, Problem};
use crate::error::ApiError;
use crate::message::{ContentKind, Message, Meta};
use crate::schema::SchemaRegistry;
use crate::state::{StateStore, TableSet};
use async_trait::async_trait;
use std::sync::Arc;

pub use crate::config::codes::{MAX_PARTY_LEN, check_party_generic};

/// A domain plugged into the bus.
pub trait Plugin: Send + Sync {
    /// The OpenAPI document of the APIs this build serves (served at `/openapi.json` on the ingress listener;
    /// the plugin serves it on the admin listener with its routes). None: not described.
    fn openapi(&self) -> Option<&'static str> {
        None
    }

    /// Whether `code` is a valid party (agency) code; the error says what is expected.
    fn check_party(&self, code: &str) -> Result<(), String> {
        check_party_generic(code)
    }

    /// Whether `code` may name a receiver (a message's `to`, a route's `to`) or be one of an agency's other
    /// codes (`[[agencies]] other_codes`): a party named by other systems' codes, which need not follow the
    /// rule for this bus's own agency codes. Default: [`Plugin::check_party`].
    fn check_receiver(&self, code: &str) -> Result<(), String> {
        self.check_party(code)
    }

    /// The plugin's own tables, created (and upgraded) with the core's under the same lock at start.
    fn tables(&self) -> Vec<TableSet> {
        Vec::new()
    }

    /// The top-level config sections this plugin owns (`["tracking"]`, say). The core keeps them as written
    /// ([`Config::sections`]); `check` and `run` refuse a section that neither the core nor the plugin owns.
    fn sections(&self) -> &[&'static str] {
        &[]
    }

    /// Every problem in the plugin's own sections, each at its key path (`tracking.due_soon`). Called by
    /// `check` and by `run` before anything starts, so [`Plugin::start`] may take its sections as valid.
    fn check_config(&self, _config: &Config) -> Vec<Problem> {
        Vec::new()
    }

    /// The party (agency code) a verified client certificate names in the domain's own vocabulary, if any
    /// (the provincial domain reads a subjectAltName URI `urn:qcvn102:<code>`). Ingress accepts the answer
    /// only when it is a configured agency. Certificates listed by fingerprint in `[[agencies]]
    /// cert_fingerprints` are the core's and need no plugin. Default: names no one.
    fn party_from_certificate(&self, _cert: &crate::tls::CertInfo) -> Option<String> {
        None
    }

    /// Called once the state store is connected and the schemas are loaded: what the plugin plugs in.
    fn start(&self, ctx: &PluginContext) -> Hooks;
}

/// What a plugin may use when it starts.
#[derive(Clone)]
pub struct PluginContext {
    /// The config the process started with (what a reload cannot change: the plugin's own sections).
    pub config: Arc<Config>,
    /// The config in force, following reloads (agencies and their names, routes, adapters).
    pub config_in_force: crate::config::ConfigInForce,
    pub state: StateStore,
    pub schemas: Arc<SchemaRegistry>,
}

/// What a started plugin plugs in.
#[derive(Default)]
pub struct Hooks {
    pub formats: Vec<Arc<dyn Format>>,
    pub observers: Vec<Arc<dyn Observer>>,
    /// Extra read endpoints on the admin listener, merged into its router.
    pub admin: Option<axum::Router>,
    /// Pages of the plugin's own in the operator console (`/ui/…` on the admin listener), behind the
    /// console's login and drawn in its layout ([`crate::ui::Viewer::page`]).
    pub ui: Option<crate::ui::pages::UiPages>,
    /// Listeners of the plugin's own, bound at start beside the bus's (a bind failure stops the start) and
    /// closed with intake at shutdown.
    pub listeners: Vec<PluginListener>,
    /// What the domain can say about past deliveries, handed to every sink ([`crate::adapter::Sink::attach`]).
    pub deliveries: Option<Arc<dyn crate::adapter::Deliveries>>,
}

/// A listener a plugin asks the bus to serve.
pub struct PluginListener {
    /// The config key of its address, named when it cannot bind (`public.listen`); also its name in
    /// [`crate::runtime::RunningBus::listeners`].
    pub key: &'static str,
    /// Address to bind (`host:port`; port 0 picks a free one).
    pub addr: String,
    /// What it serves, on the same listener as the core's APIs (JSON refusals, raw-head checks). Handlers
    /// may extract `axum::extract::ConnectInfo<std::net::SocketAddr>` (the client's address).
    pub app: axum::Router,
    /// A request's head, and then its body, must arrive within this long.
    pub request_timeout: std::time::Duration,
    /// Most connections open at once; the next client waits in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed (an idle keep-alive, or a client trickling
    /// a request to hold a connection).
    pub idle_timeout: std::time::Duration,
}

/// A message ready to route and publish.
pub struct Prepared {
    pub message: Message,
    /// The idempotency key under the sender, when the message has one: a resubmission under it is answered
    /// as the first (same content) or refused with `conflict` (different content).
    pub client_id: Option<String>,
    /// A JSON view of the message handed to the observers once it is accepted (the payload of a JSON
    /// envelope; whatever a [`Format`] chooses).
    pub observed: Option<serde_json::Value>,
}

/// A message format other than the JSON envelope.
#[async_trait]
pub trait Format: Send + Sync {
    /// The content kind it takes.
    fn content(&self) -> ContentKind;

    /// Parses a submission into a message: the sender must be one of the caller's codes
    /// ([`Config::is_code_of`](crate::config::Config::is_code_of); `forbidden` otherwise) and the message is
    /// then from the caller's `code`; the content valid for its type (through `schemas`); and the message
    /// named (its id and idempotency key).
    async fn prepare(&self, sub: &Submission, schemas: &Schemas<'_>) -> Result<Prepared, ApiError>;

    /// The order key (`[[routes]] order_by`) of an accepted message of this format at `pointer`, a JSON
    /// pointer below `/payload` (`/Subject` for `order_by = "/payload/Subject"`): a string, or None
    /// when the message has nothing there (ingress then refuses it). Default: None.
    fn order_key(&self, _message: &Message, _pointer: &str) -> Option<String> {
        None
    }
}

/// Schema validation as ingress does it, for formats: the version to use, and every problem located.
pub struct Schemas<'a> {
    pub registry: &'a SchemaRegistry,
    /// Bound on a whole submission (`http.max_body_bytes`).
    pub max_body_bytes: usize,
    /// The config in force for this message (agencies and their codes as a reload last set them).
    pub config: &'a crate::config::Config,
}

impl Schemas<'_> {
    /// The version to validate against: `asked`, or the highest there is; `unknown_type` otherwise.
    pub fn resolve_version(&self, kind: &str, asked: Option<u32>) -> Result<u32, ApiError> {
        crate::schema::resolve_version(self.registry, kind, asked)
    }

    /// Validates `value` as `kind` v`version`; `schema_violation` with every problem otherwise. `what` names
    /// the validated part in the message (e.g. "payload").
    pub fn validate(
        &self,
        what: &str,
        kind: &str,
        version: u32,
        value: &serde_json::Value,
    ) -> Result<(), ApiError> {
        crate::schema::validate(self.registry, what, kind, version, value)
    }
}

/// Watches accepted messages.
#[async_trait]
pub trait Observer: Send + Sync {
    /// Whether it wants to see messages of this type (so the payload is kept for it).
    fn wants(&self, kind: &str) -> bool;

    /// A message was accepted: every copy is confirmed by the broker. Errors are the observer's to log; the
    /// message stands.
    async fn accepted(&self, meta: &Meta, observed: &serde_json::Value);
}

/// The bus alone.
pub struct NoPlugin;

impl Plugin for NoPlugin {
    fn start(&self, _: &PluginContext) -> Hooks {
        Hooks::default()
    }
}
