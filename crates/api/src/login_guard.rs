//! Login protection, as Huawei IAM does it: a user name with too many
//! failed password logins in a window is locked for a while (default 5 in
//! 15 minutes, locked 15 minutes), answered `401 "The account is locked."`
//! even with the right password; and a client address with too many
//! failures (default 20 in the window, over all names) is refused with
//! `429 APIGW.0308` for the lockout time. AK/SK signatures that fail are
//! counted the same way per access key (default 20 in the window), so a
//! key can't be used to guess at signatures.
//!
//! The state lives in this process, keyed by what the client sent (the
//! user id, or the domain and user name), so an unknown user is locked
//! exactly like a known one and the answers tell nothing about which users
//! exist. For known users the state is also written to the store (in the
//! background, so the answer's timing does not depend on it), where other
//! nodes and later starts see the lock and `vpnmon admin user show` shows
//! it. A node that starts learns a known user's state from the store.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Most keys of each kind kept; beyond it, expired ones are dropped, then
/// the oldest.
const MAX_KEYS: usize = 100_000;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed logins of one user name in [`LoginPolicy::window`] that lock it.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a lock lasts.
    pub lockout: Duration,
    /// Failed logins from one client address in the window that block it.
    pub max_failures_per_address: u32,
    /// Failed AK/SK signatures of one access key in the window that block it.
    pub max_failures_per_access_key: u32,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_failures_per_address: 20,
            max_failures_per_access_key: 20,
        }
    }
}

/// Failures of one key in the current window, and its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Failures since `since_us`.
    pub failures: u32,
    /// Start of the window (µs since the epoch).
    pub since_us: i64,
    /// End of the lock (µs since the epoch); 0 or past: not locked.
    pub locked_until_us: i64,
}

impl Entry {
    fn locked_at(&self, now_us: i64) -> bool {
        self.locked_until_us > now_us
    }
    fn expired_at(&self, now_us: i64, window_us: i64) -> bool {
        !self.locked_at(now_us) && self.since_us + window_us <= now_us
    }
}

impl From<store::LoginLock> for Entry {
    fn from(l: store::LoginLock) -> Self {
        Entry {
            failures: l.failures,
            since_us: l.since_us,
            locked_until_us: l.locked_until_us,
        }
    }
}

impl From<Entry> for store::LoginLock {
    fn from(e: Entry) -> Self {
        store::LoginLock {
            failures: e.failures,
            since_us: e.since_us,
            locked_until_us: e.locked_until_us,
        }
    }
}

/// Why a request is refused before its credentials are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user name is locked until then (µs).
    UserLocked { until_us: i64 },
    /// The client address is blocked until then (µs).
    AddressBlocked { until_us: i64 },
    /// The access key is blocked until then (µs).
    KeyBlocked { until_us: i64 },
}

impl Refused {
    /// Whole seconds from `now_us` until the refusal ends (at least 1).
    pub fn retry_after_secs(self, now_us: i64) -> u64 {
        let until = match self {
            Refused::UserLocked { until_us }
            | Refused::AddressBlocked { until_us }
            | Refused::KeyBlocked { until_us } => until_us,
        };
        u64::try_from((until - now_us + 999_999) / 1_000_000)
            .unwrap_or(1)
            .max(1)
    }
}

/// Failure counts of one kind of key.
struct Table<K> {
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            entries: HashMap::new(),
        }
    }

    fn get(&self, k: &K, now_us: i64, window_us: i64) -> Option<Entry> {
        self.entries
            .get(k)
            .copied()
            .filter(|e| !e.expired_at(now_us, window_us))
    }

    /// Counts a failure; returns the new entry and whether it just locked.
    fn fail(
        &mut self,
        k: &K,
        seed: Option<Entry>,
        now_us: i64,
        p: (u32, i64, i64),
    ) -> (Entry, bool) {
        let (max, window_us, lockout_us) = p;
        if !self.entries.contains_key(k) && self.entries.len() >= MAX_KEYS {
            self.entries.retain(|_, e| !e.expired_at(now_us, window_us));
            if self.entries.len() >= MAX_KEYS
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.since_us)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        let e = self
            .entries
            .entry(k.clone())
            .or_insert_with(|| seed.unwrap_or_default());
        if e.locked_at(now_us) {
            return (*e, false);
        }
        if e.since_us + window_us <= now_us || e.failures == 0 {
            *e = Entry {
                failures: 0,
                since_us: now_us,
                locked_until_us: 0,
            };
        }
        e.failures += 1;
        let locked = e.failures >= max;
        if locked {
            e.locked_until_us = now_us + lockout_us;
        }
        (*e, locked)
    }

    fn clear(&mut self, k: &K) {
        self.entries.remove(k);
    }

    fn locked(&self, now_us: i64) -> usize {
        self.entries
            .values()
            .filter(|e| e.locked_at(now_us))
            .count()
    }
}

