//! `[http]` and `[admin]`: the two HTTP listeners, and the connection limits each one enforces.
//!
//! Both sections carry the same four limit keys (timeouts and a connection cap), each listener its own, so a
//! flood on ingress never reaches the admin API. serde cannot flatten a shared struct into a
//! `deny_unknown_fields` one, so the keys are written out in each struct and gathered into
//! [`ListenerLimits`] for the listener and for `check`.

use super::{HumanDuration, Problem, TlsConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[http]`: the ingress API agencies' systems call.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the ingress API listens on. Default `127.0.0.1:8080`. Port 0 picks a free port (tests).
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// Largest request body accepted; larger gets 413 `payload_too_large`. Also the largest message taken from
    /// AMQP ingress (a larger one is refused the same way, into `<namespace>.rejected`) and from the document
    /// axis (`vxp-pull`); `file-in` has its own `max_file_bytes`. Default 10485760 (10 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted in an envelope; deeper gets 400 `invalid_json`. Default 64.
    #[serde(default = "default_max_depth")]
    pub max_json_depth: usize,
    /// How long a client has to send a request head (request line and headers): on a new connection counted
    /// from when it is accepted, on a kept-alive one from the first byte of the request. A head that is
    /// started but not finished in time is answered 408 `request_timeout` and the connection closed; a new
    /// connection that sends nothing is closed without an answer. Default `"10s"`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// How long the whole request body may take to arrive, counted from the end of its head. A deadline
    /// for the whole body, not per read: a client trickling bytes slowly is cut off all the same. The
    /// request is answered 408 `request_timeout` and the connection closed. At the default, a body of
    /// `max_body_bytes` (10 MiB) needs about 1.4 Mbit/s; raise it for agencies on slower links. Default
    /// `"60s"`.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// How long a kept-alive connection may wait for its next request after the last answer was sent; then
    /// it is closed. Also how long a client may leave an answer unread (the bus cannot write) before the
    /// connection is closed. Default `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Open connections the ingress listener serves at once. At the cap the bus stops accepting (it does not
    /// accept and close): further connections wait in the operating system's listen queue, up to 1024 of
    /// them, costing the bus no file descriptor, and are taken in order as served connections close; past
    /// that the system drops connection attempts and clients retry. So no number of clients can use up the
    /// file descriptors the admin API, the broker and the state store need. At start-up the bus raises its
    /// file-descriptor limit (`RLIMIT_NOFILE`) to the hard limit when this cap, `admin.max_connections` and
    /// 256 for everything else need more, and warns when even that is not enough. Default 1024.
    #[serde(default = "default_http_max_connections")]
    pub max_connections: usize,
    /// `[http.tls]`: serve ingress over TLS, optionally asking agencies for client certificates (see
    /// [`TlsConfig`]). Absent = plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}
fn default_http_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_body() -> usize {
    10 * 1024 * 1024
}
fn default_max_depth() -> usize {
    64
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration::secs(60)
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration::secs(60)
}
fn default_http_max_connections() -> usize {
    1024
}
impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
            max_body_bytes: default_max_body(),
            max_json_depth: default_max_depth(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_http_max_connections(),
            tls: None,
        }
    }
}

/// `[admin]`: health, readiness, metrics and the operator API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of `/healthz`, `/readyz`, `/metrics` and `/v1/...` operator endpoints. Default `127.0.0.1:9090`.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Env var holding a bearer token (`Authorization: Bearer <token>`) required on every admin endpoint
    /// except `/healthz` and `/readyz` (and `/metrics` with `open_metrics`): dossier and document views, the
    /// DLQ and its payloads, the audit and evidence logs, topology, lookups. Unset = the endpoints are open to
    /// whoever can reach `listen`; `check` then refuses a `listen` that is not a loopback address unless
    /// `[admin.tls] client_ca` is set.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Serve `/metrics` without the admin token (for a Prometheus scraper that cannot send one). Default
    /// false: with `token_env` set, `/metrics` needs the token like every other endpoint.
    #[serde(default)]
    pub open_metrics: bool,
    /// As `http.header_read_timeout`, for the admin listener. Default `"10s"`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// As `http.body_read_timeout`, for the admin listener (its endpoints take no body). Default `"60s"`.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// As `http.idle_timeout`, for the admin listener. Default `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Open connections the admin listener serves at once; as `http.max_connections`, but a cap of its own,
    /// so health checks, metrics scrapes and operators still get in while ingress is full. Default 64.
    #[serde(default = "default_admin_max_connections")]
    pub max_connections: usize,
    /// `[admin.tls]`: serve the admin API over TLS, optionally requiring operators' client certificates
    /// (see [`TlsConfig`]; with `client_ca`, only certificates of that CA get in). Absent = plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}
