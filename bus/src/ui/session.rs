//! Console sessions and the brake on password guessing.
//!
//! Sessions live in memory: a restart logs everyone out, which is acceptable for a handful of operators and
//! means no session secret on disk. Ids and CSRF tokens are 244 random bits from the operating system's
//! generator. Failed logins are counted per client address and per name over a window; past the limit the
//! login form answers 429 without checking the password, so a guesser learns nothing and costs no hashing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept; the oldest is dropped past it.
const MAX_SESSIONS: usize = 10_000;

/// Failed logins allowed per client address, and per name, within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window failed logins are counted over.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Most addresses and names tracked; past it, those with no recent failure are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// 244 random bits as 64 hex digits.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One logged-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    pub csrf: String,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `name`: its id (the cookie's value).
    pub fn create(&self, name: &str, now: Instant) -> String {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let id = random_token();
        map.insert(
            id.clone(),
            Session {
                name: name.to_owned(),
                csrf: random_token(),
                last_seen: now,
            },
        );
        id
    }

    /// The live session `id`, its idle clock restarted.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(id)?;
        if now.duration_since(s.last_seen) >= IDLE {
            map.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Failed logins by client address and by name.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn keys(ip: IpAddr, name: &str) -> [String; 2] {
        [format!("ip {ip}"), format!("name {name}")]
    }

    /// None when a login may be tried now; else how long until it may (whole seconds, at least 1).
    pub fn blocked(&self, ip: IpAddr, name: &str, now: Instant) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(ip, name)
            .iter()
            .filter_map(|k| map.get(k))
            .filter_map(|q| {
                let recent: Vec<&Instant> = q
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                (recent.len() >= MAX_FAILURES).then(|| {
                    let oldest = recent[recent.len() - MAX_FAILURES];
                    (WINDOW - now.duration_since(*oldest)).as_secs().max(1)
                })
            })
            .max()
    }

    pub fn failed(&self, ip: IpAddr, name: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for k in Self::keys(ip, name) {
            if map.len() >= MAX_TRACKED && !map.contains_key(&k) {
                continue;
            }
            let q = map.entry(k).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                q.pop_front();
            }
            q.push_back(now);
            while q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }

    /// A successful login clears its name's count (not its address's: one good password must not reset a
    /// guesser's budget for other names).
    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("name {name}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let id = s.create("an", t0);
        assert_eq!(id.len(), 64);
        let got = s.get(&id, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(got.name, "an");
        assert_eq!(got.csrf.len(), 64);
        assert!(s.get(&id, t0 + Duration::from_secs(60) + IDLE).is_none());
        assert!(s.get("nope", t0).is_none());
    }

    #[test]
    fn failures_block_by_address_and_by_name_for_a_window() {
        let l = LoginLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.blocked(a, "an", t0), None, "attempt {i}");
            l.failed(a, "an", t0);
        }
        assert!(l.blocked(a, "an", t0).is_some());
        assert!(l.blocked(a, "binh", t0).is_some(), "the address is blocked");
        assert!(l.blocked(b, "an", t0).is_some(), "the name is blocked");
        assert_eq!(l.blocked(b, "binh", t0), None);
        assert_eq!(l.blocked(a, "an", t0 + WINDOW), None, "the window passed");
    }
}
