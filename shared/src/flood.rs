//! Rate limits driven by an external clock, on top of `governor`.
//!
//! `governor` reads time from a [`Clock`]; here that clock is a cell the
//! caller sets to `now` before each check, so the core stays free of real
//! time and tests can move time at will. Two users:
//! - [`PeerFloodGuard`]: per-peer message rate inside a room, with a rule for
//!   kicking a peer that keeps flooding.
//! - [`ConnectLimiter`]: per-IP connection attempts in the router.
//!
//! Both keep state in memory only: losing it (a room evicted, an isolate
//! recycled) merely forgives a client, which is harmless.

use crate::flat_map::FlatMap;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::Duration;

/// A clock whose time is whatever the caller last set.
#[derive(Debug, Clone, Default)]
pub struct ExternalClock {
    now: Rc<Cell<Duration>>,
}

impl ExternalClock {
    /// Moves the clock to `now_ms`; time never runs backwards.
    pub fn set_ms(&self, now_ms: u64) {
        let next = Duration::from_millis(now_ms);
        if next > self.now.get() {
            self.now.set(next);
        }
    }
}

impl Clock for ExternalClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.now.get()
    }
}

/// One peer's GCRA bucket, on the caller's clock.
type PeerLimiter = RateLimiter<NotKeyed, InMemoryState, ExternalClock, NoOpMiddleware<Duration>>;

/// What to do with one frame from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the rate: handle the frame.
    Pass,
    /// Over the rate: drop this frame, keep the peer.
    Drop,
    /// Kept flooding: drop the frame, send ERROR "Rate limit exceeded" and close.
    Kick,
}

/// How long the flood window is; a peer that has more than
/// `FLOOD_WINDOW_SECS * rate` frames *dropped* inside one window has been
/// sending at more than twice its rate for the whole window.
pub const FLOOD_WINDOW_MS: u64 = 3_000;

/// How long a window of dropped frames lasts for [`PeerFloodGuard::note_drop`].
pub const DROP_WINDOW_MS: u64 = 10_000;
/// Frames a peer may get wrong (malformed, no type, a bad dst) in one
/// window; one more and it is closed. A correct client sends none.
pub const MAX_FAULTY_FRAMES: u32 = 20;
/// Oversized frames a peer may send in one window before it is closed with
/// 1009: each costs a copy of up to the runtime's 32 MiB frame limit.
pub const MAX_OVERSIZED_FRAMES: u32 = 3;

/// What to do about one dropped frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropVerdict {
    /// The first drop of the peer's window: log it at warn, with how many
    /// drops the previous window did not log.
    Log { unlogged_before: u32 },
    /// Counted, logged at debug only: one warn line per peer per window.
    Quiet,
    /// The peer keeps sending what a correct client never sends: close it.
    Kick(KickFor),
}

/// Why a peer's drops got it closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickFor {
    Faulty,
    Oversized,
    /// Past `MAX_NEW_DESTINATIONS_PER_MINUTE` (open namespace).
    Destinations,
}

/// How long a peer's set of recent destinations lasts.
pub const DESTINATION_WINDOW_MS: u64 = 60_000;

/// What kind of drop [`PeerFloodGuard::note_drop`] is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// Not the client's fault (a full queue, an offline destination).
    Blameless,
    /// A frame a correct client never sends.
    Faulty,
    /// Larger than the message size limit.
    Oversized,
}

#[derive(Debug, Clone, Copy)]
struct DropWindow {
    start_ms: u64,
    drops: u32,
    faulty: u32,
    oversized: u32,
}

/// Per-peer message rate limit for one room.
pub struct PeerFloodGuard {
    per_second: u32,
    /// Per peer: the current window of dropped frames (bounded like `windows`).
    drops: FlatMap<String, DropWindow>,
    /// The quota and the clock every peer's bucket reads; `None` when the
    /// limit is off.
    rate: Option<(Quota, ExternalClock)>,
    /// Per peer: its bucket (bounded like `drops`). A flat sorted map, as
    /// are the others here: a room holds a handful of peers, and one map
    /// type keeps the rooms bundle small.
    buckets: FlatMap<String, PeerLimiter>,
    windows: FlatMap<String, (u64, u32)>,
    /// (sender, destination) pairs told EXPIRE for a dropped message, and
    /// when (bounded like `drops`).
    expires_told: FlatMap<(String, String), u64>,
    /// Per peer: when its window of destinations began, and the ids it
    /// reached since (bounded like `drops`; at most the limit per peer).
    destinations: FlatMap<String, (u64, Vec<String>)>,
}

