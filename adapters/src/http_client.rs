//! The one HTTP client policy of the adapters that call out over HTTP (`webhook`, `dvcqg`, `vxp-pull`): every
//! such adapter builds its `reqwest::Client` here, checks its URL here, and describes a failed request here.
//!
//! # Redirects are never followed
//!
//! Each of these adapters sends a credential with every request: `webhook` an `Authorization` header, `dvcqg`
//! the account's user name and password in the login body and the session in every service body, `vxp-pull`
//! the `secretKey` header. Following a redirect would hand them to whatever address the answer names. reqwest's
//! own redirect policy drops only the standard credential headers (`Authorization`, `Cookie`) when the host
//! changes: it keeps custom headers such as `secretKey`, and on a 307/308 it sends the body again, password
//! and session included. Following only same-origin redirects (same scheme, host and port) would be safe, but
//! buys nothing real: the peers are fixed integration endpoints an operator configures once, the portal's
//! calls are POSTs that reqwest turns into body-less GETs on a 301/302/303 (so they could not succeed anyway),
//! and a moved endpoint is a configuration change to make, not to discover on every call. So no redirect is
//! followed, to any address: a 3xx answer is an answer, which each adapter classifies and names as a redirect:
//!
//! - `webhook`: permanent, like any status other than 2xx, 408, 429 and 5xx (fix `url`, then replay);
//! - `dvcqg`: a redirected login is transient (like any refused login, it is not the message's fault); a
//!   redirected service call is permanent, like other non-2xx answers that are not 401/403, 408, 429 or 5xx;
//! - `vxp-pull`: a failed call like any other: logged, the document left pending at the axis for the next poll.
//!
//! # The rest of the policy
//!
//! One client per adapter, so its keep-alive pool is shared by all its calls; the overall and connect time
//! limits come from the adapter's `timeout`; every request says `User-Agent: lienthong/<version>`. A failed
//! request is described with each of its causes ([`error_chain`]), so "connection refused" or a TLS refusal is
//! visible, not only "error sending request". A peer's own words (an error description, a message) are quoted
//! in a reason only up to [`MAX_QUOTED`] characters ([`quoted`]): reasons are logged, stored with a parked
//! message, travel in AMQP headers (which must fit in one frame) and are sent back to the axis.
//!
//! Each adapter may add `tls = { ca, client_cert, client_key }` ([`ClientTls`]): trust a private CA, present
//! the province's client certificate.

mod tls;
pub use tls::ClientTls;

use lienthong_bus::config::Problem;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// `User-Agent` of every adapter request.
pub(crate) const USER_AGENT: &str = concat!("lienthong/", env!("CARGO_PKG_VERSION"));

/// How one adapter's client behaves; everything else is [the policy](self).
pub(crate) struct ClientOptions {
    /// Limit for one whole request (connect, send, answer).
    pub timeout: Duration,
    /// Limit for opening the connection.
    pub connect_timeout: Duration,
    /// Headers sent with every request (static headers, a bearer token).
    pub headers: HeaderMap,
    /// The adapter's `tls` table, paths already resolved ([`ClientTls::resolved`]).
    pub tls: Option<ClientTls>,
}

impl ClientOptions {
    /// `timeout` for both the whole request and the connection, no default headers.
    pub(crate) fn timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            connect_timeout: timeout,
            headers: HeaderMap::new(),
            tls: None,
        }
    }

    /// With the adapter's `tls` table (resolved against the config file's folder).
    pub(crate) fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }
}

/// A client that follows no redirect, with the adapter's time limits, default headers and our User-Agent.
pub(crate) fn client(options: ClientOptions) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(tls) = &options.tls {
        let loaded = tls.load().map_err(|ps| {
            ps.into_iter()
                .map(|(key, m)| format!("tls.{key}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        if !loaded.roots.is_empty() {
            builder = builder.tls_certs_only(loaded.roots);
        }
        if let Some(identity) = loaded.identity {
            builder = builder.identity(identity);
        }
    }
    builder
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .default_headers(options.headers)
        .build()
        .map_err(|e| format!("cannot create the HTTP client: {e}"))
}

/// `value` as an `http://` or `https://` URL with a host, or a problem at `path` saying why not.
pub(crate) fn http_url(path: String, value: &str) -> Result<Url, Problem> {
    match Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        Ok(_) => Err(Problem::new(
            path,
            "must be an http:// or https:// URL with a host",
        )),
        Err(e) => Err(Problem::new(path, format!("not a URL: {e}"))),
    }
}

/// For a 3xx status, a note saying the answer was a redirect that was not followed; nothing otherwise. Appended
/// to the reason of a failed call so an operator sees at once that the configured address points elsewhere.
pub(crate) fn redirect_note(status: StatusCode) -> &'static str {
    if status.is_redirection() {
        " (a redirect, not followed: check the configured URL)"
    } else {
        ""
    }
}

/// `e` and each of its causes, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
pub(crate) mod redirect_trap;

#[cfg(test)]
mod tls_tests;

/// Most characters of a peer's own words quoted in a reason.
pub(crate) const MAX_QUOTED: usize = 300;

/// Most characters of a peer's error code quoted in a reason (real codes are a few characters).
pub(crate) const MAX_QUOTED_CODE: usize = 40;

/// `text` as quoted in a reason: at most [`MAX_QUOTED`] characters, a longer one cut and ended with `…`.
pub(crate) fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    cut(text, MAX_QUOTED)
}

/// `text` cut to `max` characters, ended with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_trap::{Trap, redirector};
    use super::*;

    /// Not even a same-origin redirect is followed: the 3xx comes back as the answer.
    #[tokio::test]
    async fn no_redirect_is_followed_not_even_to_the_same_origin() {
        let trap = Trap::start().await;
        let same_origin = redirector(307, "").await;
        let other_origin = redirector(302, &trap.url).await;
        let http = client(ClientOptions::timeout(Duration::from_secs(5))).unwrap();
        for (url, status) in [(same_origin, 307), (other_origin, 302)] {
            let resp = http.get(format!("{url}/x")).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), status);
        }
        assert_eq!(trap.requests(), Vec::<String>::new());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        let at = || "adapters[0].url".to_owned();
        assert!(http_url(at(), "https://lgsp.example.gov.vn/dvcqg").is_ok());
        for bad in ["ftp://example.org/in", "vxp.example.gov.vn", "http://", "x"] {
            let p = http_url(at(), bad).unwrap_err();
            assert_eq!(p.path, "adapters[0].url", "{bad}");
        }
    }

    #[test]
    fn errors_name_their_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(error_chain(&e), "request failed: connection reset");
    }
}
