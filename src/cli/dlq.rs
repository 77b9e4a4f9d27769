//! `lienthong dlq`: list, show, replay and purge parked messages.
//!
//! List, show and purge work on the state store directly, so they work while the bus is down. Replay publishes
//! to RabbitMQ directly; with the embedded broker (`memory://`) it goes through the running bus's admin API,
//! since only that process holds the queues.

use clap::Subcommand;
use lienthong_bus::broker::Broker;
use lienthong_bus::broker::topology::{Names, Topology};
use lienthong_bus::config::Config;
use lienthong_bus::dlq::{Ops, Outcome, Select};
use lienthong_bus::state::StateStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List parked messages.
    List {
        #[arg(long, short, env = "LIENTHONG_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        adapter: Option<String>,
        /// Only the message(s) of this sender (agency code): ids are chosen by agencies, so two may share one.
        #[arg(long)]
        from: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one parked message with its payload and history.
    Show {
        #[arg(long, short, env = "LIENTHONG_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        id: String,
        #[arg(long)]
        adapter: Option<String>,
        /// Only the message(s) of this sender (agency code): ids are chosen by agencies, so two may share one.
        #[arg(long)]
        from: Option<String>,
    },
    /// Send parked messages back for delivery (same id, fresh attempt budget).
    Replay(Action),
    /// Remove parked messages for good (recorded in the audit log).
    Purge(Action),
}

/// Which parked messages a replay or purge acts on, and who does it.
#[derive(clap::Args)]
pub struct Action {
    #[arg(long, short, env = "LIENTHONG_CONFIG")]
    config: PathBuf,
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    #[arg(long)]
    all: bool,
    #[arg(long)]
    adapter: Option<String>,
    /// Only the message(s) of this sender (agency code): ids are chosen by agencies, so two may share one.
    #[arg(long)]
    from: Option<String>,
    /// Who is doing this, for the audit log (default: $USER).
    #[arg(long)]
    actor: Option<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::FAILURE
}

async fn open(config: &std::path::Path) -> Result<(Config, StateStore), ExitCode> {
    let c = Config::load(config).map_err(fail)?;
    let state = StateStore::connect(&c.state_url(), &c.bus.namespace)
        .await
        .map_err(|e| fail(format!("state store: {e}")))?;
    // A replay or purge from here is evidence like one through the admin API.
    let state = match lienthong_bus::state::EvidenceSetup::from_config(&c) {
        Ok(Some(e)) => state.with_evidence(e),
        Ok(None) => state,
        Err(p) => return Err(fail(format!("{}: {}", p.path, p.message))),
    };
    Ok((c, state))
}