/// Peers one guard keeps a window for at most; past it, the windows are
/// forgotten (which forgives, never blames).
const MAX_TRACKED_PEERS: usize = 64;

/// `peer`'s entry in one of the guard's per-peer maps, made with `fresh`
/// when absent; a full map is cleared first, so it stays bounded.
fn tracked<'m, V>(
    map: &'m mut FlatMap<String, V>,
    peer: &str,
    fresh: impl FnOnce() -> V,
) -> &'m mut V {
    if map.len() >= MAX_TRACKED_PEERS && !map.contains_key(peer) {
        map.clear();
    }
    map.entry(peer.to_owned()).or_insert_with(fresh)
}

impl PeerFloodGuard {
    /// `per_second` of 0 disables the limit.
    pub fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second).map(|rate| {
            (
                Quota::per_second(rate).allow_burst(rate),
                ExternalClock::default(),
            )
        });
        PeerFloodGuard {
            per_second,
            drops: FlatMap::new(),
            rate,
            buckets: FlatMap::new(),
            windows: FlatMap::new(),
            expires_told: FlatMap::new(),
            destinations: FlatMap::new(),
        }
    }

    /// Whether `peer` may send to `dst` now: a destination it reached in
    /// the current minute always; a new one while it has reached fewer than
    /// `limit` in it. Each frame to another object costs a request between
    /// objects, and each destination may hold a queue, so a peer paced
    /// under the rate limit must not touch any number of them.
    pub fn may_reach(&mut self, peer: &str, dst: &str, limit: usize, now_ms: u64) -> bool {
        let window = tracked(&mut self.destinations, peer, || (now_ms, Vec::new()));
        if now_ms.saturating_sub(window.0) >= DESTINATION_WINDOW_MS {
            *window = (now_ms, Vec::new());
        }
        if window.1.iter().any(|d| d == dst) {
            return true;
        }
        if window.1.len() >= limit {
            return false;
        }
        window.1.push(dst.to_owned());
        true
    }

    /// Whether `src` is to be told EXPIRE for a message to `dst` the server
    /// dropped: once per pair per [`DROP_WINDOW_MS`], so a burst of drops
    /// is one error at the client, not one per frame. Forgotten with the
    /// object's memory: at worst a pair is told twice.
    pub fn first_expire(&mut self, src: &str, dst: &str, now_ms: u64) -> bool {
        let pair = (src.to_owned(), dst.to_owned());
        if let Some(told_ms) = self.expires_told.get(&pair) {
            if now_ms.saturating_sub(*told_ms) < DROP_WINDOW_MS {
                return false;
            }
        }
        if self.expires_told.len() >= MAX_TRACKED_PEERS {
            self.expires_told
                .retain(|_, told_ms| now_ms.saturating_sub(*told_ms) < DROP_WINDOW_MS);
            if self.expires_told.len() >= MAX_TRACKED_PEERS {
                self.expires_told.clear();
            }
        }
        self.expires_told.insert(pair, now_ms);
        true
    }

    /// Notes a dropped frame from `peer`: whether to log it loudly, quietly,
    /// or close the peer. Keeps a flood of bad frames from becoming a flood
    /// of warn lines, and a peer that only sends garbage from staying.
    pub fn note_drop(&mut self, peer: &str, kind: DropKind, now_ms: u64) -> DropVerdict {
        let fresh = DropWindow {
            start_ms: now_ms,
            drops: 0,
            faulty: 0,
            oversized: 0,
        };
        let window = tracked(&mut self.drops, peer, || fresh);
        let mut unlogged_before = 0;
        if now_ms.saturating_sub(window.start_ms) >= DROP_WINDOW_MS {
            unlogged_before = window.drops.saturating_sub(1);
            *window = fresh;
        }
        window.drops += 1;
        match kind {
            DropKind::Blameless => {}
            DropKind::Faulty => window.faulty += 1,
            DropKind::Oversized => window.oversized += 1,
        }
        if window.oversized > MAX_OVERSIZED_FRAMES {
            self.drops.remove(peer);
            return DropVerdict::Kick(KickFor::Oversized);
        }
        if window.faulty + window.oversized > MAX_FAULTY_FRAMES {
            self.drops.remove(peer);
            return DropVerdict::Kick(KickFor::Faulty);
        }
        if window.drops == 1 {
            DropVerdict::Log { unlogged_before }
        } else {
            DropVerdict::Quiet
        }
    }

    pub fn admit(&mut self, peer: &str, now_ms: u64) -> Admit {
        let Some((quota, clock)) = &self.rate else {
            return Admit::Pass;
        };
        clock.set_ms(now_ms);
        // Not `tracked`: this runs for every frame, and a known peer's
        // bucket is found without a copy of its id.
        let passed = match self.buckets.get(peer) {
            Some(bucket) => bucket.check().is_ok(),
            None => {
                if self.buckets.len() >= MAX_TRACKED_PEERS {
                    self.buckets.clear();
                }
                let bucket = RateLimiter::direct_with_clock(*quota, clock.clone());
                let passed = bucket.check().is_ok();
                self.buckets.insert(peer.to_owned(), bucket);
                passed
            }
        };
        if passed {
            return Admit::Pass;
        }
        let window = tracked(&mut self.windows, peer, || (now_ms, 0));
        if now_ms.saturating_sub(window.0) >= FLOOD_WINDOW_MS {
            *window = (now_ms, 0);
        }
        window.1 += 1;
        let allowed_drops = u64::from(self.per_second) * FLOOD_WINDOW_MS / 1000;
        if u64::from(window.1) > allowed_drops {
            self.windows.remove(peer);
            Admit::Kick
        } else {
            Admit::Drop
        }
    }

    /// Forgets a peer (it left or was kicked) so a new socket starts clean.
    pub fn forget(&mut self, peer: &str) {
        self.windows.remove(peer);
        self.drops.remove(peer);
        self.destinations.remove(peer);
    }
}

