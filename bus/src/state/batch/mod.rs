//! Group commit for the per-message state operations.
//!
//! # Why this exists
//!
//! Every accepted message costs a few small state operations: an idempotency lookup and record at ingress,
//! perhaps a plugin's row, a "was it delivered?" check and a "delivered" mark per adapter. Issued one by one,
//! each is a round trip to the database (for SQLite through sqlx's worker thread) and each write is its own
//! commit; profiling showed that, not the broker or validation, was most of the bus's CPU under load.
//!
//! So those operations go through two lanes, one task each: **reads** (idempotency lookups, delivered
//! checks) and **writes** (idempotency claims and records, delivered marks). A lane takes everything
//! waiting (up to [`MAX_BATCH`]) and answers it with one multi-row statement per kind (writes: all in one
//! transaction, one commit), then replies to each caller. Nothing waits for a timer: under light load a
//! batch is one operation, so latency does not grow; under heavy load batches grow and the per-message
//! cost falls. Each caller still gets its answer only after its row is committed, so the guarantees of
//! the module above are unchanged.
//!
//! Metrics: `lienthong_state_batch_ops{lane}` (operations answered per batch) and
//! `lienthong_state_batch_seconds{lane}` (time per batch, commit included). A write lane whose batches take
//! long is a state database that is too slow for the load.
//!
//! Rows of one batch are sorted by key before writing, so two bus processes sharing PostgreSQL take row
//! locks in the same order and do not deadlock each other.

use super::group::{GroupItem, GroupWriter};
use super::{Accepted, StateError};
use sqlx::AnyPool;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

mod native;
mod read;
pub mod sql;
mod write;

pub(crate) use sql::Marks;

/// What a lane works on: the pool, its placeholder style, the namespace every row belongs to, and on a SQLite
/// file the lane's own connection for the core's rows (native.rs).
struct Db {
    pool: AnyPool,
    marks: Marks,
    ns: Arc<str>,
    native: Option<native::Native>,
}

/// Most operations one lane answers at once.
pub(super) const MAX_BATCH: usize = 512;
/// Operations that may wait for a lane before callers are slowed down.
const LANE_CAPACITY: usize = 8192;

type Reply<T> = oneshot::Sender<Result<T, StateError>>;
/// Questions about one sender's or adapter's ids, with where to send each answer.
type Asks<T> = Vec<(String, Reply<T>)>;

pub(super) enum Read {
    Ingress {
        sender: String,
        id: String,
        reply: Reply<Option<Accepted>>,
    },
    Delivered {
        adapter: String,
        sender: String,
        id: String,
        reply: Reply<bool>,
    },
}

/// A claim of (sender, client id) for a body with `digest`, before it is published.
pub(super) struct ClaimAsk {
    pub sender: String,
    pub id: String,
    pub digest: String,
    pub at: i64,
}

/// What a claim learns about its (sender, client id).
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This call claimed the key: publish.
    Won,
    /// The key was claimed before for the same content: by a submission still being published (`None`: wait
    /// for its answer, or publish again once it is too old to be alive; delivery de-duplicates), or by one
    /// already answered (`Some`: answer the same).
    Same(Option<Accepted>),
    /// The key was first claimed for different content: the submission must be refused.
    Different,
}

pub(super) enum Write {
    Ingress {
        sender: String,
        id: String,
        digest: String,
        accepted: String,
        at: i64,
        reply: Reply<()>,
    },
    Claim {
        ask: ClaimAsk,
        reply: Reply<Claim>,
    },
    Delivered {
        adapter: String,
        sender: String,
        id: String,
        at: i64,
        reply: Reply<()>,
    },
    /// An evidence record, appended to the chain in this batch's transaction (state/evidence.rs).
    Evidence {
        event: crate::evidence::Event,
        at: i64,
        setup: Arc<crate::state::evidence::append::EvidenceSetup>,
        reply: Reply<()>,
    },
    /// A plugin's item for its [`GroupWriter`] (see group.rs).
    Plugin {
        writer: Arc<dyn GroupWriter>,
        item: GroupItem,
        reply: Reply<()>,
    },
}

