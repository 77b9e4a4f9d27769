//! Dossier tracking in the state database: one row per dossier with its facts folded by [`super::rules`], and
//! one event per message about it (each counted once, however often it is resubmitted).
//!
//! Writes ride in the state store's group commit (the core's write lane takes everything waiting and writes
//! it in one transaction, a lone message being a batch of one), so tracking adds no commit of its own; each
//! caller is answered after its rows are committed, so a dossier is visible as soon as its message is
//! accepted. A dossier heard of for the first time is folded in memory from its messages and inserted as it
//! ends; if its code was taken meanwhile (another process, PostgreSQL) or it already existed, the insert does
//! nothing and the dossier takes the other path: read under its lock (PostgreSQL `FOR UPDATE`; SQLite holds
//! its one write lock from the first write), folded, written back — in code order, so two bus processes never
//! deadlock.
//!
//! A batch costs a handful of statements per 20 dossiers, not four per message: on path 2 of the bench (1 KB,
//! every message about one dossier) that took the bus from 3,200–3,400 to 4,300–4,400 messages/s (with no
//! tracking at all: 4,800–5,600, same run). New dossiers take two statements per chunk (insert, events)
//! instead of five (BENCHMARKS.md, "Issue 11 and 16, a third look").

use super::row::{COLUMNS, dossier_from_row};
use super::rules::{self, Dossier, DueChange};
use async_trait::async_trait;
use lienthong_bus::message::now_millis;
use lienthong_bus::state::{
    Backend, GroupConn, GroupError, GroupItem, GroupWriter, SqlValue, StateStore, sql, text,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one message says about a dossier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DossierFacts {
    pub code: String,
    pub sender: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message_id: String,
    pub status: Option<i64>,
    pub local_status: Option<String>,
    /// `MaTTHC`.
    pub procedure_code: Option<String>,
    /// `TenTTHC`.
    pub procedure: Option<String>,
    /// `NgayTiepNhan`.
    pub received: Option<String>,
    /// The appointment date, `NgayHenTra` (only that field: a step's deadline is not the dossier's).
    pub due: Option<String>,
    /// `NgayKetThucXuLy`, else `NgayTra`.
    pub finished: Option<String>,
    /// This step's own deadline, `NgayKetThucTheoQuyDinh`.
    pub step_deadline: Option<String>,
    /// When this step happened: `ThoiDiemXuLy`, else the date that goes with the status reported
    /// (`NgayNopHoSo` for 1, `NgayTiepNhan` for 2, `NgayTuChoi` for 3, `NgayKetThucXuLy` for 9, `NgayTra`
    /// for 10).
    pub step_at: Option<String>,
    pub note: Option<String>,
}

/// The tracking tables of one namespace. Rows are written in the state store's group commit (one commit with
/// the core's rows of the same batch; see `lienthong_bus::state::GroupWriter`).
#[derive(Clone)]
pub struct DossierStore {
    state: StateStore,
    writer: Arc<dyn GroupWriter>,
}

impl DossierStore {
    pub fn start(state: StateStore) -> Self {
        let writer = Arc::new(Writer {
            backend: state.dialect(),
        });
        Self { state, writer }
    }

    /// Records what an accepted message says about a dossier; answers once it is committed.
    pub async fn record(&self, facts: DossierFacts) -> Result<(), String> {
        self.state
            .group_write(self.writer.clone(), Box::new((facts, now_millis())))
            .await
            .map_err(|e| e.to_string())
    }

    pub(super) fn state(&self) -> &StateStore {
        &self.state
    }
}

/// Folds a batch's facts into the tracking tables.
struct Writer {
    backend: Backend,
}

#[async_trait]
impl GroupWriter for Writer {
    async fn write(
        &self,
        conn: &mut dyn GroupConn,
        ns: &str,
        items: Vec<GroupItem>,
    ) -> Result<(), GroupError> {
        // Per dossier, in arrival order; dossiers in code order.
        let mut dossiers: BTreeMap<String, Vec<(DossierFacts, i64)>> = BTreeMap::new();
        for item in items {
            if let Ok(fact) = item.downcast::<(DossierFacts, i64)>() {
                let (facts, at) = *fact;
                dossiers
                    .entry(facts.code.clone())
                    .or_default()
                    .push((facts, at));
            }
        }
        write(conn, self.backend, ns, &dossiers).await
    }
}

/// Dossiers per statement of a batch (every statement's bind count stays far below each backend's limit).
const CHUNK: usize = 20;

/// Placeholders as the backend binds them fastest: numbered for PostgreSQL, plain `?` for SQLite (bound in
/// order of appearance, without looking each `$n` up by name).
fn marks(backend: Backend) -> sql::Marks {
    match backend {
        Backend::Postgres => sql::Marks::Numbered,
        Backend::Sqlite => sql::Marks::Anonymous,
    }
}

/// The `lt_dossier` columns written back, in [`bind_dossier`]'s order.
const WRITTEN: [&str; 21] = [
    "ns",
    "code",
    "receiving_agency",
    "handler",
    "agency",
    "status",
    "local_status",
    "procedure_code",
    "procedure_name",
    "received",
    "received_key",
    "due",
    "finished",
    "finished_status",
    "finished_due",
    "events",
    "first_seen_ms",
    "sender",
    "last_type",
    "last_message_id",
    "updated_ms",
];

/// `d`'s values in [`WRITTEN`]'s order, appended to `p`.
fn bind_dossier(p: &mut Vec<SqlValue>, ns: &str, d: &Dossier) {
    p.extend([
        ns.into(),
        text(&d.code).into(),
        text(&d.receiving_agency).into(),
        d.handler.as_deref().map(text).into(),
        text(&d.agency).into(),
        d.status.into(),
        d.local_status.as_deref().map(text).into(),
        d.procedure_code.as_deref().map(text).into(),
        d.procedure.as_deref().map(text).into(),
        d.received.clone().into(),
        d.received_key.clone().into(),
        d.due.clone().into(),
        d.finished.clone().into(),
        d.finished_status.into(),
        d.finished_due.clone().into(),
        d.events.into(),
        d.first_seen_ms.into(),
        text(&d.sender).into(),
        text(&d.last_type).into(),
        text(&d.last_message_id).into(),
        d.updated_ms.into(),
    ]);
}

/// One event row: (code, sender, message id, the facts, when, the dossier's event count after it, what it did
/// to the appointment date). Codes, senders and ids as stored ([`text`]).
type EventRow<'a> = (
    String,
    String,
    String,
    &'a DossierFacts,
    i64,
    i64,
    DueChange,
);

