//! The domain's tables in the bus's state database: document status per receiving agency, and dossier
//! tracking (one row per dossier folded by the tracking rules, every message about it). Every row carries the
//! bus namespace.
//!
//! Versions (`domain_schema_version`):
//! * 1 — the tables as the core held them before the domain had its own (core schema version 1), without
//!   namespaces; moved over by [`rename_copy`].
//! * 2 — with namespaces.
//! * 3 — dossier tracking that tells the appointment date from a step's deadline: who received and who
//!   handles a dossier, when it finished and against which appointment date, and per message its order, the
//!   appointment date it carried (in force or not) and its step's deadline and date. Version 2 rows are
//!   completed in place ([`V2_TO_V3`]); their appointment date stays what it was, even where an older build
//!   took a step's deadline for it.
//! * 4 — feedback and ratings per department ([`FEEDBACK`]; see `feedback.rs`): new tables only.

use lienthong_bus::state::{Backend, Moved, TableSet, rename_copy};

pub(crate) const TABLES: TableSet = TableSet {
    name: "domain_schema_version",
    version: 4,
    create,
    upgrade,
};

const DOCUMENT_STATUS: &str = "CREATE TABLE IF NOT EXISTS lt_document_status (
    ns TEXT NOT NULL,
    document_id TEXT NOT NULL,
    organ TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (ns, document_id, organ)
)";

/// Indexes for search (newest received first, per agency) and statistics (finished in a period).
/// Every status accepted per (document, organ): checked, or taken as reported when it was the first the bus saw
/// (docs/qcvn102.md, "Status codes").
const DOCUMENT_EVENT: &str = "CREATE TABLE IF NOT EXISTS lt_document_event (
    ns TEXT NOT NULL,
    document_id TEXT NOT NULL,
    organ TEXT NOT NULL,
    message_id TEXT NOT NULL,
    code TEXT NOT NULL,
    judged TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (ns, document_id, organ, message_id)
)";

/// Feedback (by the system that took it in and its `MaPhanAnh`) with the department it was sent to and the
/// answer, and one rating per (sender, dossier). Dates `yyyyMMddHHmmss`, Vietnam time.
const FEEDBACK: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS lt_feedback (
        ns TEXT NOT NULL,
        sender TEXT NOT NULL,
        code TEXT NOT NULL,
        department TEXT NOT NULL,
        received TEXT NOT NULL,
        answered TEXT,
        answer_seconds BIGINT,
        PRIMARY KEY (ns, sender, code)
    )",
    "CREATE INDEX IF NOT EXISTS lt_feedback_received ON lt_feedback (ns, received)",
    "CREATE TABLE IF NOT EXISTS lt_rating (
        ns TEXT NOT NULL,
        sender TEXT NOT NULL,
        dossier TEXT NOT NULL,
        department TEXT NOT NULL,
        score BIGINT NOT NULL,
        rated TEXT NOT NULL,
        PRIMARY KEY (ns, sender, dossier)
    )",
    "CREATE INDEX IF NOT EXISTS lt_rating_rated ON lt_rating (ns, rated)",
];

const DOSSIER_INDEXES: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS lt_dossier_received ON lt_dossier (ns, received_key)",
    "CREATE INDEX IF NOT EXISTS lt_dossier_agency ON lt_dossier (ns, agency, received_key)",
    "CREATE INDEX IF NOT EXISTS lt_dossier_finished ON lt_dossier (ns, finished)",
];

fn create(_: Backend) -> Vec<String> {
    let mut out = vec![
        // Last edXML status per (document, reporting organ), in `DocState`'s storage form.
        DOCUMENT_STATUS.into(),
        DOCUMENT_EVENT.into(),
        // One row per dossier: see `dossiers::rules::Dossier` for what each column holds.
        "CREATE TABLE IF NOT EXISTS lt_dossier (
            ns TEXT NOT NULL,
            code TEXT NOT NULL,
            receiving_agency TEXT NOT NULL,
            handler TEXT,
            agency TEXT NOT NULL,
            status BIGINT,
            local_status TEXT,
            procedure_code TEXT,
            procedure_name TEXT,
            received TEXT,
            received_key TEXT NOT NULL,
            due TEXT,
            finished TEXT,
            finished_status BIGINT,
            finished_due TEXT,
            events BIGINT NOT NULL,
            first_seen_ms BIGINT NOT NULL,
            sender TEXT NOT NULL,
            last_type TEXT NOT NULL,
            last_message_id TEXT NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, code)
        )"
        .into(),
        // Every message about a dossier, once per (sender, id), numbered in the order accepted.
        "CREATE TABLE IF NOT EXISTS lt_dossier_event (
            ns TEXT NOT NULL,
            code TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status BIGINT,
            note TEXT,
            at_ms BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            due TEXT,
            due_applied BIGINT,
            step_deadline TEXT,
            step_at TEXT,
            PRIMARY KEY (ns, code, sender, message_id)
        )"
        .into(),
    ];
    out.extend(DOSSIER_INDEXES.map(String::from));
    out.extend(FEEDBACK.map(String::from));
    out
}

