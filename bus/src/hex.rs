//! Lowercase hexadecimal, the form every digest and fingerprint of the bus is written in.
//!
//! Why its own function: `format!("{b:02x}")` per byte, collected, allocates a string for every byte. The
//! idempotency digest of each accepted message was written that way, 32 allocations a message on the hot path
//! (BENCHMARKS.md, "an eleventh look"); this writes into one string sized up front.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex, two digits a byte.
pub fn lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_lowercase_digits_a_byte_in_order() {
        assert_eq!(super::lower(&[]), "");
        assert_eq!(super::lower(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        let every: Vec<u8> = (0..=255).collect();
        let expected: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::lower(&every), expected);
    }
}