fn actor(a: Option<String>) -> String {
    a.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

pub async fn dlq(cmd: DlqCommand) -> ExitCode {
    match run(cmd).await {
        Ok(c) | Err(c) => c,
    }
}

async fn run(cmd: DlqCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        DlqCommand::List {
            config,
            adapter,
            from,
            json,
        } => {
            let (_, state) = open(&config).await?;
            let mut list = state.dlq_list(adapter.as_deref()).await.map_err(fail)?;
            list.retain(|e| from.as_deref().is_none_or(|f| e.from == f));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if list.is_empty() {
                println!("The dead-letter queue is empty.");
            } else {
                println!(
                    "{:<38} {:<16} {:<16} {:<24} {:<18} {:>8}  {:<25} last error",
                    "id", "from", "adapter", "type", "reason", "attempts", "dead-lettered at"
                );
                for e in &list {
                    println!(
                        "{:<38} {:<16} {:<16} {:<24} {:<18} {:>8}  {:<25} {}",
                        e.id,
                        e.from,
                        e.adapter,
                        e.kind,
                        e.reason,
                        e.attempts,
                        e.dead_lettered_at,
                        e.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show {
            config,
            id,
            adapter,
            from,
        } => {
            let (_, state) = open(&config).await?;
            let v = state
                .dlq_get(&id, adapter.as_deref(), from.as_deref())
                .await
                .map_err(fail)?;
            if v.is_empty() {
                return Err(fail(format!("no parked message with id `{id}`")));
            }
            let out: Vec<_> = v
                .iter()
                .map(lienthong_bus::state::DlqEntry::to_json)
                .collect();
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay(a) => act_on(a, true).await,
        DlqCommand::Purge(a) => act_on(a, false).await,
    }
}

async fn act_on(a: Action, replay: bool) -> Result<ExitCode, ExitCode> {
    let which = Select {
        id: a.id.as_deref(),
        adapter: a.adapter.as_deref(),
        from: a.from.as_deref(),
    };
    act(&a.config, which, actor(a.actor), replay).await
}

async fn act(
    config: &std::path::Path,
    which: Select<'_>,
    actor: String,
    replay: bool,
) -> Result<ExitCode, ExitCode> {
    let (c, state) = open(config).await?;
    let outcomes: Vec<Outcome> = if replay && c.bus.broker_url == "memory://" {
        via_admin(&c, &which, &actor).await?
    } else {
        let broker = Broker::start(
            c.bus.broker_url.urls(),
            Topology::default(),
            lienthong_bus::broker::Tuning {
                max_in_flight: 64,
                ..lienthong_bus::broker::Tuning::from_config(&c.bus)
            },
        );
        if replay && !broker.wait_ready(Duration::from_secs(15)).await {
            return Err(fail(format!(
                "cannot reach the broker: {}",
                broker.last_error().unwrap_or_else(|| "timed out".into())
            )));
        }
        let names = Names::new(&c.bus.namespace);
        let ops = Ops {
            broker: &broker,
            state: &state,
            names: &names,
            publish_timeout: c.bus.publish_timeout.get(),
        };
        let r = if replay {
            ops.replay(&which, &actor).await
        } else {
            ops.purge(&which, &actor).await
        };
        broker.close().await;
        r.map_err(|e| fail(format!("{}: {}", e.code, e.message)))?
    };
    let mut ok = true;
    for o in &outcomes {
        ok &= o.done;
        println!(
            "{} {} from {} ({}): {}",
            if o.done { "✓" } else { "✗" },
            o.id,
            o.from,
            o.adapter,
            o.message
        );
    }
    if outcomes.is_empty() {
        println!("Nothing to do: no parked messages matched.");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn via_admin(c: &Config, which: &Select<'_>, actor: &str) -> Result<Vec<Outcome>, ExitCode> {
    #[derive(serde::Deserialize)]
    struct O {
        id: String,
        #[serde(default)]
        from: String,
        adapter: String,
        done: bool,
        message: String,
    }
    let path = match which.id {
        Some(id) => format!("/v1/dlq/{id}/replay"),
        None => "/v1/dlq/replay".into(),
    };
    let mut url = reqwest::Url::parse(&format!("http://{}{path}", c.admin.listen))
        .map_err(|e| fail(format!("admin.listen: {e}")))?;
    for (k, v) in [("adapter", which.adapter), ("from", which.from)] {
        if let Some(v) = v {
            url.query_pairs_mut().append_pair(k, v);
        }
    }
    let mut req = reqwest::Client::new()
        .post(url.clone())
        .header("x-actor", actor);
    if let Some(var) = &c.admin.token_env
        && let Ok(t) = std::env::var(var)
    {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("the bus uses the embedded broker, so replay goes through its admin API at {url}, which did not answer: {e}")))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(fail(format!("admin API answered {status}: {text}")));
    }
    let v: Vec<O> =
        serde_json::from_str(&text).map_err(|e| fail(format!("unexpected admin answer: {e}")))?;
    Ok(v.into_iter()
        .map(|o| Outcome {
            id: o.id,
            from: o.from,
            adapter: o.adapter,
            done: o.done,
            message: o.message,
        })
        .collect())
}