/// One batch, [`CHUNK`] dossiers per statement. A dossier heard of for the first time (most of them: a dossier
/// is new with its first message) is folded in memory and inserted as it ends: two statements per chunk, the
/// insert and its events. Only dossiers that already exist are read (under their lock), their messages already
/// counted looked up, and written back: three more statements, for those alone.
async fn write(
    tx: &mut dyn GroupConn,
    backend: Backend,
    ns: &str,
    dossiers: &BTreeMap<String, Vec<(DossierFacts, i64)>>,
) -> Result<(), GroupError> {
    let all: Vec<(&String, &Vec<(DossierFacts, i64)>)> = dossiers.iter().collect();
    for chunk in all.chunks(CHUNK) {
        let (inserted, mut events) = insert_new(tx, backend, ns, chunk).await?;
        let existing: Vec<(&String, &Vec<(DossierFacts, i64)>)> = chunk
            .iter()
            .filter(|(code, _)| !inserted.contains(&text(code)))
            .copied()
            .collect();
        let changed = if existing.is_empty() {
            Vec::new()
        } else {
            fold_existing(tx, backend, ns, &existing, &mut events).await?
        };
        insert_events(tx, backend, ns, &events).await?;
        upsert(tx, backend, ns, &changed).await?;
    }
    Ok(())
}

