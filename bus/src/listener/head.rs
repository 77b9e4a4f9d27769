//! Follows the bytes of one HTTP/1.1 connection a step ahead of the HTTP layer: every request head is checked
//! whole before it is handed on, and each body is followed through its framing so the next head is found.
//!
//! Why: the HTTP layer (hyper) answers a malformed head itself, with an empty body, before any handler runs;
//! and when a request carries both `Transfer-Encoding: chunked` and `Content-Length` it quietly drops the
//! latter, so no handler can tell. Reading the raw head here lets the bus refuse those heads with its own JSON
//! error, and refuse ambiguous framing (a request-smuggling pattern) outright. The checks are hyper's or
//! stricter, so a head that passes here is never refused by hyper. Where a body's framing is broken in a way
//! hyper refuses while reading the body, this reader stops following and passes bytes through unchanged.
//! Knowing where each head and body starts and ends also gives the listener its header and body timeouts.

use crate::error::{ApiError, code};

/// Largest request head read (request line and headers); larger is refused 431 `headers_too_large`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines in one head (hyper's own limit, so the two agree); more is refused 431.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line followed; hyper refuses chunk extensions past 16 KiB a body.
const MAX_CHUNK_LINE: usize = 20 * 1024;
/// Most trailer bytes followed; hyper refuses trailers past 16 KiB.
const MAX_TRAILERS: usize = 20 * 1024;

/// What may happen to the bytes at the front of the unread data.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The first `n` bytes may go on to the HTTP layer.
    Pass(usize),
    /// Nothing can go on before more bytes arrive (an unfinished head or chunk-size line).
    More,
    /// The head at the front is refused; nothing more should be read from this connection.
    Refuse(ApiError),
}

/// Where in the request stream the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for, or reading, a request head.
    Head,
    /// Reading a request body.
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Bytes left of a `Content-Length` body.
    Fixed(u64),
    ChunkSize,
    /// Bytes left of the current chunk.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer lines until an empty one; trailer bytes so far.
    Trailers(usize),
    /// Lost track of the framing (hyper refuses such a body as it reads it): everything passes.
    Opaque,
}

/// The request-stream reader of one connection.
#[derive(Debug)]
pub struct Reader {
    state: State,
    /// How much of the unread data was already searched for the end of a head.
    searched: usize,
    /// Request heads passed so far.
    heads: u64,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    pub fn new() -> Self {
        Self {
            state: State::Head,
            searched: 0,
            heads: 0,
        }
    }

    /// How many request heads have been passed (empty lines before a head are not one).
    pub fn heads(&self) -> u64 {
        self.heads
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Head => Phase::Head,
            _ => Phase::Body,
        }
    }

    /// How many bytes may be read straight into the HTTP layer's buffer: body bytes needing no look.
    pub fn body_bytes_ahead(&self) -> u64 {
        match self.state {
            State::Fixed(n) | State::ChunkData(n) => n,
            State::Opaque => u64::MAX,
            _ => 0,
        }
    }

    /// Decides about the front of `data` (the bytes read but not yet handed on, never empty).
    pub fn step(&mut self, data: &[u8]) -> Step {
        if data.is_empty() {
            return Step::More;
        }
        match self.state {
            State::Head => self.head(data),
            State::Fixed(left) | State::ChunkData(left) => {
                let n = left.min(data.len() as u64);
                let left = left - n;
                self.state = match (self.state, left) {
                    (State::Fixed(_), 0) => State::Head,
                    (State::Fixed(_), l) => State::Fixed(l),
                    (_, 0) => State::ChunkEnd,
                    (_, l) => State::ChunkData(l),
                };
                Step::Pass(n as usize)
            }
            State::ChunkSize => match line(data, MAX_CHUNK_LINE) {
                Line::Incomplete => Step::More,
                Line::TooLong => self.lose_track(data),
                Line::Complete(text, n) => match chunk_size(text) {
                    Some(0) => {
                        self.state = State::Trailers(0);
                        Step::Pass(n)
                    }
                    Some(size) => {
                        self.state = State::ChunkData(size);
                        Step::Pass(n)
                    }
                    None => self.lose_track(data),
                },
            },
            State::ChunkEnd => match data {
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Step::Pass(2)
                }
                [b'\r'] => Step::More,
                _ => self.lose_track(data),
            },
            State::Trailers(seen) => match line(data, MAX_TRAILERS.saturating_sub(seen)) {
                Line::Incomplete => Step::More,
                Line::TooLong => self.lose_track(data),
                Line::Complete(text, n) => {
                    self.state = if text.is_empty() {
                        State::Head
                    } else {
                        State::Trailers(seen + n)
                    };
                    Step::Pass(n)
                }
            },
            State::Opaque => Step::Pass(data.len()),
        }
    }

    fn lose_track(&mut self, data: &[u8]) -> Step {
        self.state = State::Opaque;
        Step::Pass(data.len())
    }

    fn head(&mut self, data: &[u8]) -> Step {
        // Empty lines before a request line are allowed (RFC 9112 §2.2); hand them on as they are.
        let blank = leading_empty_lines(data);
        if blank > 0 {
            self.searched = 0;
            return Step::Pass(blank);
        }
        if data[0] == b'\r' {
            return if data.len() == 1 {
                Step::More
            } else {
                Step::Refuse(bad("a request must start with its request line"))
            };
        }
        // Parse only once the head can be whole (a blank line has arrived): a head trickled in byte by byte
        // is searched once, not parsed once a byte.
        let tail = &data[self.searched.saturating_sub(2)..];
        let ends = tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n");
        if ends {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(data) {
                Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
                    return Step::Refuse(too_large());
                }
                Ok(httparse::Status::Complete(n)) => {
                    self.searched = 0;
                    return match framing(&req) {
                        Ok(state) => {
                            self.state = state;
                            self.heads += 1;
                            Step::Pass(n)
                        }
                        Err(e) => Step::Refuse(e),
                    };
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Step::Refuse(too_large()),
                Err(e) => return Step::Refuse(bad(format!("malformed request head: {e}"))),
            }
        }
        self.searched = data.len();
        if data.len() > MAX_HEAD_BYTES {
            return Step::Refuse(too_large());
        }
        Step::More
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(code::BAD_REQUEST, message)
}

