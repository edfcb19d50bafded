//! When each monitor's probes go out: the cadence arithmetic and a timing
//! wheel, both free of I/O and of the clock (time is an engine tick count).
//!
//! # Cadence
//!
//! Each monitor has a phase in `[0, interval)` derived from a hash of its id,
//! so 100 000 monitors spread evenly over the window instead of firing
//! together, and a monitor keeps its phase across engine restarts. Its
//! windows start at `phase + n × interval` ticks; probe `k` of a window goes
//! out `k × interval / count` ticks after the window start; the window closes
//! `timeout` (plus one tick of grace) after its last probe actually left.
//!
//! # Timing wheel
//!
//! Every monitor has exactly one pending event at a time (its next probe,
//! its window close, or a recheck), so the wheel is intrusive: one bucket
//! head per tick and a `prev`/`next`/`due` link per monitor slot, stored in
//! flat vectors. Scheduling and cancelling are O(1), nothing is allocated per
//! probe, and the cost per monitor is 16 bytes. The wheel spans at least one
//! interval plus the timeout, so no event is ever more than one lap ahead.

/// Sentinel for "no slot" in the intrusive lists.
const NIL: u32 = u32::MAX;
/// `due` value of a slot that is not scheduled.
const UNSCHEDULED: u64 = u64::MAX;

/// Cadence of every monitor of an engine, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// Window length.
    pub interval_ticks: u64,
    /// Probes per window.
    pub count: u16,
    /// How long a probe waits for its reply.
    pub timeout_ticks: u64,
    /// A probe due longer ago than this is skipped, not sent late.
    pub max_late_ticks: u64,
}

impl Cadence {
    /// Phase of a monitor in `[0, interval_ticks)`: a mix of all 128 bits of
    /// its id, so time-ordered (v7) ids spread as well as random ones.
    pub fn phase(&self, id: &uuid::Uuid) -> u64 {
        let (hi, lo) = id.as_u64_pair();
        mix64(hi ^ mix64(lo)) % self.interval_ticks
    }

    /// First window start strictly after `now`.
    pub fn next_window_start(&self, phase: u64, now: u64) -> u64 {
        let after = now + 1;
        if after <= phase {
            return phase;
        }
        let laps = (after - phase).div_ceil(self.interval_ticks);
        phase + laps * self.interval_ticks
    }

    /// The window in progress at `now` (started at or before it) and the
    /// first of its probes not yet due, or `None` when the window has no
    /// probe left (or none has started yet).
    pub fn window_in_progress(&self, phase: u64, now: u64) -> Option<(u64, u16)> {
        let next = self.next_window_start(phase, now);
        let current = next.checked_sub(self.interval_ticks)?;
        (0..self.count)
            .find(|&k| current + self.probe_offset(k) >= now)
            .map(|k| (current, k))
    }

    /// Offset of probe `k` from its window start.
    pub fn probe_offset(&self, k: u16) -> u64 {
        u64::from(k) * self.interval_ticks / u64::from(self.count)
    }

    /// Whether an event due at `due` and handled at `now` is too late to
    /// send (sending it would be a burst after a stall).
    pub fn too_late(&self, due: u64, now: u64) -> bool {
        now.saturating_sub(due) > self.max_late_ticks
    }

    /// The sequence number of probe `k` in the window starting at
    /// `window_start`: consecutive across windows, wrapping at 2^16.
    pub fn sequence(&self, window_start: u64, k: u16) -> u16 {
        let window = window_start / self.interval_ticks;
        (window
            .wrapping_mul(u64::from(self.count))
            .wrapping_add(u64::from(k))) as u16
    }

    /// Least number of ticks between two wake-ups so that each wake-up
    /// finds about `batch` due probes, given `probing` monitors, capped at
    /// `max_gap` (which must stay well below `max_late_ticks`). At high
    /// rates this is one tick; at low rates it trades a few milliseconds of
    /// send lateness, which no measurement sees (RTT uses send and kernel
    /// receive timestamps), for far fewer wake-ups, the dominant CPU cost.
    pub fn wake_gap(&self, probing: u64, batch: u64, max_gap: u64) -> u64 {
        let per_interval = probing * u64::from(self.count);
        if per_interval == 0 {
            return max_gap.max(1);
        }
        (batch * self.interval_ticks)
            .div_ceil(per_interval)
            .clamp(1, max_gap.max(1))
    }

