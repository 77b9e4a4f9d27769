//! QCVN 102:2016 agency codes (`NNN.NN.NN.Xnn`), and the wider set of codes the national document network
//! writes in an `OrganId` (`docs/qcvn102.md`, "Agency codes").
//!
//! Two rules, because the network is less tidy than the standard. An agency configured on a bus is named by
//! its QCVN 102 code ([`is_valid`]): that is its identity, what tokens and routes are bound to. Anything that
//! only *names* an organisation — a receiver, an agency's other codes (tax code, QĐ 20 code), the issuer in a
//! `DocumentId` — may be any code the network uses ([`is_network_code`]): real packages address `G12`,
//! `H37.02.02` or a company's tax code, and refusing them would stop real traffic without protecting anything.

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

/// Longest [`is_network_code`] accepted.
pub const MAX_NETWORK_CODE_LEN: usize = 64;

/// True when `s` is a code the national document network uses to name an organisation: a QCVN 102 code
/// (`000.00.00.G12`), a QĐ 20/2020 code (`G12`, `H37.02.02`), a tax code (`020100107370`, `0100109106-001`),
/// or a legacy code seen in real packages (`01.02.G22`, `001.00.20.TT2`).
///
/// The shape is deliberately loose — 1 to [`MAX_NETWORK_CODE_LEN`] ASCII letters, digits, `.`, `-` and `_`,
/// starting with a letter or digit — because which scheme a code follows cannot be told from it reliably. What
/// it keeps out is what would break the bus or a receiver: whitespace, commas (a `DocumentId` separator, and the
/// separator of the bus's receiver list), markup, control characters, and the empty string.
pub fn is_network_code(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NETWORK_CODE_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// Why a string is not a code of the national document network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not an organisation code (1 to 64 ASCII letters, digits, '.', '-' or '_', e.g. \
     000.00.00.G12, G12, H37.02.02 or a tax code)"
)]
pub struct InvalidNetworkCode {
    pub value: String,
}

/// [`is_network_code`], with the error that says what is expected.
pub fn check_network_code(s: &str) -> Result<(), InvalidNetworkCode> {
    if is_network_code(s) {
        Ok(())
    } else {
        Err(InvalidNetworkCode {
            value: s.chars().take(MAX_NETWORK_CODE_LEN).collect(),
        })
    }
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

    #[test]
    fn network_codes_are_what_real_packages_write() {
        // QCVN 102, QĐ 20 (a ministry alone, a provincial unit), tax codes, and hop codes from real packages.
        for c in [
            "000.00.00.G12",
            "G12",
            "H37.02.02",
            "020100107370",
            "0100109106-001",
            "01.02.G22",
            "001.00.20.TT2",
        ] {
            assert!(is_network_code(c), "{c}");
            assert!(check_network_code(c).is_ok(), "{c}");
        }
        let too_long = "A".repeat(MAX_NETWORK_CODE_LEN + 1);
        for c in [
            "",
            " G12",
            "G12 ",
            "G 12",
            "G12,H40",
            "<G12>",
            ".G12",
            "-G12",
            "G12\n",
            "Sở",
            too_long.as_str(),
        ] {
            assert!(!is_network_code(c), "{c:?}");
        }
        let e = check_network_code("G12,H40").unwrap_err().to_string();
        assert!(e.contains("G12,H40") && e.contains("tax code"), "{e}");
    }
}
