//! Dossier tracking end to end on the store, on both backends: the timeline and verdicts of one dossier
//! across two agencies, on-time counts over a generated month against a count made here independently,
//! search, what a citizen sees, and upgrading a version 2 database.

use super::{db, store};
use crate::dossiers::rules::{Clock, State};
use crate::dossiers::{DossierFacts, DossierStore, DossierView, Search, StatsRow, facts};
use crate::public::PublicDossier;
use lienthong_bus::state::testing::{Kind, fresh};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const DESK: &str = "000.00.00.H40";
const STP: &str = "000.00.12.H40";
const TWO_DAYS: Duration = Duration::from_secs(2 * 86_400);

fn clock(now: &str) -> Clock {
    Clock::new(now.into(), TWO_DAYS)
}

/// What `payload` says, as if `sender` sent it in message `id`.
fn said(sender: &str, id: &str, kind: &str, payload: serde_json::Value) -> DossierFacts {
    let mut f = facts(&payload).expect("a dossier code");
    f.sender = sender.into();
    f.message_id = id.into();
    f.kind = kind.into();
    f
}

async fn get(s: &DossierStore, code: &str) -> DossierView {
    s.get(code).await.unwrap().expect("tracked")
}

/// (status, agency, deadline verdict) of each step.
fn steps(v: &DossierView, c: &Clock) -> Vec<(i64, String, Option<State>)> {
    v.steps(c)
        .into_iter()
        .map(|s| (s.status, s.agency, s.deadline_state))
        .collect()
}

