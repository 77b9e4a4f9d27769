//! How many lookups one client may make: a token bucket per client address (`[public] rate`).
//!
//! Why per address and per IPv6 /64: a citizen's lookups come from one address, and a home or mobile IPv6
//! connection is given a whole /64, so counting single IPv6 addresses would let one client rotate through
//! them. The table of clients is bounded: when it is full, clients whose bucket has refilled are forgotten
//! (they are indistinguishable from new ones), and if it is still full the lookup is refused for now rather
//! than the table growing without end.

use crate::config::Rate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most clients tracked at once.
const MAX_CLIENTS: usize = 100_000;

/// One bucket per client.
pub struct Limiter {
    capacity: f64,
    per_sec: f64,
    clients: Mutex<HashMap<u128, Bucket>>,
    max_clients: usize,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
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
            capacity: f64::from(rate.count),
            per_sec: f64::from(rate.count) / rate.per.as_secs_f64().max(0.001),
            clients: Mutex::new(HashMap::new()),
            max_clients,
        }
    }

    /// Takes one lookup from `ip`'s bucket; when it is empty, how long until there is one (whole seconds, at
    /// least 1, for `Retry-After`).
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = client(ip);
        if !clients.contains_key(&key) && clients.len() >= self.max_clients {
            let (capacity, per_sec) = (self.capacity, self.per_sec);
            clients.retain(|_, b| refilled(b, now, per_sec) < capacity);
            if clients.len() >= self.max_clients {
                return Err(self.wait_for_one(0.0));
            }
        }
        let b = clients.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        b.tokens = refilled(b, now, self.per_sec).min(self.capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait_for_one(b.tokens))
        }
    }

    fn wait_for_one(&self, tokens: f64) -> u64 {
        let secs = Duration::from_secs_f64(((1.0 - tokens) / self.per_sec).max(0.0));
        secs.as_secs_f64().ceil().max(1.0) as u64
    }
}

fn refilled(b: &Bucket, now: Instant, per_sec: f64) -> f64 {
    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec
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
    fn the_31st_lookup_in_a_minute_waits_for_the_bucket_to_refill() {
        let l = Limiter::new(per_minute(30));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..30 {
            assert_eq!(l.take(ip, t0), Ok(()), "lookup {}", i + 1);
        }
        assert_eq!(l.take(ip, t0), Err(2), "one more every 2 s");
        // Another client has its own bucket.
        assert_eq!(l.take("203.0.113.10".parse().unwrap(), t0), Ok(()));
        assert_eq!(l.take(ip, t0 + Duration::from_secs(2)), Ok(()));
        assert!(l.take(ip, t0 + Duration::from_secs(2)).is_err());
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
        // Once theirs have refilled they are forgotten, and the third gets in.
        assert!(l.take(ip(3), t + Duration::from_secs(60)).is_ok());
        assert_eq!(l.clients.lock().unwrap().len(), 1);
    }
}
