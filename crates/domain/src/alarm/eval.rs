//! The evaluation of one rule as a pure state machine, fed one period's
//! value at a time (for period 1, each raw probe window), tested tick by
//! tick without a store or a clock.
//!
//! Semantics (CES documents the outline; the details are vpnmon's reading):
//! - A period *breaches* when its value compares true with the threshold.
//!   `count` consecutive breaches raise `alarm`; the first period that does
//!   not breach returns the rule to `ok`. From `insufficient_data`, the
//!   first non-breach gives `ok` and `count` breaches give `alarm`.
//! - A period without a value (a latency metric of a window with no reply
//!   at all) neither breaches nor clears: latency is unknown, loss says
//!   what happened.
//! - A value at or before the newest one already evaluated is ignored, so
//!   a window seen twice never counts twice.
//! - No data for [`NO_DATA_MS`] (3 hours, CES's rule) gives
//!   `insufficient_data`; [`Evaluator::no_data`] is the tick that says so.
//!   A rule of a longer period gets a value once per completed period,
//!   stamped with the period's start, so it waits two periods more
//!   ([`no_data_ms`]): a daily rule is not `insufficient_data` between two
//!   days.
//! - Notices: entering `alarm` is an alarm notice; while the alarm lasts,
//!   it is repeated each `suppress_duration` (0 = never repeated). A
//!   flapping link is not a stream of notices: with `suppress_duration`
//!   set, entering `alarm` again within it of the last alarm notice is
//!   silent (the repeat comes when it has passed, if the alarm lasts), and
//!   `alarm -> ok` is an ok notice only when that alarm was notified (not
//!   `insufficient_data -> ok` either). With `alarm_action_enabled` false
//!   there are no notices; transitions are still recorded.

use super::{AlarmState, Comparison, Condition, Filter};
use serde::{Deserialize, Serialize};

/// How long without data before a rule is `insufficient_data`.
pub const NO_DATA_MS: i64 = 3 * 3600 * 1000;

/// How far the stored time of a rule's newest data may lag the newest data
/// the evaluation saw: a healthy link's rule changes nothing but that time,
/// and the store writes it for all such rules in one sweep a few times per
/// this, not once per window. The no-data check allows for it: a rule
/// without data becomes `insufficient_data` between [`no_data_ms`] and
/// this much later.
pub const DATA_TIME_SAVED_EVERY_MS: i64 = 5 * 60 * 1000;

/// How long a rule of `period` (seconds) waits without data before it is
/// `insufficient_data`: [`NO_DATA_MS`], plus two periods for the rules fed
/// by completed rollups (the newest value is stamped with its bucket's
/// start and arrives after the bucket ends).
pub fn no_data_ms(period: i64) -> i64 {
    if period <= 1 {
        NO_DATA_MS
    } else {
        NO_DATA_MS + 2 * period * 1000
    }
}

/// What the evaluator remembers of a rule between periods.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalState {
    /// Consecutive breaching periods so far (at most `count`).
    pub breaches: i64,
    /// Time of the newest period evaluated (ms).
    pub last_data_ms: Option<i64>,
    /// Time of the last alarm notice (ms), for suppression.
    pub last_notice_ms: Option<i64>,
    /// Whether the alarm in progress was notified (its end is then an ok
    /// notice); absent in memory stored before it existed, where an alarm
    /// notice since the last recovery says it ([`EvalState::notified`]).
    #[serde(default)]
    pub alarm_notified: Option<bool>,
}

impl EvalState {
    /// Whether the alarm in progress was notified.
    pub fn notified(&self) -> bool {
        self.alarm_notified.unwrap_or(self.last_notice_ms.is_some())
    }

    /// The memory after the rule's condition changed: the count starts
    /// again, what was notified stays (an alarm in progress that was
    /// notified still ends with an ok notice; suppression still counts
    /// from the last notice).
    pub fn restarted(&self) -> EvalState {
        EvalState {
            last_notice_ms: self.last_notice_ms,
            alarm_notified: Some(self.notified()),
            ..EvalState::default()
        }
    }
}

/// A change of state and what caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: AlarmState,
    pub to: AlarmState,
    /// Time of the period that caused it (ms).
    pub time_ms: i64,
    /// Its value (none for `insufficient_data`).
    pub value: Option<f64>,
}

/// A notification that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// To `alarm_actions` (entering the alarm, or repeating it).
    Alarm,
    /// To `ok_actions` (back from an alarm).
    Ok,
}

/// The outcome of one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    pub transition: Option<Transition>,
    pub notice: Option<Notice>,
}

