//! The transition table, recall and update answers, the storage form, and the codes' text and serde forms.

use super::*;
use StatusCode::*;

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
                    let err = result.expect_err(&format!("{prev:?} -> {next:?} should be refused"));
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

#[test]
fn the_first_status_seen_is_taken_as_reported_and_checked_from_there() {
    use Judgement::*;
    // Every code is accepted first; those the rules allow first are "checked", the others taken as reported.
    for c in StatusCode::ALL {
        let (state, judged) = DocState::new().accept(c).unwrap();
        let legal_first = matches!(c, Arrived01 | Rejected02 | Accepted03 | Recall13);
        assert_eq!(
            judged,
            if legal_first {
                Checked
            } else {
                TakenAsReported
            },
            "{c:?}"
        );
        assert_eq!(state.last(), Some(c), "{c:?}");
        // The state is stored and read back like any other.
        assert_eq!(DocState::from_storage(&state.to_storage()).unwrap(), state);
    }
    // 05 first (the 03 before it went another way), then 06 is checked; 02 after a seen 06 is still refused.
    let (at_05, judged) = DocState::new().accept(Processing05).unwrap();
    assert_eq!(
        (at_05.to_storage().as_str(), judged),
        ("05", TakenAsReported)
    );
    let (at_06, judged) = at_05.accept(Finished06).unwrap();
    assert_eq!(judged, Checked);
    let err = at_06.accept(Rejected02).unwrap_err();
    assert_eq!(err.prev(), Some(Finished06));
    assert!(
        at_05.accept(Assigned04).is_err(),
        "the flow does not go back"
    );
    // An update waiting for its answer is the sender's doing: the receiver's first flow status is still taken as
    // reported, and the update still waits.
    let waiting = DocState::new().with_update();
    assert!(waiting.nothing_seen());
    let (state, judged) = waiting.accept(Finished06).unwrap();
    assert_eq!(
        (state.to_storage().as_str(), judged),
        ("06+u", TakenAsReported)
    );
    let (state, judged) = waiting.accept(AgreeRecall15).unwrap();
    assert_eq!((state.to_storage().as_str(), judged), ("", Checked));
    // Once a recall (13) was seen, an out-of-turn status is refused as before.
    let recalled = DocState::new().apply(Recall13).unwrap();
    assert!(!recalled.nothing_seen());
    assert!(recalled.accept(Processing05).is_err());
    for j in [Checked, TakenAsReported] {
        assert_eq!(Judgement::parse(j.as_str()), Some(j));
    }
    assert_eq!(Judgement::parse("maybe"), None);
}
