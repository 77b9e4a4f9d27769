//! The newest copy layout this build knows, on its own so that the config can check `[bus] copy_layout`
//! against it without depending on the wire format (which depends on the broker, which depends on the config).

/// The newest layout this build reads, and the one new copies are written in by default.
pub const LAYOUT_VERSION: u8 = 2;
