//! The broker message layout as the bus reads it back: an AMQP header field table as it comes off the wire,
//! decoded the way a delivery's headers are (`broker/amqp/consume.rs`), then read as an adapter's copy
//! (`AdapterCopy::from_envelope`, `bus/src/wire/mod.rs`) and as a dead letter into a parking-lot row and out
//! again by a replay (`bus/src/wire/dead.rs`).
//!
//! Input: the field table (4-byte big-endian length, then entries), then `message_id \n content_type \n
//! routing_key \n body` (an empty line is an absent property).
//!
//! Oracles: decoded headers survive a publish and a delivery unchanged; a copy that reads writes out and reads
//! back as itself; a dead letter is always parked (never dropped), under its adapter, with a reason; a parked
//! copy that was readable replays as the same message with a fresh attempt budget.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lienthong_bus::broker::Envelope;
use lienthong_bus::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((headers, rest)) = fuzzing::amqp_headers(data) else {
        return;
    };
    assert_eq!(fuzzing::amqp_round_trip(&headers), headers);
    let mut parts = rest.splitn(4, |&b| b == b'\n');
    let mut line = || {
        parts
            .next()
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
    };
    let (message_id, content_type, routing_key) = (line(), line(), line());
    let routing_key = routing_key.unwrap_or_else(|| "stp".into());
    let body = Bytes::copy_from_slice(parts.next().unwrap_or_default());
    let env = Envelope {
        message_id,
        content_type,
        user_id: None,
        headers,
        body,
    };

    let copy = fuzzing::read_copy(&env, &routing_key);
    if let Ok(c) = &copy {
        assert!(c.message.meta.version >= 1);
        let written = fuzzing::write_copy(c);
        assert_eq!(fuzzing::amqp_round_trip(&written.headers), written.headers);
        assert_eq!(fuzzing::read_copy(&written, &routing_key).as_ref(), Ok(c));
    }

    let entry = fuzzing::parked(&env, &routing_key, "2026-01-01T00:00:00.000Z");
    assert_eq!(entry.adapter, routing_key);
    assert!(!entry.reason.trim().is_empty());
    assert!(!entry.id.is_empty());
    assert_eq!(entry.payload, env.body.as_ref());
    if copy.is_err() {
        assert!(
            entry
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("malformed message"))
        );
    }
    let again = fuzzing::replay(&entry);
    assert_eq!(fuzzing::amqp_round_trip(&again.headers), again.headers);
    if let Ok(c) = &copy {
        let replayed = fuzzing::read_copy(&again, &routing_key)
            .unwrap_or_else(|e| panic!("a parked copy that read does not replay: {e}"));
        assert_eq!(replayed.message, c.message);
        assert_eq!(replayed.attempts, 0);
        assert_eq!(replayed.route, c.route);
    }
});
