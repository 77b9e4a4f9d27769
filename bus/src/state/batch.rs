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
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What a lane works on: the pool, its placeholder style, and the namespace every row belongs to.
#[derive(Clone)]
struct Db {
    pool: AnyPool,
    marks: Marks,
    ns: Arc<str>,
}

/// Most operations one lane answers at once.
pub(super) const MAX_BATCH: usize = 512;
/// Most rows in one statement (keeps the bind-parameter count far below every backend's limit).
const ROWS_PER_STATEMENT: usize = 100;
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
    /// The key was claimed for the same content: by this call, by a submission still being published
    /// (`None`: publish again, delivery de-duplicates), or by one already answered (`Some`: answer the same).
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
        setup: Arc<super::evidence::EvidenceSetup>,
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
}

fn stopped() -> StateError {
    StateError::Batch("the state store's worker has stopped".into())
}

impl Lanes {
    /// Starts both lane tasks on the current tokio runtime.
    pub(super) fn start(pool: AnyPool, marks: Marks, ns: Arc<str>) -> Self {
        let (reads, read_rx) = mpsc::channel(LANE_CAPACITY);
        let (writes, write_rx) = mpsc::channel(LANE_CAPACITY);
        let db = Db { pool, marks, ns };
        tokio::spawn(read_lane(db.clone(), read_rx));
        tokio::spawn(write_lane(db, write_rx));
        Self { reads, writes }
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

/// Statement sizes used: a chunk of rows is padded up to the next of these by repeating its last row (a
/// no-op for `IN (…)` and `ON CONFLICT DO NOTHING`), so only a handful of distinct SQL texts exist and
/// each stays prepared in the connection's statement cache instead of being parsed again per batch.
const SIZES: [usize; 5] = [1, 4, 16, 48, ROWS_PER_STATEMENT];

/// `chunk` padded to the next of [`SIZES`] by repeating its last element.
fn padded<T: Copy>(chunk: &[T]) -> Vec<T> {
    let want = SIZES
        .iter()
        .copied()
        .find(|&n| n >= chunk.len())
        .unwrap_or(chunk.len());
    let mut v = chunk.to_vec();
    if let Some(&last) = chunk.last() {
        v.resize(want, last);
    }
    v
}

/// How bind parameters are written. PostgreSQL needs `$1, $2, …`; SQLite also takes plain `?` (bound in
/// order of appearance), which it binds without looking each name up in a list — with a few hundred
/// parameters per statement those lookups were a visible share of the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Marks {
    Numbered,
    Anonymous,
}

impl Marks {
    /// The placeholder of parameter `n` (1-based).
    pub(super) fn at(self, n: usize) -> String {
        match self {
            Marks::Numbered => format!("${n}"),
            Marks::Anonymous => "?".into(),
        }
    }
}

/// `($1, $2, $3), ($4, $5, $6), …` for `rows` rows of `cols` columns.
pub(super) fn values(marks: Marks, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&marks.at(r * cols + c + 1));
        }
        s.push(')');
    }
    s
}

/// `$from, $from+1, …` (`n` placeholders).
fn list(marks: Marks, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| marks.at(i))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- reads ------------------------------------------------------------------------------------------

async fn read_lane(db: Db, mut rx: mpsc::Receiver<Read>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut ops, MAX_BATCH).await > 0 {
        metrics::histogram!("lienthong_state_batch_ops", "lane" => "read").record(ops.len() as f64);
        let started = std::time::Instant::now();
        let mut ingress: BTreeMap<String, Asks<Option<Accepted>>> = BTreeMap::new();
        let mut delivered: BTreeMap<(String, String), Asks<bool>> = BTreeMap::new();
        for op in ops.drain(..) {
            match op {
                Read::Ingress { sender, id, reply } => {
                    ingress.entry(sender).or_default().push((id, reply))
                }
                Read::Delivered {
                    adapter,
                    sender,
                    id,
                    reply,
                } => delivered
                    .entry((adapter, sender))
                    .or_default()
                    .push((id, reply)),
            }
        }
        for (sender, asks) in ingress {
            answer_ingress(&db, &sender, asks).await;
        }
        for ((adapter, sender), asks) in delivered {
            answer_delivered(&db, &adapter, &sender, asks).await;
        }
        metrics::histogram!("lienthong_state_batch_seconds", "lane" => "read")
            .record(started.elapsed().as_secs_f64());
    }
}

