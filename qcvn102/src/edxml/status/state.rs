//! Where one document stands at one receiver ([`DocState`]), the short string it is stored as, and how it reads
//! in messages.
//!
//! Why the wording lives here and not beside the rules: the rules (`transitions`) build on the state, so the
//! state's own description stays with it and the rules only print it.

use super::code::StatusCode::{self, *};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Recall {
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
    pub(super) stage: Option<StatusCode>,
    pub(super) recall: Recall,
    /// An update or replacement of the document waits for the receiver's 15 or 16.
    pub(super) update_pending: bool,
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
}

impl DocState {
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

/// How a state reads in messages: what [`DocState`]'s `Display` writes, and so what a refused transition
/// says about the state it was refused in.
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

/// A stored state string that [`DocState::from_storage`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a stored document state (expected e.g. \"\", \"05\", \"13<05\", \"16<05\", \"15\")"
)]
pub struct InvalidStoredState(pub String);