/// received → processing → waiting for papers (new appointment date) → processing → finished, received by
/// the one-stop desk and handled by the Department of Justice.
async fn a_dossier_timeline_across_two_agencies(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    let code = "000.00.00.H40-261120-00042";
    let status_changed = "dossier.status-changed";

    // 1. The desk receives it: appointment 10 December.
    s.record(said(
        DESK,
        "m1",
        "dossier.submitted",
        json!({"MaHoSo": code, "TenTTHC": "Đăng ký khai sinh", "MaTTHC": "1.001193",
               "NgayTiepNhan": "20261120090000", "NgayHenTra": "20261210170000", "TrangThaiHoSo": 2}),
    ))
    .await
    .unwrap();
    let v = get(s, code).await;
    let c = clock("20261121080000");
    assert_eq!(v.state(&c), State::OnTime);
    assert_eq!(v.due.as_deref(), Some("20261210170000"));
    assert_eq!(
        (v.receiving_agency.as_str(), v.agency.as_str()),
        (DESK, DESK)
    );
    assert_eq!(v.handler, None);
    assert_eq!(v.received_key, "20261120090000");

    // 2. The department processes it; this step must end by 25 November. The case the issue found: the step's
    //    deadline is not the dossier's due date. On 26 November the step is overdue and the dossier is not.
    s.record(said(
        STP,
        "m2",
        status_changed,
        json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261121100000",
               "NgayKetThucTheoQuyDinh": "20261125170000", "NoiDungXuLy": "Chuyển phòng Hộ tịch"}),
    ))
    .await
    .unwrap();
    let v = get(s, code).await;
    let c = clock("20261126120000");
    assert_eq!(v.due.as_deref(), Some("20261210170000"));
    assert_eq!(v.state(&c), State::OnTime, "the appointment is still ahead");
    assert_eq!(v.handler.as_deref(), Some(STP));
    assert_eq!(v.agency, STP, "attributed to the agency handling it");
    assert_eq!(
        steps(&v, &c),
        [
            (2, DESK.into(), None),
            (4, STP.into(), Some(State::Overdue))
        ]
    );

    // 3. It waits for more papers; the department re-issues the appointment: 18 December. The processing
    //    step ended on 27 November, after its deadline.
    s.record(said(
        STP,
        "m3",
        status_changed,
        json!({"MaHoSo": code, "TrangThai": 5, "ThoiDiemXuLy": "20261127090000",
               "NgayHenTra": "20261218170000", "NoiDungXuLy": "Chờ bổ sung giấy tờ"}),
    ))
    .await
    .unwrap();
    // The desk re-sends its record with the old appointment date: it no longer handles the dossier, so the
    // date is kept in the history but not put in force.
    s.record(said(
        DESK,
        "m4",
        "dossier.submitted",
        json!({"MaHoSo": code, "NgayHenTra": "20261210170000"}),
    ))
    .await
    .unwrap();
    let v = get(s, code).await;
    let c = clock("20261128120000");
    assert_eq!(v.due.as_deref(), Some("20261218170000"));
    assert_eq!(v.state(&c), State::OnTime);
    assert_eq!(steps(&v, &c)[1], (4, STP.into(), Some(State::FinishedLate)));
    let history: Vec<(String, Option<String>, bool, String)> = v
        .due_history()
        .into_iter()
        .map(|h| (h.due, h.previous, h.applied, h.message_id))
        .collect();
    assert_eq!(
        history,
        [
            ("20261210170000".into(), None, true, "m1".into()),
            (
                "20261218170000".into(),
                Some("20261210170000".into()),
                true,
                "m3".into()
            ),
            (
                "20261210170000".into(),
                Some("20261218170000".into()),
                false,
                "m4".into()
            ),
        ]
    );

    // 4. Processing again, with a step deadline of 15 December. On 17 December the appointment (18th) is
    //    due soon.
    s.record(said(
        STP,
        "m5",
        status_changed,
        json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261203080000",
               "NgayKetThucTheoQuyDinh": "20261215170000"}),
    ))
    .await
    .unwrap();
    let v = get(s, code).await;
    let c = clock("20261217120000");
    assert_eq!(v.state(&c), State::DueSoon);
    assert_eq!(steps(&v, &c)[3], (4, STP.into(), Some(State::Overdue)));
    assert_eq!(v.state(&clock("20261219000000")), State::Overdue);

    // 5. Done on 17 December, result returned on the 19th: finished on time, judged once, when status 9 came.
    for (id, status, at) in [("m6", 9, "20261217150000"), ("m7", 10, "20261219100000")] {
        s.record(said(
            STP,
            id,
            status_changed,
            json!({"MaHoSo": code, "TrangThai": status, "ThoiDiemXuLy": at}),
        ))
        .await
        .unwrap();
    }
    let v = get(s, code).await;
    let c = clock("20261220120000");
    assert_eq!(v.finished.as_deref(), Some("20261217150000"));
    assert_eq!(v.finished_status, Some(9));
    assert_eq!(v.finished_due.as_deref(), Some("20261218170000"));
    assert_eq!(v.state(&c), State::FinishedOnTime);
    assert_eq!(
        steps(&v, &c),
        [
            (2, DESK.into(), None),
            (4, STP.into(), Some(State::FinishedLate)),
            (5, STP.into(), None),
            (4, STP.into(), Some(State::FinishedLate)),
            (9, STP.into(), None),
            (10, STP.into(), None),
        ]
    );
    assert_eq!(v.events.len(), 7);
    assert_eq!(v.status, Some(10));
    assert_eq!(
        v.steps(&c)[0].at,
        "20261120090000",
        "received when the desk says it was"
    );

    // Finished after the appointment in force: late; finished without one: not judged.
    for (code, due, want) in [
        (
            "000.00.00.H40-261120-00043",
            Some("20261201170000"),
            State::FinishedLate,
        ),
        ("000.00.00.H40-261120-00044", None, State::NoDueDate),
    ] {
        let mut first = json!({"MaHoSo": code, "TrangThaiHoSo": 2});
        if let Some(d) = due {
            first["NgayHenTra"] = d.into();
        }
        s.record(said(DESK, "a", "dossier.submitted", first))
            .await
            .unwrap();
        s.record(said(
            STP,
            "b",
            status_changed,
            json!({"MaHoSo": code, "TrangThai": 9, "ThoiDiemXuLy": "20261202080000",
                   "NgayKetThucXuLy": "20261202080000"}),
        ))
        .await
        .unwrap();
        assert_eq!(get(s, code).await.state(&c), want, "{code}");
    }
}