/// Runs `SELECT … WHERE ns = {k1} AND <key2> = {k2} … AND <col> IN (…)` over `ids` in chunks; returns each
/// id found, with the text of `value_col` when one is asked for. `sql_head` ends with `<col>` and holds `{k1}`,
/// `{k2}`, … where the placeholders of `keys` go.
async fn select_in(
    db: &Db,
    sql_head: &str,
    keys: &[&str],
    ids: &[&str],
    value_col: Option<&str>,
) -> Result<HashMap<String, Option<String>>, StateError> {
    let mut found = HashMap::new();
    let mut head = sql_head.to_owned();
    for n in 1..=keys.len() {
        head = head.replace(&format!("{{k{n}}}"), &db.marks.at(n));
    }
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let chunk = padded(chunk);
        let sql = format!(
            "{head} IN ({})",
            list(db.marks, keys.len() + 1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for key in keys {
            q = q.bind(*key);
        }
        for id in &chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&db.pool).await? {
            let id: String = row.try_get(0)?;
            let value: Option<String> = match value_col {
                Some(col) => Some(row.try_get(col)?),
                None => None,
            };
            found.insert(id, value);
        }
    }
    Ok(found)
}

async fn answer_ingress(db: &Db, sender: &str, asks: Asks<Option<Accepted>>) {
    let ids: Vec<&str> = asks.iter().map(|(id, _)| id.as_str()).collect();
    let found = select_in(
        db,
        "SELECT client_id, accepted FROM lt_ingress
         WHERE ns = {k1} AND sender = {k2} AND accepted IS NOT NULL AND client_id",
        &[&db.ns, sender],
        &ids,
        Some("accepted"),
    )
    .await;
    match found {
        Ok(found) => {
            for (id, reply) in asks {
                let answer = match found.get(&id) {
                    None => Ok(None),
                    Some(json) => serde_json::from_str(json.as_deref().unwrap_or_default())
                        .map(Some)
                        .map_err(|e| StateError::Corrupt {
                            table: "lt_ingress",
                            detail: e.to_string(),
                        }),
                };
                let _ = reply.send(answer);
            }
        }
        Err(e) => fail_all(asks.into_iter().map(|(_, r)| r), &e),
    }
}

async fn answer_delivered(db: &Db, adapter: &str, sender: &str, asks: Asks<bool>) {
    let ids: Vec<&str> = asks.iter().map(|(id, _)| id.as_str()).collect();
    let found = select_in(
        db,
        "SELECT message_id FROM lt_delivered
         WHERE ns = {k1} AND adapter = {k2} AND sender = {k3} AND message_id",
        &[&db.ns, adapter, sender],
        &ids,
        None,
    )
    .await;
    match found {
        Ok(found) => {
            for (id, reply) in asks {
                let _ = reply.send(Ok(found.contains_key(&id)));
            }
        }
        Err(e) => fail_all(asks.into_iter().map(|(_, r)| r), &e),
    }
}

fn fail_all<T>(replies: impl Iterator<Item = Reply<T>>, e: &StateError) {
    let shown = e.to_string();
    for r in replies {
        let _ = r.send(Err(StateError::Batch(shown.clone())));
    }
}

// ---- writes -----------------------------------------------------------------------------------------

/// Write operations of one batch, sorted and de-duplicated by key.
#[derive(Default)]
struct Batch {
    /// The first record of a key wins, as with ON CONFLICT DO NOTHING.
    ingress: BTreeMap<(String, String), (String, String, i64)>,
    /// Claims: the first digest of a key wins; each asker is answered from the row that stands.
    claims: BTreeMap<(String, String), (String, i64)>,
    delivered: BTreeMap<(String, String, String), i64>,
    /// Evidence records in the order they came, and the key that signs them.
    evidence: Vec<(crate::evidence::Event, i64)>,
    evidence_setup: Option<Arc<super::evidence::EvidenceSetup>>,
}

