//! How many lookups one client may make: at most `[public] rate` in any window of its length, per client
//! address.
//!
//! Why a sliding window and not a token bucket: "30/min" is read by citizens' advocates and testers alike as
//! "never more than 30 in a minute"; a bucket of 30 refilled at one every 2 s lets a client make about 60 in a
//! minute if it spreads them out. The window is kept as 61 slots of a sixtieth of the period each (a second for
//! "/min"), counting the current slot and the 60 before it, so a refusal never comes later than the rate says
//! (at most a slot earlier) and each client costs a fixed 256 bytes whatever the rate.
//!
//! Why per address and per IPv6 /64: a citizen's lookups come from one address, and a home or mobile IPv6
//! connection is given a whole /64, so counting single IPv6 addresses would let one client rotate through
//! them. The table of clients is bounded: when it is full, clients with nothing left in their window are
//! forgotten (they are indistinguishable from new ones), and if it is still full the lookup is refused for now
//! rather than the table growing without end.

use crate::config::Rate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most clients tracked at once.
const MAX_CLIENTS: usize = 100_000;
/// Slots a window is cut into; one more is counted so the window covers at least the whole period.
const SLICES: u64 = 60;
const SLOTS: usize = SLICES as usize + 1;

/// One window per client.
pub struct Limiter {
    count: u32,
    /// Length of a slot.
    slot: Duration,
    epoch: Instant,
    clients: Mutex<HashMap<u128, Window>>,
    max_clients: usize,
}

/// Lookups per slot over the last [`SLOTS`] slots; `last` is the newest slot counted.
struct Window {
    counts: [u32; SLOTS],
    last: u64,
}

impl Window {
    /// Moves the window up to slot `now`, emptying the slots it leaves behind.
    fn advance(&mut self, now: u64) {
        if now <= self.last {
            return;
        }
        if now - self.last >= SLOTS as u64 {
            self.counts = [0; SLOTS];
        } else {
            for s in self.last + 1..=now {
                self.counts[(s % SLOTS as u64) as usize] = 0;
            }
        }
        self.last = now;
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The oldest slot still holding a lookup.
    fn oldest(&self) -> Option<u64> {
        let first = self.last.saturating_sub(SLOTS as u64 - 1);
        (first..=self.last).find(|s| self.counts[(s % SLOTS as u64) as usize] > 0)
    }
}

/// The client a peer address counts as: an IPv4 address (also when written as IPv4-mapped IPv6), or an IPv6
/// /64 network.
fn client(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64) << 64 | 1,
        },
    }
}

impl Limiter {
    pub fn new(rate: Rate) -> Limiter {
        Self::with_max_clients(rate, MAX_CLIENTS)
    }

    fn with_max_clients(rate: Rate, max_clients: usize) -> Limiter {
        Limiter {
            count: rate.count,
            slot: (rate.per / SLICES as u32).max(Duration::from_millis(1)),
            epoch: Instant::now(),
            clients: Mutex::new(HashMap::new()),
            max_clients,
        }
    }

    fn slot_of(&self, now: Instant) -> u64 {
        let ms = now.saturating_duration_since(self.epoch).as_nanos();
        (ms / self.slot.as_nanos().max(1)) as u64
    }

