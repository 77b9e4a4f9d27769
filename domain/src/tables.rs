//! The domain's tables in the bus's state database: document status per receiving agency, and dossier
//! tracking (latest facts per dossier, every message about it). Every row carries the bus namespace.
//!
//! Version 2 is the first under this name; a database written before the domain had its own tables (core
//! schema version 1) held these tables without namespaces, and is moved over by [`upgrade`].

use lienthong_bus::state::{Backend, Moved, TableSet, rename_copy};

pub(crate) const TABLES: TableSet = TableSet {
    name: "domain_schema_version",
    version: 2,
    create,
    upgrade,
};

fn create(_: Backend) -> Vec<String> {
    vec![
        // Last edXML status per (document, reporting organ), in `DocState`'s storage form.
        "CREATE TABLE IF NOT EXISTS lt_document_status (
            ns TEXT NOT NULL,
            document_id TEXT NOT NULL,
            organ TEXT NOT NULL,
            status TEXT NOT NULL,
            updated_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, document_id, organ)
        )"
        .into(),
        // Every status accepted per (document, organ): checked, or taken as reported when it was the first
        // the bus saw (docs/qcvn102.md, "Status codes"). Added without a version change: these statements run
        // at every start, so a database of this version gets the table the first time a newer build opens it.
        "CREATE TABLE IF NOT EXISTS lt_document_event (
            ns TEXT NOT NULL,
            document_id TEXT NOT NULL,
            organ TEXT NOT NULL,
            message_id TEXT NOT NULL,
            code TEXT NOT NULL,
            judged TEXT NOT NULL,
            at_ms BIGINT NOT NULL,
            PRIMARY KEY (ns, document_id, organ, message_id)
        )"
        .into(),
        // Where each dossier is and whether it is on time: the latest facts, and every message about it.
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

fn upgrade(backend: Backend, _from: i64, namespace: &str) -> Vec<String> {
    rename_copy(&V1, create(backend), namespace)
}