/// One generated dossier, and what its story should count as (worked out here, not by the rules module).
struct Generated {
    code: String,
    desk: &'static str,
    handler: Option<&'static str>,
    received: String,
    due: String,
    /// When it finished, if it did.
    finished: Option<String>,
    /// 7 or 3/8 when it ended that way without finishing.
    ended: Option<i64>,
}

const AGENCIES: [&str; 4] = [
    "000.00.12.H40",
    "000.00.13.H40",
    "000.00.14.H40",
    "000.01.01.H40",
];

/// A month of dossiers, from late October to early December 2026, from a fixed seed.
fn month() -> Vec<Generated> {
    let mut seed: u64 = 0x5EED_2026;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut out = Vec::new();
    for i in 0..240u64 {
        // Received 26 October (day 0) .. 5 December.
        let day = next(41);
        let received = day14(day, 8 + next(9));
        let due_day = day + 3 + next(15);
        let handler = AGENCIES[next(4) as usize];
        let desk = if next(3) == 0 { DESK } else { handler };
        let (finished, ended) = match next(10) {
            0 => (None, Some(7)),
            1 => (None, Some(if next(2) == 0 { 3 } else { 8 })),
            2..=3 => (None, None),
            // Finished a few days either side of the due date.
            _ => (
                Some(day14(day + 1 + next(due_day - day + 5), 7 + next(10))),
                None,
            ),
        };
        out.push(Generated {
            code: format!("{}-2611{:02}-{:05}", desk, day % 30 + 1, i),
            desk,
            handler: (ended != Some(3)).then_some(handler),
            received,
            due: day14(due_day, 17),
            finished,
            ended,
        });
    }
    out
}

/// Day `n` after 26 October 2026 at `hour`, as `yyyyMMddHHmmss`.
fn day14(n: u64, hour: u64) -> String {
    let date = time::Date::from_calendar_date(2026, time::Month::October, 26).unwrap()
        + time::Duration::days(n as i64);
    format!(
        "{:04}{:02}{:02}{:02}0000",
        date.year(),
        date.month() as u8,
        date.day(),
        hour
    )
}

async fn replay(s: &DossierStore, g: &Generated) {
    let kind = "dossier.status-changed";
    s.record(said(
        g.desk,
        "recv",
        "dossier.submitted",
        json!({"MaHoSo": g.code, "NgayTiepNhan": g.received, "NgayHenTra": g.due, "TrangThaiHoSo": 2}),
    ))
    .await
    .unwrap();
    if g.ended == Some(3) {
        s.record(said(
            g.desk,
            "refuse",
            kind,
            json!({"MaHoSo": g.code, "TrangThai": 3}),
        ))
        .await
        .unwrap();
        return;
    }
    let h = g.handler.expect("handled");
    s.record(said(
        h,
        "proc",
        kind,
        json!({"MaHoSo": g.code, "TrangThai": 4, "NgayKetThucTheoQuyDinh": g.received}),
    ))
    .await
    .unwrap();
    if let Some(st) = g.ended {
        s.record(said(
            h,
            "end",
            kind,
            json!({"MaHoSo": g.code, "TrangThai": st}),
        ))
        .await
        .unwrap();
    }
    if let Some(f) = &g.finished {
        s.record(said(
            h,
            "done",
            kind,
            json!({"MaHoSo": g.code, "TrangThai": 9, "NgayKetThucXuLy": f}),
        ))
        .await
        .unwrap();
        s.record(said(
            h,
            "returned",
            kind,
            json!({"MaHoSo": g.code, "TrangThai": 10}),
        ))
        .await
        .unwrap();
    }
}