/// A rule's evaluation: its state and memory, the condition it checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluator<'a> {
    pub condition: &'a Condition,
    pub actions_enabled: bool,
    pub state: AlarmState,
    pub memory: EvalState,
}

/// The value a filter gives for one raw window (period 1): the window's
/// own value, whose variance is 0.
pub fn raw_value(filter: Filter, v: f64) -> f64 {
    match filter {
        Filter::Variance => 0.0,
        _ => v,
    }
}

impl Evaluator<'_> {
    fn go(&mut self, to: AlarmState, time_ms: i64, value: Option<f64>) -> Option<Transition> {
        if self.state == to {
            return None;
        }
        let t = Transition {
            from: self.state,
            to,
            time_ms,
            value,
        };
        self.state = to;
        Some(t)
    }

    /// One period's value at `time_ms` (`None`: the period has no value).
    pub fn period(&mut self, time_ms: i64, value: Option<f64>) -> Step {
        if self.memory.last_data_ms.is_some_and(|t| time_ms <= t) {
            return Step::default();
        }
        let Some(v) = value else {
            return Step::default();
        };
        self.memory.last_data_ms = Some(time_ms);
        let c = self.condition;
        let mut step = Step::default();
        // An alarm notice is due when none went out within the
        // suppression time.
        let due = self
            .memory
            .last_notice_ms
            .is_none_or(|n| time_ms - n >= c.suppress_duration * 1000);
        if breached(c.comparison_operator, v, c.value) {
            self.memory.breaches = (self.memory.breaches + 1).min(c.count);
            if self.memory.breaches >= c.count {
                let entered = self.go(AlarmState::Alarm, time_ms, Some(v));
                step.transition = entered;
                let notify = match entered {
                    // Entering: notified unless within the suppression
                    // time of the last notice.
                    Some(_) => c.suppress_duration == 0 || due,
                    // Lasting: repeated each suppression time.
                    None => c.suppress_duration > 0 && due,
                };
                if entered.is_some() {
                    self.memory.alarm_notified = Some(false);
                }
                if notify && self.actions_enabled {
                    step.notice = Some(Notice::Alarm);
                    self.memory.last_notice_ms = Some(time_ms);
                    self.memory.alarm_notified = Some(true);
                }
            }
        } else {
            self.memory.breaches = 0;
            if let Some(t) = self.go(AlarmState::Ok, time_ms, Some(v)) {
                step.transition = Some(t);
                if t.from == AlarmState::Alarm && self.memory.notified() {
                    step.notice = Some(Notice::Ok);
                }
                self.memory.alarm_notified = Some(false);
            }
        }
        if !self.actions_enabled {
            step.notice = None;
        }
        step
    }

    /// The tick without data at `now_ms`; `since_ms` is when the rule
    /// started watching (its creation or last change), used when it has
    /// never seen data.
    pub fn no_data(&mut self, now_ms: i64, since_ms: i64) -> Step {
        let last = self.memory.last_data_ms.unwrap_or(since_ms).max(since_ms);
        if now_ms - last < no_data_ms(self.condition.period) {
            return Step::default();
        }
        self.memory.breaches = 0;
        self.memory.last_notice_ms = None;
        self.memory.alarm_notified = Some(false);
        Step {
            transition: self.go(AlarmState::InsufficientData, now_ms, None),
            notice: None,
        }
    }
}

