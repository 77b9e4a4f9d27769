//! Entry points for the fuzz targets in `fuzz/` (hidden from the docs; not an API, may change with them).
//!
//! Why: the broker layout's readers are the core's own (`wire`, `broker::amqp`), and a fuzz target is another
//! crate. These thin wrappers hand it exactly the functions the running bus uses on what arrives from RabbitMQ,
//! so nothing is fuzzed through a copy that could drift from the real code.

use crate::broker::amqp::{consume, publish};
use crate::broker::{Envelope, Headers};
use crate::state::DlqEntry;
use amq_protocol::types::parsing::parse_field_table;

pub use crate::wire::AdapterCopy;

/// An AMQP field table as it comes off the wire (4-byte length, then entries), read into the bus's headers the
/// way a delivery's are; `None` when the bytes are not a field table. Returns the bytes after it too.
pub fn amqp_headers(bytes: &[u8]) -> Option<(Headers, &[u8])> {
    let (rest, table) = parse_field_table(bytes).ok()?;
    Some((consume::headers_from(Some(&table)), rest))
}

/// Headers as published, then read back as a delivery's: what survives the broker.
pub fn amqp_round_trip(headers: &Headers) -> Headers {
    consume::headers_from(Some(&publish::table_of(headers)))
}

/// `AdapterCopy::from_envelope`: a delivered copy read back.
pub fn read_copy(e: &Envelope, routing_key: &str) -> Result<AdapterCopy, String> {
    AdapterCopy::from_envelope(e, routing_key)
}

/// `AdapterCopy::to_envelope`: a copy laid out for the broker.
pub fn write_copy(c: &AdapterCopy) -> Envelope {
    c.to_envelope()
}

/// `wire::dead::parked`: a dead letter read into a parking-lot row.
pub fn parked(e: &Envelope, adapter: &str, now: &str) -> DlqEntry {
    crate::wire::dead::parked(e, adapter, now)
}

/// `wire::dead::replay`: a parked row laid out again for its adapter.
pub fn replay(entry: &DlqEntry) -> Envelope {
    crate::wire::dead::replay(entry)
}
