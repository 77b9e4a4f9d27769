//! The custom format `yyyyMMddHHmmss`: compact date-times without separators, as many government systems
//! exchange them.
//!
//! Why a format of our own rather than a `pattern`: a pattern can say "14 digits" but not "a day that exists"
//! (30 February, hour 24); this checks the calendar, leap years included.

/// Name of the custom format for `yyyyMMddHHmmss` date-times.
pub const DATE_TIME_14: &str = "yyyyMMddHHmmss";

/// `yyyyMMddHHmmss`: 14 ASCII digits forming a real calendar date-time (Gregorian, leap years included).
pub fn is_date_time_14(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(4, 6), num(6, 8));
    let (hour, minute, second) = (num(8, 10), num(10, 12), num(12, 14));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60
}