/// Per-client connection attempts per minute, with a burst. The client is
/// a [`client_key`]; the table holds at most [`MAX_TRACKED_IPS`] keys and,
/// when full, first forgets clients whose budget has refilled (forgetting
/// them forgives nothing), then the least recently seen eighth, so an
/// address that is out of budget stays so however many others come.
///
/// The arithmetic is governor's GCRA; the table is ours ([`ClientTable`]),
/// since governor's own keyed stores cannot evict one key.
pub struct ConnectLimiter {
    clock: ExternalClock,
    /// The limiter's table, shared to count it.
    clients: Rc<RefCell<HashMap<String, Client>>>,
    /// `None` when the limit is off (`per_minute` of 0).
    limiter: Option<RateLimiter<String, ClientTable, ExternalClock, NoOpMiddleware<Duration>>>,
}

/// Most distinct clients one isolate remembers.
pub const MAX_TRACKED_IPS: usize = 10_000;

impl ConnectLimiter {
    /// `per_minute` of 0 disables the limit; `burst` of 0 means "same as per_minute".
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let clock = ExternalClock::default();
        let table = ClientTable::new(clock.clone());
        let clients = Rc::clone(&table.clients);
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            let quota = Quota::per_minute(rate).allow_burst(burst);
            // Created at the clock's zero, so governor's stored times are
            // plain times since the epoch, which the table compares with now.
            RateLimiter::new(quota, table, clock.clone())
        });
        ConnectLimiter {
            clock,
            clients,
            limiter,
        }
    }

    /// True when the client `key` may connect now.
    pub fn allow(&mut self, key: &str, now_ms: u64) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        self.clock.set_ms(now_ms);
        limiter.check_key(&key.to_owned()).is_ok()
    }

    /// How many clients the table holds now.
    pub fn tracked(&self) -> usize {
        self.clients.borrow().len()
    }

    /// Seconds until `ip` may try again, for `Retry-After` (at least 1).
    pub fn retry_after_secs(per_minute: u32) -> u64 {
        if per_minute == 0 {
            1
        } else {
            (60 / u64::from(per_minute)).max(1)
        }
    }
}

/// governor's state (a client's theoretical arrival time) for at most
/// [`MAX_TRACKED_IPS`] clients, with when each last called.
pub struct ClientTable {
    clock: ExternalClock,
    clients: Rc<RefCell<HashMap<String, Client>>>,
    calls: Cell<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Client {
    /// When the client's budget is full again (governor's state).
    tat: Nanos,
    /// The table's call count when this client last called: recency.
    seen: u64,
}

impl ClientTable {
    fn new(clock: ExternalClock) -> Self {
        ClientTable {
            clock,
            clients: Rc::new(RefCell::new(HashMap::new())),
            calls: Cell::new(0),
        }
    }

