//! Route tests: `*.test.toml` files that say what the bus answers to a message, checked without running it.
//!
//! Integrators change routes far more often than code. A route test pins down, per case, who sends what and
//! what the bus must answer (accepted by exactly these routes for exactly these adapters, or refused with
//! this code at these paths), so a config change that sends a dossier nowhere, or somewhere new, fails in
//! CI instead of on a live province. The cases run through the real ingress pipeline
//! ([`crate::ingress::Ingress::dry_run`], the same code `submit` runs, the plugin's formats included) on a
//! bus that has no broker connection, opens no port and writes nothing that outlives the run (see
//! [`dry::DryBus`]).
//!
//! A test file:
//!
//! ```toml
//! config = "example.toml"           # optional: the config these tests are for (relative to this file)
//!
//! [[tests]]
//! name = "a dossier for Sở Tư pháp goes to its inbox and the portal"
//! as = "000.00.00.H40"              # the authenticated sender (an agency code of the config)
//! message = { type = "dossier.submitted", from = "000.00.00.H40", to = ["000.00.12.H40"], payload = { } }
//! # or: message_file = "samples/01.json" (an envelope), edxml_file = "samples/05.xml" (a package)
//! expect = { status = 202, routes = ["dossier-to-stp"], adapters = ["stp-inbox"] }
//! # or: expect = { status = 422, code = "schema_violation", paths = ["/payload/Code"] }
//! ```

pub mod dry;
mod file;
mod run;

pub use dry::DryBus;
pub use file::{Case, Expect, Input, TestFile, discover, load};
pub use run::{Outcome, run_case};