    /// Counts one lookup from `ip`; when its window is full, how long until the oldest lookup in it leaves
    /// (whole seconds, at least 1, for `Retry-After`).
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = client(ip);
        let slot = self.slot_of(now);
        if !clients.contains_key(&key) && clients.len() >= self.max_clients {
            clients.retain(|_, w| {
                w.advance(slot);
                w.total() > 0
            });
            if clients.len() >= self.max_clients {
                return Err(self.secs_until(SLOTS as u64, now));
            }
        }
        let w = clients.entry(key).or_insert(Window {
            counts: [0; SLOTS],
            last: slot,
        });
        w.advance(slot);
        if w.total() < u64::from(self.count) {
            w.counts[(slot % SLOTS as u64) as usize] += 1;
            return Ok(());
        }
        let frees = w.oldest().unwrap_or(slot) + SLOTS as u64;
        Err(self.secs_until(frees, now))
    }

    /// Whole seconds (at least 1) from `now` until slot `slot` begins.
    fn secs_until(&self, slot: u64, now: Instant) -> u64 {
        let at = self.epoch + self.slot * u32::try_from(slot).unwrap_or(u32::MAX);
        at.saturating_duration_since(now)
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(n: u32) -> Rate {
        Rate {
            count: n,
            per: Duration::from_secs(60),
        }
    }

    #[test]
    fn never_more_than_the_rate_in_any_window_however_spread() {
        let l = Limiter::new(per_minute(30));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let t0 = Instant::now();
        // 30 lookups a quarter of a second apart, then the 31st, still inside the minute: refused.
        for i in 0..30 {
            let t = t0 + Duration::from_millis(250 * i);
            assert_eq!(l.take(ip, t), Ok(()), "lookup {}", i + 1);
        }
        let t31 = t0 + Duration::from_millis(250 * 30);
        let wait = l.take(ip, t31).expect_err("the 31st lookup in a minute");
        assert!((52..=54).contains(&wait), "Retry-After {wait}");
        // Refused all minute long, even spread out.
        for s in [10, 30, 58] {
            assert!(l.take(ip, t0 + Duration::from_secs(s)).is_err(), "at {s} s");
        }
        // Another client has its own window.
        assert_eq!(l.take("203.0.113.10".parse().unwrap(), t31), Ok(()));
        // Once the first lookups leave the window, as many come back.
        let later = t0 + Duration::from_secs(62);
        assert_eq!(l.take(ip, later), Ok(()));
    }

    #[test]
    fn no_sixty_second_span_holds_more_than_the_rate() {
        // One lookup every 1.9 s for five minutes: every span of 60 s may hold at most 30 that were let in.
        let l = Limiter::new(per_minute(30));
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let t0 = Instant::now();
        let mut let_in = Vec::new();
        for i in 0..160u64 {
            let t = t0 + Duration::from_millis(1900 * i);
            if l.take(ip, t).is_ok() {
                let_in.push(t);
            }
        }
        for (i, &t) in let_in.iter().enumerate() {
            let within = let_in[i..]
                .iter()
                .take_while(|&&u| u < t + Duration::from_secs(60))
                .count();
            assert!(within <= 30, "{within} in the minute from lookup {i}");
        }
        assert!(let_in.len() >= 140, "only {} let in", let_in.len());
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_mapped_ipv4_is_ipv4() {
        let l = Limiter::new(per_minute(1));
        let t = Instant::now();
        assert_eq!(l.take("2001:db8:1:2::1".parse().unwrap(), t), Ok(()));
        assert!(l.take("2001:db8:1:2::ffff".parse().unwrap(), t).is_err());
        assert_eq!(l.take("2001:db8:1:3::1".parse().unwrap(), t), Ok(()));
        assert_eq!(l.take("192.0.2.1".parse().unwrap(), t), Ok(()));
        assert!(l.take("::ffff:192.0.2.1".parse().unwrap(), t).is_err());
    }

    #[test]
    fn the_table_of_clients_is_bounded() {
        let l = Limiter::with_max_clients(per_minute(2), 2);
        let t = Instant::now();
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        assert!(l.take(ip(1), t).is_ok());
        assert!(l.take(ip(2), t).is_ok());
        // Full of clients still counting: a third is refused for now.
        assert!(l.take(ip(3), t).is_err());
        // Once their windows are empty they are forgotten, and the third gets in.
        assert!(l.take(ip(3), t + Duration::from_secs(62)).is_ok());
        assert_eq!(l.clients.lock().unwrap().len(), 1);
    }
}
