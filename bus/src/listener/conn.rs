//! The clock of one connection: which phase it is in (waiting, reading a head, reading a body), since when,
//! how many answers it is owed, and so when the listener must act on it.
//!
//! Why a state of its own: the three parts that see a connection — the byte reader ([`super::guard`]), the
//! service that answers requests ([`super::service`]) and the watchdog in [`super::serve_connection`] — each
//! see only part of it. The reader knows where heads and bodies begin and end, the service knows when an
//! answer is still owed, and only the watchdog can act when nothing at all happens. They share this.

use crate::config::ListenerLimits;
use crate::error::ApiError;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// After the bus gave up on a connection (a 408 or a timed-out body), how long the answer may take to go out
/// before the connection is dropped anyway.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of a next request yet; `fresh` on a new connection.
    Waiting { since: Instant, fresh: bool },
    /// Part of a head has arrived.
    Head { since: Instant },
    /// The head is through; the body is arriving.
    Body { since: Instant },
}

/// What timed out, for the reader to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Head,
    Body,
}

/// What the watchdog does when a deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Drop the connection now.
    Close(&'static str),
    /// The reader answers (408, or a failed body read); keep polling the connection, for at most [`GRACE`].
    Answer(&'static str),
}

#[derive(Debug)]
struct Clock {
    phase: Phase,
    /// Requests handed to the service whose answers are not yet fully handed back.
    owed: usize,
    /// Since when a write has been waiting for the client to read.
    write_blocked: Option<Instant>,
    expired: Option<(Expired, Instant)>,
    /// A refusal the reader stood a request in for, waiting for the service to answer it.
    refusal: Option<ApiError>,
}

/// The shared state of one connection.
#[derive(Debug)]
pub struct Conn {
    pub limits: ListenerLimits,
    /// Marks the stand-in request for a refusal (see [`super::guard`]); random per connection, so a client
    /// cannot forge one.
    pub stand_in_token: String,
    clock: Mutex<Clock>,
}

impl Conn {
    pub fn new(limits: ListenerLimits, accepted: Instant) -> Self {
        Self {
            limits,
            stand_in_token: uuid::Uuid::new_v4().simple().to_string(),
            clock: Mutex::new(Clock {
                phase: Phase::Waiting {
                    since: accepted,
                    fresh: true,
                },
                owed: 0,
                write_blocked: None,
                expired: None,
                refusal: None,
            }),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // A panic elsewhere while holding this small lock leaves consistent data; keep serving.
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of a request head have arrived and are held back (the head is not whole yet). Its clock runs
    /// from the first of them, or on a new connection from the accept.
    pub fn head_bytes(&self, now: Instant) {
        let mut c = self.clock();
        c.phase = match c.phase {
            Phase::Waiting { since, fresh: true } => Phase::Head { since },
            Phase::Waiting { .. } | Phase::Body { .. } => Phase::Head { since: now },
            head @ Phase::Head { .. } => head,
        };
    }

    /// A whole request head was handed on; `with_body` when a body follows.
    pub fn head_passed(&self, with_body: bool, now: Instant) {
        self.clock().phase = if with_body {
            Phase::Body { since: now }
        } else {
            Phase::Waiting {
                since: now,
                fresh: false,
            }
        };
    }

    /// The last byte of a request body was handed on.
    pub fn body_done(&self, now: Instant) {
        self.clock().phase = Phase::Waiting {
            since: now,
            fresh: false,
        };
    }

    pub fn request_started(&self) {
        self.clock().owed += 1;
    }

    /// An answer was handed back whole (or dropped): a kept-alive connection's idle time starts now.
    pub fn request_finished(&self, now: Instant) {
        let mut c = self.clock();
        c.owed = c.owed.saturating_sub(1);
        if c.owed == 0
            && let Phase::Waiting { fresh: false, .. } = c.phase
        {
            c.phase = Phase::Waiting {
                since: now,
                fresh: false,
            };
        }
    }

    pub fn write_blocked(&self, blocked: bool, now: Instant) {
        let mut c = self.clock();
        match (blocked, c.write_blocked) {
            (true, None) => c.write_blocked = Some(now),
            (false, Some(_)) => c.write_blocked = None,
            _ => {}
        }
    }

    pub fn set_refusal(&self, e: ApiError) {
        self.clock().refusal = Some(e);
    }

    pub fn take_refusal(&self) -> Option<ApiError> {
        self.clock().refusal.take()
    }

    pub fn expired(&self) -> Option<Expired> {
        self.clock().expired.map(|(e, _)| e)
    }

    /// When the watchdog must next look, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        let c = self.clock();
        let l = &self.limits;
        if let Some((_, at)) = c.expired {
            return Some(at + GRACE);
        }
        let phase = match c.phase {
            Phase::Waiting { since, fresh: true } => Some(since + l.header_read_timeout),
            Phase::Waiting {
                since,
                fresh: false,
            } => (c.owed == 0).then_some(since + l.idle_timeout),
            Phase::Head { since } => Some(since + l.header_read_timeout),
            Phase::Body { since } => Some(since + l.body_read_timeout),
        };
        let write = c.write_blocked.map(|t| t + l.idle_timeout);
        match (phase, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The deadline returned by [`Conn::deadline`] has passed: what now.
    pub fn expire(&self, now: Instant) -> Action {
        let mut c = self.clock();
        if c.expired.is_some() {
            return Action::Close("grace");
        }
        if c.write_blocked
            .is_some_and(|t| now >= t + self.limits.idle_timeout)
        {
            return Action::Close("write");
        }
        match c.phase {
            Phase::Waiting { fresh: true, .. } => Action::Close("header"),
            Phase::Waiting { .. } => Action::Close("idle"),
            Phase::Head { .. } => {
                c.expired = Some((Expired::Head, now));
                Action::Answer("header")
            }
            Phase::Body { .. } => {
                c.expired = Some((Expired::Body, now));
                Action::Answer("body")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ListenerLimits {
        ListenerLimits {
            section: "http",
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1,
        }
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let c = Conn::new(limits(), t0);
        // A new connection: its head is due within header_read_timeout of the accept, bytes or not.
        assert_eq!(c.deadline(), Some(s(10)));
        c.head_bytes(s(3));
        assert_eq!(c.deadline(), Some(s(10)));
        // The head is through: the body is due within body_read_timeout.
        c.head_passed(true, s(4));
        c.request_started();
        assert_eq!(c.deadline(), Some(s(64)));
        // The body is in; an answer is owed: no deadline while the handler works.
        c.body_done(s(5));
        assert_eq!(c.deadline(), None);
        // Answered: idle from then.
        c.request_finished(s(7));
        assert_eq!(c.deadline(), Some(s(37)));
        // The next head starts: header_read_timeout from its first byte.
        c.head_bytes(s(20));
        assert_eq!(c.deadline(), Some(s(30)));
        c.head_bytes(s(21));
        assert_eq!(c.deadline(), Some(s(30)), "from the first byte");
        // A client that stops reading answers: closed after idle_timeout without progress.
        c.write_blocked(true, s(21));
        assert_eq!(c.deadline(), Some(s(30)));
        c.head_passed(true, s(22));
        assert_eq!(c.deadline(), Some(s(51)));
        assert_eq!(c.expire(s(51)), Action::Close("write"));
    }

    #[test]
    fn expiry_says_what_to_do() {
        let t0 = Instant::now();
        let c = Conn::new(limits(), t0);
        assert_eq!(c.expire(t0), Action::Close("header"));
        let c = Conn::new(limits(), t0);
        c.head_bytes(t0);
        assert_eq!(c.expire(t0), Action::Answer("header"));
        assert_eq!(c.expired(), Some(Expired::Head));
        assert_eq!(c.deadline(), Some(t0 + GRACE));
        assert_eq!(c.expire(t0 + GRACE), Action::Close("grace"));
        let c = Conn::new(limits(), t0);
        c.head_passed(true, t0);
        assert_eq!(c.expire(t0), Action::Answer("body"));
        assert_eq!(c.expired(), Some(Expired::Body));
        let c = Conn::new(limits(), t0);
        c.head_bytes(t0);
        c.head_passed(false, t0);
        assert_eq!(c.expire(t0), Action::Close("idle"));
    }
}