    /// Wheel span needed for this cadence (see [`TimerWheel::new`]).
    pub fn wheel_span(&self) -> u64 {
        self.interval_ticks + self.timeout_ticks + 2
    }
}

/// SplitMix64 finaliser: cheap and good enough to spread phases.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    due: u64,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    due: UNSCHEDULED,
};

/// Intrusive timing wheel over slot indices (see the module docs).
#[derive(Debug)]
pub struct TimerWheel {
    heads: Vec<u32>,
    mask: u64,
    links: Vec<Link>,
    /// Last tick processed by [`TimerWheel::advance`].
    cursor: u64,
    scheduled: usize,
}

impl TimerWheel {
    /// A wheel with at least `span` buckets (rounded up to a power of two);
    /// events may be scheduled at most `span` ticks ahead. `start` is the
    /// current tick.
    pub fn new(span: u64, start: u64) -> Self {
        let buckets = span.max(2).next_power_of_two();
        TimerWheel {
            heads: vec![NIL; buckets as usize],
            mask: buckets - 1,
            links: Vec::new(),
            cursor: start,
            scheduled: 0,
        }
    }

    /// Last tick processed.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Number of scheduled slots.
    pub fn len(&self) -> usize {
        self.scheduled
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.scheduled == 0
    }

    /// Due tick of a slot, if scheduled.
    pub fn due(&self, slot: u32) -> Option<u64> {
        self.links
            .get(slot as usize)
            .map(|l| l.due)
            .filter(|&d| d != UNSCHEDULED)
    }

    /// Schedule `slot` at `due`, replacing any pending event of the slot.
    /// A due tick at or before the cursor is moved to the next tick: an
    /// event is never lost, at worst one tick late.
    pub fn schedule(&mut self, slot: u32, due: u64) {
        let idx = slot as usize;
        if idx >= self.links.len() {
            self.links.resize(idx + 1, UNLINKED);
        }
        self.cancel(slot);
        let due = due.max(self.cursor + 1);
        let bucket = (due & self.mask) as usize;
        let head = self.heads[bucket];
        self.links[idx] = Link {
            prev: NIL,
            next: head,
            due,
        };
        if head != NIL {
            self.links[head as usize].prev = slot;
        }
        self.heads[bucket] = slot;
        self.scheduled += 1;
    }

    /// Remove `slot`'s pending event, if any.
    pub fn cancel(&mut self, slot: u32) {
        let Some(link) = self.links.get(slot as usize).copied() else {
            return;
        };
        if link.due == UNSCHEDULED {
            return;
        }
        if link.prev == NIL {
            self.heads[(link.due & self.mask) as usize] = link.next;
        } else {
            self.links[link.prev as usize].next = link.next;
        }
        if link.next != NIL {
            self.links[link.next as usize].prev = link.prev;
        }
        self.links[slot as usize] = UNLINKED;
        self.scheduled -= 1;
    }

    /// Move the cursor to `now`, appending `(slot, due)` for every event due
    /// at or before `now` to `out` (in tick order, except after a stall
    /// longer than the wheel, when every bucket is visited once). Popped
    /// slots are unscheduled.
    pub fn advance(&mut self, now: u64, out: &mut Vec<(u32, u64)>) {
        if now <= self.cursor {
            return;
        }
        let buckets = self.mask + 1;
        let first = self.cursor + 1;
        let last = if now - self.cursor > buckets {
            first + buckets - 1
        } else {
            now
        };
        for tick in first..=last {
            let bucket = (tick & self.mask) as usize;
            let mut cur = self.heads[bucket];
            while cur != NIL {
                let link = self.links[cur as usize];
                if link.due <= now {
                    self.cancel(cur);
                    out.push((cur, link.due));
                }
                cur = link.next;
            }
        }
        self.cursor = now;
    }