    /// Forgets the clients whose budget has refilled, then, if the table is
    /// still full, the least recently seen eighth.
    fn make_room(clients: &mut HashMap<String, Client>, now: Nanos) {
        clients.retain(|_, c| c.tat > now);
        if clients.len() < MAX_TRACKED_IPS {
            return;
        }
        let mut seen: Vec<u64> = clients.values().map(|c| c.seen).collect();
        let eighth = seen.len() / 8;
        let (_, cutoff, _) = seen.select_nth_unstable(eighth);
        let cutoff = *cutoff;
        clients.retain(|_, c| c.seen > cutoff);
    }
}

impl StateStore for ClientTable {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut clients = self.clients.borrow_mut();
        if !clients.contains_key(key) && clients.len() >= MAX_TRACKED_IPS {
            Self::make_room(&mut clients, Nanos::from(self.clock.now()));
        }
        let seen = self.calls.get() + 1;
        self.calls.set(seen);
        let outcome = f(clients.get(key).map(|c| c.tat));
        match outcome {
            Ok((allowed, tat)) => {
                clients.insert(key.clone(), Client { tat, seen });
                Ok(allowed)
            }
            Err(refused) => {
                if let Some(client) = clients.get_mut(key) {
                    client.seen = seen;
                }
                Err(refused)
            }
        }
    }
}

/// Default `IPV6_PREFIX_BITS`: one IPv6 subscriber usually holds a whole
/// /64 (often a /56 or a /48), so the limit keys on the /64, not the address.
pub const DEFAULT_IPV6_PREFIX_BITS: u8 = crate::settings::IPV6_PREFIX_BITS.number_default() as u8;

