//! Liên Thông core: a generic inter-party message bus on RabbitMQ — the envelope, the schema registry, config,
//! the router, the broker transport, the runtime, the admin API and the state store. It knows no country and no
//! province: a domain plugs in through [`plugin`], adapters through [`adapter`].
//!
//! The public surface, by what an embedder needs:
//!
//! * run a bus: [`runtime::start`] with a [`config::Config`] ([`check::check`] first), an
//!   [`adapter::AdapterFactory`] and a [`plugin::Plugin`]; [`runtime::RunningBus`] to stop it;
//! * write an adapter: [`adapter`] (`Sink`, `Source`, `Lookup`, `Submit`), [`message`], [`error`], [`config`]
//!   (`AdapterSpec`, `Problem`);
//! * write a domain: [`plugin`], [`state`] (its tables in the same database), [`schema`];
//! * operate on parked messages without a running bus (the CLI): [`dlq`], [`state`], [`broker`];
//! * serve HTTP with the bus's limits and TLS: [`listener`], [`tls`].
//!
//! Everything else is the core's own and not exported. ARCHITECTURE.md at the repository root follows one
//! message through these modules.
#![deny(unsafe_code)] // allowed in one place: malloc::tune

pub mod adapter;
mod admin;
pub mod broker;
pub mod check;
pub mod config;
mod context;
pub mod dlq;
pub mod envelope;
pub mod error;
pub mod evidence;
#[doc(hidden)]
pub mod fuzzing;
pub mod hex;
mod http_api;
pub mod ingress;
pub mod listener;
pub mod live;
pub mod mailbox;
pub mod malloc;
pub mod message;
mod meters;
pub mod order;
pub mod plugin;
pub mod rights;
mod router;
pub mod routetest;
pub mod runtime;
pub mod schema;
pub mod state;
pub mod tls;
pub mod ui;
mod wire;

pub use context::Context;
pub use error::{ApiError, Code};
pub use plugin::{NoPlugin, Plugin};
pub use runtime::{RunningBus, StartError, start};