async fn write_lane(db: Db, mut rx: mpsc::Receiver<Write>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut ops, MAX_BATCH).await > 0 {
        metrics::histogram!("lienthong_state_batch_ops", "lane" => "write")
            .record(ops.len() as f64);
        let started = std::time::Instant::now();
        let mut replies = Vec::with_capacity(ops.len());
        let mut claim_replies: Vec<((String, String), String, Reply<Claim>)> = Vec::new();
        let mut batch = Batch::default();
        let mut plugins: Vec<PluginGroup> = Vec::new();
        for op in ops.drain(..) {
            match op {
                Write::Ingress {
                    sender,
                    id,
                    digest,
                    accepted,
                    at,
                    reply,
                } => {
                    batch
                        .ingress
                        .entry((sender, id))
                        .or_insert((digest, accepted, at));
                    replies.push(reply);
                }
                Write::Claim { ask, reply } => {
                    let key = (ask.sender, ask.id);
                    batch
                        .claims
                        .entry(key.clone())
                        .or_insert((ask.digest.clone(), ask.at));
                    claim_replies.push((key, ask.digest, reply));
                }
                Write::Delivered {
                    adapter,
                    sender,
                    id,
                    at,
                    reply,
                } => {
                    batch.delivered.entry((adapter, sender, id)).or_insert(at);
                    replies.push(reply);
                }
                Write::Evidence {
                    event,
                    at,
                    setup,
                    reply,
                } => {
                    batch.evidence.push((event, at));
                    batch.evidence_setup = Some(setup);
                    replies.push(reply);
                }
                Write::Plugin {
                    writer,
                    item,
                    reply,
                } => match plugins.iter_mut().find(|g| Arc::ptr_eq(&g.writer, &writer)) {
                    Some(g) => {
                        g.items.push(item);
                        g.replies.push(reply);
                    }
                    None => plugins.push(PluginGroup {
                        writer,
                        items: vec![item],
                        replies: vec![reply],
                    }),
                },
            }
        }
        let (result, plugin_results) = write_batch(&db, &batch, &mut plugins).await;
        metrics::histogram!("lienthong_state_batch_seconds", "lane" => "write")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(standing) => {
                for r in replies {
                    let _ = r.send(Ok(()));
                }
                for (key, digest, reply) in claim_replies {
                    let _ = reply.send(Ok(match standing.get(&key) {
                        // A row without a digest was written before digests were kept: same content assumed.
                        Some((Some(d), _)) if *d != digest => Claim::Different,
                        Some((_, accepted)) => Claim::Same(accepted.clone()),
                        None => Claim::Same(None),
                    }));
                }
            }
            Err(e) => {
                fail_all(replies.into_iter(), &e);
                fail_all(claim_replies.into_iter().map(|(_, _, r)| r), &e);
            }
        }
        for (group, result) in plugins.into_iter().zip(plugin_results) {
            match result {
                Ok(()) => {
                    for r in group.replies {
                        let _ = r.send(Ok(()));
                    }
                }
                Err(e) => fail_all(group.replies.into_iter(), &e),
            }
        }
    }
}

/// One plugin writer's items of a batch, and who waits for them.
struct PluginGroup {
    writer: Arc<dyn GroupWriter>,
    items: Vec<GroupItem>,
    replies: Vec<Reply<()>>,
}

type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

/// What stands for each claimed key after the batch: (digest, accepted answer).
type Standing = HashMap<(String, String), (Option<String>, Option<Accepted>)>;

/// Writes the core's rows, then each plugin group in its own savepoint, and commits. Answers the core's result
/// and one result per plugin group (a group whose savepoint was rolled back failed alone; when the core's
/// rows or the commit fail, everything failed).
async fn write_batch(
    db: &Db,
    b: &Batch,
    plugins: &mut [PluginGroup],
) -> (Result<Standing, StateError>, Vec<Result<(), StateError>>) {
    let mut tx = match db.pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return all_failed(e.into(), plugins.len()),
    };
    let standing = match write_core(db, b, &mut tx).await {
        Ok(s) => s,
        Err(e) => return all_failed(e, plugins.len()),
    };
    let mut results = Vec::with_capacity(plugins.len());
    for group in plugins.iter_mut() {
        let items = std::mem::take(&mut group.items);
        results.push(write_plugin(db, &mut tx, group.writer.as_ref(), items).await);
    }
    // Last, so the chain's tip is locked only for these few statements (see state/evidence.rs).
    if let Some(setup) = &b.evidence_setup
        && !b.evidence.is_empty()
        && let Err(e) =
            super::evidence::append(&mut tx, db.marks, &db.ns, &setup.signer, &b.evidence).await
    {
        return all_failed(e, plugins.len());
    }
    match tx.commit().await {
        Ok(()) => (Ok(standing), results),
        Err(e) => all_failed(e.into(), plugins.len()),
    }
}

fn all_failed(
    e: StateError,
    groups: usize,
) -> (Result<Standing, StateError>, Vec<Result<(), StateError>>) {
    let shown = e.to_string();
    let plugin = (0..groups)
        .map(|_| Err(StateError::Batch(shown.clone())))
        .collect();
    (Err(e), plugin)
}

