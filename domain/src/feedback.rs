//! Citizens' feedback and ratings per department: how fast a department answers feedback and petitions
//! (`feedback.submitted` → `feedback.answered`) and how satisfied applicants are with the dossiers it handled
//! (`rating.submitted`), counted beside its on-time rate (`GET /v1/stats/on-time`).
//!
//! Attribution, in the same spirit as dossiers (docs/dossiers.md): a feedback belongs to the department it was
//! sent to (its first receiver); its answer counts only when that department sends it, to the system that
//! sent the feedback, under the same `MaPhanAnh`. The answer time is `NgayTraLoi` − `NgayTiepNhan` (when the
//! department received it; `NgayGui` when absent). A rating belongs to the department it was sent to; an
//! applicant who rates one dossier again replaces the score (one rating per sender and dossier). A feedback
//! or rating is counted in a period by its own date (`NgayTiepNhan`/`NgayGui`, `NgayDanhGia`).

use async_trait::async_trait;
use lienthong_bus::config::ConfigInForce;
use lienthong_bus::message::Meta;
use lienthong_bus::plugin::Observer;
use lienthong_bus::state::{
    GroupConn, GroupError, GroupItem, GroupWriter, SqlValue, StateStore, text,
};
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dossiers::rules;

/// What one accepted message says about feedback or ratings.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    Submitted {
        sender: String,
        code: String,
        department: String,
        received: String,
    },
    Answered {
        department: String,
        to: String,
        code: String,
        answered: String,
    },
    Rated {
        sender: String,
        dossier: String,
        department: String,
        score: i64,
        at: String,
    },
}

/// Picks the fact out of an accepted message (schemas already checked the fields; dates that are not real
/// `yyyyMMddHHmmss` make the message count for nothing). `agency` turns a receiver as the sender wrote it
/// (any of an agency's codes: QCVN 102, QĐ 20, tax code) into the agency's configured `code`, so a department
/// is counted once whichever of its codes it was addressed by (the sender is already its `code`).
fn fact(meta: &Meta, payload: &serde_json::Value, agency: &dyn Fn(&str) -> String) -> Option<Fact> {
    let s = |k: &str| payload.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let date = |k: &str| s(k).filter(|d| rules::is_date14(d));
    let first_to = agency(meta.to.first()?);
    match meta.kind.as_str() {
        "feedback.submitted" => Some(Fact::Submitted {
            sender: meta.from.clone(),
            code: s("MaPhanAnh")?,
            department: first_to,
            received: date("NgayTiepNhan").or_else(|| date("NgayGui"))?,
        }),
        "feedback.answered" => Some(Fact::Answered {
            department: meta.from.clone(),
            to: first_to,
            code: s("MaPhanAnh")?,
            answered: date("NgayTraLoi")?,
        }),
        "rating.submitted" => Some(Fact::Rated {
            sender: meta.from.clone(),
            dossier: s("MaHoSo")?,
            department: first_to,
            score: payload
                .get("MucDoHaiLong")?
                .as_i64()
                .filter(|n| (1..=5).contains(n))?,
            at: date("NgayDanhGia")?,
        }),
        _ => None,
    }
}

/// The observer of feedback and rating messages; rows ride in the state store's group commit.
pub struct FeedbackTracker {
    state: StateStore,
    config: ConfigInForce,
    writer: Arc<dyn GroupWriter>,
}

impl FeedbackTracker {
    pub fn new(state: StateStore, config: ConfigInForce) -> Self {
        Self {
            state,
            config,
            writer: Arc::new(Writer),
        }
    }
}

#[async_trait]
impl Observer for FeedbackTracker {
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "feedback.submitted" | "feedback.answered" | "rating.submitted"
        )
    }

    async fn accepted(&self, meta: &Meta, payload: &serde_json::Value) {
        let config = self.config.get();
        let Some(f) = fact(meta, payload, &|c| config.canonical_code(c).to_owned()) else {
            return;
        };
        if let Err(e) = self
            .state
            .group_write(self.writer.clone(), Box::new(f))
            .await
        {
            tracing::warn!(id = %meta.id, error = %e, "Could not record feedback or rating");
        }
    }
}

struct Writer;