/// Each message of `facts` not yet counted in `d` (by sender and id; `counted` holds those that are) folded
/// into `d`, and kept as an event.
fn fold<'a>(
    d: &mut Dossier,
    code: &str,
    facts: &'a [(DossierFacts, i64)],
    counted: &mut std::collections::HashSet<(String, String, String)>,
    events: &mut Vec<EventRow<'a>>,
) {
    for (f, at) in facts {
        let (sender, id) = (text(&f.sender), text(&f.message_id));
        if !counted.insert((code.to_owned(), sender.clone(), id.clone())) {
            continue;
        }
        let due = rules::apply(d, f, *at);
        events.push((code.to_owned(), sender, id, f, *at, d.events, due));
    }
}

/// The chunk's dossiers as new ones, each folded from its facts, inserted where the code is not taken yet.
/// Answers the codes inserted (as stored) and their events; the others exist and are folded by
/// [`fold_existing`].
async fn insert_new<'a>(
    tx: &mut dyn GroupConn,
    backend: Backend,
    ns: &str,
    chunk: &[(&String, &'a Vec<(DossierFacts, i64)>)],
) -> Result<(std::collections::HashSet<String>, Vec<EventRow<'a>>), GroupError> {
    let m = marks(backend);
    let mut built = Vec::with_capacity(chunk.len());
    let mut events_of: BTreeMap<String, Vec<EventRow<'a>>> = BTreeMap::new();
    for (code, facts) in chunk {
        let Some((first, at)) = facts.first() else {
            continue;
        };
        let mut d = Dossier::new(first, *at);
        let code = text(code);
        let mut counted = std::collections::HashSet::new();
        let mut events = Vec::new();
        fold(&mut d, &code, facts, &mut counted, &mut events);
        events_of.insert(code, events);
        built.push(d);
    }
    let mut inserted = std::collections::HashSet::new();
    if built.is_empty() {
        return Ok((inserted, Vec::new()));
    }
    // The lock of a code another process inserts meanwhile is waited for here, in code order (PostgreSQL);
    // SQLite takes its one write lock with this first write.
    let sql = format!(
        "INSERT INTO lt_dossier ({}) VALUES {} ON CONFLICT (ns, code) DO NOTHING RETURNING code",
        WRITTEN.join(", "),
        sql::values(m, built.len(), WRITTEN.len())
    );
    let mut p = Vec::with_capacity(built.len() * WRITTEN.len());
    for d in &built {
        bind_dossier(&mut p, ns, d);
    }
    for row in tx.fetch(&sql, p).await? {
        inserted.insert(row.text("code")?);
    }
    let events = events_of
        .into_iter()
        .filter(|(code, _)| inserted.contains(code))
        .flat_map(|(_, e)| e)
        .collect();
    Ok((inserted, events))
}

/// Dossiers that exist: read under their lock, the messages already counted looked up (a resubmission counts
/// once, its facts already applied; by the event's key, so a dossier with thousands of events costs a few
/// index probes), each new message folded in and kept in `events`. Answers the dossiers to write back.
async fn fold_existing<'a>(
    tx: &mut dyn GroupConn,
    backend: Backend,
    ns: &str,
    chunk: &[(&String, &'a Vec<(DossierFacts, i64)>)],
    events: &mut Vec<EventRow<'a>>,
) -> Result<Vec<Dossier>, GroupError> {
    let m = marks(backend);
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let codes: Vec<String> = chunk.iter().map(|(code, _)| text(code)).collect();
    let list = sql::list(m, 2, codes.len());
    let sql = format!(
        "SELECT {COLUMNS} FROM lt_dossier WHERE ns = {} AND code IN ({list}){lock}",
        m.at(1)
    );
    let mut p: Vec<SqlValue> = vec![ns.into()];
    p.extend(codes.iter().map(|c| SqlValue::from(c.as_str())));
    let mut rows: BTreeMap<String, Dossier> = BTreeMap::new();
    for row in tx.fetch(&sql, p).await? {
        let d = dossier_from_row(&row)?;
        rows.insert(d.code.clone(), d);
    }

    let wanted: std::collections::HashSet<(String, String, String)> = chunk
        .iter()
        .flat_map(|(code, facts)| facts.iter().map(move |(f, _)| (code, f)))
        .map(|(code, f)| (text(code), text(&f.sender), text(&f.message_id)))
        .collect();
    let senders: std::collections::BTreeSet<&str> =
        wanted.iter().map(|(_, s, _)| s.as_str()).collect();
    let ids: std::collections::BTreeSet<&str> = wanted.iter().map(|(_, _, i)| i.as_str()).collect();
    let sql = format!(
        "SELECT code, sender, message_id FROM lt_dossier_event
         WHERE ns = {} AND code IN ({list}) AND sender IN ({}) AND message_id IN ({})",
        m.at(1),
        sql::list(m, 2 + codes.len(), senders.len()),
        sql::list(m, 2 + codes.len() + senders.len(), ids.len()),
    );
    let mut p: Vec<SqlValue> = vec![ns.into()];
    p.extend(codes.iter().map(|c| SqlValue::from(c.as_str())));
    p.extend(senders.iter().map(|s| SqlValue::from(*s)));
    p.extend(ids.iter().map(|i| SqlValue::from(*i)));
    let mut counted: std::collections::HashSet<(String, String, String)> =
        std::collections::HashSet::new();
    for row in tx.fetch(&sql, p).await? {
        let key: (String, String, String) = (
            row.text("code")?,
            row.text("sender")?,
            row.text("message_id")?,
        );
        if wanted.contains(&key) {
            counted.insert(key);
        }
    }

    let mut changed = Vec::new();
    for (code, facts) in chunk {
        let code = text(code);
        let Some(mut d) = rows.remove(&code) else {
            continue;
        };
        fold(&mut d, &code, facts, &mut counted, events);
        changed.push(d);
    }
    Ok(changed)
}

/// The events of a chunk, [`CHUNK`] rows per statement.
async fn insert_events(
    tx: &mut dyn GroupConn,
    backend: Backend,
    ns: &str,
    events: &[EventRow<'_>],
) -> Result<(), GroupError> {
    for part in events.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO lt_dossier_event (ns, code, sender, message_id, kind, status, note, at_ms, seq, due,
                                           due_applied, step_deadline, step_at)
             VALUES {}",
            sql::values(marks(backend), part.len(), 13)
        );
        let mut p: Vec<SqlValue> = Vec::with_capacity(part.len() * 13);
        for (code, sender, id, f, at, seq, due) in part {
            p.extend([
                ns.into(),
                code.as_str().into(),
                sender.as_str().into(),
                id.as_str().into(),
                text(&f.kind).into(),
                f.status.into(),
                f.note.as_deref().map(text).into(),
                (*at).into(),
                (*seq).into(),
                f.due.clone().into(),
                match due {
                    DueChange::None => None,
                    DueChange::Applied => Some(1i64),
                    DueChange::Ignored => Some(0i64),
                }
                .into(),
                f.step_deadline.clone().into(),
                f.step_at
                    .clone()
                    .unwrap_or_else(|| rules::vn14_from_millis(*at))
                    .into(),
            ]);
        }
        tx.execute(&sql, p).await?;
    }
    Ok(())
}

/// Existing dossiers written back as folded.
async fn upsert(
    tx: &mut dyn GroupConn,
    backend: Backend,
    ns: &str,
    changed: &[Dossier],
) -> Result<(), GroupError> {
    if changed.is_empty() {
        return Ok(());
    }
    let set: Vec<String> = WRITTEN[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO lt_dossier ({}) VALUES {} ON CONFLICT (ns, code) DO UPDATE SET {}",
        WRITTEN.join(", "),
        sql::values(marks(backend), changed.len(), WRITTEN.len()),
        set.join(", ")
    );
    let mut p = Vec::with_capacity(changed.len() * WRITTEN.len());
    for d in changed {
        bind_dossier(&mut p, ns, d);
    }
    tx.execute(&sql, p).await?;
    Ok(())
}