/// One plugin group inside a savepoint of the batch's transaction.
async fn write_plugin(
    db: &Db,
    tx: &mut sqlx::Transaction<'static, Any>,
    writer: &dyn GroupWriter,
    items: Vec<GroupItem>,
) -> Result<(), StateError> {
    use sqlx::Connection;
    let mut savepoint = (**tx).begin().await?;
    match writer.write(&mut savepoint, &db.ns, items).await {
        Ok(()) => Ok(savepoint.commit().await?),
        Err(e) => {
            savepoint.rollback().await?;
            Err(e.into())
        }
    }
}

/// The core's rows of one batch, in the batch's transaction.
async fn write_core(
    db: &Db,
    b: &Batch,
    tx: &mut sqlx::Transaction<'static, Any>,
) -> Result<Standing, StateError> {
    let (marks, ns) = (db.marks, &*db.ns);
    // Claims first: a claim and the record of the same key in one batch must see the claim's row.
    let rows: Vec<_> = b.claims.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let chunk = padded(chunk);
        let sql = format!(
            "INSERT INTO lt_ingress (ns, sender, client_id, digest, accepted, created_ms) VALUES {}
             ON CONFLICT (ns, sender, client_id) DO NOTHING",
            values(marks, chunk.len(), 6)
        );
        let mut q: Q = sqlx::query(&sql);
        for ((sender, id), (digest, at)) in &chunk {
            q = q
                .bind(ns)
                .bind(sender)
                .bind(id)
                .bind(digest)
                .bind(None::<String>)
                .bind(*at);
        }
        q.execute(&mut **tx).await?;
    }
    // Not padded: PostgreSQL refuses an upsert that would update one row twice in a statement.
    let rows: Vec<_> = b.ingress.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO lt_ingress (ns, sender, client_id, digest, accepted, created_ms) VALUES {}
             ON CONFLICT (ns, sender, client_id) DO UPDATE
             SET accepted = COALESCE(lt_ingress.accepted, excluded.accepted)",
            values(marks, chunk.len(), 6)
        );
        let mut q: Q = sqlx::query(&sql);
        for ((sender, id), (digest, accepted, at)) in chunk {
            q = q
                .bind(ns)
                .bind(sender)
                .bind(id)
                .bind(digest)
                .bind(accepted)
                .bind(*at);
        }
        q.execute(&mut **tx).await?;
    }
    let mut standing = Standing::new();
    let mut by_sender: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (sender, id) in b.claims.keys() {
        by_sender.entry(sender).or_default().push(id);
    }
    for (sender, ids) in by_sender {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let chunk = padded(chunk);
            let sql = format!(
                "SELECT client_id, digest, accepted FROM lt_ingress
                 WHERE ns = {} AND sender = {} AND client_id IN ({})",
                marks.at(1),
                marks.at(2),
                list(marks, 3, chunk.len())
            );
            let mut q: Q = sqlx::query(&sql).bind(ns).bind(sender);
            for id in &chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let id: String = row.try_get("client_id")?;
                let digest: Option<String> = row.try_get("digest")?;
                let accepted: Option<String> = row.try_get("accepted")?;
                let accepted = accepted
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|e| StateError::Corrupt {
                        table: "lt_ingress",
                        detail: e.to_string(),
                    })?;
                standing.insert((sender.to_owned(), id), (digest, accepted));
            }
        }
    }
    let rows: Vec<_> = b.delivered.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let chunk = padded(chunk);
        let sql = format!(
            "INSERT INTO lt_delivered (ns, adapter, sender, message_id, delivered_ms) VALUES {}
             ON CONFLICT (ns, adapter, sender, message_id) DO NOTHING",
            values(marks, chunk.len(), 5)
        );
        let mut q: Q = sqlx::query(&sql);
        for ((adapter, sender, id), at) in &chunk {
            q = q.bind(ns).bind(adapter).bind(sender).bind(id).bind(*at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(standing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(values(Marks::Numbered, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list(Marks::Numbered, 2, 3), "$2, $3, $4");
        assert_eq!(values(Marks::Anonymous, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(list(Marks::Anonymous, 2, 2), "?, ?");
    }

    #[test]
    fn chunks_are_padded_to_few_sizes_with_the_last_row() {
        assert_eq!(padded(&[7]), vec![7]);
        assert_eq!(padded(&[1, 2]), vec![1, 2, 2, 2]);
        assert_eq!(padded(&[0u8; 17]).len(), 48);
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
    }
}
