//! Dates and timestamps: the forms a description may use, the slash form packages carry, and "now" in
//! Vietnamese time.

use super::invalid;
use crate::edxml::EdxmlError;

/// `yyyy/MM/dd` or `yyyy-MM-dd` → (y, m, d).
pub(super) fn parse_date(s: &str) -> Option<(u16, u8, u8)> {
    let b = s.as_bytes();
    if b.len() != 10 || !matches!(b[4], b'/' | b'-') || b[7] != b[4] {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m as u8, d as u8))
}

pub(super) fn norm_date(field: &str, value: &str) -> Result<String, EdxmlError> {
    match parse_date(value.trim()) {
        Some((y, m, d)) => Ok(format!("{y:04}/{m:02}/{d:02}")),
        None => Err(invalid(
            field,
            &format!("`{value}` is not a date yyyy/MM/dd or yyyy-MM-dd"),
        )),
    }
}

/// `yyyy/MM/dd HH:mm:ss` or `yyyy-MM-ddTHH:mm:ss` (optionally with fractional seconds, which are dropped).
pub(super) fn norm_timestamp(field: &str, value: &str) -> Result<String, EdxmlError> {
    let bad = || {
        invalid(
            field,
            &format!(
                "`{value}` is not a local timestamp yyyy/MM/dd HH:mm:ss or yyyy-MM-ddTHH:mm:ss (no time zone)"
            ),
        )
    };
    let v = value.trim();
    if v.len() < 19 || !v.is_char_boundary(10) || !v.is_char_boundary(19) {
        return Err(bad());
    }
    let (y, m, d) = parse_date(&v[..10]).ok_or_else(bad)?;
    let t = &v.as_bytes()[10..19];
    let two = |i: usize| -> Option<u8> {
        (t[i].is_ascii_digit() && t[i + 1].is_ascii_digit())
            .then(|| (t[i] - b'0') * 10 + (t[i + 1] - b'0'))
    };
    let ok_shape = matches!(t[0], b' ' | b'T') && t[3] == b':' && t[6] == b':';
    let (Some(hh), Some(mm), Some(ss)) = (two(1), two(4), two(7)) else {
        return Err(bad());
    };
    let rest = &v[19..];
    let fraction_ok = rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with('.')
            && rest[1..].bytes().all(|c| c.is_ascii_digit()));
    if !ok_shape || hh > 23 || mm > 59 || ss > 59 || !fraction_ok {
        return Err(bad());
    }
    Ok(format!("{y:04}/{m:02}/{d:02} {hh:02}:{mm:02}:{ss:02}"))
}

/// Now in Vietnamese time (UTC+7, no daylight saving), as `yyyy/MM/dd HH:mm:ss`.
pub(super) fn now_in_vietnam() -> String {
    in_vietnam(time::OffsetDateTime::now_utc())
}

/// `t` in Vietnamese time (UTC+7, no daylight saving), as `yyyy/MM/dd HH:mm:ss`: the form of the header's
/// `Timestamp`s.
pub fn in_vietnam(t: time::OffsetDateTime) -> String {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let t = t.to_offset(offset);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
