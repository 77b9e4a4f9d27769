//! The write lane: claims, idempotency records, delivered marks, evidence and plugin rows of a batch, in one
//! transaction and one commit — on a SQLite file, for a batch without evidence records, on the lane's own
//! connection (native.rs).

use super::native::Core;
use super::sql::{ROWS_PER_STATEMENT, list, padded, values};
use super::{Claim, Db, MAX_BATCH, Outcome, Reply, Standing, Write, all_failed, fail_all};
use crate::state::StateError;
use crate::state::group::{GroupItem, GroupWriter};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Write operations of one batch, sorted and de-duplicated by key.
#[derive(Default)]
struct Batch {
    core: Core,
    /// Evidence records in the order they came, and the key that signs them.
    evidence: Vec<(crate::evidence::Event, i64)>,
    evidence_setup: Option<Arc<crate::state::evidence::append::EvidenceSetup>>,
}

pub(super) async fn lane(db: Db, mut rx: mpsc::Receiver<Write>) {
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
                        .core
                        .ingress
                        .entry((sender, id))
                        .or_insert((digest, accepted, at));
                    replies.push(reply);
                }
                Write::Claim { ask, reply } => {
                    let key = (ask.sender, ask.id);
                    batch
                        .core
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
                    batch
                        .core
                        .delivered
                        .entry((adapter, sender, id))
                        .or_insert(at);
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
        let (result, plugin_results) = write_batch(&db, batch, &mut plugins).await;
        metrics::histogram!("lienthong_state_batch_seconds", "lane" => "write")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(standing) => {
                for r in replies {
                    let _ = r.send(Ok(()));
                }
                // Of several asks of one key in this batch, the first (whose digest the row holds) won it.
                let mut won = std::collections::HashSet::new();
                for (key, digest, reply) in claim_replies {
                    let _ = reply.send(Ok(match standing.get(&key) {
                        // A row without a digest was written before digests were kept: same content assumed.
                        Some((Some(d), _, _)) if *d != digest => Claim::Different,
                        Some((_, Some(accepted), _)) => Claim::Same(Some(accepted.clone())),
                        Some((_, None, true)) if won.insert(key.clone()) => Claim::Won,
                        Some((_, None, _)) | None => Claim::Same(None),
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

/// Writes a batch: the core's rows, then each plugin group in its own savepoint, then the evidence records, one
/// commit (when the core's rows or the commit fail, everything failed; a group whose savepoint was rolled back
/// failed alone). On a SQLite file, a batch without evidence records goes to the lane's own connection
/// (native.rs) as one job, with the same promises.
async fn write_batch(db: &Db, mut b: Batch, plugins: &mut [PluginGroup]) -> Outcome {
    // Evidence records are appended through sqlx (state/evidence/append.rs), so a batch holding any goes
    // through sqlx whole and they still commit with the rows they record (docs/evidence.md).
    let native = db.native.as_ref().filter(|_| b.evidence.is_empty());
    let Some(native) = native else {
        return write_all(db, &b, plugins).await;
    };
    let core = std::mem::take(&mut b.core);
    let groups: Vec<super::native::Group> = plugins
        .iter_mut()
        .map(|g| (g.writer.clone(), std::mem::take(&mut g.items)))
        .collect();
    let (n, ns) = (groups.len(), db.ns.clone());
    match native
        .run(move |conn| Ok(super::native::write_all(conn, &ns, &core, groups)))
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => all_failed(e, n),
    }
}

/// Writes the core's rows, then each plugin group in its own savepoint, and commits. Answers the core's result
/// and one result per plugin group (a group whose savepoint was rolled back failed alone; when the core's
/// rows or the commit fail, everything failed).
async fn write_all(db: &Db, b: &Batch, plugins: &mut [PluginGroup]) -> Outcome {
    let mut tx = match db.pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return all_failed(e.into(), plugins.len()),
    };
    let standing = match write_core(db, &b.core, &mut tx).await {
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
        && let Err(e) = crate::state::evidence::append::append(
            &mut tx,
            db.marks,
            &db.ns,
            &setup.signer,
            &b.evidence,
        )
        .await
    {
        return all_failed(e, plugins.len());
    }
    match tx.commit().await {
        Ok(()) => (Ok(standing), results),
        Err(e) => all_failed(e.into(), plugins.len()),
    }
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
    let backend = match db.marks {
        super::Marks::Numbered => crate::state::Backend::Postgres,
        super::Marks::Anonymous => crate::state::Backend::Sqlite,
    };
    let mut conn = crate::state::group::SqlxConn {
        conn: &mut savepoint,
        backend,
    };
    match writer.write(&mut conn, &db.ns, items).await {
        Ok(()) => Ok(savepoint.commit().await?),
        Err(e) => {
            savepoint.rollback().await?;
            Err(StateError::Batch(e.0))
        }
    }
}

/// The core's rows of one batch, in the batch's transaction.
async fn write_core(
    db: &Db,
    b: &Core,
    tx: &mut sqlx::Transaction<'static, Any>,
) -> Result<Standing, StateError> {
    let (marks, ns) = (db.marks, &*db.ns);
    // Claims first: a claim and the record of the same key in one batch must see the claim's row. The keys a
    // statement inserted (it returns them; nearly all, since a resubmission is rare) stand as claimed by this
    // batch with its digest and no answer yet; only keys whose row already existed are read back below.
    let mut standing = Standing::new();
    let mut unsure: Vec<&(String, String)> = Vec::new();
    let rows: Vec<_> = b.claims.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let padded = padded(chunk);
        let sql = format!(
            "INSERT INTO lt_ingress (ns, sender, client_id, digest, accepted, created_ms) VALUES {}
             ON CONFLICT (ns, sender, client_id) DO NOTHING RETURNING sender, client_id",
            values(marks, padded.len(), 6)
        );
        let mut q: Q = sqlx::query(&sql);
        for ((sender, id), (digest, at)) in &padded {
            q = q
                .bind(ns)
                .bind(sender)
                .bind(id)
                .bind(digest)
                .bind(None::<String>)
                .bind(*at);
        }
        // The padding repeats a key of the chunk, so it never inserts a row of its own. The rows returned are
        // those this statement inserted: claimed by this batch; the others existed, and are read back below.
        let mut inserted = std::collections::HashSet::new();
        for row in q.fetch_all(&mut **tx).await? {
            let sender: String = row.try_get("sender")?;
            let id: String = row.try_get("client_id")?;
            inserted.insert((sender, id));
        }
        for (key, (digest, _)) in chunk {
            if inserted.contains(*key) {
                standing.insert((*key).clone(), (Some(digest.clone()), None, true));
            } else {
                unsure.push(*key);
            }
        }
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
    let mut by_sender: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (sender, id) in unsure {
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
                let accepted = super::accepted_from(accepted.as_deref())?;
                standing.insert((sender.to_owned(), id), (digest, accepted, false));
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
