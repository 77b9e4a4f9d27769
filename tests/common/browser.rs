//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), with plain HTTP
//! calls to chromedriver: enough to open pages, fill in forms, click, read text and take screenshots.
//!
//! When chromedriver is missing the tests that need it skip with a message — unless `CI` or
//! `LT_REQUIRE_BROWSER` is set, where they fail: CI installs the browser (scripts/services.sh), so a missing
//! one there is a broken machine, not a reason to pass.

use super::process::free_port;
use super::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The W3C WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// Where the tests' screenshots go: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = repo().join("target").join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// A fresh browser (its own profile, so no cookies), or None (skip) when there is none and none is
    /// required.
    pub async fn start() -> Option<Browser> {
        let missing = [CHROMEDRIVER, CHROMIUM]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
                || std::env::var_os("LT_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty());
            let msg = format!(
                "{} missing: install Debian's `chromium` and `chromium-driver` (scripts/services.sh does)",
                missing.join(" and ")
            );
            if required {
                panic!(
                    "{msg}; CI/LT_REQUIRE_BROWSER is set, so the browser tests cannot be skipped"
                );
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the browser it starts goes with it when the test ends.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let status = format!("{}/status", b.base);
        wait_for("chromedriver to answer", Duration::from_secs(20), || {
            let (http, url) = (b.http.clone(), status.clone());
            async move {
                let v: Value = http.get(&url).send().await.ok()?.json().await.ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1366,1700", "--lang=vi", "--no-first-run",
                         format!("--user-data-dir={}", b._profile.path().display())]
            }
        }}});
        let v = b.call("POST", "/session", Some(caps)).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        Some(b)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        v.get("value").cloned().unwrap_or(Value::Null)
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        let v = self
            .call("POST", &self.s("/url"), Some(json!({"url": url})))
            .await;
        assert!(
            v.is_null() || v.get("error").is_none(),
            "navigate to {url}: {v}"
        );
    }

    pub async fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, if any now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.get(ELEMENT).and_then(Value::as_str).map(str::to_owned)
    }

    /// Waits for an element matching `css`; on timeout, says where the browser is and what it shows.
    pub async fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                let src = self.source().await;
                panic!(
                    "no element `{css}` within 20 s at {}; the page:\n{}",
                    self.url().await,
                    &src[..src.len().min(3000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait(css).await;
        let v = self
            .call("POST", &self.s(&format!("/element/{e}/click")), None)
            .await;
        assert!(v.get("error").is_none(), "click {css}: {v}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        let v = self
            .call(
                "POST",
                &self.s(&format!("/element/{e}/value")),
                Some(json!({"text": text})),
            )
            .await;
        assert!(v.get("error").is_none(), "type into {css}: {v}");
    }

    /// The visible text of the first element matching `css`, waiting for it to be there.
    pub async fn text(&self, css: &str) -> String {
        let e = self.wait(css).await;
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Reloads the page until the text of `css` satisfies `ok` (the console draws on the server; a page
    /// shows what was true when it was drawn).
    pub async fn reload_until(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: `{css}` shows `{t}`"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.call("POST", &self.s("/refresh"), None).await;
        }
    }

    /// The page's HTML as the browser has it.
    pub async fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a screenshot as `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot data"))
            .expect("base64 PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Logs in on the console's form and waits for the overview.
    pub async fn login(&self, admin: &str, name: &str, password: &str) {
        self.goto(&format!("{admin}/ui/login")).await;
        self.type_into("#name", name).await;
        self.type_into("#password", password).await;
        self.click("#login-submit").await;
        self.wait("#operator").await;
    }

    /// Ends the WebDriver session (the browser quits) and chromedriver.
    pub async fn close(mut self) {
        let path = format!("/session/{}", self.session);
        self.call("DELETE", &path, None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole process group of chromedriver (its own, made at spawn): it and the browser it started.
        // Only while chromedriver is still this test's running child, so the group id is surely its.
        if matches!(self.driver.try_wait(), Ok(None)) {
            let pgid = self.driver.id();
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
