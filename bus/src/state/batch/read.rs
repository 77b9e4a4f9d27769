//! The read lane: idempotency lookups and delivered checks, one `SELECT … IN (…)` per sender and kind (on a
//! SQLite file, one job on the lane's own connection per sender and kind instead: native.rs).

use super::sql::{ROWS_PER_STATEMENT, list, padded};
use super::{Asks, Db, MAX_BATCH, Read, fail_all};
use crate::state::{Accepted, StateError};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio::sync::mpsc;

pub(super) async fn lane(db: Db, mut rx: mpsc::Receiver<Read>) {
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
    let found = match &db.native {
        Some(native) => {
            let (ns, sender) = (db.ns.clone(), sender.to_owned());
            let ids: Vec<String> = asks.iter().map(|(id, _)| id.clone()).collect();
            native
                .run(move |conn| super::native::answers(conn, &ns, &sender, &ids))
                .await
                .map(|found| {
                    found
                        .into_iter()
                        .map(|(id, json)| (id, Some(json)))
                        .collect()
                })
        }
        None => {
            let ids: Vec<&str> = asks.iter().map(|(id, _)| id.as_str()).collect();
            select_in(
                db,
                "SELECT client_id, accepted FROM lt_ingress
                 WHERE ns = {k1} AND sender = {k2} AND accepted IS NOT NULL AND client_id",
                &[&db.ns, sender],
                &ids,
                Some("accepted"),
            )
            .await
        }
    };
    match found {
        Ok(found) => {
            for (id, reply) in asks {
                let answer =
                    super::accepted_from(found.get(&id).map(|j| j.as_deref().unwrap_or_default()));
                let _ = reply.send(answer);
            }
        }
        Err(e) => fail_all(asks.into_iter().map(|(_, r)| r), &e),
    }
}

async fn answer_delivered(db: &Db, adapter: &str, sender: &str, asks: Asks<bool>) {
    let found: Result<HashSet<String>, StateError> = match &db.native {
        Some(native) => {
            let (ns, adapter, sender) = (db.ns.clone(), adapter.to_owned(), sender.to_owned());
            let ids: Vec<String> = asks.iter().map(|(id, _)| id.clone()).collect();
            native
                .run(move |conn| super::native::delivered(conn, &ns, &adapter, &sender, &ids))
                .await
        }
        None => {
            let ids: Vec<&str> = asks.iter().map(|(id, _)| id.as_str()).collect();
            select_in(
                db,
                "SELECT message_id FROM lt_delivered
                 WHERE ns = {k1} AND adapter = {k2} AND sender = {k3} AND message_id",
                &[&db.ns, adapter, sender],
                &ids,
                None,
            )
            .await
            .map(|found| found.into_keys().collect())
        }
    };
    match found {
        Ok(found) => {
            for (id, reply) in asks {
                let _ = reply.send(Ok(found.contains(&id)));
            }
        }
        Err(e) => fail_all(asks.into_iter().map(|(_, r)| r), &e),
    }
}
