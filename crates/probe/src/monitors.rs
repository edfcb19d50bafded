//! The monitor table: one compact slot per monitor, the probe records of its
//! current window, and reply matching. Pure state, no I/O.
//!
//! Slots live in one vector and are reused through a free list; a slot's
//! `generation` changes whenever it is freed or its monitor changes, and is
//! part of every probe token, so a late reply can never be credited to the
//! wrong monitor. The probe records of all slots live in one flat vector
//! (`count` records per slot), so nothing is allocated per probe or per
//! window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use crate::codec::ProbeToken;
use crate::scheduler::Cadence;
use crate::stats::ProbeOutcome;

/// `rtt_ns` of a sent probe still waiting for (or never given) a reply.
const NO_REPLY: u64 = u64::MAX;
/// `rtt_ns` of a probe the kernel refused for lack of a route: counted as
/// sent and lost, never in flight.
const UNREACHABLE: u64 = u64::MAX - 1;

/// What a monitor slot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Unused, on the free list.
    Free,
    /// Being probed.
    Probing,
    /// Not probed; its source address is rechecked once per window.
    WaitingForSource,
    /// Not probed, for a reason that only a new spec can change.
    Parked,
}

/// The one pending wheel event of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextEvent {
    /// Send probe `k` of the current window.
    Probe(u16),
    /// Close the current window.
    Close,
    /// Check again whether the source address is local.
    Recheck,
}

/// Link state as last reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkHealth {
    /// No window closed yet.
    Unknown,
    /// The last window had a reply.
    Up,
    /// The last window had none.
    Down,
}

/// One monitor.
#[derive(Clone, Debug)]
pub struct Slot {
    pub id: Uuid,
    pub source: IpAddr,
    pub destination: IpAddr,
    /// Tick at which the current window started.
    pub window_start: u64,
    pub generation: u16,
    pub state: SlotState,
    pub next: NextEvent,
    pub link: LinkHealth,
    /// `FirstProbeSent` already emitted.
    pub first_sent: bool,
    /// A send of this window failed for a local reason (e.g. the source
    /// address went away): recheck the source when the window closes.
    pub local_send_error: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProbeRecord {
    /// CLOCK_REALTIME ns read right before the send, 0 = not sent. Also in
    /// the probe's token, so it identifies the probe.
    sent_ns: u64,
    /// The kernel's transmit timestamp (same clock), 0 = none (yet).
    tx_ns: u64,
    rtt_ns: u64,
}

const EMPTY: ProbeRecord = ProbeRecord {
    sent_ns: 0,
    tx_ns: 0,
    rtt_ns: NO_REPLY,
};

/// How a reply was matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMatch {
    /// First valid reply to an outstanding probe of `slot`; `kernel_tx`
    /// says whether the RTT starts at the kernel's transmit timestamp (else
    /// at the clock read before the send).
    Matched {
        slot: u32,
        rtt_ns: u64,
        kernel_tx: bool,
    },
    /// A second reply to a probe already answered.
    Duplicate,
    /// One of our probes, but no longer awaited: after its timeout, after
    /// its window closed, or for a monitor removed or changed since.
    Late,
    /// Not ours, or inconsistent with what we sent (wrong engine, source
    /// address, sequence).
    Unmatched,
}

/// All monitors of an engine.
#[derive(Debug)]
pub struct MonitorTable {
    count: usize,
    slots: Vec<Slot>,
    probes: Vec<ProbeRecord>,
    free: Vec<u32>,
    index: HashMap<Uuid, u32>,
}

/// Result of closing a window.
#[derive(Debug, PartialEq)]
pub struct Closed<'a> {
    /// One outcome per scheduled probe, in probe order.
    pub outcomes: &'a [ProbeOutcome],
    /// Probes that were in flight and timed out.
    pub timed_out: u32,
}

