//! `lienthong demo`: the whole bus in one process on the embedded broker, fed with the sample dossiers.
//!
//! A newcomer sees, for each sample, what an agency's system would see (202 with routes, or the error code
//! and the JSON pointers of what is wrong) and where each accepted message was delivered.

use lienthong_adapters::Factory;
use lienthong_bus::config::Config;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn demo_env(key: &str) -> Option<String> {
    std::env::var(key)
        .ok()
        .or_else(|| Some(format!("demo-token-{}", key.to_ascii_lowercase())))
}

pub async fn demo(config_path: &Path, samples: Option<&Path>) -> ExitCode {
    let mut config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let samples = samples
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.base_dir.join("samples"));
    // A fresh state store per demo run, and free ports, so the demo can run again and beside a real bus.
    let state_dir =
        std::env::temp_dir().join(format!("lienthong-demo-{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        eprintln!("cannot create {}: {e}", state_dir.display());
        return ExitCode::FAILURE;
    }
    config.state.url = Some(format!(
        "sqlite://{}/state.db?mode=rwc",
        state_dir.display()
    ));
    config.http.listen = "127.0.0.1:0".into();
    config.admin.listen = "127.0.0.1:0".into();
    let token_for = |code: &str| {
        config
            .agencies
            .iter()
            .find(|a| a.code == code)
            .and_then(|a| a.token_env.as_deref())
            .and_then(demo_env)
    };
    let bus = match lienthong_bus::runtime::start(
        config.clone(),
        std::sync::Arc::new(Factory),
        std::sync::Arc::new(lienthong_domain::Province),
        std::sync::Arc::new(demo_env),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Liên Thông demo");
    println!("  config   {}", config.file.display());
    println!("  broker   {}", config.bus.broker_url.redacted());
    println!("  ingress  http://{}/v1/messages", bus.http_addr);
    println!("  admin    http://{}/readyz", bus.admin_addr);
    println!("  samples  {}\n", samples.display());

    let mut files: Vec<_> = match std::fs::read_dir(&samples) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "xml")))
            .collect(),
        Err(e) => {
            eprintln!("cannot read the samples folder {}: {e}", samples.display());
            bus.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    let client = reqwest::Client::new();
    let (mut accepted, mut refused, mut delivered) = (0, 0, 0);
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let Ok(body) = std::fs::read(file) else {
            println!("{name}: cannot read");
            continue;
        };
        let is_xml = file.extension().is_some_and(|e| e == "xml");
        let from = if is_xml {
            sender_of_xml(&body)
        } else {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("from").and_then(|f| f.as_str()).map(str::to_owned))
        }
        .or_else(|| config.agencies.first().map(|a| a.code.clone()))
        .unwrap_or_default();
        let mut req = client
            .post(format!("http://{}/v1/messages", bus.http_addr))
            .header(
                "content-type",
                if is_xml {
                    "application/xml"
                } else {
                    "application/json"
                },
            )
            .body(body);
        if let Some(t) = token_for(&from) {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                println!("{name}: request failed: {e}");
                continue;
            }
        };
        let status = resp.status().as_u16();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        if status == 202 {
            accepted += 1;
            let id = answer["id"].as_str().unwrap_or_default().to_owned();
            let routes: Vec<String> = answer["routes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{name}: 202 accepted, id {id}, routes [{}]",
                routes.join(", ")
            );
            let mut adapters: Vec<&str> = Vec::new();
            for r in &routes {
                for a in config
                    .route(r)
                    .map(|r| r.deliver.as_slice())
                    .unwrap_or_default()
                {
                    if !adapters.contains(&a.as_str()) {
                        adapters.push(a);
                    }
                }
            }
            for a in adapters {
                let kind = config.adapter(a).map(|s| s.kind.as_str()).unwrap_or("?");
                if wait_delivered(&bus, a, &from, &id).await {
                    delivered += 1;
                    let where_ = config
                        .adapter(a)
                        .and_then(|s| {
                            s.options
                                .get("path")
                                .and_then(|p| p.as_str())
                                .map(|p| s.resolve(Path::new(p)))
                        })
                        .map(|p| format!(" → {}", p.display()))
                        .unwrap_or_default();
                    println!("    delivered to {a} ({kind}){where_}");
                } else {
                    println!(
                        "    NOT delivered to {a} ({kind}) within 10 s — see the log and `lienthong dlq list`"
                    );
                }
            }
        } else {
            refused += 1;
            let e = &answer["error"];
            println!(
                "{name}: {status} {} — {}",
                e["code"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("")
            );
            for d in e["details"].as_array().into_iter().flatten() {
                println!(
                    "    at {}: {}",
                    d["path"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                );
            }
        }
    }
    println!("\n{accepted} accepted, {refused} refused, {delivered} deliveries made.");
    bus.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    ExitCode::SUCCESS
}

async fn wait_delivered(
    bus: &lienthong_bus::runtime::RunningBus,
    adapter: &str,
    sender: &str,
    id: &str,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if bus
            .context
            .state
            .was_delivered(adapter, sender, id)
            .await
            .unwrap_or(false)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// The `From/OrganId` of an edXML package, found by a plain text search (only to pick the demo token).
fn sender_of_xml(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let from = text.find("From>")?;
    let rest = &text[from..];
    let start = rest.find("OrganId>")? + "OrganId>".len();
    let end = rest[start..].find('<')?;
    Some(rest[start..start + end].trim().to_owned())
}
