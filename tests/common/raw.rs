//! A raw HTTP/1.1 client over one TCP connection, for what ordinary clients never do: half-sent heads and
//! bodies, both framing headers at once, pipelined requests, and watching when the server closes.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
    /// Read and not yet taken as an answer.
    unread: Vec<u8>,
    closed: bool,
}

/// One answer: status, head (lower-cased) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
    }

    /// Asserts the documented error body: `{"error": {"code", "message", "details": []}}` with `code`.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        let v = self.json();
        assert_eq!(self.status, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert!(v["error"]["details"].is_array(), "{v}");
        v
    }
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            unread: Vec::new(),
            closed: false,
        }
    }

    /// Writes `bytes`; a server that already closed makes this fail, which callers may ignore.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads more, waiting until `deadline`; false when nothing more can come (closed) or the time is up.
    async fn fill(&mut self, deadline: tokio::time::Instant) -> bool {
        if self.closed {
            return false;
        }
        let mut buf = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                self.unread.extend_from_slice(&buf[..n]);
                true
            }
            Ok(_) => {
                self.closed = true;
                false
            }
            Err(_) => false,
        }
    }

    /// The next whole answer, if one arrives within `within`.
    pub async fn answer(&mut self, within: Duration) -> Option<Answer> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(a) = self.take_answer() {
                return Some(a);
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }

    fn take_answer(&mut self) -> Option<Answer> {
        let end = self.unread.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&self.unread[..end]).to_ascii_lowercase();
        let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(Some(0), |v| v.trim().parse().ok())?;
        if self.unread.len() < end + 4 + len {
            return None;
        }
        let body = self.unread[end + 4..end + 4 + len].to_vec();
        self.unread.drain(..end + 4 + len);
        Some(Answer { status, head, body })
    }

    /// Waits until the server closes the connection, at most `within`; returns how long that took, or None
    /// if it stayed open. Anything that arrives meanwhile is kept for [`Raw::answer`].
    pub async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + within;
        while self.fill(deadline).await {}
        self.closed.then(|| start.elapsed())
    }

    /// True when nothing arrives within `within` and the connection stays open.
    pub async fn quiet_for(&mut self, within: Duration) -> bool {
        let before = self.unread.len();
        let deadline = tokio::time::Instant::now() + within;
        while self.fill(deadline).await {}
        !self.closed && self.unread.len() == before
    }
}
