//! Document status codes (QCVN 102:2016 status packages) and the transitions the bus accepts.
//!
//! | Code | Meaning | Sent by |
//! |---|---|---|
//! | 01 | arrived: the receiving software has it, no clerk has acted yet | receiver |
//! | 02 | rejected or returned (a reason is required) | receiver |
//! | 03 | accepted and registered (vào sổ) | receiver |
//! | 04 | assigned for handling | receiver |
//! | 05 | processing | receiver |
//! | 06 | finished | receiver |
//! | 13 | recall or cancellation of the sent document | sender |
//! | 15 | agree to the recall or update | receiver |
//! | 16 | refuse the recall or update | receiver |
//!
//! # Rules
//! The receiver's flow is `01 → (02 | 03) → 04 → 05 → 06`, with the skips real partners make:
//! - the first status may be 01, 02 or 03 (a system that never reports 01 starts at 03 or 02);
//! - after 01: 02 or 03;
//! - after 03: 04, 05 or 06 (one QLVB writes 03 then 05 directly; a document kept for information is
//!   registered and closed);
//! - after 04: 05 or 06; after 05: 06;
//! - 04 and 05 require 03 earlier, and so does 06; 02 is only possible before 03; the flow never goes back;
//! - repeating the current status is idempotent and always allowed;
//! - 02 (rejected) and 06 (finished) end the flow: only the sender's recall 13 may follow.
//!
//! Recall:
//! - 13 (the sender recalls) is allowed at any point, except once the document is recalled;
//! - 15 and 16 only answer a 13, and while a 13 is unanswered nothing but 13, 15 or 16 is accepted;
//! - after 15 the document is recalled: the end (only a repeated 15 is accepted);
//! - after 16 the flow resumes where it was before the 13: the statuses allowed then are allowed again.
//!
//! Update (REFERENCE §1.2: 15/16 also answer an update): when the sender sends an update or a replacement of
//! the document (an edXML document with `BussinessDocType` 2 or 3), the receiver may answer it with one 15 or
//! 16, ([`DocState::with_update`]); the flow is not held meanwhile. A 13 unanswered takes the answer first.
//!
//! Because of the last rule the state of a document is a small struct, [`DocState`], not one code. It is
//! stored as a short string: `""` (no status yet), `"05"`, `"13<05"` (recall pending, flow was at 05),
//! `"16<05"` (recall refused, flow resumes at 05), `"15<05"` (recalled); without an earlier flow status
//! the `<…` part is left out (`"13"`).
//! [`check_transition`] applies the same rules when only the previous code is known.

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

    fn label(self) -> String {
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

/// A status that may not follow the document's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {} may not follow {}: {reason}; allowed next: {}", .next.label(), describe(.state), list(.allowed))]
pub struct TransitionError {
    /// The state the status was applied to.
    pub state: DocState,
    pub next: StatusCode,
    /// What would have been accepted instead.
    pub allowed: Vec<StatusCode>,
    pub reason: String,
}

impl TransitionError {
    /// The last status applied before the refused one (`None` when there was none).
    pub fn prev(&self) -> Option<StatusCode> {
        self.state.last()
    }
}

fn describe(state: &DocState) -> String {
    let base = describe_recall_and_stage(state);
    if state.update_pending {
        format!("{base}; an update waits for 15 or 16")
    } else {
        base
    }
}

fn describe_recall_and_stage(state: &DocState) -> String {
    match (state.recall, state.stage) {
        (Recall::None, None) => "no status yet".into(),
        (Recall::None, Some(stage)) => stage.label(),
        (Recall::Pending, _) => "13 (recall, unanswered)".into(),
        (Recall::Refused, Some(stage)) => {
            format!("16 (recall refused, flow at {})", stage.as_str())
        }
        (Recall::Refused, None) => RefuseRecall16.label(),
        (Recall::Agreed, _) => AgreeRecall15.label(),
    }
}

fn list(codes: &[StatusCode]) -> String {
    if codes.is_empty() {
        return "nothing".into();
    }
    codes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Recall {
    #[default]
    None,
    /// 13 sent, not answered yet.
    Pending,
    /// Answered 16: the flow resumes.
    Refused,
    /// Answered 15: the document is recalled.
    Agreed,
}

/// Where a document stands: the receiver's flow status and any recall on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DocState {
    /// Last flow status (01–06), kept under a recall so that a refused recall can resume it.
    stage: Option<StatusCode>,
    recall: Recall,
    /// An update or replacement of the document waits for the receiver's 15 or 16.
    update_pending: bool,
}

impl DocState {
    /// No status yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last flow status (01–06), also while a recall is on top of it.
    pub fn stage(&self) -> Option<StatusCode> {
        self.stage
    }

    /// The last status applied.
    pub fn last(&self) -> Option<StatusCode> {
        match self.recall {
            Recall::None => self.stage,
            Recall::Pending => Some(Recall13),
            Recall::Refused => Some(RefuseRecall16),
            Recall::Agreed => Some(AgreeRecall15),
        }
    }

    /// The sender updated or replaced the document: the receiver may answer 15 or 16 (once).
    pub fn with_update(&self) -> DocState {
        DocState {
            update_pending: true,
            ..*self
        }
    }

    /// An update or replacement waits for the receiver's 15 or 16.
    pub fn is_update_pending(&self) -> bool {
        self.update_pending
    }

    /// A 13 waits for the receiver's 15 or 16.
    pub fn is_recall_pending(&self) -> bool {
        self.recall == Recall::Pending
    }

    /// The receiver agreed to the recall (15).
    pub fn is_recalled(&self) -> bool {
        self.recall == Recall::Agreed
    }

    /// Nothing new can follow (recalled). Rejected and finished documents can still be recalled.
    pub fn is_terminal(&self) -> bool {
        self.is_recalled()
    }

    /// The statuses [`DocState::apply`] accepts next, in numeric order.
    pub fn allowed_next(&self) -> Vec<StatusCode> {
        match self.recall {
            Recall::Agreed => vec![AgreeRecall15],
            Recall::Pending => vec![Recall13, AgreeRecall15, RefuseRecall16],
            Recall::None | Recall::Refused => {
                let mut allowed: Vec<StatusCode> = flow_after(self.stage).to_vec();
                allowed.push(Recall13);
                if self.update_pending {
                    allowed.push(AgreeRecall15);
                }
                if self.recall == Recall::Refused || self.update_pending {
                    allowed.push(RefuseRecall16);
                }
                allowed
            }
        }
    }

    /// The state after `next`, or why `next` may not follow.
    pub fn apply(&self, next: StatusCode) -> Result<DocState, TransitionError> {
        let refuse = |reason: String| TransitionError {
            state: *self,
            next,
            allowed: self.allowed_next(),
            reason,
        };
        match (self.recall, next) {
            (Recall::Agreed, AgreeRecall15) => Ok(*self),
            (Recall::Agreed, _) => Err(refuse("the document was recalled (15 agreed to the recall)".into())),
            (Recall::Pending, Recall13) => Ok(*self),
            (Recall::Pending, AgreeRecall15) => Ok(self.with_recall(Recall::Agreed)),
            (Recall::Pending, RefuseRecall16) => Ok(self.with_recall(Recall::Refused)),
            (Recall::Pending, _) => Err(refuse(
                "a recall (13) is unanswered: the receiver must answer 15 (agree) or 16 (refuse) first".into(),
            )),
            (_, Recall13) => Ok(self.with_recall(Recall::Pending)),
            (_, AgreeRecall15 | RefuseRecall16) if self.update_pending => Ok(DocState {
                update_pending: false,
                ..*self
            }),
            (Recall::Refused, RefuseRecall16) => Ok(*self),
            (_, AgreeRecall15 | RefuseRecall16) => Err(refuse(format!(
                "{} only answers a recall (13) or an update, and none is unanswered",
                next.as_str()
            ))),
            (_, flow) => {
                if flow_after(self.stage).contains(&flow) {
                    Ok(DocState {
                        stage: Some(flow),
                        recall: Recall::None,
                        update_pending: self.update_pending,
                    })
                } else {
                    Err(refuse(flow_refusal(self.stage, flow)))
                }
            }
        }
    }

    fn with_recall(&self, recall: Recall) -> DocState {
        DocState { recall, ..*self }
    }

    /// Short form for storage: `""`, `"05"`, `"13<05"`, `"16<05"`, `"15<05"`, `"13"`, …, with `"+u"` after
    /// it while an update waits for its answer (`"05+u"`, `"+u"`).
    pub fn to_storage(&self) -> String {
        let mut out = self.recall_and_stage();
        if self.update_pending {
            out.push_str("+u");
        }
        out
    }

    fn recall_and_stage(&self) -> String {
        let top = match self.recall {
            Recall::None => {
                return self
                    .stage
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
            }
            Recall::Pending => Recall13,
            Recall::Refused => RefuseRecall16,
            Recall::Agreed => AgreeRecall15,
        };
        match self.stage {
            Some(stage) => format!("{}<{}", top.as_str(), stage.as_str()),
            None => top.as_str().to_owned(),
        }
    }

    /// Reads what [`DocState::to_storage`] wrote.
    pub fn from_storage(stored: &str) -> Result<DocState, InvalidStoredState> {
        let (s, update_pending) = match stored.strip_suffix("+u") {
            Some(rest) => (rest, true),
            None => (stored, false),
        };
        let mut state =
            Self::recall_and_stage_from(s).map_err(|_| InvalidStoredState(stored.to_owned()))?;
        state.update_pending = update_pending;
        Ok(state)
    }

    fn recall_and_stage_from(s: &str) -> Result<DocState, InvalidStoredState> {
        let bad = || InvalidStoredState(s.to_owned());
        let strict = |code: &str| {
            (code.len() == 2)
                .then(|| StatusCode::parse(code))
                .flatten()
                .ok_or_else(bad)
        };
        let (top, stage) = match s.split_once('<') {
            Some((top, stage)) => (strict(top)?, Some(strict(stage)?)),
            None if s.is_empty() => return Ok(DocState::new()),
            None => (strict(s)?, None),
        };
        if stage.is_some_and(|c| !c.is_flow()) {
            return Err(bad());
        }
        let recall = match top {
            Recall13 => Recall::Pending,
            RefuseRecall16 => Recall::Refused,
            AgreeRecall15 => Recall::Agreed,
            flow if stage.is_none() => {
                return Ok(DocState {
                    stage: Some(flow),
                    ..DocState::new()
                });
            }
            _ => return Err(bad()),
        };
        Ok(DocState {
            stage,
            recall,
            ..DocState::new()
        })
    }
}

impl fmt::Display for DocState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self))
    }
}

