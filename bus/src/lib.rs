//! Liên Thông core: the envelope, the schema registry, config, the router, the broker transport, the runtime
//! and the admin API. Adapters live in the `lienthong-adapters` crate and plug in through [`adapter`].
//!
//! ARCHITECTURE.md at the repository root follows one message through these modules.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod agency;
pub mod config;
pub mod envelope;
pub mod error;
pub mod message;
pub mod edxml;
pub mod schema;
pub mod state;
