//! Statuses about documents whose history the bus did not see: taken as reported, then checked from there.
//!
//! A receiver's first status may not be a legal first step — the document was sent before the bus went live,
//! or by another channel, and the receiver's 01 and 03 went the same way. Refusing its 05 would mean its status
//! can never reach the sender. So the transition rules are applied only to what the bus saw from that receiver:
//! the first status seen is taken as reported, and every later one is checked against it (`docs/qcvn102.md`,
//! "Status codes").

use super::code::StatusCode::{self, *};
use super::state::{DocState, Recall};
use super::transitions::TransitionError;

/// How an accepted status was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// A legal next step from what the bus saw before.
    Checked,
    /// The first status seen from this receiver, and not one the rules allow first: accepted as the receiver
    /// reported it, because the steps before it were not seen.
    TakenAsReported,
}

impl Judgement {
    /// `"checked"` or `"taken as reported"`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Checked => "checked",
            Judgement::TakenAsReported => "taken as reported",
        }
    }

    /// Reads what [`Judgement::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Judgement> {
        match s {
            "checked" => Some(Judgement::Checked),
            "taken as reported" => Some(Judgement::TakenAsReported),
            _ => None,
        }
    }
}

impl DocState {
    /// Nothing of the receiver's own handling has been seen: no flow status and no recall. (An update the sender
    /// made may be waiting for its answer; that is the sender's doing.)
    pub fn nothing_seen(&self) -> bool {
        self.stage.is_none() && self.recall == Recall::None
    }

    /// The state after `next` and how it was judged: checked like [`DocState::apply`] when anything was seen
    /// before; taken as reported when `next` is the first status seen and the rules would not allow it first.
    pub fn accept(&self, next: StatusCode) -> Result<(DocState, Judgement), TransitionError> {
        match self.apply(next) {
            Ok(state) => Ok((state, Judgement::Checked)),
            Err(_) if self.nothing_seen() => {
                Ok((self.as_reported(next), Judgement::TakenAsReported))
            }
            Err(e) => Err(e),
        }
    }

    /// Where `next`, taken as reported, leaves a document of which nothing was seen.
    fn as_reported(&self, next: StatusCode) -> DocState {
        let recall = match next {
            Recall13 => Recall::Pending,
            AgreeRecall15 => Recall::Agreed,
            RefuseRecall16 => Recall::Refused,
            flow => {
                return DocState {
                    stage: Some(flow),
                    ..*self
                };
            }
        };
        DocState { recall, ..*self }
    }
}
