//! The status codes themselves: their two-digit form, their meaning and who sends them, and how they read
//! from and write to JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A QCVN 102 document status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    Arrived01,
    Rejected02,
    Accepted03,
    Assigned04,
    Processing05,
    Finished06,
    Recall13,
    AgreeRecall15,
    RefuseRecall16,
}

use StatusCode::*;

impl StatusCode {
    /// Every code, in numeric order.
    pub const ALL: [StatusCode; 9] = [
        Arrived01,
        Rejected02,
        Accepted03,
        Assigned04,
        Processing05,
        Finished06,
        Recall13,
        AgreeRecall15,
        RefuseRecall16,
    ];

    /// The two-digit code as written in packages: `"01"` … `"16"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrived01 => "01",
            Rejected02 => "02",
            Accepted03 => "03",
            Assigned04 => "04",
            Processing05 => "05",
            Finished06 => "06",
            Recall13 => "13",
            AgreeRecall15 => "15",
            RefuseRecall16 => "16",
        }
    }

    /// Parses the two-digit codes `"01"` … `"16"` (surrounding whitespace ignored), as the schemas require.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "01" => Arrived01,
            "02" => Rejected02,
            "03" => Accepted03,
            "04" => Assigned04,
            "05" => Processing05,
            "06" => Finished06,
            "13" => Recall13,
            "15" => AgreeRecall15,
            "16" => RefuseRecall16,
            _ => return None,
        })
    }

    /// Short English meaning, for messages.
    pub fn meaning(self) -> &'static str {
        match self {
            Arrived01 => "arrived",
            Rejected02 => "rejected",
            Accepted03 => "accepted",
            Assigned04 => "assigned",
            Processing05 => "processing",
            Finished06 => "finished",
            Recall13 => "recall",
            AgreeRecall15 => "recall agreed",
            RefuseRecall16 => "recall refused",
        }
    }

    /// True for 13, the only status the document's sender sends; all others come from the receiver.
    pub fn is_sent_by_sender(self) -> bool {
        self == Recall13
    }

    /// True for the receiver's flow codes 01–06.
    pub fn is_flow(self) -> bool {
        !matches!(self, Recall13 | AgreeRecall15 | RefuseRecall16)
    }

    /// `"03 (accepted)"`, for messages.
    pub(super) fn label(self) -> String {
        format!("{} ({})", self.as_str(), self.meaning())
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `s` is not a status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a status code (01, 02, 03, 04, 05, 06, 13, 15, 16)")]
pub struct UnknownStatusCode(pub String);

impl FromStr for StatusCode {
    type Err = UnknownStatusCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownStatusCode(s.to_owned()))
    }
}

impl Serialize for StatusCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Accepts `"03"` or the number `3`.
impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Number(n) => format!("{n:02}"),
        };
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(UnknownStatusCode(text)))
    }
}