impl MonitorTable {
    /// An empty table for `count` probes per window.
    pub fn new(count: u16) -> Self {
        MonitorTable {
            count: usize::from(count),
            slots: Vec::new(),
            probes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Number of monitors (all states except free).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Slot of a monitor.
    pub fn find(&self, id: &Uuid) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// A slot by index.
    pub fn slot(&self, slot: u32) -> &Slot {
        &self.slots[slot as usize]
    }

    /// A slot by index, mutably.
    pub fn slot_mut(&mut self, slot: u32) -> &mut Slot {
        &mut self.slots[slot as usize]
    }

    /// Add a monitor (its id must not be in the table) in `state`.
    pub fn insert(
        &mut self,
        id: Uuid,
        source: IpAddr,
        destination: IpAddr,
        state: SlotState,
    ) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = self.slots.len() as u32;
                self.slots.push(Slot {
                    id,
                    source,
                    destination,
                    window_start: 0,
                    generation: 0,
                    state: SlotState::Free,
                    next: NextEvent::Probe(0),
                    link: LinkHealth::Unknown,
                    first_sent: false,
                    local_send_error: false,
                });
                self.probes.resize(self.slots.len() * self.count, EMPTY);
                s
            }
        };
        let s = &mut self.slots[slot as usize];
        s.id = id;
        s.source = source;
        s.destination = destination;
        s.state = state;
        s.next = NextEvent::Probe(0);
        s.link = LinkHealth::Unknown;
        s.first_sent = false;
        s.local_send_error = false;
        s.window_start = 0;
        self.index.insert(id, slot);
        slot
    }

    /// Free a slot. Returns the number of probes that were in flight.
    pub fn release(&mut self, slot: u32) -> u32 {
        let in_flight = self.reset_window(slot);
        let s = &mut self.slots[slot as usize];
        self.index.remove(&s.id);
        s.state = SlotState::Free;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        in_flight
    }

    fn records_mut(&mut self, slot: u32) -> &mut [ProbeRecord] {
        let base = slot as usize * self.count;
        &mut self.probes[base..base + self.count]
    }

    fn reset_window(&mut self, slot: u32) -> u32 {
        let mut in_flight = 0;
        for r in self.records_mut(slot) {
            if r.sent_ns != 0 && r.rtt_ns == NO_REPLY {
                in_flight += 1;
            }
            *r = EMPTY;
        }
        in_flight
    }

    /// Start a new window at tick `start`.
    pub fn begin_window(&mut self, slot: u32, start: u64) {
        self.reset_window(slot);
        let s = &mut self.slots[slot as usize];
        s.window_start = start;
        s.local_send_error = false;
    }

    /// The token for probe `k` of `slot` sent at `sent_ns`; records the send
    /// time (undo with [`MonitorTable::record_not_sent`] if the send fails).
    pub fn prepare_send(&mut self, slot: u32, k: u16, engine_tag: u32, sent_ns: u64) -> ProbeToken {
        let generation = self.slots[slot as usize].generation;
        self.records_mut(slot)[usize::from(k)] = ProbeRecord {
            sent_ns,
            tx_ns: 0,
            rtt_ns: NO_REPLY,
        };
        ProbeToken {
            engine_tag,
            slot,
            generation,
            probe: k,
            sent_ns,
        }
    }

    /// Record the kernel's transmit timestamp of the probe that carries
    /// `token`. False (nothing recorded) when that probe is no longer
    /// awaited, already answered, or the stamp is implausible (before the
    /// send, or more than `timeout_ns` after it).
    pub fn record_tx(&mut self, token: &ProbeToken, tx_ns: u64, timeout_ns: u64) -> bool {
        let Some(slot) = self.slots.get(token.slot as usize) else {
            return false;
        };
        if usize::from(token.probe) >= self.count
            || slot.state == SlotState::Free
            || slot.generation != token.generation
        {
            return false;
        }
        let r = &mut self.probes[token.slot as usize * self.count + usize::from(token.probe)];
        let plausible = tx_ns
            .checked_sub(token.sent_ns)
            .is_some_and(|d| d <= timeout_ns);
        if r.sent_ns != token.sent_ns || r.rtt_ns != NO_REPLY || r.tx_ns != 0 || !plausible {
            return false;
        }
        r.tx_ns = tx_ns;
        true
    }

    /// Probe `k` was not sent after all.
    pub fn record_not_sent(&mut self, slot: u32, k: u16) {
        self.records_mut(slot)[usize::from(k)] = EMPTY;
    }

    /// Probe `k` was refused by the kernel for lack of a route: sent and
    /// lost.
    pub fn record_unreachable(&mut self, slot: u32, k: u16) {
        self.records_mut(slot)[usize::from(k)].rtt_ns = UNREACHABLE;
    }

    /// Match a reply carrying `token`, from `from`, with ICMP `sequence`,
    /// received at `rx_ns` (CLOCK_REALTIME, kernel timestamp).
    pub fn match_reply(
        &mut self,
        token: &ProbeToken,
        from: IpAddr,
        sequence: u16,
        rx_ns: u64,
        timeout_ns: u64,
        cadence: &Cadence,
    ) -> ReplyMatch {
        let Some(slot) = self.slots.get(token.slot as usize) else {
            return ReplyMatch::Unmatched;
        };
        if usize::from(token.probe) >= self.count {
            return ReplyMatch::Unmatched;
        }
        if slot.state == SlotState::Free || slot.generation != token.generation {
            // Removed or changed since this probe left.
            return ReplyMatch::Late;
        }
        if slot.destination != from {
            return ReplyMatch::Unmatched;
        }
        let record = self.probes[token.slot as usize * self.count + usize::from(token.probe)];
        if record.sent_ns != token.sent_ns {
            // An earlier window's probe with the same index, or a window
            // already closed (records cleared).
            return if token.sent_ns < record.sent_ns || record.sent_ns == 0 {
                ReplyMatch::Late
            } else {
                ReplyMatch::Unmatched
            };
        }
        if sequence != cadence.sequence(slot.window_start, token.probe) {
            return ReplyMatch::Unmatched;
        }
        match record.rtt_ns {
            NO_REPLY => {}
            UNREACHABLE => return ReplyMatch::Unmatched,
            _ => return ReplyMatch::Duplicate,
        }
        let kernel_tx = record.tx_ns != 0;
        let sent_at = if kernel_tx {
            record.tx_ns
        } else {
            token.sent_ns
        };
        let Some(rtt_ns) = rx_ns.checked_sub(sent_at) else {
            // The realtime clock stepped back between send and receive; the
            // RTT is unknowable. Treated as late (the probe stays lost).
            return ReplyMatch::Late;
        };
        if rtt_ns > timeout_ns {
            return ReplyMatch::Late;
        }
        let slot_idx = token.slot;
        self.probes[slot_idx as usize * self.count + usize::from(token.probe)].rtt_ns = rtt_ns;
        ReplyMatch::Matched {
            slot: slot_idx,
            rtt_ns,
            kernel_tx,
        }
    }

    /// Close the current window: outcomes in probe order (written into
    /// `buf`), and the records cleared so later replies count as late.
    pub fn close_window<'a>(&mut self, slot: u32, buf: &'a mut Vec<ProbeOutcome>) -> Closed<'a> {
        buf.clear();
        let mut timed_out = 0;
        for r in self.records_mut(slot) {
            buf.push(if r.sent_ns == 0 {
                ProbeOutcome::NotSent
            } else {
                match r.rtt_ns {
                    NO_REPLY => {
                        timed_out += 1;
                        ProbeOutcome::Lost
                    }
                    UNREACHABLE => ProbeOutcome::Lost,
                    ns => ProbeOutcome::Replied(Duration::from_nanos(ns)),
                }
            });
            *r = EMPTY;
        }
        Closed {
            outcomes: buf.as_slice(),
            timed_out,
        }
    }

    /// Approximate heap bytes per monitor, for the memory budget test.
    #[cfg(test)]
    pub fn bytes_per_monitor(&self) -> usize {
        let slot = std::mem::size_of::<Slot>();
        let probes = self.count * std::mem::size_of::<ProbeRecord>();
        // hashbrown: key + value per bucket plus one control byte, at most
        // 8/7 of the entries per bucket, and up to 2x after a resize.
        let map = (std::mem::size_of::<(Uuid, u32)>() + 1) * 8 / 7 * 2;
        let free = std::mem::size_of::<u32>();
        slot + probes + map + free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const TAG: u32 = 0x1234_5678;
    const TIMEOUT: u64 = 1_000_000_000;

    fn cadence() -> Cadence {
        Cadence {
            interval_ticks: 5000,
            count: 3,
            timeout_ticks: 500,
            max_late_ticks: 25,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn table_with_one() -> (MonitorTable, u32) {
        let mut t = MonitorTable::new(3);
        let s = t.insert(Uuid::from_u128(1), ip(1), ip(2), SlotState::Probing);
        t.begin_window(s, 5000);
        (t, s)
    }

    #[test]
    fn reply_matches_its_probe_once() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 1, TAG, 1_000);
        let seq = c.sequence(5000, 1);
        assert_eq!(seq, 4);
        assert_eq!(
            t.match_reply(&tok, ip(2), seq, 1_500, TIMEOUT, &c),
            ReplyMatch::Matched {
                slot: s,
                rtt_ns: 500,
                kernel_tx: false,
            }
        );
        assert_eq!(
            t.match_reply(&tok, ip(2), seq, 1_600, TIMEOUT, &c),
            ReplyMatch::Duplicate
        );
    }

    #[test]
    fn kernel_transmit_stamp_starts_the_rtt_once_and_only_for_its_probe() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 2, TAG, 1_000);
        let other = t.prepare_send(s, 0, TAG, 900);
        // Implausible stamps are refused: before the send, or past the timeout.
        assert!(!t.record_tx(&tok, 999, TIMEOUT));
        assert!(!t.record_tx(&tok, 1_000 + TIMEOUT + 1, TIMEOUT));
        // A stale token (another generation) is refused.
        let stale = ProbeToken {
            generation: tok.generation.wrapping_add(1),
            ..tok
        };
        assert!(!t.record_tx(&stale, 1_040, TIMEOUT));
        assert!(t.record_tx(&tok, 1_040, TIMEOUT));
        // Only one stamp per send.
        assert!(!t.record_tx(&tok, 1_050, TIMEOUT));
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 2), 1_500, TIMEOUT, &c),
            ReplyMatch::Matched {
                slot: s,
                rtt_ns: 460,
                kernel_tx: true,
            }
        );
        // After the reply, a stamp is too late to matter.
        assert!(!t.record_tx(&tok, 1_045, TIMEOUT));
        // The other probe had no stamp: its RTT starts at the clock read.
        assert_eq!(
            t.match_reply(&other, ip(2), c.sequence(5000, 0), 1_500, TIMEOUT, &c),
            ReplyMatch::Matched {
                slot: s,
                rtt_ns: 600,
                kernel_tx: false,
            }
        );
    }

    #[test]
    fn reply_after_timeout_is_late_and_probe_stays_lost() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 0, TAG, 1_000);
        assert_eq!(
            t.match_reply(
                &tok,
                ip(2),
                c.sequence(5000, 0),
                1_000 + TIMEOUT + 1,
                TIMEOUT,
                &c
            ),
            ReplyMatch::Late
        );
        let mut buf = Vec::new();
        let closed = t.close_window(s, &mut buf);
        assert_eq!(closed.timed_out, 1);
        assert_eq!(
            closed.outcomes,
            [
                ProbeOutcome::Lost,
                ProbeOutcome::NotSent,
                ProbeOutcome::NotSent
            ]
        );
    }

    #[test]
    fn reply_after_window_closed_is_late() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 2, TAG, 1_000);
        let mut buf = Vec::new();
        t.close_window(s, &mut buf);
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 2), 1_100, TIMEOUT, &c),
            ReplyMatch::Late
        );
        // Next window, same probe index, newer send time.
        t.begin_window(s, 10_000);
        let newer = t.prepare_send(s, 2, TAG, 9_000);
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 2), 9_100, TIMEOUT, &c),
            ReplyMatch::Late
        );
        assert!(matches!(
            t.match_reply(&newer, ip(2), c.sequence(10_000, 2), 9_100, TIMEOUT, &c),
            ReplyMatch::Matched { .. }
        ));
    }

    #[test]
    fn reply_for_removed_or_changed_monitor_is_late() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 0, TAG, 1_000);
        assert_eq!(t.release(s), 1);
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 0), 1_100, TIMEOUT, &c),
            ReplyMatch::Late
        );
        // The slot is reused by another monitor to the same destination.
        let s2 = t.insert(Uuid::from_u128(2), ip(1), ip(2), SlotState::Probing);
        assert_eq!(s2, s);
        t.begin_window(s2, 5000);
        t.prepare_send(s2, 0, TAG, 1_000);
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 0), 1_100, TIMEOUT, &c),
            ReplyMatch::Late
        );
    }

    #[test]
    fn forged_or_foreign_replies_are_unmatched() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 0, TAG, 1_000);
        let seq = c.sequence(5000, 0);
        // Wrong source address.
        assert_eq!(
            t.match_reply(&tok, ip(9), seq, 1_100, TIMEOUT, &c),
            ReplyMatch::Unmatched
        );
        // Wrong sequence.
        assert_eq!(
            t.match_reply(&tok, ip(2), seq + 1, 1_100, TIMEOUT, &c),
            ReplyMatch::Unmatched
        );
        // Slot out of range, probe index out of range, send time in the future.
        for bad in [
            ProbeToken { slot: 99, ..tok },
            ProbeToken { probe: 3, ..tok },
            ProbeToken {
                sent_ns: 2_000,
                ..tok
            },
        ] {
            assert_eq!(
                t.match_reply(&bad, ip(2), seq, 2_100, TIMEOUT, &c),
                ReplyMatch::Unmatched,
                "{bad:?}"
            );
        }
        // None of that disturbed the real probe.
        assert!(matches!(
            t.match_reply(&tok, ip(2), seq, 1_100, TIMEOUT, &c),
            ReplyMatch::Matched { .. }
        ));
    }

    #[test]
    fn clock_step_back_is_not_a_negative_rtt() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let tok = t.prepare_send(s, 0, TAG, 1_000);
        assert_eq!(
            t.match_reply(&tok, ip(2), c.sequence(5000, 0), 900, TIMEOUT, &c),
            ReplyMatch::Late
        );
    }

    #[test]
    fn close_window_reports_outcomes_in_probe_order() {
        let (mut t, s) = table_with_one();
        let c = cadence();
        let a = t.prepare_send(s, 0, TAG, 1_000);
        t.prepare_send(s, 1, TAG, 2_000);
        t.prepare_send(s, 2, TAG, 3_000);
        t.record_unreachable(s, 2);
        t.match_reply(&a, ip(2), c.sequence(5000, 0), 1_250, TIMEOUT, &c);
        let mut buf = Vec::new();
        let closed = t.close_window(s, &mut buf);
        assert_eq!(
            closed.outcomes,
            [
                ProbeOutcome::Replied(Duration::from_nanos(250)),
                ProbeOutcome::Lost,
                ProbeOutcome::Lost
            ]
        );
        assert_eq!(closed.timed_out, 1);
    }

    #[test]
    fn not_sent_probe_is_not_counted() {
        let (mut t, s) = table_with_one();
        t.prepare_send(s, 0, TAG, 1_000);
        t.record_not_sent(s, 0);
        let mut buf = Vec::new();
        let closed = t.close_window(s, &mut buf);
        assert_eq!(closed.outcomes, [ProbeOutcome::NotSent; 3]);
        assert_eq!(closed.timed_out, 0);
    }

    #[test]
    fn hundred_thousand_monitors_fit_the_memory_budget() {
        let mut t = MonitorTable::new(3);
        for i in 0..100_000u32 {
            let id = Uuid::from_u128(u128::from(i) + 1);
            t.insert(
                id,
                ip(1),
                IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)),
                SlotState::Probing,
            );
        }
        assert_eq!(t.len(), 100_000);
        let per_monitor = t.bytes_per_monitor() + std::mem::size_of::<u64>() * 2; // + wheel link
        assert!(per_monitor < 512, "{per_monitor} bytes per monitor");
        // Slots are reused, not leaked.
        let s = t.find(&Uuid::from_u128(5)).unwrap();
        t.release(s);
        let again = t.insert(Uuid::from_u128(500_000), ip(1), ip(2), SlotState::Probing);
        assert_eq!(again, s);
        assert_eq!(t.len(), 100_000);
    }
}
