//! The transition rules: which status may follow a document's state, and the reason when one may not.

use super::code::StatusCode::{self, *};
use super::state::{DocState, Recall};

/// A status that may not follow the document's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {} may not follow {}: {reason}; allowed next: {}", .next.label(), .state, list(.allowed))]
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

impl DocState {
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
}

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