#[async_trait]
impl GroupWriter for Writer {
    async fn write(
        &self,
        conn: &mut dyn GroupConn,
        ns: &str,
        items: Vec<GroupItem>,
    ) -> Result<(), GroupError> {
        for item in items {
            let Ok(f) = item.downcast::<Fact>() else {
                continue;
            };
            match *f {
                Fact::Submitted {
                    sender,
                    code,
                    department,
                    received,
                } => {
                    conn.execute(
                        "INSERT INTO lt_feedback (ns, sender, code, department, received)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ns, sender, code) DO NOTHING",
                        vec![
                            SqlValue::from(ns),
                            SqlValue::from(text(&sender)),
                            SqlValue::from(text(&code)),
                            SqlValue::from(text(&department)),
                            SqlValue::from(received),
                        ],
                    )
                    .await?;
                }
                Fact::Answered {
                    department,
                    to,
                    code,
                    answered,
                } => {
                    // Only the department it was sent to answers it; the first answer stands.
                    let row = conn
                        .fetch(
                        "SELECT received FROM lt_feedback
                         WHERE ns = $1 AND sender = $2 AND code = $3 AND department = $4 AND answered IS NULL",
                        vec![
                        SqlValue::from(ns),
                        SqlValue::from(text(&to)),
                        SqlValue::from(text(&code)),
                        SqlValue::from(text(&department)),
                        ],
                    )
                    .await?;
                    let Some(row) = row.first() else { continue };
                    let received = row.text("received")?;
                    let secs = rules::seconds_between(&received, &answered).map(|s| s.max(0));
                    conn.execute(
                        "UPDATE lt_feedback SET answered = $5, answer_seconds = $6
                         WHERE ns = $1 AND sender = $2 AND code = $3 AND department = $4",
                        vec![
                            SqlValue::from(ns),
                            SqlValue::from(text(&to)),
                            SqlValue::from(text(&code)),
                            SqlValue::from(text(&department)),
                            SqlValue::from(answered),
                            SqlValue::from(secs),
                        ],
                    )
                    .await?;
                }
                Fact::Rated {
                    sender,
                    dossier,
                    department,
                    score,
                    at,
                } => {
                    conn.execute(
                        "INSERT INTO lt_rating (ns, sender, dossier, department, score, rated)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (ns, sender, dossier) DO UPDATE
                         SET department = excluded.department, score = excluded.score, rated = excluded.rated",
                        vec![
                        SqlValue::from(ns),
                        SqlValue::from(text(&sender)),
                        SqlValue::from(text(&dossier)),
                        SqlValue::from(text(&department)),
                        SqlValue::from(score),
                        SqlValue::from(at),
                        ],
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Feedback and ratings of one department over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackRow {
    pub feedback_received: i64,
    pub feedback_answered: i64,
    /// Sum of the answer times of those answered, in seconds.
    pub answer_seconds: i64,
    pub ratings: i64,
    /// Sum of the scores.
    pub rating_sum: i64,
}

impl FeedbackRow {
    pub fn add(&mut self, o: &FeedbackRow) {
        self.feedback_received += o.feedback_received;
        self.feedback_answered += o.feedback_answered;
        self.answer_seconds += o.answer_seconds;
        self.ratings += o.ratings;
        self.rating_sum += o.rating_sum;
    }

    /// Mean answer time in hours (one decimal); none when nothing was answered.
    pub fn answer_hours_avg(&self) -> Option<f64> {
        (self.feedback_answered > 0).then(|| {
            (self.answer_seconds as f64 / 3600.0 / self.feedback_answered as f64 * 10.0).round()
                / 10.0
        })
    }

    /// Mean score 1–5 (two decimals); none without ratings.
    pub fn rating_avg(&self) -> Option<f64> {
        (self.ratings > 0)
            .then(|| (self.rating_sum as f64 / self.ratings as f64 * 100.0).round() / 100.0)
    }
}

/// Per department: feedback received in [`from`, `to`] (and of those, answered), ratings given in the period.
pub async fn stats(
    state: &StateStore,
    from: &str,
    to: &str,
    department: Option<&str>,
) -> Result<BTreeMap<String, FeedbackRow>, sqlx::Error> {
    let mut out: BTreeMap<String, FeedbackRow> = BTreeMap::new();
    // Both counts: `$1` the namespace, `$2`..`$3` the period, `$4` one department or '' for all.
    let per_department = |sql: &'static str| {
        sqlx::query(sql)
            .bind(state.namespace())
            .bind(from)
            .bind(to)
            .bind(department.unwrap_or(""))
            .fetch_all(state.pool())
    };
    let feedback = per_department(
        "SELECT department, COUNT(*) AS received,
                SUM(CASE WHEN answered IS NOT NULL THEN 1 ELSE 0 END) AS answered,
                SUM(COALESCE(answer_seconds, 0)) AS seconds
         FROM lt_feedback
         WHERE ns = $1 AND received >= $2 AND received <= $3 AND ($4 = '' OR department = $4)
         GROUP BY department",
    )
    .await?;
    for r in feedback {
        let row = out.entry(r.try_get("department")?).or_default();
        row.feedback_received = r.try_get("received")?;
        row.feedback_answered = r.try_get::<Option<i64>, _>("answered")?.unwrap_or(0);
        row.answer_seconds = r.try_get::<Option<i64>, _>("seconds")?.unwrap_or(0);
    }
    let ratings = per_department(
        "SELECT department, COUNT(*) AS ratings, SUM(score) AS total FROM lt_rating
         WHERE ns = $1 AND rated >= $2 AND rated <= $3 AND ($4 = '' OR department = $4)
         GROUP BY department",
    )
    .await?;
    for r in ratings {
        let row = out.entry(r.try_get("department")?).or_default();
        row.ratings = r.try_get("ratings")?;
        row.rating_sum = r.try_get::<Option<i64>, _>("total")?.unwrap_or(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: &str, from: &str, to: &str) -> Meta {
        Meta {
            id: "m1".into(),
            kind: kind.into(),
            version: 1,
            from: from.into(),
            to: vec![to.into()],
            correlation_id: None,
            created_at: String::new(),
        }
    }

    fn fact_as_written(meta: &Meta, payload: &serde_json::Value) -> Option<Fact> {
        fact(meta, payload, &|c| c.to_owned())
    }

    #[test]
    fn a_department_is_counted_by_its_code_whichever_code_it_was_sent_to() {
        let agency = |c: &str| match c {
            "G12" | "020100107370" => "000.00.00.G12".to_owned(),
            other => other.to_owned(),
        };
        let p = serde_json::json!({"MaHoSo": "H-1", "MucDoHaiLong": 4, "NgayDanhGia": "20261101080000"});
        for to in ["G12", "020100107370", "000.00.00.G12"] {
            match fact(&meta("rating.submitted", "S", to), &p, &agency) {
                Some(Fact::Rated { department, .. }) => assert_eq!(department, "000.00.00.G12"),
                other => panic!("{to}: {other:?}"),
            }
        }
        // An answer addressed to any code of the feedback's sender is the answer to it.
        let p = serde_json::json!({"MaPhanAnh": "PA-1", "NgayTraLoi": "20261101090000"});
        match fact(
            &meta("feedback.answered", "000.00.00.G12", "G12"),
            &p,
            &agency,
        ) {
            Some(Fact::Answered { to, .. }) => assert_eq!(to, "000.00.00.G12"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn facts_come_from_the_portal_fields() {
        let p = serde_json::json!({"MaPhanAnh": "PA-1", "NgayGui": "20261101080000"});
        assert_eq!(
            fact_as_written(&meta("feedback.submitted", "S", "D"), &p),
            Some(Fact::Submitted {
                sender: "S".into(),
                code: "PA-1".into(),
                department: "D".into(),
                received: "20261101080000".into()
            })
        );
        let p = serde_json::json!({"MaHoSo": "H-1", "MucDoHaiLong": 9, "NgayDanhGia": "20261101080000"});
        assert_eq!(
            fact_as_written(&meta("rating.submitted", "S", "D"), &p),
            None,
            "score out of 1–5"
        );
        let p = serde_json::json!({"MaPhanAnh": "PA-1", "NgayTraLoi": "2026"});
        assert_eq!(
            fact_as_written(&meta("feedback.answered", "D", "S"), &p),
            None,
            "not a date"
        );
    }

    #[test]
    fn averages_round_and_are_absent_without_data() {
        let mut r = FeedbackRow::default();
        assert_eq!((r.answer_hours_avg(), r.rating_avg()), (None, None));
        r.add(&FeedbackRow {
            feedback_received: 3,
            feedback_answered: 2,
            answer_seconds: 3 * 3600 + 5 * 3600,
            ratings: 3,
            rating_sum: 13,
        });
        assert_eq!(r.answer_hours_avg(), Some(4.0));
        assert_eq!(r.rating_avg(), Some(4.33));
    }
}