/// The login protection of one node.
pub struct LoginGuard {
    policy: LoginPolicy,
    users: Mutex<Table<String>>,
    addresses: Mutex<Table<IpAddr>>,
    keys: Mutex<Table<String>>,
    failures: Counter,
    lockouts: Counter,
    refusals: Counter,
    locked_users: Gauge,
}

fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

impl LoginGuard {
    /// A guard with these limits.
    pub fn new(policy: LoginPolicy) -> Self {
        LoginGuard {
            policy,
            users: Mutex::new(Table::new()),
            addresses: Mutex::new(Table::new()),
            keys: Mutex::new(Table::new()),
            failures: Counter::default(),
            lockouts: Counter::default(),
            refusals: Counter::default(),
            locked_users: Gauge::default(),
        }
    }

    /// The limits.
    pub fn policy(&self) -> LoginPolicy {
        self.policy
    }

    /// Registers the guard's metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "vpnmon_login_failures",
            "Failed password logins and AK/SK signatures",
            self.failures.clone(),
        );
        registry.register(
            "vpnmon_login_lockouts",
            "User names, client addresses and access keys locked after too many failures",
            self.lockouts.clone(),
        );
        registry.register(
            "vpnmon_login_refusals",
            "Requests refused because their user, address or access key was locked",
            self.refusals.clone(),
        );
        registry.register(
            "vpnmon_login_locked_users",
            "User names locked on this node now",
            self.locked_users.clone(),
        );
    }

    fn window(&self) -> i64 {
        us(self.policy.window)
    }

    /// A known user whose lock this node remembers was unlocked since
    /// (`vpnmon admin user unlock` stores no failures with the time of the
    /// unlock): forget the lock here too. A missing record proves nothing
    /// (it may have been read before this node's own write landed).
    fn follow_unlock(
        &self,
        user: &str,
        known: bool,
        stored: Option<store::LoginLock>,
        now_us: i64,
    ) {
        let Some(st) = stored.filter(|s| known && s.failures == 0) else {
            return;
        };
        let mut users = self.users.lock().unwrap();
        let key = user.to_string();
        if users
            .entries
            .get(&key)
            .is_some_and(|e| e.locked_at(now_us) && e.since_us < st.since_us)
        {
            users.clear(&key);
        }
    }

    /// Whether a login for `user` from `addr` is refused now; for a known
    /// user, `stored` is its state in the store.
    pub fn check_login(
        &self,
        user: &str,
        known: bool,
        stored: Option<store::LoginLock>,
        addr: Option<IpAddr>,
        now_us: i64,
    ) -> Result<(), Refused> {
        self.follow_unlock(user, known, stored, now_us);
        let w = self.window();
        if let Some(a) = addr
            && let Some(e) = self.addresses.lock().unwrap().get(&a, now_us, w)
            && e.locked_at(now_us)
        {
            self.refusals.inc();
            return Err(Refused::AddressBlocked {
                until_us: e.locked_until_us,
            });
        }
        let mem = self.users.lock().unwrap().get(&user.to_string(), now_us, w);
        let until = [mem, stored.map(Entry::from)]
            .into_iter()
            .flatten()
            .filter(|e| e.locked_at(now_us))
            .map(|e| e.locked_until_us)
            .max();
        if let Some(until_us) = until {
            self.refusals.inc();
            return Err(Refused::UserLocked { until_us });
        }
        Ok(())
    }

    /// Counts a failed login; returns the user's new state (to store, for a
    /// known user).
    pub fn login_failed(
        &self,
        user: &str,
        known: bool,
        stored: Option<store::LoginLock>,
        addr: Option<IpAddr>,
        now_us: i64,
    ) -> Entry {
        self.follow_unlock(user, known, stored, now_us);
        let p = &self.policy;
        let (w, l) = (self.window(), us(p.lockout));
        self.failures.inc();
        if let Some(a) = addr {
            let (_, locked) = self.addresses.lock().unwrap().fail(
                &a,
                None,
                now_us,
                (p.max_failures_per_address.max(1), w, l),
            );
            if locked {
                self.lockouts.inc();
                tracing::warn!(address = %a, failures = p.max_failures_per_address, "client address blocked after failed logins");
            }
        }
        let mut users = self.users.lock().unwrap();
        let (e, locked) = users.fail(
            &user.to_string(),
            stored.map(Entry::from),
            now_us,
            (p.max_failures.max(1), w, l),
        );
        if locked {
            self.lockouts.inc();
            tracing::warn!(user = %user, failures = p.max_failures, "user locked after failed logins");
        }
        self.locked_users.set(users.locked(now_us) as i64);
        e
    }

    /// Forgets a user's failures after a successful login.
    pub fn login_succeeded(&self, user: &str, now_us: i64) {
        let mut users = self.users.lock().unwrap();
        users.clear(&user.to_string());
        self.locked_users.set(users.locked(now_us) as i64);
    }

    /// Forgets a user's state on this node (`admin user unlock` clears the
    /// store; this node then learns it at the next login).
    pub fn forget(&self, user: &str) {
        self.users.lock().unwrap().clear(&user.to_string());
    }

    /// Whether an AK/SK request with `access_key` is refused now.
    pub fn check_key(&self, access_key: &str, now_us: i64) -> Result<(), Refused> {
        match self
            .keys
            .lock()
            .unwrap()
            .get(&access_key.to_string(), now_us, self.window())
        {
            Some(e) if e.locked_at(now_us) => {
                self.refusals.inc();
                Err(Refused::KeyBlocked {
                    until_us: e.locked_until_us,
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed AK/SK signature of `access_key`.
    pub fn key_failed(&self, access_key: &str, now_us: i64) {
        let p = &self.policy;
        self.failures.inc();
        let (_, locked) = self.keys.lock().unwrap().fail(
            &access_key.to_string(),
            None,
            now_us,
            (
                p.max_failures_per_access_key.max(1),
                self.window(),
                us(p.lockout),
            ),
        );
        if locked {
            self.lockouts.inc();
            tracing::warn!(access_key = %access_key, "access key blocked after failed signatures");
        }
    }
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard::new(LoginPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn guard() -> LoginGuard {
        LoginGuard::new(LoginPolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(120),
            max_failures_per_address: 5,
            max_failures_per_access_key: 2,
        })
    }

    #[test]
    fn a_user_is_locked_after_max_failures_in_the_window_and_unlocked_after_the_lockout() {
        let g = guard();
        let t0 = 1_000 * S;
        for i in 0..2 {
            assert_eq!(g.check_login("u", false, None, None, t0 + i * S), Ok(()));
            g.login_failed("u", false, None, None, t0 + i * S);
        }
        assert_eq!(g.check_login("u", false, None, None, t0 + 2 * S), Ok(()));
        let e = g.login_failed("u", false, None, None, t0 + 2 * S);
        assert_eq!(e.failures, 3);
        assert_eq!(e.locked_until_us, t0 + 122 * S);
        assert_eq!(
            g.check_login("u", false, None, None, t0 + 3 * S),
            Err(Refused::UserLocked {
                until_us: t0 + 122 * S
            })
        );
        assert_eq!(
            Refused::UserLocked {
                until_us: t0 + 122 * S
            }
            .retry_after_secs(t0 + 3 * S),
            119
        );
        // Other users are not affected.
        assert_eq!(g.check_login("v", false, None, None, t0 + 3 * S), Ok(()));
        // The lock ends.
        assert_eq!(g.check_login("u", false, None, None, t0 + 122 * S), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let g = guard();
        let t0 = 1_000 * S;
        g.login_failed("u", false, None, None, t0);
        g.login_failed("u", false, None, None, t0 + S);
        // 61 s later the window has passed: this is failure 1 of a new one.
        let e = g.login_failed("u", false, None, None, t0 + 61 * S);
        assert_eq!(
            (e.failures, e.since_us, e.locked_until_us),
            (1, t0 + 61 * S, 0)
        );
        assert_eq!(g.check_login("u", false, None, None, t0 + 62 * S), Ok(()));
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let g = guard();
        let t0 = 1_000 * S;
        g.login_failed("u", false, None, None, t0);
        g.login_failed("u", false, None, None, t0);
        g.login_succeeded("u", t0);
        let e = g.login_failed("u", false, None, None, t0 + S);
        assert_eq!(e.failures, 1);
    }

    #[test]
    fn a_lock_stored_by_another_node_is_honoured_and_seeds_the_count() {
        let g = guard();
        let t0 = 1_000 * S;
        let stored = store::LoginLock {
            failures: 3,
            since_us: t0 - 10 * S,
            locked_until_us: t0 + 50 * S,
        };
        assert_eq!(
            g.check_login("u", true, Some(stored), None, t0),
            Err(Refused::UserLocked {
                until_us: t0 + 50 * S
            })
        );
        let two = store::LoginLock {
            failures: 2,
            since_us: t0 - 10 * S,
            locked_until_us: 0,
        };
        let e = g.login_failed("u", true, Some(two), None, t0);
        assert_eq!(e.failures, 3, "counted on from the stored failures");
        assert!(e.locked_until_us > t0);
    }

    #[test]
    fn an_unlock_in_the_store_ends_a_lock_this_node_remembers() {
        let g = guard();
        let t0 = 1_000 * S;
        let mut stored = None;
        for _ in 0..3 {
            stored = Some(g.login_failed("u", true, stored, None, t0).into());
        }
        assert!(g.check_login("u", true, stored, None, t0 + S).is_err());
        // A missing record (read before this node's write landed) is no unlock.
        assert!(g.check_login("u", true, None, None, t0 + S).is_err());
        // `admin user unlock` stored no failures as of its time.
        let unlocked = store::LoginLock {
            failures: 0,
            since_us: t0 + S,
            locked_until_us: 0,
        };
        assert_eq!(
            g.check_login("u", true, Some(unlocked), None, t0 + 2 * S),
            Ok(())
        );
        assert_eq!(
            g.login_failed("u", true, Some(unlocked), None, t0 + 2 * S)
                .failures,
            1
        );
        // An unknown name has no record: its lock stays.
        for _ in 0..3 {
            g.login_failed("n", false, None, None, t0);
        }
        assert!(g.check_login("n", false, None, None, t0).is_err());
    }

    #[test]
    fn an_address_with_too_many_failures_is_blocked_whatever_the_user() {
        let g = guard();
        let t0 = 1_000 * S;
        let a: IpAddr = "127.0.0.9".parse().unwrap();
        let b: IpAddr = "127.0.0.10".parse().unwrap();
        for i in 0..5 {
            g.login_failed(&format!("user-{i}"), false, None, Some(a), t0);
        }
        assert_eq!(
            g.check_login("fresh", false, None, Some(a), t0 + S),
            Err(Refused::AddressBlocked {
                until_us: t0 + 120 * S
            })
        );
        assert_eq!(g.check_login("fresh", false, None, Some(b), t0 + S), Ok(()));
    }

    #[test]
    fn an_access_key_with_too_many_bad_signatures_is_blocked() {
        let g = guard();
        let t0 = 1_000 * S;
        g.key_failed("AK1", t0);
        assert_eq!(g.check_key("AK1", t0), Ok(()));
        g.key_failed("AK1", t0);
        assert!(matches!(
            g.check_key("AK1", t0 + S),
            Err(Refused::KeyBlocked { .. })
        ));
        assert_eq!(g.check_key("AK2", t0 + S), Ok(()));
        assert_eq!(g.check_key("AK1", t0 + 121 * S), Ok(()));
    }

    #[test]
    fn the_tables_stay_bounded() {
        let mut t: Table<u32> = Table::new();
        for k in 0..(MAX_KEYS as u32 + 10) {
            t.fail(&k, None, 1_000 * S + i64::from(k), (5, 60 * S, 60 * S));
        }
        assert!(t.entries.len() <= MAX_KEYS);
    }
}