fn breached(op: Comparison, v: f64, threshold: f64) -> bool {
    op.breached(v, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlarmState::*;

    fn cond(op: Comparison, value: f64, count: i64, suppress: i64) -> Condition {
        Condition {
            comparison_operator: op,
            count,
            filter: Filter::Average,
            period: 1,
            unit: "%".into(),
            value,
            suppress_duration: suppress,
        }
    }

    /// Feeds `values` one window each 10 s from t=10 000; returns each
    /// step's (state after, transition target, notice).
    fn run(
        c: &Condition,
        start: AlarmState,
        values: &[Option<f64>],
    ) -> Vec<(AlarmState, Option<AlarmState>, Option<Notice>)> {
        let mut e = Evaluator {
            condition: c,
            actions_enabled: true,
            state: start,
            memory: EvalState::default(),
        };
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let s = e.period(10_000 * (i as i64 + 1), *v);
                (e.state, s.transition.map(|t| t.to), s.notice)
            })
            .collect()
    }

    #[test]
    fn loss_alarm_fires_on_the_count_th_consecutive_breach_and_clears_on_the_first_good_window() {
        let c = cond(Comparison::Ge, 50.0, 2, 0);
        let got = run(
            &c,
            InsufficientData,
            &[Some(0.0), Some(100.0), Some(100.0), Some(100.0), Some(0.0)],
        );
        assert_eq!(
            got,
            vec![
                (Ok, Some(Ok), None),
                (Ok, None, None),
                (Alarm, Some(Alarm), Some(Notice::Alarm)),
                (Alarm, None, None),
                (Ok, Some(Ok), Some(Notice::Ok)),
            ]
        );
    }

    #[test]
    fn a_good_window_between_breaches_restarts_the_count() {
        let c = cond(Comparison::Gt, 10.0, 3, 0);
        let got = run(
            &c,
            Ok,
            &[
                Some(20.0),
                Some(20.0),
                Some(5.0),
                Some(20.0),
                Some(20.0),
                Some(20.0),
            ],
        );
        let states: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(states, vec![Ok, Ok, Ok, Ok, Ok, Alarm]);
        assert_eq!(got[5].2, Some(Notice::Alarm));
    }

    #[test]
    fn count_one_alarms_on_the_first_breach() {
        let c = cond(Comparison::Ge, 100.0, 1, 0);
        let got = run(&c, Ok, &[Some(100.0)]);
        assert_eq!(got, vec![(Alarm, Some(Alarm), Some(Notice::Alarm))]);
    }

    #[test]
    fn insufficient_data_to_ok_sends_no_ok_notice() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        assert_eq!(
            run(&c, InsufficientData, &[Some(1.0)]),
            vec![(Ok, Some(Ok), None)]
        );
    }

    #[test]
    fn insufficient_data_to_alarm_is_an_alarm_notice() {
        let c = cond(Comparison::Ge, 50.0, 2, 0);
        assert_eq!(
            run(&c, InsufficientData, &[Some(60.0), Some(60.0)]),
            vec![
                (InsufficientData, None, None),
                (Alarm, Some(Alarm), Some(Notice::Alarm))
            ]
        );
    }

    #[test]
    fn a_window_without_a_value_neither_breaches_nor_clears() {
        let c = cond(Comparison::Gt, 100.0, 2, 0);
        let got = run(&c, Ok, &[Some(150.0), None, Some(150.0)]);
        assert_eq!(got[1], (Ok, None, None));
        assert_eq!(got[2], (Alarm, Some(Alarm), Some(Notice::Alarm)));
    }

    #[test]
    fn a_window_seen_twice_or_late_counts_once() {
        let c = cond(Comparison::Ge, 50.0, 2, 0);
        let mut e = Evaluator {
            condition: &c,
            actions_enabled: true,
            state: Ok,
            memory: EvalState::default(),
        };
        assert_eq!(e.period(20_000, Some(100.0)), Step::default());
        assert_eq!(e.period(20_000, Some(100.0)), Step::default());
        assert_eq!(e.period(10_000, Some(100.0)), Step::default());
        assert_eq!(e.memory.breaches, 1);
        assert_eq!(e.state, Ok);
        let s = e.period(30_000, Some(100.0));
        assert_eq!(
            s.transition,
            Some(Transition {
                from: Ok,
                to: Alarm,
                time_ms: 30_000,
                value: Some(100.0)
            })
        );
    }

    #[test]
    fn suppress_duration_repeats_the_alarm_notice_while_it_lasts() {
        // 300 s suppression, a window every 10 s: the notice at t=10 s,
        // then again at t=310 s, t=610 s.
        let c = cond(Comparison::Ge, 50.0, 1, 300);
        let got = run(&c, Ok, &vec![Some(100.0); 62]);
        let notices: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, g)| g.2.is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(notices, vec![0, 30, 60]);
        assert!(got.iter().all(|g| g.0 == Alarm));
    }

    #[test]
    fn suppress_zero_notifies_once_per_alarm() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let got = run(&c, Ok, &vec![Some(100.0); 100]);
        assert_eq!(got.iter().filter(|g| g.2.is_some()).count(), 1);
    }

    #[test]
    fn flapping_within_the_suppression_time_notifies_once_each_way() {
        // 300 s suppression, a window every 10 s: alarm, ok, then flapping
        // for 4 minutes is silent; the alarm still on 300 s after the first
        // notice is repeated, and its end is an ok notice again.
        let c = cond(Comparison::Ge, 50.0, 1, 300);
        let mut values = vec![Some(100.0), Some(0.0)];
        for _ in 0..12 {
            values.extend([Some(100.0), Some(0.0)]);
        }
        values.extend(vec![Some(100.0); 10]);
        values.push(Some(0.0));
        let got = run(&c, Ok, &values);
        let notices: Vec<(usize, Notice)> = got
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.2.map(|n| (i, n)))
            .collect();
        assert_eq!(
            notices,
            vec![
                (0, Notice::Alarm),
                (1, Notice::Ok),
                (30, Notice::Alarm),
                (36, Notice::Ok)
            ]
        );
        // Every transition is still a transition (recorded in the history).
        assert_eq!(got.iter().filter(|g| g.1.is_some()).count(), 28);
    }

    #[test]
    fn memory_stored_before_alarm_notified_existed_still_ends_a_notified_alarm() {
        let old: EvalState =
            serde_json::from_str(r#"{"breaches":1,"last_data_ms":10000,"last_notice_ms":10000}"#)
                .unwrap();
        assert!(old.notified());
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let mut e = Evaluator {
            condition: &c,
            actions_enabled: true,
            state: Alarm,
            memory: old,
        };
        assert_eq!(e.period(20_000, Some(0.0)).notice, Some(Notice::Ok));
        // A restarted rule (its condition changed) keeps what was notified.
        let m = EvalState {
            last_notice_ms: Some(5),
            alarm_notified: Some(true),
            breaches: 2,
            ..EvalState::default()
        };
        let r = m.restarted();
        assert_eq!(
            (r.breaches, r.last_notice_ms, r.notified()),
            (0, Some(5), true)
        );
        let quiet: EvalState =
            serde_json::from_str(r#"{"breaches":0,"last_data_ms":null,"last_notice_ms":null}"#)
                .unwrap();
        assert!(!quiet.notified());
    }

    #[test]
    fn without_suppression_each_new_alarm_and_its_recovery_notify() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let got = run(&c, Ok, &[Some(100.0), Some(0.0), Some(100.0), Some(0.0)]);
        let n: Vec<_> = got.iter().map(|g| g.2).collect();
        assert_eq!(
            n,
            vec![
                Some(Notice::Alarm),
                Some(Notice::Ok),
                Some(Notice::Alarm),
                Some(Notice::Ok)
            ]
        );
    }

    #[test]
    fn actions_disabled_records_transitions_without_notices() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let mut e = Evaluator {
            condition: &c,
            actions_enabled: false,
            state: Ok,
            memory: EvalState::default(),
        };
        let s = e.period(1, Some(100.0));
        assert_eq!(s.transition.map(|t| t.to), Some(Alarm));
        assert_eq!(s.notice, None);
    }

    #[test]
    fn three_hours_without_data_is_insufficient_data() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let mut e = Evaluator {
            condition: &c,
            actions_enabled: true,
            state: Ok,
            memory: EvalState::default(),
        };
        e.period(1_000, Some(100.0));
        assert_eq!(e.state, Alarm);
        assert_eq!(e.no_data(1_000 + NO_DATA_MS - 1, 0), Step::default());
        let s = e.no_data(1_000 + NO_DATA_MS, 0);
        assert_eq!(
            s.transition,
            Some(Transition {
                from: Alarm,
                to: InsufficientData,
                time_ms: 1_000 + NO_DATA_MS,
                value: None
            })
        );
        assert_eq!(s.notice, None);
        assert_eq!(e.memory.breaches, 0);
        // Said once.
        assert_eq!(e.no_data(2 * NO_DATA_MS, 0), Step::default());
    }

    #[test]
    fn a_rule_that_never_saw_data_counts_from_its_start() {
        let c = cond(Comparison::Ge, 50.0, 1, 0);
        let mut e = Evaluator {
            condition: &c,
            actions_enabled: true,
            state: Ok,
            memory: EvalState::default(),
        };
        assert_eq!(e.no_data(5_000 + NO_DATA_MS - 1, 5_000), Step::default());
        assert_eq!(
            e.no_data(5_000 + NO_DATA_MS, 5_000)
                .transition
                .map(|t| t.to),
            Some(InsufficientData)
        );
    }

    #[test]
    fn comparisons() {
        use Comparison::*;
        assert!(Gt.breached(2.0, 1.0) && !Gt.breached(1.0, 1.0));
        assert!(Ge.breached(1.0, 1.0) && !Ge.breached(0.5, 1.0));
        assert!(Lt.breached(0.5, 1.0) && !Lt.breached(1.0, 1.0));
        assert!(Le.breached(1.0, 1.0) && !Le.breached(1.5, 1.0));
        assert!(Eq.breached(1.0, 1.0) && !Eq.breached(1.5, 1.0));
        assert_eq!(raw_value(Filter::Variance, 7.0), 0.0);
        assert_eq!(raw_value(Filter::Max, 7.0), 7.0);
    }
}