fn too_large() -> ApiError {
    ApiError::new(
        code::HEADERS_TOO_LARGE,
        format!(
            "the request head is larger than {} KiB or has more than {MAX_HEADERS} header lines",
            MAX_HEAD_BYTES / 1024
        ),
    )
}

/// A header value for a message: lossy text, cut short.
fn shown(value: &[u8]) -> String {
    String::from_utf8_lossy(value).chars().take(40).collect()
}

/// Checks a parsed head and says how its body is framed.
fn framing(req: &httparse::Request<'_, '_>) -> Result<State, ApiError> {
    let target = req.path.unwrap_or_default();
    if axum::http::Uri::try_from(target).is_err() {
        return Err(bad(format!(
            "request target `{}` is not a valid URI",
            shown(target.as_bytes())
        )));
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(bad("Content-Length is given more than once"));
            }
            let digits =
                !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit);
            let n = std::str::from_utf8(value).ok().filter(|_| digits);
            length = Some(n.and_then(|n| n.parse().ok()).ok_or_else(|| {
                bad(format!(
                    "Content-Length `{}` is not a number of bytes",
                    shown(value)
                ))
            })?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if req.version == Some(0) {
                return Err(bad(
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request",
                ));
            }
            if chunked {
                return Err(bad("Transfer-Encoding is given more than once"));
            }
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(bad(format!(
                    "Transfer-Encoding `{}` is not supported; only `chunked` is",
                    shown(value)
                )));
            }
            chunked = true;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err(bad(
            "both Transfer-Encoding and Content-Length are given, so the length of the body is ambiguous \
             (a request-smuggling pattern); send only one of them",
        )),
        (true, None) => Ok(State::ChunkSize),
        (false, Some(n)) if n > 0 => Ok(State::Fixed(n)),
        _ => Ok(State::Head),
    }
}

/// How many bytes at the front of `data` are whole empty lines (`\r\n` or `\n`).
fn leading_empty_lines(data: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match &data[i..] {
            [b'\n', ..] => i += 1,
            [b'\r', b'\n', ..] => i += 2,
            _ => return i,
        }
    }
}

enum Line<'a> {
    /// The line without its line ending, and its length with the line ending.
    Complete(&'a [u8], usize),
    Incomplete,
    TooLong,
}

fn line(data: &[u8], max: usize) -> Line<'_> {
    match memchr::memchr(b'\n', data) {
        Some(i) if i < max => {
            let text = &data[..i];
            Line::Complete(text.strip_suffix(b"\r").unwrap_or(text), i + 1)
        }
        Some(_) => Line::TooLong,
        None if data.len() >= max => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// The size of a chunk-size line (`1a2b;ext=1`), if it is one.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if hex.is_empty() || hex.len() > 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

#[cfg(test)]
mod tests;
