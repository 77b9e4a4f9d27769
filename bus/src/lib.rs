//! Liên Thông core: the envelope, the schema registry, config, the router, the broker transport, the runtime
//! and the admin API. Adapters live in the `lienthong-adapters` crate and plug in through [`adapter`].
//!
//! ARCHITECTURE.md at the repository root follows one message through these modules.
#![deny(unsafe_code)] // allowed in one place: malloc::tune

pub mod adapter;
pub mod admin;
pub mod broker;
pub mod check;
pub mod config;
pub mod context;
pub mod dlq;
pub mod envelope;
pub mod error;
pub mod http_api;
pub mod ingress;
pub mod listener;
pub mod malloc;
pub mod message;
pub mod plugin;
pub mod rights;
pub mod router;
pub mod runtime;
pub mod schema;
pub mod state;
pub mod tls;
pub mod wire;
