//! Running the real `lienthong` binary as a child process, for crash and signal tests.

use super::*;
use std::process::{Child, Command};

/// A port that was free a moment ago, and never handed out before in this test process: the OS may give the
/// same ephemeral port to two parallel tests, and a bus that cannot bind exits while its twin answers `/readyz`.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct BusProcess {
    pub child: Child,
    pub http: u16,
    pub admin: u16,
}

impl BusProcess {
    /// Starts `lienthong run --config <file>` and waits until `/readyz` says ready.
    pub async fn spawn(config: &Path, http: u16, admin: u16) -> BusProcess {
        Self::spawn_with(config, http, admin, "warn", &[]).await
    }

    /// [`BusProcess::spawn`] with more environment variables (adapters' secrets).
    pub async fn spawn_with_env(
        config: &Path,
        http: u16,
        admin: u16,
        vars: &[(&str, &str)],
    ) -> BusProcess {
        Self::spawn_with(config, http, admin, "warn", vars).await
    }

    /// As [`Self::spawn`], logging at `rust_log`, with `env` added to the agencies' tokens; stderr goes to
    /// [`Self::log_file`], stdout to the same name with `.out`.
    pub async fn spawn_with(
        config: &Path,
        http: u16,
        admin: u16,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> BusProcess {
        let log = std::fs::File::create(Self::log_file(config, http)).unwrap();
        let out = std::fs::File::create(config.with_extension(format!("{http}.out"))).unwrap();
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .env("H40", "tok-H40")
            .env("STP", "tok-STP")
            .env("SYT", "tok-SYT")
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = BusProcess { child, http, admin };
        let url = format!("http://127.0.0.1:{admin}/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A process that exited (e.g. could not bind its port) must not pass for ready because something
            // else answers on that port.
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = std::fs::read_to_string(config.with_extension(format!("{http}.log")))
                    .unwrap_or_default();
                panic!("the bus process exited during start-up ({status}):\n{log}");
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status().as_u16() == 200
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "the bus process was not ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/messages", self.http)
    }

    /// Where the process started from `config` on ingress port `http` writes its stderr.
    pub fn log_file(config: &Path, http: u16) -> PathBuf {
        config.with_extension(format!("{http}.log"))
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

/// One id a [`load`] got a 202 for: the index of the URL that took it, and after how many posts.
#[derive(Clone, Debug)]
pub struct Took {
    pub id: String,
    pub via: usize,
    pub posts: usize,
}

impl Took {
    /// The ids a [`load`] got accepted so far.
    pub fn ids(accepted: &Mutex<Vec<Took>>) -> Vec<String> {
        accepted
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.id.clone())
            .collect()
    }
}

/// Posts a dossier envelope for every id, 32 at a time, each retried until 202 (for up to two minutes, like a
/// well-behaved client), moving to the next of `urls` after a failure; records every accepted one in
/// `accepted`. `label` prefixes the dossier codes (`<label>-<i>`).
pub fn load(
    urls: Vec<String>,
    ids: Vec<String>,
    label: &'static str,
    accepted: std::sync::Arc<Mutex<Vec<Took>>>,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        futures::stream::iter(ids.into_iter().enumerate())
            .for_each_concurrent(32, |(i, id)| {
                let (client, urls, accepted) = (client.clone(), urls.clone(), accepted.clone());
                async move {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let body = envelope(Some(&id), H40, &[STP], dossier(&format!("{label}-{i}")))
                        .to_string();
                    for posts in 1.. {
                        if Instant::now() >= deadline {
                            return;
                        }
                        let via = (i + posts - 1) % urls.len();
                        let r = client
                            .post(&urls[via])
                            .bearer_auth("tok-H40")
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        if r.is_ok_and(|r| r.status().as_u16() == 202) {
                            accepted.lock().unwrap().push(Took { id, via, posts });
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
            .await;
    })
}