/// The version 2 layout, which a version 1 database is first moved into.
fn create_v2() -> Vec<String> {
    vec![
        DOCUMENT_STATUS.into(),
        "CREATE TABLE IF NOT EXISTS lt_dossier (
            ns TEXT NOT NULL,
            code TEXT NOT NULL,
            sender TEXT NOT NULL,
            status BIGINT,
            local_status TEXT,
            received TEXT,
            due TEXT,
            finished TEXT,
            last_type TEXT NOT NULL,
            last_message_id TEXT NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, code)
        )"
        .into(),
        "CREATE TABLE IF NOT EXISTS lt_dossier_event (
            ns TEXT NOT NULL,
            code TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status BIGINT,
            note TEXT,
            at_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, code, sender, message_id)
        )"
        .into(),
    ]
}

/// Version 1 layouts (no namespace) and how their rows move over.
const V1: [Moved; 3] = [
    (
        "lt_document_status",
        &[],
        "ns, document_id, organ, status, updated_ms",
        "{ns}, document_id, organ, status, updated_ms",
    ),
    (
        "lt_dossier",
        &[],
        "ns, code, sender, status, local_status, received, due, finished, last_type, last_message_id, updated_ms",
        "{ns}, code, sender, status, local_status, received, due, finished, last_type, last_message_id, updated_ms",
    ),
    (
        "lt_dossier_event",
        &[],
        "ns, code, sender, message_id, kind, status, note, at_ms",
        "{ns}, code, sender, message_id, kind, status, note, at_ms",
    ),
];

/// Version 2 → 3: the new columns, then what can be known of them from the old rows: the last sender stands
/// for the receiving agency, the bus's time of a message for its step's date, and a dossier whose status is 9
/// or 10 finished when it was last updated (unless a finish date was sent) against the appointment date it
/// has. `{vn14(x)}` is an epoch-milliseconds column as `yyyyMMddHHmmss` in Vietnam time.
const V2_TO_V3: &[&str] = &[
    "ALTER TABLE lt_dossier ADD COLUMN receiving_agency TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE lt_dossier ADD COLUMN handler TEXT",
    "ALTER TABLE lt_dossier ADD COLUMN agency TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE lt_dossier ADD COLUMN procedure_code TEXT",
    "ALTER TABLE lt_dossier ADD COLUMN procedure_name TEXT",
    "ALTER TABLE lt_dossier ADD COLUMN received_key TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE lt_dossier ADD COLUMN finished_status BIGINT",
    "ALTER TABLE lt_dossier ADD COLUMN finished_due TEXT",
    "ALTER TABLE lt_dossier ADD COLUMN events BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE lt_dossier ADD COLUMN first_seen_ms BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE lt_dossier_event ADD COLUMN seq BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE lt_dossier_event ADD COLUMN due TEXT",
    "ALTER TABLE lt_dossier_event ADD COLUMN due_applied BIGINT",
    "ALTER TABLE lt_dossier_event ADD COLUMN step_deadline TEXT",
    "ALTER TABLE lt_dossier_event ADD COLUMN step_at TEXT",
    "UPDATE lt_dossier_event SET step_at = {vn14(at_ms)}, seq = (
        SELECT COUNT(*) FROM lt_dossier_event o
        WHERE o.ns = lt_dossier_event.ns AND o.code = lt_dossier_event.code
          AND (o.at_ms < lt_dossier_event.at_ms
               OR (o.at_ms = lt_dossier_event.at_ms AND o.sender < lt_dossier_event.sender)
               OR (o.at_ms = lt_dossier_event.at_ms AND o.sender = lt_dossier_event.sender
                   AND o.message_id <= lt_dossier_event.message_id)))",
    "UPDATE lt_dossier SET
        receiving_agency = sender,
        agency = sender,
        received_key = COALESCE(received, {vn14(updated_ms)}),
        first_seen_ms = updated_ms,
        events = (SELECT COUNT(*) FROM lt_dossier_event e WHERE e.ns = lt_dossier.ns AND e.code = lt_dossier.code),
        finished = CASE WHEN status IN (9, 10) THEN COALESCE(finished, {vn14(updated_ms)}) END,
        finished_status = CASE WHEN status IN (9, 10) THEN status END,
        finished_due = CASE WHEN status IN (9, 10) THEN due END",
];

/// `column` (epoch milliseconds) as `yyyyMMddHHmmss` in Vietnam time, in `backend`'s SQL.
fn vn14_sql(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => {
            format!("strftime('%Y%m%d%H%M%S', ({column} / 1000) + 25200, 'unixepoch')")
        }
        Backend::Postgres => format!(
            "to_char(to_timestamp(({column} / 1000) + 25200) AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS')"
        ),
    }
}

fn v2_to_v3(backend: Backend) -> Vec<String> {
    let mut out: Vec<String> = V2_TO_V3
        .iter()
        .map(|s| {
            s.replace("{vn14(at_ms)}", &vn14_sql(backend, "at_ms"))
                .replace("{vn14(updated_ms)}", &vn14_sql(backend, "updated_ms"))
        })
        .collect();
    out.extend(DOSSIER_INDEXES.map(String::from));
    out
}

fn upgrade(backend: Backend, from: i64, namespace: &str) -> Vec<String> {
    let mut out = Vec::new();
    if from < 2 {
        out.extend(rename_copy(&V1, create_v2(), namespace));
    }
    if from < 3 {
        out.extend(v2_to_v3(backend));
        out.push(DOCUMENT_EVENT.into());
    }
    out.extend(FEEDBACK.map(String::from));
    out
}

#[cfg(test)]
pub(crate) fn create_v2_for_tests() -> Vec<String> {
    create_v2()
}
