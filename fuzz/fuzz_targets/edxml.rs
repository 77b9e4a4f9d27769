//! `edxml::parse` on arbitrary bytes, with the default limits and with tight ones: it must return, never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_qcvn102::edxml::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let _ = edxml::parse(data, &Limits::default());
    let tight = Limits {
        max_depth: 8,
        max_bytes: 4096,
        max_attachments: 2,
        max_header_elements: 32,
    };
    let _ = edxml::parse(data, &tight);
});
