//! Many dossiers at once: search (`GET /v1/dossiers`) and on-time counts per agency
//! (`GET /v1/stats/on-time`). Both judge states in SQL with [`rules::state_sql`], the same rules as one
//! dossier's view, so a page of results and a count are exact rather than filtered after the fact.

use super::row::{COLUMNS, dossier_from_row};
use super::rules::{self, Clock, Dossier, State};
use super::store::DossierStore;
use serde::Serialize;
use sqlx::Row;

/// What to search for. Dates are `yyyyMMddHHmmss` bounds, inclusive, on when the dossier was received.
#[derive(Debug, Clone)]
pub struct Search {
    pub agency: Option<String>,
    pub status: Option<i64>,
    pub state: Option<State>,
    pub received_from: Option<String>,
    pub received_to: Option<String>,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            agency: None,
            status: None,
            state: None,
            received_from: None,
            received_to: None,
            page: 1,
            per_page: 50,
        }
    }
}

/// One page of results, newest received first, and how many match in all.
#[derive(Debug, Clone)]
pub struct Page {
    pub total: i64,
    pub dossiers: Vec<(Dossier, State)>,
}

/// The on-time counts of one agency over a period (docs/dossiers.md says what each counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    pub agency: String,
    pub received: i64,
    pub finished: i64,
    pub finished_on_time: i64,
    pub finished_late: i64,
    pub open_overdue: i64,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The conditions of a `WHERE` and their values. `$1` is the namespace and `$2`, `$3` the clock's two dates in
/// every query here (each query uses them all, as PostgreSQL wants every bound value used); `lead` more
/// values may come next, then the filters' own.
struct Filter {
    sql: String,
    binds: Vec<Bind>,
}

impl Filter {
    fn new(lead: Vec<Bind>) -> Filter {
        Filter {
            sql: String::new(),
            binds: lead,
        }
    }

    fn add(&mut self, condition: &str, value: Bind) {
        self.binds.push(value);
        let n = self.binds.len() + 3;
        self.sql.push_str(&format!(
            " AND {}",
            condition.replace('?', &format!("${n}"))
        ));
    }

    fn query<'q>(
        &'q self,
        sql: &'q str,
        ns: &'q str,
        clock: &'q Clock,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query(sql)
            .bind(ns)
            .bind(clock.now.as_str())
            .bind(clock.soon.as_str());
        for b in &self.binds {
            q = match b {
                Bind::Text(t) => q.bind(t.as_str()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

impl DossierStore {
    /// The dossiers that match `s`, one page of them, judged by `clock`.
    pub async fn search(&self, s: &Search, clock: &Clock) -> Result<Page, sqlx::Error> {
        let state_sql = rules::state_sql("$2", "$3");
        let mut f = Filter::new(Vec::new());
        if let Some(a) = &s.agency {
            f.add("agency = ?", Bind::Text(a.clone()));
        }
        if let Some(st) = s.status {
            f.add("status = ?", Bind::Int(st));
        }
        if let Some(st) = s.state {
            f.add(&format!("{state_sql} = ?"), Bind::Text(st.as_str().into()));
        }
        if let Some(from) = &s.received_from {
            f.add("received_key >= ?", Bind::Text(from.clone()));
        }
        if let Some(to) = &s.received_to {
            f.add("received_key <= ?", Bind::Text(to.clone()));
        }
        let st = self.state();
        let ns = st.namespace();
        let count_sql = format!(
            "SELECT COUNT(*) AS n, MIN({state_sql}) AS judged FROM lt_dossier WHERE ns = $1{}",
            f.sql
        );
        let total: i64 = f
            .query(&count_sql, ns, clock)
            .fetch_one(st.pool())
            .await?
            .try_get("n")?;
        let per_page = i64::from(s.per_page.max(1));
        let offset = i64::from(s.page.max(1) - 1) * per_page;
        let page_sql = format!(
            "SELECT {COLUMNS}, {state_sql} AS judged FROM lt_dossier WHERE ns = $1{}
             ORDER BY received_key DESC, code DESC LIMIT {per_page} OFFSET {offset}",
            f.sql
        );
        let rows = f.query(&page_sql, ns, clock).fetch_all(st.pool()).await?;
        let mut dossiers = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = dossier_from_row(r)?;
            let judged: String = r.try_get("judged")?;
            // The SQL and the Rust judgement are the same rules; should they ever disagree, say the Rust one.
            let state = State::parse(&judged).unwrap_or_else(|| d.state(clock));
            dossiers.push((d, state));
        }
        Ok(Page { total, dossiers })
    }

    /// On-time counts per agency over `[from, to]` (`yyyyMMddHHmmss`, inclusive), open dossiers judged by
    /// `clock`; only agencies with something to count, in code order.
    pub async fn on_time(
        &self,
        from: &str,
        to: &str,
        agency: Option<&str>,
        clock: &Clock,
    ) -> Result<Vec<StatsRow>, sqlx::Error> {
        let state_sql = rules::state_sql("$2", "$3");
        let mut f = Filter::new(vec![Bind::Text(from.into()), Bind::Text(to.into())]);
        if let Some(a) = agency {
            f.add("agency = ?", Bind::Text(a.into()));
        }
        let received = "received_key >= $4 AND received_key <= $5";
        let finished = "finished >= $4 AND finished <= $5";
        let sql = format!(
            "SELECT agency,
                SUM(CASE WHEN {received} THEN 1 ELSE 0 END) AS received,
                SUM(CASE WHEN {finished} THEN 1 ELSE 0 END) AS finished,
                SUM(CASE WHEN {finished} AND finished_due IS NOT NULL AND finished <= finished_due
                    THEN 1 ELSE 0 END) AS finished_on_time,
                SUM(CASE WHEN {finished} AND finished_due IS NOT NULL AND finished > finished_due
                    THEN 1 ELSE 0 END) AS finished_late,
                SUM(CASE WHEN {received} AND {state_sql} = 'overdue' THEN 1 ELSE 0 END) AS open_overdue
             FROM lt_dossier WHERE ns = $1{}
             GROUP BY agency",
            f.sql
        );
        let st = self.state();
        let rows = f
            .query(&sql, st.namespace(), clock)
            .fetch_all(st.pool())
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let row = StatsRow {
                agency: r.try_get("agency")?,
                received: r.try_get("received")?,
                finished: r.try_get("finished")?,
                finished_on_time: r.try_get("finished_on_time")?,
                finished_late: r.try_get("finished_late")?,
                open_overdue: r.try_get("open_overdue")?,
            };
            if row.received + row.finished + row.open_overdue > 0 {
                out.push(row);
            }
        }
        // In code order whatever the database's collation.
        out.sort_by(|a, b| a.agency.cmp(&b.agency));
        Ok(out)
    }
}
