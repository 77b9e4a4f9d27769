//! What the machine is, and how much CPU and memory processes use (Linux `/proc`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Facts printed above the results.
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub ram: String,
    pub kernel: String,
    pub rabbitmq: String,
    pub date: String,
    pub commit: String,
    pub profile: &'static str,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started: other work on the machine skews everything.
    pub loadavg: String,
}

pub fn machine(repo: &std::path::Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let rabbitmq = output_of("rabbitmqctl", &["version"], Duration::from_secs(15))
        .map(|s| s.lines().last().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown (rabbitmqctl not available)".into());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        ram,
        kernel,
        rabbitmq,
        date,
        commit,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into()),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    }
}

/// Stdout of a command, or None if it fails or takes longer than `timeout`.
fn output_of(cmd: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) => return None,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
    let mut out = String::new();
    use std::io::Read;
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Clock ticks per second for `/proc/<pid>/stat` times.
fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        output_of("getconf", &["CLK_TCK"], Duration::from_secs(5))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(3) ... utime(14) stime(15); index = field - 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// The AMQP port of the broker under test (set once from `--amqp`; 5672 if never set).
static BROKER_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// Tells [`broker_pid`] which node is under test: the one listening on the port of `amqp_url`.
pub fn set_broker_url(amqp_url: &str) {
    let _ = BROKER_PORT.set(port_of(amqp_url));
}

/// The port of an AMQP URL, as lapin reads it (the scheme's default where none is written; 5672 for a URL lapin
/// cannot read, which the run's connections then refuse with lapin's own message).
fn port_of(amqp_url: &str) -> u16 {
    amqp_url
        .parse::<lapin::uri::AMQPUri>()
        .map_or(5672, |u| u.authority.port)
}

/// The RabbitMQ node's process (`beam.smp`) on this machine that listens on the broker's AMQP port — where
/// several nodes run (the local three-node cluster of `scripts/cluster.sh`), the first one found would be an
/// idle node's. Falls back to the first `beam.smp` when the listening socket cannot be seen.
pub fn broker_pid() -> Option<String> {
    static PID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PID.get_or_init(|| {
        let beams: Vec<String> = std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                (comm.trim() == "beam.smp").then_some(name)
            })
            .collect();
        let port = *BROKER_PORT.get().unwrap_or(&5672);
        let listening = listening_inodes(port);
        beams
            .iter()
            .find(|pid| holds_any_socket(pid, &listening))
            .or(beams.first())
            .cloned()
    })
    .clone()
}

/// Inodes of the sockets listening on `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> Vec<String> {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    // local_address(1) … st(3) … inode(9); 0A = LISTEN.
                    let listening = cols.get(1)?.ends_with(&want) && *cols.get(3)? == "0A";
                    if !listening {
                        return None;
                    }
                    cols.get(9).map(|inode| inode.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether process `pid` holds one of the sockets `inodes`.
fn holds_any_socket(pid: &str, inodes: &[String]) -> bool {
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let t = target.to_string_lossy();
            inodes.iter().any(|i| t == format!("socket:[{i}]"))
        })
    })
}

/// CPU used by this process and by the broker between two points in time.
#[derive(Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    me: f64,
    broker: Option<f64>,
}

/// Average cores kept busy over an interval, by this process and by RabbitMQ.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub me_seconds: f64,
    pub broker_seconds: Option<f64>,
    pub wall: f64,
}

impl CpuUse {
    pub fn me_cores(&self) -> f64 {
        self.me_seconds / self.wall.max(1e-9)
    }
    pub fn broker_cores(&self) -> Option<f64> {
        self.broker_seconds.map(|b| b / self.wall.max(1e-9))
    }
    /// "1.23 / 0.80" (bench process / RabbitMQ, in cores).
    pub fn cell(&self) -> String {
        match self.broker_cores() {
            Some(b) => format!("{:.2} / {:.2}", self.me_cores(), b),
            None => format!("{:.2} / ?", self.me_cores()),
        }
    }
}

impl CpuMark {
    pub fn now() -> CpuMark {
        CpuMark {
            at: Instant::now(),
            me: cpu_seconds("self").unwrap_or(0.0),
            broker: broker_pid().and_then(|p| cpu_seconds(&p)),
        }
    }
    pub fn since(&self) -> CpuUse {
        let now = CpuMark::now();
        CpuUse {
            me_seconds: now.me - self.me,
            broker_seconds: match (now.broker, self.broker) {
                (Some(b), Some(a)) => Some(b - a),
                _ => None,
            },
            wall: now.at.duration_since(self.at).as_secs_f64(),
        }
    }
}

/// A `VmXxx:` line of `/proc/<pid>/status`, in bytes.
pub fn status_bytes(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Mean time of writing 4 KiB to a file in `dir` and `fsync`ing it, over `rounds` rounds: what one durable
/// commit costs at least on that disk (the bus's SQLite runs `synchronous=NORMAL`, which fsyncs only at
/// WAL checkpoints).
pub fn fsync_latency(dir: &std::path::Path, rounds: u32) -> Option<Duration> {
    use std::io::Write;
    let file = tempfile::NamedTempFile::new_in(dir).ok()?;
    let mut f = file.as_file();
    let block = [0x5au8; 4096];
    let start = Instant::now();
    for _ in 0..rounds {
        f.write_all(&block).ok()?;
        f.sync_all().ok()?;
    }
    Some(start.elapsed() / rounds.max(1))
}

/// Percentile (0–100) of sorted values, nearest-rank.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_port_comes_from_the_amqp_url() {
        assert_eq!(port_of("amqp://guest:guest@127.0.0.1:5681/%2f"), 5681);
        assert_eq!(port_of("amqp://127.0.0.1:5682"), 5682);
        assert_eq!(port_of("amqp://u:p@localhost/vhost"), 5672);
        assert_eq!(port_of("amqps://u:p%3A@[::1]/%2f?heartbeat=5"), 5671);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }

    #[test]
    fn reads_own_cpu_and_memory() {
        assert!(cpu_seconds("self").is_some());
        assert!(status_bytes("self", "VmRSS:").unwrap() > 0);
    }
}
