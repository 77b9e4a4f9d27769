//! The national portal adapter's reading of the portal's answers (`adapters/src/dvcqg/portal.rs`): the JSON
//! answer of a service call (`error_code`, message, "already exists", session signals) judged by the default
//! error-code rules, and a non-2xx answer. Input: two bytes of HTTP status (big-endian, modulo 1000), then the
//! body; for the non-2xx answer the body's first line is taken as `Retry-After` when it has more than one.
//!
//! Oracles: a success code is never an error and anything else always is; an error's reason is short (it goes
//! into the message's `lt-last-error` header and the parking lot, so the portal's own words are quoted only up
//! to a bound), its body excerpt at most 1 KiB, its class transient exactly for the configured transient codes
//! (and for HTTP 408, 429 and 5xx), and "already exists" only for code 3 or -3.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_adapters::fuzzing;
use lienthong_bus::adapter::ErrorClass;

mod common;
use common::assert_bounded;

/// Longest reason: the adapter's own words and at most 300 characters of the portal's.
const MAX_REASON: usize = 420;

fuzz_target!(|data: &[u8]| {
    let [hi, lo, rest @ ..] = data else {
        return;
    };
    if let Some(a) = fuzzing::dvcqg_answer(rest) {
        let success = a.code == "0";
        assert_eq!(a.judged.is_ok(), success, "{a:?}");
        if a.already_exists {
            assert!(a.code == "3" || a.code == "-3", "{a:?}");
        }
        if let Err(e) = &a.judged {
            assert_bounded(&e.reason, MAX_REASON);
            assert!(e.body_excerpt.as_ref().is_some_and(|b| b.len() <= 1024 + 3));
            assert_eq!(e.class == ErrorClass::Transient, a.code == "-1", "{a:?}");
            assert_eq!(
                e.status.map(|s| s.to_string()),
                a.code.parse::<i64>().ok().map(|n| n.to_string())
            );
        }
    }
    let status = u16::from_be_bytes([*hi, *lo]) % 1000;
    let (retry_after, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let e = fuzzing::dvcqg_http_error(status, retry_after, body);
    assert_bounded(&e.reason, MAX_REASON);
    assert_eq!(e.status, Some(i64::from(status)));
    let transient = status == 408 || status == 429 || status >= 500;
    assert_eq!(e.class == ErrorClass::Transient, transient);
    assert!(transient || e.retry_after.is_none());
    assert!(e.body_excerpt.as_ref().is_some_and(|b| b.len() <= 1024 + 3));
});