fn default_admin_max_connections() -> usize {
    64
}
impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            token_env: None,
            open_metrics: false,
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_admin_max_connections(),
            tls: None,
        }
    }
}

/// The connection limits of one listener (`[http]` or `[admin]`), as the listener applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `http` or `admin`: the config section, named in error messages and logs.
    pub section: &'static str,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ListenerLimits {
    /// What is wrong with these values, each at its key path.
    pub fn problems(&self) -> Vec<Problem> {
        let s = self.section;
        let mut problems = Vec::new();
        for (key, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                problems.push(Problem::new(
                    format!("{s}.{key}"),
                    "must be longer than 0s (every connection would be closed at once)",
                ));
            }
        }
        if self.max_connections == 0 {
            problems.push(Problem::new(
                format!("{s}.max_connections"),
                "must be at least 1",
            ));
        }
        problems
    }
}

impl HttpConfig {
    pub fn listener_limits(&self) -> ListenerLimits {
        ListenerLimits {
            section: "http",
            header_read_timeout: self.header_read_timeout.get(),
            body_read_timeout: self.body_read_timeout.get(),
            idle_timeout: self.idle_timeout.get(),
            max_connections: self.max_connections,
        }
    }
}

impl AdminConfig {
    pub fn listener_limits(&self) -> ListenerLimits {
        ListenerLimits {
            section: "admin",
            header_read_timeout: self.header_read_timeout.get(),
            body_read_timeout: self.body_read_timeout.get(),
            idle_timeout: self.idle_timeout.get(),
            max_connections: self.max_connections,
        }
    }
}

/// What is wrong with a listener address at `key`: it must be `host:port` (an IP address or a host name, and
/// a port 0–65535), as binding it will need.
pub fn listen_problem(key: &str, listen: &str) -> Option<Problem> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return None;
    }
    let well_formed = listen.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && port.parse::<u16>().is_ok()
    });
    (!well_formed).then(|| {
        Problem::new(
            key,
            format!(
                "`{}` is not an address to listen on: expected host:port, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8443\" (port 0 to 65535)",
                listen.chars().take(100).collect::<String>()
            ),
        )
    })
}

/// Listeners named twice: each later `(key, address)` that has the address of an earlier one (port 0, a free
/// port picked at start, never clashes). Two listeners cannot bind one address; `run` would stop at the
/// second.
pub fn clashing_listeners(listeners: &[(&str, &str)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, (key, listen)) in listeners.iter().enumerate() {
        let Ok(addr) = listen.parse::<std::net::SocketAddr>() else {
            continue;
        };
        if addr.port() == 0 {
            continue;
        }
        if let Some((first, _)) = listeners[..i]
            .iter()
            .find(|(_, l)| l.parse::<std::net::SocketAddr>().ok() == Some(addr))
        {
            problems.push(Problem::new(
                *key,
                format!("`{listen}` is also {first}: each listener needs an address of its own"),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod listen_tests {
    use super::*;

    #[test]
    fn listen_addresses_are_host_and_port() {
        for ok in [
            "127.0.0.1:8080",
            "0.0.0.0:0",
            "[::1]:9090",
            "localhost:8080",
            "bus-1.tinh.gov.vn:443",
        ] {
            assert!(listen_problem("http.listen", ok).is_none(), "{ok}");
        }
        for bad in [
            "not-an-addr",
            "127.0.0.1:99999",
            "127.0.0.1",
            ":8080",
            "a b:80",
            "",
        ] {
            let p = listen_problem("http.listen", bad).unwrap_or_else(|| panic!("{bad}"));
            assert_eq!(p.path, "http.listen");
        }
    }

    #[test]
    fn two_listeners_on_one_address_clash_but_port_0_never_does() {
        let p = clashing_listeners(&[
            ("http.listen", "127.0.0.1:8080"),
            ("admin.listen", "127.0.0.1:8080"),
        ]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "admin.listen");
        assert!(p[0].message.contains("http.listen"), "{}", p[0].message);
        assert!(
            clashing_listeners(&[
                ("http.listen", "127.0.0.1:0"),
                ("admin.listen", "127.0.0.1:0")
            ])
            .is_empty()
        );
        assert!(
            clashing_listeners(&[
                ("http.listen", "127.0.0.1:8080"),
                ("admin.listen", "127.0.0.1:9090")
            ])
            .is_empty()
        );
    }
}
