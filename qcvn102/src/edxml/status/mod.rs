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
//! Update (15 and 16 also answer an update; `docs/qcvn102.md`, "Status codes"): when the sender sends an update or a replacement of
//! the document (an edXML document with `BussinessDocType` 2 or 3), the receiver may answer it with one 15 or
//! 16, ([`DocState::with_update`]); the flow is not held meanwhile. A 13 unanswered takes the answer first.
//!
//! Because of the last rule the state of a document is a small struct, [`DocState`], not one code. It is
//! stored as a short string: `""` (no status yet), `"05"`, `"13<05"` (recall pending, flow was at 05),
//! `"16<05"` (recall refused, flow resumes at 05), `"15<05"` (recalled); without an earlier flow status
//! the `<…` part is left out (`"13"`).
//! [`check_transition`] applies the same rules when only the previous code is known.
//!
//! Unseen history: the rules hold against what the bus saw from a receiver. Its first status, when the rules
//! would not allow it first (a 05 about a document sent before the bus went live), is taken as reported
//! ([`DocState::accept`], [`Judgement`]); every later status is checked from there.

mod code;
mod reported;
mod state;
mod transitions;

#[cfg(test)]
mod tests;

pub use code::{StatusCode, UnknownStatusCode};
pub use reported::Judgement;
pub use state::{DocState, InvalidStoredState};
pub use transitions::{TransitionError, check_transition};
