//! The lease of one node as a pure state machine: no I/O, no clock of its
//! own. The driver ([`super::run`]) feeds it the time (a monotonic
//! [`Mono`], from any origin) and the outcome of each store call, and does
//! what [`Core::poll`] asks: start a call, give up on a call that hangs,
//! fence or unfence the prober, leave.
//!
//! The rules (River's elector, `internal/leadership/elector.go`, and
//! `../shared/research/scale-out.md` §2.4):
//! - A lease is renewed only while it is still valid: the store's renewal
//!   is a conditional UPDATE on the database's clock, and a lease that ran
//!   out is [`Outcome::Lapsed`]; the node must register again.
//! - The node trusts its lease until `attempt start + ttl - margin`,
//!   measured on its own monotonic clock from **before** the call that
//!   granted it. The database's expiry is at least `attempt start + ttl`
//!   on its clock, so the node stops trusting a lease (and fences, stops
//!   probing) a margin before any other node can see it expire.
//! - A call that does not answer within `attempt_timeout` is abandoned and
//!   counts as failed; trust is never extended by a call that did not
//!   answer.
//! - A node whose task died, or that stops, leaves: it fences and deletes
//!   its row, so others take over at once instead of after the ttl.

use std::time::Duration;

/// Monotonic time since an arbitrary origin.
pub type Mono = Duration;

/// The lease's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the lease is renewed.
    pub renew_every: Duration,
    /// How long a granted lease lasts (database clock).
    pub ttl: Duration,
    /// How long before the end of the ttl the node stops trusting it.
    pub margin: Duration,
    /// How long a store call may take before it is abandoned.
    pub attempt_timeout: Duration,
    /// How soon a failed call is tried again.
    pub retry_after: Duration,
}

/// The longest lease vpnmon grants: failover is bounded by it.
pub const MAX_TTL: Duration = Duration::from_secs(8);

impl Timing {
    /// Renew every 2 s, ttl 8 s, trust 7 s, calls abandoned after 2 s.
    pub const DEFAULT: Timing = Timing {
        renew_every: Duration::from_secs(2),
        ttl: MAX_TTL,
        margin: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(2),
        retry_after: Duration::from_millis(500),
    };

    /// How long a granted lease is trusted.
    pub fn trust(&self) -> Duration {
        self.ttl.saturating_sub(self.margin)
    }

    /// Checks that a renewal (and one retry) fits in the trusted time.
    pub fn validate(&self) -> Result<(), String> {
        if self.ttl > MAX_TTL {
            return Err(format!("the lease must be at most {} s", MAX_TTL.as_secs()));
        }
        if self.margin.is_zero() {
            return Err("the safety margin must be above zero".into());
        }
        if self.renew_every + self.attempt_timeout >= self.trust() {
            return Err(
                "a renewal and its timeout must fit in the trusted time (ttl - margin)".into(),
            );
        }
        Ok(())
    }
}

/// The store call the core asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Take a lease (join, or join again after a lapse).
    Register,
    /// Renew the lease held.
    Renew,
}

/// What a store call came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A lease was granted or renewed.
    Granted,
    /// The lease had run out (or the row is gone): register again.
    Lapsed,
    /// The call failed (the store did not answer, or said no).
    Failed,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start this store call (at most one is in flight).
    Start(Op),
    /// Drop the call in flight: it took too long (its outcome no longer counts).
    Abandon,
    /// Stop probing: the lease can no longer be proved.
    Fence,
    /// Probing may go on: the lease is held again.
    Unfence,
    /// Delete the node's row and end the membership task.
    Leave,
}

/// The lease state machine.
#[derive(Debug)]
pub struct Core {
    timing: Timing,
    /// A row of ours may exist (so renew rather than register).
    joined: bool,
    /// The lease is trusted before this instant.
    trusted_until: Option<Mono>,
    in_flight: Option<(Op, Mono)>,
    next_attempt: Mono,
    /// What the prober was last told.
    fenced: bool,
    leaving: Option<String>,
    left: bool,
}

