//! A large edXML package through the real `lienthong` binary: HTTP ingress → RabbitMQ → `file-out`, timing the
//! trip, checking the file is the package byte for byte, and reading the child's peak RSS.

use crate::bus::{Setup, TOKEN_ENV};
use crate::payload;
use lienthong_bus::config::Config;
use lienthong_qcvn102::edxml::{self, DocumentDescription, FileAttachment};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct EdxmlRun {
    pub attachment_bytes: usize,
    pub package_bytes: usize,
    /// POST sent → 202 received.
    pub accepted: Duration,
    /// POST sent → the file is visible in the file-out folder.
    pub delivered: Duration,
    pub identical: bool,
    /// Child RSS once ready, before the POST.
    pub rss_idle: u64,
    /// Child peak RSS (VmHWM) after the delivery.
    pub rss_peak: u64,
    /// Highest RSS sampled (every 2 ms) from the POST until the 202: the ingress side.
    pub rss_max_ingress: u64,
    /// Highest RSS sampled after the 202 until the file appeared: the delivery side.
    pub rss_max_delivery: u64,
    /// VmHWM after each further package (different documents, same size) sent to the same process: what a
    /// long-running bus reaches once its buffers have seen a large message.
    pub rss_peak_repeated: Vec<u64>,
}

impl EdxmlRun {
    pub fn ratio(&self) -> f64 {
        self.rss_peak as f64 / self.package_bytes as f64
    }

    /// The highest VmHWM over every package, divided by the package size.
    pub fn worst_ratio(&self) -> f64 {
        let worst = self
            .rss_peak_repeated
            .iter()
            .copied()
            .fold(self.rss_peak, u64::max);
        worst as f64 / self.package_bytes as f64
    }
}

/// Where the `lienthong` binary is: `LIENTHONG_BIN` (via the option), else next to the running executable.
pub fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("lienthong")))
        .unwrap_or_else(|| PathBuf::from("target/release/lienthong"))
}

fn document(number: u32) -> Result<DocumentDescription, String> {
    serde_json::from_value(serde_json::json!({
        "from": {"organ_id": payload::FROM, "organ_name": "UBND tỉnh Nam Định"},
        "to": [{"organ_id": payload::TO, "organ_name": "Sở Tư pháp tỉnh Nam Định"}],
        "code": {"number": number, "notation": "UBND-VP"},
        "promulgation": {"place": "Nam Định", "date": "2026-11-27"},
        "document_type": {"type": 1, "type_detail": "0", "type_name": "Công văn"},
        "subject": "V/v chuyển hồ sơ quét kèm theo (kiểm thử hiệu năng)",
        "content": "Kính gửi Sở Tư pháp: gửi kèm bản quét hồ sơ.",
        "signer": {"competence": "TM. UBND", "position": "Chủ tịch", "full_name": "Nguyễn Văn An"},
        "priority": 0,
        "business": {"doc_type": 0, "reason": "Văn bản mới"}
    }))
    .map_err(|e| format!("edXML document description: {e}"))
}

