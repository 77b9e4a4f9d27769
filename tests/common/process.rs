//! Running the real `lienthong` binary as a child process, for crash and signal tests.

use super::*;
use std::process::{Child, Command, Stdio};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct BusProcess {
    pub child: Child,
    pub http: u16,
    pub admin: u16,
}

impl BusProcess {
    /// Starts `lienthong run --config <file>` and waits until `/readyz` says ready.
    pub async fn spawn(config: &Path, http: u16, admin: u16) -> BusProcess {
        let log = std::fs::File::create(config.with_extension(format!("{http}.log"))).unwrap();
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .env("H40", "tok-H40")
            .env("STP", "tok-STP")
            .env("SYT", "tok-SYT")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = BusProcess { child, http, admin };
        let url = format!("http://127.0.0.1:{admin}/readyz");
        wait_for(
            "the bus process to be ready",
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move {
                    let r = reqwest::get(&url).await.ok()?;
                    (r.status().as_u16() == 200).then_some(())
                }
            },
        )
        .await;
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/messages", self.http)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for exit up to `timeout`; returns the exit code.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                self.kill9();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for BusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config for a process-based test and returns (file, http port, admin port).
pub fn write_config(dir: &Path, ns: &str, state_url: &str, body: &str) -> (PathBuf, u16, u16) {
    let (http, admin) = (free_port(), free_port());
    let text = head(ns, AMQP, state_url)
        .replace(
            "listen = \"127.0.0.1:0\"\n\n[admin]",
            &format!("listen = \"127.0.0.1:{http}\"\n\n[admin]"),
        )
        .replace(
            "[admin]\nlisten = \"127.0.0.1:0\"",
            &format!("[admin]\nlisten = \"127.0.0.1:{admin}\""),
        )
        + body;
    let file = dir.join(format!("bus-{http}.toml"));
    std::fs::write(&file, text).unwrap();
    (file, http, admin)
}