/// A stored state string that [`DocState::from_storage`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a stored document state (expected e.g. \"\", \"05\", \"13<05\", \"16<05\", \"15\")"
)]
pub struct InvalidStoredState(pub String);

/// Flow statuses allowed after flow status `stage` (including repeating it).
fn flow_after(stage: Option<StatusCode>) -> &'static [StatusCode] {
    match stage {
        None => &[Arrived01, Rejected02, Accepted03],
        Some(Arrived01) => &[Arrived01, Rejected02, Accepted03],
        Some(Accepted03) => &[Accepted03, Assigned04, Processing05, Finished06],
        Some(Assigned04) => &[Assigned04, Processing05, Finished06],
        Some(Processing05) => &[Processing05, Finished06],
        Some(Rejected02) => &[Rejected02],
        Some(Finished06) => &[Finished06],
        Some(Recall13 | AgreeRecall15 | RefuseRecall16) => &[],
    }
}

fn flow_refusal(stage: Option<StatusCode>, next: StatusCode) -> String {
    match (stage, next) {
        (Some(done @ (Rejected02 | Finished06)), _) => format!(
            "the document is {} ({}); only the sender's recall (13) may follow",
            done.meaning(),
            done.as_str()
        ),
        (None | Some(Arrived01), Assigned04 | Processing05 | Finished06) => {
            format!("{} requires 03 (accepted) earlier", next.label())
        }
        (Some(_), Rejected02) => {
            "02 (rejected) is only possible before the document is accepted (03)".into()
        }
        (Some(stage), _) => format!(
            "the flow does not go back from {} to {}",
            stage.label(),
            next.label()
        ),
        (None, _) => format!("{} cannot be the first status", next.label()),
    }
}

