//! `GET /ui/overview`: how the bus is doing — broker and state store, each route and adapter with its counts
//! and rates, queue depths, refusals by error code.
//!
//! The numbers are the ones `/metrics` serves (this process's Prometheus recorder, read back from its text)
//! and the queue depths `/v1/topology` reports, so the console never disagrees with the monitoring. Rates are
//! per minute over the last minute or so, from earlier readings this page took (the page reloads itself).

use super::html::{esc, table};
use super::{Ui, Viewer};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One reading of the counters: (metric, sorted labels) → value.
type Reading = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses Prometheus text exposition (counters and gauges; histogram and summary lines come along too).
pub(super) fn parse(text: &str) -> Reading {
    let mut out = Reading::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, labels(rest.strip_suffix('}').unwrap_or(rest))),
            None => (series, Vec::new()),
        };
        out.insert((name.to_owned(), labels), value);
    }
    out
}

/// `a="x",b="y\"z"` → sorted pairs.
fn labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out.sort();
    out
}

/// The sum of `metric` over the series whose labels include every `want`.
fn sum(r: &Reading, metric: &str, want: &[(&str, &str)]) -> f64 {
    r.iter()
        .filter(|((m, l), _)| {
            m == metric
                && want
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// The values of label `label` that `metric` has series for.
fn label_values(r: &Reading, metric: &str, label: &str) -> Vec<String> {
    let mut v: Vec<String> = r
        .keys()
        .filter(|(m, _)| m == metric)
        .filter_map(|(_, l)| l.iter().find(|(k, _)| k == label).map(|(_, v)| v.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Earlier readings, for rates.
#[derive(Default)]
pub(super) struct Rates {
    readings: Mutex<VecDeque<(Instant, Reading)>>,
}

/// Readings older than this are dropped.
const KEEP: Duration = Duration::from_secs(600);
/// The reading a rate is taken against is the newest at least this old.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// ... or, while the page is young, the oldest at least this old.
const MIN_SPAN: Duration = Duration::from_secs(4);

impl Rates {
    /// Records `now`'s reading; returns the one to take rates against, with its age.
    fn baseline(&self, reading: &Reading, now: Instant) -> Option<(Reading, Duration)> {
        let mut q = self.readings.lock().unwrap_or_else(|p| p.into_inner());
        while q
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > KEEP)
        {
            q.pop_front();
        }
        let base = q
            .iter()
            .rev()
            .find(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
            .or_else(|| {
                q.front()
                    .filter(|(t, _)| now.duration_since(*t) >= MIN_SPAN)
            })
            .map(|(t, r)| (r.clone(), now.duration_since(*t)));
        if q.back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_secs(2))
        {
            q.push_back((now, reading.clone()));
        }
        if q.len() > 400 {
            q.pop_front();
        }
        base
    }
}

fn count(v: f64) -> String {
    format!("{}", v.round() as i64)
}

/// The current count of a series, with its rate per minute when there is a baseline.
struct Counts<'a> {
    now: &'a Reading,
    base: Option<&'a (Reading, Duration)>,
}

impl Counts<'_> {
    fn cell(&self, id: &str, metric: &str, want: &[(&str, &str)]) -> String {
        let v = sum(self.now, metric, want);
        let rate = self.base.map(|(b, age)| {
            let d = (v - sum(b, metric, want)).max(0.0);
            d * 60.0 / age.as_secs_f64().max(1.0)
        });
        let rate = match rate {
            Some(r) => format!("{r:.1}/min"),
            None => "—".into(),
        };
        format!(
            "<span class=\"n\" id=\"{}\">{}</span> <span class=\"muted\">{}</span>",
            esc(id),
            count(v),
            rate
        )
    }
}

/// `GET /ui/overview`.
pub(super) async fn page(State(ui): State<Ui>, Extension(v): Extension<Viewer>) -> Response {
    let ctx = &ui.ctx;
    let text = crate::admin::metrics::metrics_handle()
        .map(|h| h.render())
        .unwrap_or_default();
    let now = parse(&text);
    let base = ui.rates.baseline(&now, Instant::now());
    let c = Counts {
        now: &now,
        base: base.as_ref(),
    };
    let mut body = String::new();

    // Broker and state store.
    let ready = ctx.broker.is_ready();
    let parked = ctx.state.dlq_list(None).await.map(|l| l.len());
    let _ = write!(
        body,
        "<div class=\"cards\">\
         <div class=\"card\"><div class=\"k\">{}</div><div class=\"v {}\" id=\"broker-state\">{}</div></div>\
         <div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>\
         <div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>\
         <div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>\
         <div class=\"card\"><div class=\"k\">{}</div><div class=\"v\" id=\"dlq-parked\">{}</div></div></div>",
        v.t("Máy chủ RabbitMQ", "RabbitMQ broker"),
        if ready { "ok" } else { "bad" },
        if ready {
            v.t("đã kết nối", "connected")
        } else {
            v.t("mất kết nối", "disconnected")
        },
        v.t("Kho trạng thái", "State store"),
        esc(ctx.state.backend()),
        v.t("Không gian tên", "Namespace"),
        esc(&ctx.names.namespace),
        v.t("Đã nhận", "Accepted"),
        c.cell("accepted-total", "lienthong_ingress_accepted_total", &[]),
        v.t("Đang nằm trong hàng đợi lỗi", "Parked dead letters"),
        match parked {
            Ok(n) => n.to_string(),
            Err(_) => "?".into(),
        },
    );
    if !ready && let Some(e) = ctx.broker.last_error() {
        let _ = write!(body, "<p class=\"error\">{}</p>", esc(&e));
    }

    // Routes.
    const ROUTE: &str = "lienthong_route_messages_total";
    let rows: Vec<Vec<String>> = ctx
        .config
        .routes
        .iter()
        .map(|r| {
            let o = |outcome: &str| {
                c.cell(
                    &format!("route-{}-{outcome}", r.id),
                    ROUTE,
                    &[("route", &r.id), ("outcome", outcome)],
                )
            };
            vec![
                esc(&r.id),
                esc(&r.types.join(", ")),
                esc(&r.deliver.join(", ")),
                o("accepted"),
                o("delivered"),
                o("retried"),
                o("dead_lettered"),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Tuyến", "Routes"),
        table(
            "routes",
            &[
                v.t("Tuyến", "Route"),
                v.t("Loại", "Types"),
                v.t("Chuyển tới", "Delivers to"),
                v.t("Đã nhận", "Accepted"),
                v.t("Đã chuyển", "Delivered"),
                v.t("Thử lại", "Retried"),
                v.t("Vào hàng đợi lỗi", "Dead-lettered"),
            ],
            &rows
        )
    );

    // Adapters, with their queue depths.
    let depths: BTreeMap<String, Option<u32>> = crate::admin::ops::queue_depths(ctx)
        .await
        .into_iter()
        .collect();
    let depth = |q: &str| match depths.get(q).copied().flatten() {
        Some(d) => d.to_string(),
        None => "—".into(),
    };
    let declared = ctx.queues.read().unwrap_or_else(|p| p.into_inner()).clone();
    // The config in force (a reload may have added or removed adapters since start).
    let live = ctx.live.current();
    let rows: Vec<Vec<String>> = live
        .config
        .adapters
        .iter()
        .map(|a| {
            let id = a.id.as_str();
            let sink = declared.sinks.iter().any(|s| s == id);
            let cell = |what: &str, metric: &str| {
                if sink {
                    c.cell(&format!("adapter-{id}-{what}"), metric, &[("adapter", id)])
                } else {
                    "—".into()
                }
            };
            vec![
                esc(id),
                esc(&a.kind),
                if sink {
                    format!(
                        "<span id=\"adapter-{}-queue\">{}</span>",
                        esc(id),
                        depth(&ctx.names.deliver_queue(id))
                    )
                } else {
                    "—".into()
                },
                cell("delivered", "lienthong_delivered_total"),
                cell("retried", "lienthong_delivery_retries_total"),
                cell("dead_lettered", "lienthong_dead_lettered_total"),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Bộ chuyển đổi", "Adapters"),
        table(
            "adapters",
            &[
                v.t("Bộ chuyển đổi", "Adapter"),
                v.t("Kiểu", "Type"),
                v.t("Chờ chuyển", "Queued"),
                v.t("Đã chuyển", "Delivered"),
                v.t("Thử lại", "Retried"),
                v.t("Vào hàng đợi lỗi", "Dead-lettered"),
            ],
            &rows
        )
    );

    // Errors by code.
    let mut rows = Vec::new();
    for code in label_values(&now, "lienthong_ingress_refused_total", "code") {
        rows.push(vec![
            v.t("tiếp nhận", "ingress").to_owned(),
            esc(&code),
            c.cell(
                &format!("refused-{code}"),
                "lienthong_ingress_refused_total",
                &[("code", &code)],
            ),
        ]);
    }
    for code in label_values(&now, "lienthong_http_refused_total", "code") {
        rows.push(vec![
            "HTTP".into(),
            esc(&code),
            c.cell(
                &format!("http-refused-{code}"),
                "lienthong_http_refused_total",
                &[("code", &code)],
            ),
        ]);
    }
    for reason in label_values(&now, "lienthong_dead_lettered_total", "reason") {
        rows.push(vec![
            v.t("chuyển phát", "delivery").to_owned(),
            esc(&reason),
            c.cell(
                &format!("dead-{reason}"),
                "lienthong_dead_lettered_total",
                &[("reason", &reason)],
            ),
        ]);
    }
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Lỗi theo mã", "Errors by code"),
        if rows.is_empty() {
            format!(
                "<p class=\"muted\">{}</p>",
                v.t("Chưa có lỗi.", "No errors yet.")
            )
        } else {
            table(
                "errors",
                &[
                    v.t("Nơi", "Where"),
                    v.t("Mã", "Code"),
                    v.t("Số lần", "Count"),
                ],
                &rows,
            )
        }
    );

    // Queues.
    let rows: Vec<Vec<String>> = depths
        .iter()
        .map(|(q, d)| {
            vec![
                esc(q),
                format!("{}", d.map(|d| d.to_string()).unwrap_or_else(|| "—".into())),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        v.t("Hàng đợi", "Queues"),
        table(
            "queues",
            &[v.t("Hàng đợi", "Queue"), v.t("Số tin", "Messages")],
            &rows
        )
    );
    v.page_with(StatusCode::OK, v.t("Tổng quan", "Overview"), body, Some(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_read_back() {
        let r = parse(
            "# TYPE lienthong_delivered_total counter\n\
             lienthong_delivered_total{adapter=\"a\"} 3\n\
             lienthong_delivered_total{adapter=\"b\"} 4\n\
             lienthong_dead_lettered_total{adapter=\"a\",reason=\"permanent_error\"} 2\n\
             lienthong_broker_connected 1\n\
             odd{k=\"x\\\"y\"} 5\n",
        );
        assert_eq!(sum(&r, "lienthong_delivered_total", &[]), 7.0);
        assert_eq!(
            sum(&r, "lienthong_delivered_total", &[("adapter", "b")]),
            4.0
        );
        assert_eq!(
            sum(
                &r,
                "lienthong_dead_lettered_total",
                &[("reason", "permanent_error")]
            ),
            2.0
        );
        assert_eq!(sum(&r, "lienthong_broker_connected", &[]), 1.0);
        assert_eq!(sum(&r, "odd", &[("k", "x\"y")]), 5.0);
        assert_eq!(
            label_values(&r, "lienthong_delivered_total", "adapter"),
            ["a", "b"]
        );
    }
}