/// The two lanes' entrances. Cheap to clone; the lane tasks end when every clone is dropped.
#[derive(Clone)]
pub(super) struct Lanes {
    reads: mpsc::Sender<Read>,
    writes: mpsc::Sender<Write>,
    /// Whether the lanes have connections of their own (a SQLite file; native.rs).
    own_connections: bool,
}

/// What stands for each claimed key after a write batch: (digest, accepted answer).
/// Per claimed key: its digest, its answer if recorded, and whether this batch's claim inserted its row.
type Standing =
    std::collections::HashMap<(String, String), (Option<String>, Option<Accepted>, bool)>;

/// What a write batch came to: the core's rows and evidence records (with what stands for each claim), and
/// each plugin group.
type Outcome = (Result<Standing, StateError>, Vec<Result<(), StateError>>);

/// The outcome of a write batch that failed as a whole, for `groups` plugin groups.
fn all_failed(e: StateError, groups: usize) -> Outcome {
    let shown = e.to_string();
    let plugin = (0..groups)
        .map(|_| Err(StateError::Batch(shown.clone())))
        .collect();
    (Err(e), plugin)
}

/// An `lt_ingress.accepted` cell read back: the answer recorded, if any.
fn accepted_from(json: Option<&str>) -> Result<Option<Accepted>, StateError> {
    json.map(serde_json::from_str)
        .transpose()
        .map_err(|e| StateError::Corrupt {
            table: "lt_ingress",
            detail: e.to_string(),
        })
}

fn stopped() -> StateError {
    StateError::Batch("the state store's worker has stopped".into())
}

impl Lanes {
    /// Starts both lane tasks on the current tokio runtime. With `sqlite_file` (a SQLite database on disk,
    /// its schema already created), each lane also opens a connection of its own to it (native.rs).
    pub(super) fn start(
        pool: AnyPool,
        marks: Marks,
        ns: Arc<str>,
        sqlite_file: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let (reads, read_rx) = mpsc::channel(LANE_CAPACITY);
        let (writes, write_rx) = mpsc::channel(LANE_CAPACITY);
        let open = |thread: &str| {
            sqlite_file
                .map(|f| native::Native::open(f, thread))
                .transpose()
        };
        let read_db = Db {
            pool: pool.clone(),
            marks,
            ns: ns.clone(),
            native: open("lienthong-state-read")?,
        };
        let write_db = Db {
            pool,
            marks,
            ns,
            native: open("lienthong-state-write")?,
        };
        let own_connections = write_db.native.is_some();
        tokio::spawn(read::lane(read_db, read_rx));
        tokio::spawn(write::lane(write_db, write_rx));
        Ok(Self {
            reads,
            writes,
            own_connections,
        })
    }

    pub(super) fn own_connections(&self) -> bool {
        self.own_connections
    }

    pub(super) async fn claim(&self, ask: ClaimAsk) -> Result<Claim, StateError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(Write::Claim { ask, reply: tx })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(super) async fn plugin(
        &self,
        writer: Arc<dyn GroupWriter>,
        item: GroupItem,
    ) -> Result<(), StateError> {
        self.write(|reply| Write::Plugin {
            writer,
            item,
            reply,
        })
        .await
    }

    pub(super) async fn read<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Read,
    ) -> Result<T, StateError> {
        let (tx, rx) = oneshot::channel();
        self.reads.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(super) async fn write(
        &self,
        make: impl FnOnce(Reply<()>) -> Write,
    ) -> Result<(), StateError> {
        let (tx, rx) = oneshot::channel();
        self.writes.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Answers every waiting caller with the same failure (one batch's statement or commit failed for all).
fn fail_all<T>(replies: impl Iterator<Item = Reply<T>>, e: &StateError) {
    let shown = e.to_string();
    for r in replies {
        let _ = r.send(Err(StateError::Batch(shown.clone())));
    }
}