async fn on_time_counts_over_a_generated_month_match_an_independent_count(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    let month = month();
    for chunk in month.chunks(24) {
        futures::future::join_all(chunk.iter().map(|g| replay(s, g))).await;
    }
    let (from, to, now) = ("20261101000000", "20261130235959", "20261203120000");
    let c = clock(now);

    // The count, by the documented rules, straight from what was generated.
    let mut want: BTreeMap<String, StatsRow> = BTreeMap::new();
    for g in &month {
        let agency = g.handler.unwrap_or(g.desk).to_string();
        let row = want.entry(agency.clone()).or_insert_with(|| StatsRow {
            agency,
            ..Default::default()
        });
        let in_period = |d: &str| (from..=to).contains(&d);
        let received = in_period(&g.received);
        row.received += i64::from(received);
        if let Some(f) = g.finished.as_deref().filter(|f| in_period(f)) {
            row.finished += 1;
            if f <= g.due.as_str() {
                row.finished_on_time += 1;
            } else {
                row.finished_late += 1;
            }
        }
        if received && g.finished.is_none() && g.ended.is_none() && g.due.as_str() < now {
            row.open_overdue += 1;
        }
    }
    want.retain(|_, r| r.received + r.finished + r.open_overdue > 0);
    let want: Vec<StatsRow> = want.into_values().collect();
    // The month has every case: on time, late, open and overdue, ended without finishing, outside the period.
    let sum = |f: fn(&StatsRow) -> i64| want.iter().map(f).sum::<i64>();
    assert!(
        sum(|r| r.finished_on_time) > 10
            && sum(|r| r.finished_late) > 10
            && sum(|r| r.open_overdue) > 5,
        "{want:?}"
    );
    assert!(month.iter().any(|g| g.ended == Some(7)) && month.iter().any(|g| g.ended == Some(3)));
    assert!(sum(|r| r.received) < month.len() as i64);
    let got = s.on_time(from, to, None, &c).await.unwrap();
    assert_eq!(got, want);
    let one = s.on_time(from, to, Some(AGENCIES[1]), &c).await.unwrap();
    assert_eq!(
        one,
        [want
            .iter()
            .find(|r| r.agency == AGENCIES[1])
            .unwrap()
            .clone()]
    );

    // Search: every overdue dossier of one agency, newest received first, two pages.
    let mut overdue: Vec<&Generated> = month
        .iter()
        .filter(|g| {
            g.handler == Some(AGENCIES[2])
                && g.finished.is_none()
                && g.ended.is_none()
                && g.due.as_str() < now
        })
        .collect();
    overdue.sort_by(|a, b| (&b.received, &b.code).cmp(&(&a.received, &a.code)));
    let q = |page| Search {
        agency: Some(AGENCIES[2].into()),
        state: Some(State::Overdue),
        page,
        per_page: 4,
        ..Default::default()
    };
    let p1 = s.search(&q(1), &c).await.unwrap();
    let p2 = s.search(&q(2), &c).await.unwrap();
    assert_eq!(p1.total as usize, overdue.len());
    let codes: Vec<&str> = p1
        .dossiers
        .iter()
        .chain(&p2.dossiers)
        .map(|(d, _)| d.code.as_str())
        .collect();
    let want_codes: Vec<&str> = overdue.iter().take(8).map(|g| g.code.as_str()).collect();
    assert_eq!(codes, want_codes);
    assert!(p1.dossiers.iter().all(|(_, st)| *st == State::Overdue));
    // Received in November, status 10: the finished ones received then.
    let nov = Search {
        status: Some(10),
        received_from: Some(from.into()),
        received_to: Some(to.into()),
        per_page: 500,
        ..Default::default()
    };
    let want_nov = month
        .iter()
        .filter(|g| g.finished.is_some() && (from..=to).contains(&g.received.as_str()))
        .count();
    assert_eq!(s.search(&nov, &c).await.unwrap().total as usize, want_nov);
}

