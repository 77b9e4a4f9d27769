//! QCVN 102:2016 agency codes (`NNN.NN.NN.Xnn`; `docs/qcvn102.md`, "Agency codes").
//!
//! Agency codes are identity on this bus: a route, a token and an edXML `OrganId` all name agencies by code, so
//! every place a code appears is checked with this one function, and a malformed code is a config or input error
//! rather than a silent non-match.

use std::fmt;

/// A syntactically valid QCVN 102 agency code, e.g. `000.00.00.H40`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgencyCode(String);

/// Why a string is not a QCVN 102 agency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a QCVN 102 agency code (expected NNN.NN.NN.Xnn, e.g. 000.00.00.H40)")]
pub struct InvalidAgencyCode {
    pub value: String,
}

impl AgencyCode {
    /// Parses `NNN.NN.NN.Xnn`: three digits, two digits, two digits, an upper-case letter and two digits.
    pub fn parse(s: &str) -> Result<Self, InvalidAgencyCode> {
        if is_valid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidAgencyCode {
                value: s.chars().take(64).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `s` has the QCVN 102 shape.
pub fn is_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 13 {
        return false;
    }
    let digit = |i: usize| b[i].is_ascii_digit();
    (0..3).all(digit)
        && b[3] == b'.'
        && (4..6).all(digit)
        && b[6] == b'.'
        && (7..9).all(digit)
        && b[9] == b'.'
        && b[10].is_ascii_uppercase()
        && (11..13).all(digit)
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_codes() {
        for c in [
            "000.00.00.H40",
            "000.00.12.H40",
            "000.00.00.G22",
            "000.00.01.H22",
        ] {
            assert!(AgencyCode::parse(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn refuses_malformed_codes() {
        for c in [
            "",
            "H40",
            "000.00.00.h40",
            "000.00.00.H4",
            "000.00.00.H400",
            "00.000.00.H40",
            "000-00-00-H40",
            "000.00.00.440",
            "ÂÂÂ.00.00.H40",
        ] {
            assert!(AgencyCode::parse(c).is_err(), "{c}");
        }
    }
}