/// The key a client is limited by: an IPv4 address as it is; an IPv6 one
/// cut to its first `v6_prefix_bits` bits (`2001:db8::/64`), an
/// IPv4-mapped one as its IPv4 address; anything unparsable (no
/// `CF-Connecting-IP` under local dev) as one shared key.
pub fn client_key(ip: &str, v6_prefix_bits: u8) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let bits = u32::from(v6_prefix_bits.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
                format!("{net}/{bits}")
            }
        },
        Err(_) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_within_their_rate_pass() {
        let mut guard = PeerFloodGuard::new(10);
        // 10 a second for 5 seconds: always within the rate.
        for i in 0..50u64 {
            assert_eq!(guard.admit("a", 1_000 + i * 100), Admit::Pass, "frame {i}");
        }
    }

    #[test]
    fn a_burst_over_the_rate_is_dropped_then_recovers() {
        let mut guard = PeerFloodGuard::new(10);
        let results: Vec<Admit> = (0..15).map(|_| guard.admit("a", 1_000)).collect();
        assert_eq!(results.iter().filter(|r| **r == Admit::Pass).count(), 10);
        assert_eq!(results.iter().filter(|r| **r == Admit::Drop).count(), 5);
        // One second later the bucket is full again.
        assert_eq!(guard.admit("a", 2_000), Admit::Pass);
    }

    #[test]
    fn a_peer_that_keeps_flooding_is_kicked() {
        let mut guard = PeerFloodGuard::new(10);
        let mut kicked_at = None;
        // 100 frames a second, ten times the rate.
        for i in 0..1_000u64 {
            if guard.admit("a", 1_000 + i * 10) == Admit::Kick {
                kicked_at = Some(i * 10);
                break;
            }
        }
        let kicked_at = kicked_at.expect("a sustained flood is kicked");
        assert!(kicked_at <= FLOOD_WINDOW_MS, "kicked after {kicked_at} ms");
    }

    #[test]
    fn one_warn_line_per_peer_per_window_and_a_kick_for_garbage() {
        let mut guard = PeerFloodGuard::new(100);
        assert_eq!(
            guard.note_drop("a", DropKind::Blameless, 0),
            DropVerdict::Log { unlogged_before: 0 }
        );
        for _ in 0..50 {
            assert_eq!(
                guard.note_drop("a", DropKind::Blameless, 10),
                DropVerdict::Quiet
            );
        }
        assert_eq!(
            guard.note_drop("b", DropKind::Blameless, 10),
            DropVerdict::Log { unlogged_before: 0 },
            "per peer"
        );
        assert_eq!(
            guard.note_drop("a", DropKind::Blameless, DROP_WINDOW_MS),
            DropVerdict::Log {
                unlogged_before: 50
            },
            "the next window says how many went unlogged"
        );
        let verdicts: Vec<_> = (0..=MAX_FAULTY_FRAMES)
            .map(|_| guard.note_drop("c", DropKind::Faulty, 0))
            .collect();
        assert_eq!(verdicts.last(), Some(&DropVerdict::Kick(KickFor::Faulty)));
        assert!(!verdicts[..verdicts.len() - 1].contains(&DropVerdict::Kick(KickFor::Faulty)));
        let verdicts: Vec<_> = (0..=MAX_OVERSIZED_FRAMES)
            .map(|_| guard.note_drop("d", DropKind::Oversized, 0))
            .collect();
        assert_eq!(
            verdicts.last(),
            Some(&DropVerdict::Kick(KickFor::Oversized))
        );
    }

    #[test]
    fn peers_are_limited_independently() {
        let mut guard = PeerFloodGuard::new(2);
        assert_eq!(guard.admit("a", 0), Admit::Pass);
        assert_eq!(guard.admit("a", 0), Admit::Pass);
        assert_eq!(guard.admit("a", 0), Admit::Drop);
        assert_eq!(guard.admit("b", 0), Admit::Pass);
    }

    #[test]
    fn zero_disables_the_limits() {
        let mut guard = PeerFloodGuard::new(0);
        assert!((0..10_000).all(|_| guard.admit("a", 0) == Admit::Pass));
        let mut ips = ConnectLimiter::new(0, 0);
        assert!((0..10_000).all(|_| ips.allow("1.2.3.4", 0)));
    }

    #[test]
    fn connects_per_ip_follow_the_burst_then_the_rate() {
        let mut ips = ConnectLimiter::new(60, 5);
        let allowed = (0..10).filter(|_| ips.allow("1.2.3.4", 10_000)).count();
        assert_eq!(allowed, 5, "burst");
        assert!(ips.allow("5.6.7.8", 10_000), "other IPs unaffected");
        assert!(!ips.allow("1.2.3.4", 10_500));
        assert!(ips.allow("1.2.3.4", 11_000), "one a second refills");
        assert_eq!(ConnectLimiter::retry_after_secs(60), 1);
        assert_eq!(ConnectLimiter::retry_after_secs(2), 30);
    }

    #[test]
    fn the_ip_table_stays_bounded() {
        let mut ips = ConnectLimiter::new(1, 1);
        for i in 0..(MAX_TRACKED_IPS as u64 * 2) {
            ips.allow(&format!("ip{i}"), 0);
        }
        assert!(
            ips.tracked() <= MAX_TRACKED_IPS,
            "{} tracked",
            ips.tracked()
        );
    }

    #[test]
    fn an_exhausted_client_stays_limited_while_others_fill_the_table() {
        let mut ips = ConnectLimiter::new(60, 5);
        let attacker = client_key("203.0.113.7", DEFAULT_IPV6_PREFIX_BITS);
        while ips.allow(&attacker, 0) {}
        // More other clients than the table holds, while the attacker keeps trying.
        for i in 0..(MAX_TRACKED_IPS as u32 * 2) {
            ips.allow(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255), 0);
            if i % 1_000 == 0 {
                assert!(!ips.allow(&attacker, 0), "forgiven after {i} other clients");
            }
        }
        assert!(!ips.allow(&attacker, 0));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix() {
        let mut ips = ConnectLimiter::new(60, 5);
        let mut admitted = 0;
        for i in 0..100_000u32 {
            let ip = format!("2001:db8:1:2:{:x}:{:x}::1", i >> 16, i & 0xffff);
            if ips.allow(&client_key(&ip, DEFAULT_IPV6_PREFIX_BITS), 0) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5, "one /64 gets one burst");
        assert_eq!(client_key("2001:db8:1:2:aa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:aa::1", 48), "2001:db8:1::/48");
        assert_eq!(
            client_key("2001:db8:1:2:aa::1", 128),
            "2001:db8:1:2:aa::1/128"
        );
        assert_eq!(client_key("::ffff:198.51.100.9", 64), "198.51.100.9");
        assert_eq!(client_key("198.51.100.9", 64), "198.51.100.9");
        assert_eq!(client_key("not an address", 64), "unknown");
    }
}