async fn a_citizen_sees_nothing_personal(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    let code = "000.00.12.H40-261127-00007";
    let personal = [
        "Nguyễn Văn An",
        "001088012345",
        "Số 12 đường Trần Hưng Đạo",
        "0912345678",
        "an.nguyen@example.vn",
        "Trần Thị Bình",
    ];
    s.record(said(
        STP,
        "p1",
        "dossier.submitted",
        json!({"MaHoSo": code, "TenTTHC": "Đăng ký khai sinh", "ChuHoSo": personal[0],
               "SoGiayToChuHoSo": personal[1], "DiaChiThuongTru": personal[2], "SoDienThoai": personal[3],
               "Email": personal[4], "TrichYeuHoSo": format!("Khai sinh cho con của {}", personal[0]),
               "NgayTiepNhan": "20261127090000", "NgayHenTra": "20261210170000", "TrangThaiHoSo": 2,
               "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": personal[1]}]}),
    ))
    .await
    .unwrap();
    s.record(said(
        STP,
        "p2",
        "dossier.status-changed",
        json!({"MaHoSo": code, "TrangThai": 4, "ThoiDiemXuLy": "20261127100000", "NguoiXuLy": personal[5],
               "NoiDungXuLy": format!("Gọi điện cho {} số {}", personal[0], personal[3])}),
    ))
    .await
    .unwrap();
    let v = get(s, code).await;
    let names = |c: &str| (c == STP).then(|| "Sở Tư pháp".to_string());
    let public = PublicDossier::of(&v, &clock("20261128120000"), &names);
    let text = serde_json::to_string(&public).unwrap();
    for p in personal {
        assert!(!text.contains(p), "{p} leaked: {text}");
    }
    assert_eq!(public.procedure.as_deref(), Some("Đăng ký khai sinh"));
    assert_eq!(public.appointment_date.as_deref(), Some("20261210170000"));
    assert_eq!(public.state, State::OnTime);
    assert_eq!(public.steps.len(), 2);
    assert_eq!(public.steps[1].agency, "Sở Tư pháp");
    assert_eq!(public.steps[1].date, "20261127100000");
}