    /// The first tick in `(cursor, cursor + limit]` with a non-empty bucket,
    /// to sleep until it instead of waking every tick when idle.
    pub fn next_busy_tick(&self, limit: u64) -> Option<u64> {
        (self.cursor + 1..=self.cursor + limit.min(self.mask + 1))
            .find(|&t| self.heads[(t & self.mask) as usize] != NIL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn cadence() -> Cadence {
        // 10 s window, 3 probes, 1 s timeout, 2 ms ticks.
        Cadence {
            interval_ticks: 5000,
            count: 3,
            timeout_ticks: 500,
            max_late_ticks: 25,
        }
    }

    #[test]
    fn a_monitor_joins_the_window_in_progress_at_its_next_probe() {
        let c = cadence();
        // Probes at 0, 1666, 3333 of each 5000-tick window; phase 100.
        assert_eq!(c.window_in_progress(100, 50), None, "no window started yet");
        assert_eq!(c.window_in_progress(100, 100), Some((100, 0)));
        assert_eq!(c.window_in_progress(100, 101), Some((100, 1)));
        assert_eq!(c.window_in_progress(100, 1766), Some((100, 1)));
        assert_eq!(c.window_in_progress(100, 1767), Some((100, 2)));
        assert_eq!(c.window_in_progress(100, 3433), Some((100, 2)));
        assert_eq!(c.window_in_progress(100, 3434), None, "no probe left");
        assert_eq!(c.window_in_progress(100, 20_100), Some((20_100, 0)));
        assert_eq!(c.window_in_progress(100, 21_000), Some((20_100, 1)));
    }

    #[test]
    fn next_window_start_is_strictly_after_now_and_within_one_interval() {
        let c = cadence();
        assert_eq!(c.next_window_start(100, 0), 100);
        assert_eq!(c.next_window_start(100, 99), 100);
        assert_eq!(c.next_window_start(100, 100), 5100);
        assert_eq!(c.next_window_start(100, 5099), 5100);
        assert_eq!(c.next_window_start(0, 0), 5000);
        for now in [0u64, 1, 4999, 5000, 123_456] {
            for phase in [0u64, 1, 2500, 4999] {
                let s = c.next_window_start(phase, now);
                assert!(s > now && s <= now + c.interval_ticks);
                assert_eq!(s % c.interval_ticks, phase);
            }
        }
    }

    #[test]
    fn probes_are_spaced_evenly_over_the_window() {
        let c = cadence();
        let offsets: Vec<u64> = (0..3).map(|k| c.probe_offset(k)).collect();
        assert_eq!(offsets, [0, 1666, 3333]);
    }

    #[test]
    fn lateness_threshold() {
        let c = cadence();
        assert!(!c.too_late(100, 100));
        assert!(!c.too_late(100, 125));
        assert!(c.too_late(100, 126));
        assert!(!c.too_late(100, 50));
    }

    #[test]
    fn wake_gap_batches_at_low_rates_and_is_one_tick_at_high_rates() {
        let c = cadence(); // 5000 ticks per window, 3 probes
        // 100 000 monitors: 60 probes per tick anyway.
        assert_eq!(c.wake_gap(100_000, 8, 10), 1);
        // 1 000 monitors: 0.6 probes per tick -> 14 ticks for 8 probes.
        assert_eq!(c.wake_gap(1_000, 8, 20), 14);
        // Capped.
        assert_eq!(c.wake_gap(10, 8, 20), 20);
        assert_eq!(c.wake_gap(0, 8, 20), 20);
        assert_eq!(c.wake_gap(0, 8, 0), 1);
    }

    #[test]
    fn sequence_numbers_continue_across_windows_and_wrap() {
        let c = cadence();
        assert_eq!(c.sequence(0, 0), 0);
        assert_eq!(c.sequence(0, 2), 2);
        assert_eq!(c.sequence(5000 + 17, 0), 3);
        assert_eq!(c.sequence(5000 * 21845, 1), 0);
    }

    #[test]
    fn phases_of_100k_monitors_spread_evenly() {
        let c = cadence();
        let mut per_tick = vec![0u32; c.interval_ticks as usize];
        for i in 0..100_000u128 {
            // Time-ordered ids: the first 48 bits barely differ.
            let id = Uuid::from_u128((0x0190_0000_0000u128 << 80) | (i << 64) | 0x7000);
            let phase = c.phase(&id);
            for k in 0..c.count {
                let t = (phase + c.probe_offset(k)) % c.interval_ticks;
                per_tick[t as usize] += 1;
            }
        }
        // 300 000 probes over 5 000 ticks: 60 per tick on average.
        let max = *per_tick.iter().max().unwrap();
        let min = *per_tick.iter().min().unwrap();
        assert!(max <= 120, "burst of {max} probes in one tick");
        assert!(min >= 20, "only {min} probes in some tick");
    }

    #[test]
    fn wheel_pops_events_in_tick_order() {
        let mut w = TimerWheel::new(100, 0);
        w.schedule(1, 5);
        w.schedule(2, 3);
        w.schedule(3, 5);
        w.schedule(4, 50);
        assert_eq!(w.len(), 4);
        let mut out = Vec::new();
        w.advance(2, &mut out);
        assert!(out.is_empty());
        w.advance(5, &mut out);
        out.sort();
        assert_eq!(out, [(1, 5), (2, 3), (3, 5)]);
        assert_eq!(w.len(), 1);
        assert_eq!(w.due(4), Some(50));
        assert_eq!(w.due(1), None);
    }

    #[test]
    fn wheel_cancel_and_reschedule() {
        let mut w = TimerWheel::new(64, 0);
        for s in 0..10 {
            w.schedule(s, 7);
        }
        w.cancel(4);
        w.cancel(0);
        w.cancel(9);
        w.cancel(9); // idempotent
        w.cancel(1000); // unknown slot
        w.schedule(5, 9); // replaces its event at 7
        let mut out = Vec::new();
        w.advance(8, &mut out);
        let mut slots: Vec<u32> = out.iter().map(|&(s, _)| s).collect();
        slots.sort();
        assert_eq!(slots, [1, 2, 3, 6, 7, 8]);
        out.clear();
        w.advance(9, &mut out);
        assert_eq!(out, [(5, 9)]);
        assert!(w.is_empty());
    }

    #[test]
    fn wheel_moves_past_due_events_to_next_tick() {
        let mut w = TimerWheel::new(64, 10);
        w.schedule(1, 3);
        assert_eq!(w.due(1), Some(11));
        let mut out = Vec::new();
        w.advance(11, &mut out);
        assert_eq!(out, [(1, 11)]);
    }

    #[test]
    fn wheel_laps_keep_far_events() {
        let mut w = TimerWheel::new(16, 0);
        w.schedule(1, 16);
        w.schedule(2, 2);
        let mut out = Vec::new();
        w.advance(15, &mut out);
        assert_eq!(out, [(2, 2)]);
        out.clear();
        w.advance(16, &mut out);
        assert_eq!(out, [(1, 16)]);
    }

    #[test]
    fn wheel_long_stall_pops_everything_once() {
        let mut w = TimerWheel::new(16, 0);
        for s in 0..16u32 {
            w.schedule(s, u64::from(s) + 1);
        }
        let mut out = Vec::new();
        w.advance(1_000, &mut out);
        assert_eq!(out.len(), 16);
        assert!(w.is_empty());
        assert_eq!(w.cursor(), 1_000);
    }

    #[test]
    fn next_busy_tick_finds_the_next_bucket() {
        let mut w = TimerWheel::new(64, 0);
        assert_eq!(w.next_busy_tick(64), None);
        w.schedule(3, 40);
        assert_eq!(w.next_busy_tick(64), Some(40));
        assert_eq!(w.next_busy_tick(10), None);
    }

    #[test]
    fn wheel_costs_sixteen_bytes_per_slot() {
        assert_eq!(std::mem::size_of::<Link>(), 16);
    }
}