/// Kills the child on every exit path.
pub(crate) struct ChildGuard(pub(crate) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl ChildGuard {
    /// SIGTERM, then SIGKILL after `grace`.
    pub(crate) async fn terminate(&mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lienthong run --config <config>` of `bin`, logging (at `warn`) into `log`, with the bench agency's token in
/// its environment.
pub(crate) fn spawn_bus(
    bin: &Path,
    config: &Path,
    log: &Path,
    token: &str,
) -> Result<ChildGuard, String> {
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .env(TOKEN_ENV, token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).map_err(|e| format!("log file: {e}"))?)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    Ok(ChildGuard(child))
}

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn package(number: u32, attachment: usize) -> Result<bytes::Bytes, String> {
    let file = FileAttachment::new(
        "ho-so-quet.pdf",
        "application/pdf",
        payload::noise(attachment, 0x5eed_0000 + number as u64),
    );
    edxml::build(&document(number)?, &[file])
        .map(bytes::Bytes::from)
        .map_err(|e| format!("edxml::build: {e}"))
}

/// Runs `bin` with a file-out adapter, POSTs one package with an attachment of `attachment` random bytes
/// (measured in detail), then `repeat` more packages of the same size one after another, reading VmHWM
/// after each.
pub async fn run(
    s: &Setup,
    bin: &Path,
    attachment: usize,
    repeat: usize,
) -> Result<EdxmlRun, String> {
    let number = std::process::id() % 100_000 + 1;
    let package = package(number, attachment)?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let out = dir.path().join("out");
    let (http, admin) = (free_port()?, free_port()?);
    let text = format!(
        r#"[bus]
broker_url = "{amqp}"
namespace = "{run}-edxml"
schemas_dir = "{schemas}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:{http}"
max_body_bytes = {max_body}

[admin]
listen = "127.0.0.1:{admin}"

[state]
url = "sqlite://{state}/state.db?mode=rwc"

[[agencies]]
code = "{from}"
token_env = "{TOKEN_ENV}"

[[agencies]]
code = "{to}"

[[adapters]]
id = "sink"
type = "file-out"
path = "out"

[[routes]]
id = "documents"
types = ["document.edxml"]
to = ["{to}"]
deliver = ["sink"]
"#,
        amqp = s.amqp,
        run = s.run,
        schemas = s.schemas.display(),
        max_body = (package.len() * 2).max(64 << 20),
        state = dir.path().display(),
        from = payload::FROM,
        to = payload::TO,
    );
    let file = dir.path().join("bus.toml");
    std::fs::write(&file, text).map_err(|e| format!("writing the config: {e}"))?;
    let config = Config::load(&file).map_err(|e| e.to_string())?;
    let log = dir.path().join("lienthong.log");
    let mut child = spawn_bus(bin, &file, &log, &s.token)?;
    let mut result = drive(&mut child, &package, &out, http, admin, s).await;
    let mut repeated = Vec::new();
    if result.is_ok() {
        for k in 1..=repeat {
            let next = match package_number(number, k).and_then(|n| self::package(n, attachment)) {
                Ok(p) => p,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match drive(&mut child, &next, &out, http, admin, s).await {
                Ok(m) if m.identical => repeated.push(m.rss_peak),
                Ok(_) => {
                    result = Err(format!("package {} was not delivered byte for byte", k + 1));
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    child.terminate(Duration::from_secs(10)).await;
    crate::amqp::delete_topology(&s.amqp, &config).await;
    let m = result.map_err(|e| format!("{e}\nlast lines of the bus log:\n{}", log_tail(&log)))?;
    Ok(EdxmlRun {
        attachment_bytes: attachment,
        package_bytes: package.len(),
        accepted: m.accepted,
        delivered: m.delivered,
        identical: m.identical,
        rss_idle: m.rss_idle,
        rss_peak: m.rss_peak,
        rss_max_ingress: m.rss_max_ingress,
        rss_max_delivery: m.rss_max_delivery,
        rss_peak_repeated: repeated,
    })
}

fn package_number(first: u32, k: usize) -> Result<u32, String> {
    u32::try_from(k)
        .ok()
        .and_then(|k| first.checked_add(k))
        .ok_or_else(|| "too many packages".to_string())
}

struct Measured {
    accepted: Duration,
    delivered: Duration,
    identical: bool,
    rss_idle: u64,
    rss_peak: u64,
    rss_max_ingress: u64,
    rss_max_delivery: u64,
}

/// Samples a process's RSS every 2 ms on a thread of its own; `split` marks the boundary between two phases.
struct RssSampler {
    stop: Arc<AtomicBool>,
    split: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl RssSampler {
    fn start(pid: String) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let split = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stop.clone(), split.clone());
        let thread = std::thread::spawn(move || {
            let (mut before, mut after) = (0u64, 0u64);
            while !st.load(Ordering::Acquire) {
                let rss = crate::sys::status_bytes(&pid, "VmRSS:").unwrap_or(0);
                if sp.load(Ordering::Acquire) {
                    after = after.max(rss);
                } else {
                    before = before.max(rss);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (before, after)
        });
        RssSampler {
            stop,
            split,
            thread,
        }
    }

    fn split(&self) {
        self.split.store(true, Ordering::Release);
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// Waits until the child's `GET /readyz` on `admin` answers 200 (60 s at most, or until it exits).
pub(crate) async fn wait_ready(child: &mut ChildGuard, admin: u16) -> Result<(), String> {
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("the lienthong process exited early ({status})"));
        }
        if let Ok(r) = client.get(&ready).send().await
            && r.status().as_u16() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the lienthong process was not ready within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drive(
    child: &mut ChildGuard,
    package: &bytes::Bytes,
    out: &Path,
    http: u16,
    admin: u16,
    s: &Setup,
) -> Result<Measured, String> {
    let pid = child.0.id().to_string();
    let client = reqwest::Client::new();
    wait_ready(child, admin).await?;
    let rss_idle = crate::sys::status_bytes(&pid, "VmRSS:").unwrap_or(0);
    let sampler = RssSampler::start(pid.clone());
    let start = Instant::now();
    let resp = client
        .post(format!("http://127.0.0.1:{http}/v1/messages"))
        .bearer_auth(&s.token)
        .header("content-type", "application/xml")
        .body(package.clone())
        .send()
        .await
        .map_err(|e| format!("POST of the package: {e}"))?;
    let accepted = start.elapsed();
    sampler.split();
    if resp.status().as_u16() != 202 {
        let status = resp.status();
        return Err(format!(
            "POST of the package answered {status}: {}",
            resp.text().await.unwrap_or_default()
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let found = loop {
        let hit = std::fs::read_dir(out).ok().and_then(|rd| {
            rd.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            })
        });
        if let Some(p) = hit {
            break p;
        }
        if Instant::now() > deadline {
            return Err("the package did not appear in the file-out folder within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let delivered = start.elapsed();
    // Let the worker finish its bookkeeping before reading the peak.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss_max_ingress, rss_max_delivery) = sampler.finish();
    let rss_peak = crate::sys::status_bytes(&pid, "VmHWM:")
        .ok_or("cannot read VmHWM of the lienthong process")?;
    let written = std::fs::read(&found).map_err(|e| format!("reading {}: {e}", found.display()))?;
    // Out of the folder, so the next package's file is the only one there.
    std::fs::remove_file(&found).map_err(|e| format!("removing {}: {e}", found.display()))?;
    Ok(Measured {
        accepted,
        delivered,
        identical: written == package.as_ref(),
        rss_idle,
        rss_peak,
        rss_max_ingress,
        rss_max_delivery,
    })
}