/// A version 2 database (the layout before this one) is completed in place: its dossiers keep their facts
/// and get what can be known of the new ones.
async fn version_2_dossiers_are_upgraded(kind: Kind) {
    use sqlx::Executor;
    let fresh = fresh(kind).await;
    {
        let core = lienthong_bus::state::StateStore::connect(&fresh.url, "prov")
            .await
            .unwrap();
        let mut conn = core.pool().acquire().await.unwrap();
        let mut stmts = crate::tables::create_v2_for_tests();
        stmts.extend([
            "INSERT INTO lt_meta (name, value) VALUES ('domain_schema_version', '2')".to_string(),
            // Finished on 2 December at 09:00 Vietnam time (02:00 UTC), without a finish date.
            "INSERT INTO lt_dossier VALUES ('prov', 'H-2', '000.00.12.H40', 10, NULL, '20261120090000',
                '20261201170000', NULL, 't', 'm2', 1796176800000)"
                .into(),
            "INSERT INTO lt_dossier_event VALUES ('prov', 'H-2', '000.00.12.H40', 'm2', 't', 10, NULL, 1796176800000)"
                .into(),
            "INSERT INTO lt_dossier_event VALUES ('prov', 'H-2', '000.00.00.H40', 'm1', 's', 2, NULL, 1796090400000)"
                .into(),
        ]);
        for stmt in stmts {
            conn.execute(stmt.as_str()).await.unwrap();
        }
    }
    let state = store(&fresh.url, "prov").await;
    let s = DossierStore::start(state);
    let v = get(&s, "H-2").await;
    assert_eq!(v.received_key, "20261120090000");
    assert_eq!(v.finished.as_deref(), Some("20261202090000"));
    assert_eq!(v.finished_due.as_deref(), Some("20261201170000"));
    assert_eq!(v.state(&clock("20261203000000")), State::FinishedLate);
    assert_eq!(v.events.len(), 2);
    let order: Vec<(i64, &str, &str)> = v
        .events
        .iter()
        .map(|e| (e.seq, e.message_id.as_str(), e.step_at.as_str()))
        .collect();
    assert_eq!(
        order,
        [(1, "m1", "20261201090000"), (2, "m2", "20261202090000")]
    );
    assert_eq!(v.dossier.events, 2);
    // New messages number on from there.
    s.record(DossierFacts {
        code: "H-2".into(),
        sender: "000.00.12.H40".into(),
        kind: "t".into(),
        message_id: "m3".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(get(&s, "H-2").await.events[2].seq, 3);
}

/// Messages recorded at the same moment (so mostly in one batch of the write lane): a dossier heard of for the
/// first time and one that exists, each with a resubmission among them. Each message counts once, whichever
/// path (new dossier folded in memory, existing one read back) its batch takes.
async fn new_and_existing_dossiers_in_one_batch_count_each_message_once(kind: Kind) {
    let db = db(kind).await;
    let s = &db.dossiers;
    let (old, new) = ("H-OLD-1", "H-NEW-1");
    s.record(said(
        DESK,
        "o1",
        "dossier.submitted",
        json!({"MaHoSo": old, "TrangThaiHoSo": 2, "NgayHenTra": "20261210170000"}),
    ))
    .await
    .unwrap();
    let burst = [
        (old, DESK, "o1", json!({"MaHoSo": old, "TrangThaiHoSo": 2})),
        (
            old,
            STP,
            "o2",
            json!({"MaHoSo": old, "TrangThai": 4, "ThoiDiemXuLy": "20261121100000"}),
        ),
        (
            new,
            DESK,
            "n1",
            json!({"MaHoSo": new, "TrangThaiHoSo": 2, "NgayHenTra": "20261211170000"}),
        ),
        (
            new,
            DESK,
            "n1",
            json!({"MaHoSo": new, "TrangThaiHoSo": 2, "NgayHenTra": "20261211170000"}),
        ),
        (
            new,
            STP,
            "n2",
            json!({"MaHoSo": new, "TrangThai": 4, "ThoiDiemXuLy": "20261122100000"}),
        ),
    ];
    let records = burst.iter().map(|(_, sender, id, payload)| {
        let kind = if *id == "o2" || *id == "n2" {
            "dossier.status-changed"
        } else {
            "dossier.submitted"
        };
        s.record(said(sender, id, kind, payload.clone()))
    });
    for r in futures::future::join_all(records).await {
        r.unwrap();
    }
    let c = clock("20261123080000");
    for (code, ids, due) in [
        (old, ["o1", "o2"], "20261210170000"),
        (new, ["n1", "n2"], "20261211170000"),
    ] {
        let v = get(s, code).await;
        assert_eq!(v.dossier.events, 2, "{code}: each message counted once");
        let seen: Vec<(i64, String)> = v
            .events
            .iter()
            .map(|e| (e.seq, e.message_id.clone()))
            .collect();
        assert_eq!(
            seen,
            [(1, ids[0].to_string()), (2, ids[1].to_string())],
            "{code}"
        );
        assert_eq!(v.dossier.status, Some(4), "{code}");
        assert_eq!(v.dossier.handler.as_deref(), Some(STP), "{code}");
        assert_eq!(v.dossier.receiving_agency, DESK, "{code}");
        assert_eq!(v.due.as_deref(), Some(due), "{code}");
        assert_eq!(steps(&v, &c).len(), 2, "{code}");
    }
}

on_both_backends!(
    a_dossier_timeline_across_two_agencies,
    on_time_counts_over_a_generated_month_match_an_independent_count,
    a_citizen_sees_nothing_personal,
    version_2_dossiers_are_upgraded,
    new_and_existing_dossiers_in_one_batch_count_each_message_once,
);