/// Checks `next` against the previous status alone.
///
/// Same rules as [`DocState::apply`]. One case needs more than the previous code: after a 16 the flow resumes
/// where it was before the recall, which only a [`DocState`] remembers; here every flow status is accepted
/// after 16.
pub fn check_transition(prev: Option<StatusCode>, next: StatusCode) -> Result<(), TransitionError> {
    let state = match prev {
        None => DocState::new(),
        Some(Recall13) => DocState {
            recall: Recall::Pending,
            ..DocState::new()
        },
        Some(AgreeRecall15) => DocState {
            recall: Recall::Agreed,
            ..DocState::new()
        },
        Some(RefuseRecall16) => {
            let state = DocState {
                recall: Recall::Refused,
                ..DocState::new()
            };
            if next.is_flow() {
                return Ok(());
            }
            return state.apply(next).map(|_| ()).map_err(|mut e| {
                e.allowed = StatusCode::ALL
                    .into_iter()
                    .filter(|c| *c != AgreeRecall15)
                    .collect();
                e
            });
        }
        Some(flow) => DocState {
            stage: Some(flow),
            ..DocState::new()
        },
    };
    state.apply(next).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> StatusCode {
        StatusCode::parse(s).unwrap()
    }

    /// The whole transition table for [`check_transition`]: rows are the previous status, columns the next,
    /// `Y` allowed, `.` refused.
    const TABLE: &str = "
        prev  01 02 03 04 05 06 13 15 16
        none   Y  Y  Y  .  .  .  Y  .  .
        01     Y  Y  Y  .  .  .  Y  .  .
        02     .  Y  .  .  .  .  Y  .  .
        03     .  .  Y  Y  Y  Y  Y  .  .
        04     .  .  .  Y  Y  Y  Y  .  .
        05     .  .  .  .  Y  Y  Y  .  .
        06     .  .  .  .  .  Y  Y  .  .
        13     .  .  .  .  .  .  Y  Y  Y
        15     .  .  .  .  .  .  .  Y  .
        16     Y  Y  Y  Y  Y  Y  Y  .  Y
    ";

    #[test]
    fn every_transition_matches_the_table() {
        let mut lines = TABLE.trim().lines();
        let header: Vec<StatusCode> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(code)
            .collect();
        assert_eq!(header, StatusCode::ALL);
        let mut checked = 0;
        for line in lines {
            let mut cells = line.split_whitespace();
            let prev = match cells.next().unwrap() {
                "none" => None,
                c => Some(code(c)),
            };
            for (next, cell) in header.iter().zip(cells) {
                let result = check_transition(prev, *next);
                match cell {
                    "Y" => assert!(
                        result.is_ok(),
                        "{prev:?} -> {next:?} should be allowed: {result:?}"
                    ),
                    "." => {
                        let err =
                            result.expect_err(&format!("{prev:?} -> {next:?} should be refused"));
                        assert!(!err.allowed.contains(next), "{err}");
                        assert_eq!(err.next, *next);
                    }
                    other => panic!("bad cell {other}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 90);
    }

    #[test]
    fn error_names_both_codes_and_what_is_allowed() {
        let err = check_transition(Some(Arrived01), Assigned04).unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg,
            "status 04 (assigned) may not follow 01 (arrived): 04 (assigned) requires 03 (accepted) earlier; \
             allowed next: 01, 02, 03, 13"
        );
        assert_eq!(err.prev(), Some(Arrived01));

        let msg = check_transition(Some(Finished06), Processing05)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("05 (processing) may not follow 06 (finished)"),
            "{msg}"
        );
        assert!(msg.contains("only the sender's recall (13)"), "{msg}");
        assert!(msg.ends_with("allowed next: 06, 13"), "{msg}");

        let msg = check_transition(None, AgreeRecall15)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("15 (recall agreed) may not follow no status yet"),
            "{msg}"
        );

        let msg = check_transition(Some(Recall13), Processing05)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("must answer 15 (agree) or 16 (refuse)"),
            "{msg}"
        );
        assert!(msg.ends_with("allowed next: 13, 15, 16"), "{msg}");

        let msg = check_transition(Some(Processing05), Assigned04)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("does not go back from 05 (processing) to 04 (assigned)"),
            "{msg}"
        );
    }

    #[test]
    fn refused_recall_resumes_the_flow_where_it_was() {
        let mut state = DocState::new();
        for c in [Arrived01, Accepted03, Processing05, Recall13] {
            state = state.apply(c).unwrap();
        }
        assert_eq!(state.to_storage(), "13<05");
        assert!(state.is_recall_pending());
        assert!(
            state.apply(Finished06).is_err(),
            "a pending recall must be answered first"
        );
        let state = state.apply(RefuseRecall16).unwrap();
        assert_eq!(state.to_storage(), "16<05");
        assert_eq!(state.last(), Some(RefuseRecall16));
        // Back at 05: 04 (going back) is refused, 05 again and 06 are fine; so are another 13 and a repeated 16.
        let err = state.apply(Assigned04).unwrap_err();
        assert!(
            err.to_string()
                .contains("may not follow 16 (recall refused, flow at 05)"),
            "{err}"
        );
        assert_eq!(
            err.allowed,
            vec![Processing05, Finished06, Recall13, RefuseRecall16]
        );
        assert_eq!(state.apply(RefuseRecall16).unwrap(), state);
        assert_eq!(state.apply(Recall13).unwrap().to_storage(), "13<05");
        let done = state.apply(Finished06).unwrap();
        assert_eq!(done.to_storage(), "06");
        assert!(done.apply(AgreeRecall15).is_err(), "15 needs a 13 first");
    }

    #[test]
    fn agreed_recall_is_the_end() {
        let state = DocState::new()
            .apply(Accepted03)
            .unwrap()
            .apply(Recall13)
            .unwrap();
        let recalled = state.apply(AgreeRecall15).unwrap();
        assert!(recalled.is_recalled() && recalled.is_terminal());
        assert_eq!(recalled.to_storage(), "15<03");
        assert_eq!(
            recalled.apply(AgreeRecall15).unwrap(),
            recalled,
            "repeats are idempotent"
        );
        for next in StatusCode::ALL.into_iter().filter(|c| *c != AgreeRecall15) {
            let err = recalled.apply(next).unwrap_err();
            assert!(err.to_string().contains("was recalled"), "{err}");
        }
    }

    #[test]
    fn partner_shortcuts_are_accepted() {
        // One QLVB writes 03 then 05 and never 06; another starts at 03 without 01.
        let s = DocState::new()
            .apply(Accepted03)
            .unwrap()
            .apply(Processing05)
            .unwrap();
        assert_eq!(s.stage(), Some(Processing05));
        let s = DocState::new()
            .apply(Arrived01)
            .unwrap()
            .apply(Arrived01)
            .unwrap();
        assert_eq!(s.to_storage(), "01");
        // A recall before anything arrived, then refused: the flow starts from the beginning.
        let s = DocState::new().apply(Recall13).unwrap();
        assert_eq!(s.to_storage(), "13");
        let s = s.apply(RefuseRecall16).unwrap();
        assert_eq!(s.to_storage(), "16");
        assert!(s.apply(Arrived01).is_ok());
        assert!(s.apply(Assigned04).is_err());
        // Rejected documents can still be recalled, and a refused recall leaves them rejected.
        let s = DocState::new()
            .apply(Rejected02)
            .unwrap()
            .apply(Recall13)
            .unwrap();
        let s = s.apply(RefuseRecall16).unwrap();
        assert_eq!(s.allowed_next(), vec![Rejected02, Recall13, RefuseRecall16]);
    }

    #[test]
    fn an_update_may_be_answered_once_without_holding_the_flow() {
        let s = DocState::new().apply(Accepted03).unwrap();
        // Without an update, 15/16 answer nothing.
        assert!(s.apply(AgreeRecall15).is_err());
        let s = s.with_update();
        assert!(s.is_update_pending());
        assert_eq!(
            s.allowed_next(),
            vec![
                Accepted03,
                Assigned04,
                Processing05,
                Finished06,
                Recall13,
                AgreeRecall15,
                RefuseRecall16
            ]
        );
        // The flow goes on meanwhile, and the update can still be answered.
        let s = s.apply(Processing05).unwrap();
        assert_eq!(s.to_storage(), "05+u");
        assert_eq!(DocState::from_storage("05+u").unwrap(), s);
        let answered = s.apply(RefuseRecall16).unwrap();
        assert!(!answered.is_update_pending());
        assert_eq!(answered.stage(), Some(Processing05));
        assert!(answered.apply(AgreeRecall15).is_err(), "answered once");
        // A recall on top takes the answer first; the update's answer is still possible after it.
        let r = s.apply(Recall13).unwrap();
        let r = r.apply(RefuseRecall16).unwrap();
        assert!(r.is_update_pending());
        assert_eq!(r.to_storage(), "16<05+u");
        assert_eq!(DocState::from_storage("16<05+u").unwrap(), r);
        let r = r.apply(AgreeRecall15).unwrap();
        assert!(!r.is_update_pending());
        assert_eq!(
            DocState::from_storage("+u").unwrap(),
            DocState::new().with_update()
        );
    }

    #[test]
    fn storage_round_trip_and_garbage() {
        let mut seen = Vec::new();
        // Walk a few paths and check every state survives storage.
        let paths: [&[StatusCode]; 4] = [
            &[
                Arrived01,
                Accepted03,
                Assigned04,
                Processing05,
                Finished06,
                Recall13,
                AgreeRecall15,
            ],
            &[Recall13, RefuseRecall16, Accepted03, Recall13],
            &[Rejected02, Recall13, RefuseRecall16],
            &[
                Accepted03,
                Processing05,
                Recall13,
                RefuseRecall16,
                Finished06,
            ],
        ];
        for path in paths {
            let mut state = DocState::new();
            for c in path {
                state = state.apply(*c).unwrap();
                let stored = state.to_storage();
                assert_eq!(DocState::from_storage(&stored).unwrap(), state, "{stored}");
                seen.push(stored);
            }
        }
        assert!(seen.iter().any(|s| s == "15<06"));
        assert!(seen.iter().any(|s| s == "13<03"));
        assert_eq!(DocState::from_storage("").unwrap(), DocState::new());
        for bad in [
            "5", "07", "05<03", "13<13", "13<", "<05", "13<05<03", "xx", "013", "05+x", "+u+u",
        ] {
            assert!(DocState::from_storage(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_parse_print_and_serde() {
        for c in StatusCode::ALL {
            assert_eq!(StatusCode::parse(c.as_str()), Some(c));
            assert_eq!(c.as_str().parse::<StatusCode>().unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(StatusCode::parse(" 03 "), Some(Accepted03));
        for bad in [
            "", "3", "00", "07", "12", "14", "17", "003", "-1", "1a", "+3",
        ] {
            assert_eq!(StatusCode::parse(bad), None, "{bad}");
        }
        let from_number: StatusCode = serde_json::from_str("16").unwrap();
        assert_eq!(from_number, RefuseRecall16);
        let from_text: StatusCode = serde_json::from_str("\"02\"").unwrap();
        assert_eq!(from_text, Rejected02);
        assert!(serde_json::from_str::<StatusCode>("\"07\"").is_err());
        assert!(Recall13.is_sent_by_sender() && !Accepted03.is_sent_by_sender());
    }
}