impl Core {
    /// A node that has just been granted its first lease by a call started
    /// at `granted_at`; it is not fenced.
    pub fn joined(timing: Timing, granted_at: Mono) -> Core {
        Core {
            timing,
            joined: true,
            trusted_until: Some(granted_at + timing.trust()),
            in_flight: None,
            next_attempt: granted_at + timing.renew_every,
            fenced: false,
            leaving: None,
            left: false,
        }
    }

    /// A node without a lease yet (fenced until it gets one).
    pub fn new(timing: Timing, now: Mono) -> Core {
        Core {
            timing,
            joined: false,
            trusted_until: None,
            in_flight: None,
            next_attempt: now,
            fenced: true,
            leaving: None,
            left: false,
        }
    }

    /// Whether the lease is trusted at `now`.
    pub fn trusted(&self, now: Mono) -> bool {
        self.leaving.is_none() && self.trusted_until.is_some_and(|t| now < t)
    }

    /// Whether the prober is fenced (as last told).
    pub fn fenced(&self) -> bool {
        self.fenced
    }

    /// Whether the node has left (the driver is done).
    pub fn left(&self) -> bool {
        self.left
    }

    /// The call in flight, if any.
    pub fn in_flight(&self) -> Option<Op> {
        self.in_flight.map(|(op, _)| op)
    }

    /// Why the node does not hold its lease, for `/readyz`; `None` while it does.
    pub fn problem(&self, now: Mono) -> Option<String> {
        if let Some(why) = &self.leaving {
            return Some(format!("the node left the membership: {why}"));
        }
        if self.trusted(now) {
            None
        } else {
            Some("the node cannot prove its lease (the store did not renew it in time)".into())
        }
    }

    /// The node must leave: a task died (`why` says which) or it stops.
    pub fn leave(&mut self, why: &str) {
        if self.leaving.is_none() {
            self.leaving = Some(why.to_string());
        }
    }

    /// What to do at `now`.
    pub fn poll(&mut self, now: Mono) -> Vec<Action> {
        let mut out = Vec::new();
        if self.left {
            return out;
        }
        if self.leaving.is_some() {
            if self.in_flight.take().is_some() {
                out.push(Action::Abandon);
            }
            if !self.fenced {
                self.fenced = true;
                out.push(Action::Fence);
            }
            self.left = true;
            out.push(Action::Leave);
            return out;
        }
        if let Some((_, started)) = self.in_flight
            && now >= started + self.timing.attempt_timeout
        {
            out.push(Action::Abandon);
            self.failed(now);
        }
        let trusted = self.trusted(now);
        if !trusted && !self.fenced {
            self.fenced = true;
            out.push(Action::Fence);
        } else if trusted && self.fenced {
            self.fenced = false;
            out.push(Action::Unfence);
        }
        if self.in_flight.is_none() && now >= self.next_attempt {
            let op = if self.joined { Op::Renew } else { Op::Register };
            self.in_flight = Some((op, now));
            out.push(Action::Start(op));
        }
        out
    }

    /// The outcome of the call in flight (ignored when none is: it was
    /// abandoned).
    pub fn on_result(&mut self, now: Mono, outcome: Outcome) {
        let Some((op, started)) = self.in_flight.take() else {
            return;
        };
        match outcome {
            Outcome::Granted => {
                self.joined = true;
                self.trusted_until = Some(started + self.timing.trust());
                self.next_attempt = started + self.timing.renew_every;
            }
            Outcome::Lapsed => {
                self.joined = false;
                self.trusted_until = None;
                self.next_attempt = now;
            }
            Outcome::Failed => {
                // A registration whose answer was lost may have taken
                // effect: renew next (a missing row answers Lapsed).
                if op == Op::Register {
                    self.joined = true;
                }
                self.failed(now);
            }
        }
    }

    fn failed(&mut self, now: Mono) {
        if let Some((Op::Register, _)) = self.in_flight {
            self.joined = true;
        }
        self.in_flight = None;
        self.next_attempt = now + self.timing.retry_after;
    }

    /// When [`Core::poll`] has something to do next.
    pub fn next_wake(&self) -> Option<Mono> {
        if self.left {
            return None;
        }
        let mut t = match self.in_flight {
            Some((_, started)) => started + self.timing.attempt_timeout,
            None => self.next_attempt,
        };
        if !self.fenced
            && let Some(until) = self.trusted_until
        {
            t = t.min(until);
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing::DEFAULT;

    fn s(secs: f64) -> Mono {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn default_timing_is_valid_and_bounded() {
        assert_eq!(T.validate(), Ok(()));
        assert_eq!(T.trust(), s(7.0));
        let long = Timing { ttl: s(9.0), ..T };
        assert!(long.validate().is_err(), "a lease over 8 s is refused");
        let tight = Timing {
            renew_every: s(5.0),
            ..T
        };
        assert!(tight.validate().is_err());
    }

    #[test]
    fn renews_every_two_seconds_while_granted_and_stays_unfenced() {
        let mut c = Core::joined(T, s(0.0));
        assert_eq!(c.poll(s(0.0)), vec![]);
        assert_eq!(c.next_wake(), Some(s(2.0)));
        assert_eq!(c.poll(s(1.9)), vec![]);
        for k in 1..=20 {
            let at = s(2.0 * f64::from(k));
            assert_eq!(c.poll(at), vec![Action::Start(Op::Renew)], "renewal {k}");
            assert_eq!(c.poll(at + s(0.1)), vec![], "one call at a time");
            c.on_result(at + s(0.05), Outcome::Granted);
            assert!(c.trusted(at + s(6.9)));
            assert!(!c.fenced());
        }
        assert_eq!(c.problem(s(40.5)), None);
    }

    #[test]
    fn trust_counts_from_the_start_of_the_call_not_its_answer() {
        let mut c = Core::joined(T, s(0.0));
        assert_eq!(c.poll(s(2.0)), vec![Action::Start(Op::Renew)]);
        // The answer comes 1.5 s later: trust ends at 2 + 7, not 3.5 + 7.
        c.on_result(s(3.5), Outcome::Granted);
        assert!(c.trusted(s(8.99)));
        assert!(!c.trusted(s(9.0)));
    }

    #[test]
    fn fences_exactly_when_trust_ends_if_the_store_does_not_answer() {
        let mut c = Core::joined(T, s(0.0));
        let mut fenced_at = None;
        // The store fails every call from now on; time moves in 10 ms steps.
        for step in 0..1200u64 {
            let t = Duration::from_millis(step * 10);
            for a in c.poll(t) {
                match a {
                    Action::Start(_) => c.on_result(t, Outcome::Failed),
                    Action::Fence => fenced_at = fenced_at.or(Some(t)),
                    other => panic!("unexpected {other:?} at {t:?}"),
                }
            }
        }
        assert_eq!(fenced_at, Some(s(7.0)), "fenced when trust ends");
        assert!(c.problem(s(12.0)).is_some());
    }

    #[test]
    fn a_hanging_call_is_abandoned_and_never_extends_trust() {
        let mut c = Core::joined(T, s(0.0));
        assert_eq!(c.poll(s(2.0)), vec![Action::Start(Op::Renew)]);
        assert_eq!(c.next_wake(), Some(s(4.0)), "the call's deadline");
        assert_eq!(c.poll(s(3.9)), vec![]);
        assert_eq!(c.poll(s(4.0)), vec![Action::Abandon]);
        // Its late answer does not count.
        c.on_result(s(4.2), Outcome::Granted);
        assert!(!c.trusted(s(7.0)));
        assert_eq!(c.poll(s(4.5)), vec![Action::Start(Op::Renew)], "retried");
    }

    #[test]
    fn a_lapsed_lease_fences_at_once_and_registers_again() {
        let mut c = Core::joined(T, s(0.0));
        assert_eq!(c.poll(s(2.0)), vec![Action::Start(Op::Renew)]);
        c.on_result(s(2.1), Outcome::Lapsed);
        assert_eq!(
            c.poll(s(2.1)),
            vec![Action::Fence, Action::Start(Op::Register)]
        );
        c.on_result(s(2.2), Outcome::Granted);
        assert_eq!(c.poll(s(2.2)), vec![Action::Unfence]);
        assert!(c.trusted(s(9.0)) && !c.trusted(s(9.1)));
        assert_eq!(c.poll(s(4.1)), vec![Action::Start(Op::Renew)]);
    }

    #[test]
    fn a_node_that_lost_the_store_unfences_when_it_answers_again() {
        let mut c = Core::joined(T, s(0.0));
        let mut t = 2.0;
        while t < 10.0 {
            for a in c.poll(s(t)) {
                if let Action::Start(_) = a {
                    c.on_result(s(t), Outcome::Failed);
                }
            }
            t += 0.5;
        }
        assert!(c.fenced());
        assert_eq!(c.poll(s(10.0)), vec![Action::Start(Op::Renew)]);
        c.on_result(s(10.1), Outcome::Granted);
        assert_eq!(c.poll(s(10.1)), vec![Action::Unfence]);
        assert_eq!(c.problem(s(10.1)), None);
    }

    #[test]
    fn a_new_node_is_fenced_until_its_first_lease() {
        let mut c = Core::new(T, s(0.0));
        assert!(c.fenced());
        assert_eq!(c.poll(s(0.0)), vec![Action::Start(Op::Register)]);
        c.on_result(s(0.1), Outcome::Failed);
        assert_eq!(c.poll(s(0.2)), vec![]);
        assert_eq!(
            c.poll(s(0.6)),
            vec![Action::Start(Op::Renew)],
            "maybe registered"
        );
        c.on_result(s(0.7), Outcome::Lapsed);
        assert_eq!(c.poll(s(0.7)), vec![Action::Start(Op::Register)]);
        c.on_result(s(0.8), Outcome::Granted);
        assert_eq!(c.poll(s(0.8)), vec![Action::Unfence]);
    }

    #[test]
    fn leaving_fences_abandons_the_call_and_leaves_once() {
        let mut c = Core::joined(T, s(0.0));
        assert_eq!(c.poll(s(2.0)), vec![Action::Start(Op::Renew)]);
        c.leave("the persist task ended (it panicked)");
        assert_eq!(
            c.poll(s(2.1)),
            vec![Action::Abandon, Action::Fence, Action::Leave]
        );
        assert!(c.left());
        assert_eq!(c.poll(s(3.0)), vec![]);
        assert_eq!(c.next_wake(), None);
        assert_eq!(
            c.problem(s(3.0)),
            Some("the node left the membership: the persist task ended (it panicked)".into())
        );
    }

    #[test]
    fn never_unfenced_without_a_lease_started_less_than_trust_ago() {
        // Whatever the store answers, at every instant the prober is
        // unfenced only while a grant whose call started within the last
        // ttl - margin exists: the database's expiry (start + ttl) is then
        // still ahead, so no other node can yet take over.
        let outcomes = [
            Outcome::Granted,
            Outcome::Failed,
            Outcome::Granted,
            Outcome::Lapsed,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Granted,
        ];
        let mut c = Core::new(T, s(0.0));
        let mut last_grant_start: Option<f64> = None;
        let mut started: Option<f64> = None;
        let mut k = 0usize;
        let mut t = 0.0;
        while t < 60.0 {
            for a in c.poll(s(t)) {
                if let Action::Start(_) = a {
                    started = Some(t);
                }
            }
            // Answers take 0.3 s, except every fifth call, which hangs.
            if let Some(st) = started
                && t >= st + 0.3
                && k % 5 != 4
            {
                let o = outcomes[k % outcomes.len()];
                c.on_result(s(t), o);
                if o == Outcome::Granted {
                    last_grant_start = Some(st);
                }
                started = None;
                k += 1;
            } else if started.is_some() && c.in_flight().is_none() {
                started = None;
                k += 1;
            }
            if !c.fenced() {
                let g = last_grant_start.expect("unfenced only after a grant");
                assert!(t < g + 7.0 + 1e-9, "unfenced at {t}, grant started {g}");
            }
            t += 0.1;
        }
    }
}
