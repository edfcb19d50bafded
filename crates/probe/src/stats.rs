//! Window aggregation: what one monitor's probes of one window add up to.
//!
//! A pure function of the probe outcomes, in probe order, so the numbers the
//! product reports can be checked by hand.

use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::WindowStats;

/// What became of one scheduled probe of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProbeOutcome {
    /// Never sent: skipped after a stall, or the kernel refused it for a
    /// local reason (no buffer space, source address gone). Not counted.
    NotSent,
    /// Sent (or refused by the network: no route, firewall; `ping` counts
    /// those as transmitted too) and no valid reply in time.
    Lost,
    /// Answered within the timeout, with this round-trip time.
    Replied(Duration),
}

/// Aggregate one window. `outcomes` are in probe (sequence) order.
///
/// Returns `None` when nothing was sent: a window without probes measured
/// nothing, and reporting it as 0 % or 100 % loss would be invented.
///
/// - `loss_pct` = (sent − received) / sent × 100;
/// - RTT min/avg/max over the replies, in milliseconds;
/// - `jitter_ms` = mean absolute difference of consecutive RTTs, taking the
///   replies in probe order and skipping lost probes; `None` with fewer than
///   two replies.
pub fn aggregate(
    id: Uuid,
    window_start: SystemTime,
    outcomes: &[ProbeOutcome],
) -> Option<WindowStats> {
    let mut sent = 0u32;
    let mut received = 0u32;
    let mut min = f64::INFINITY;
    let mut max = 0f64;
    let mut sum = 0f64;
    let mut prev: Option<f64> = None;
    let mut diff_sum = 0f64;
    let mut diffs = 0u32;
    for outcome in outcomes {
        match outcome {
            ProbeOutcome::NotSent => {}
            ProbeOutcome::Lost => sent += 1,
            ProbeOutcome::Replied(rtt) => {
                sent += 1;
                received += 1;
                let ms = rtt.as_secs_f64() * 1000.0;
                min = min.min(ms);
                max = max.max(ms);
                sum += ms;
                if let Some(p) = prev {
                    diff_sum += (ms - p).abs();
                    diffs += 1;
                }
                prev = Some(ms);
            }
        }
    }
    if sent == 0 {
        return None;
    }
    let got_replies = received > 0;
    Some(WindowStats {
        id,
        window_start,
        sent,
        received,
        loss_pct: f64::from(sent - received) * 100.0 / f64::from(sent),
        rtt_min_ms: got_replies.then_some(min),
        rtt_avg_ms: got_replies.then(|| sum / f64::from(received)),
        rtt_max_ms: got_replies.then_some(max),
        jitter_ms: (diffs > 0).then(|| diff_sum / f64::from(diffs)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeOutcome::*;

    fn ms(v: u64) -> ProbeOutcome {
        Replied(Duration::from_micros(v * 1000))
    }

    fn agg(outcomes: &[ProbeOutcome]) -> Option<WindowStats> {
        aggregate(Uuid::nil(), SystemTime::UNIX_EPOCH, outcomes)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn all_replies() {
        let s = agg(&[ms(10), ms(20), ms(15)]).unwrap();
        assert_eq!((s.sent, s.received), (3, 3));
        assert_eq!(s.loss_pct, 0.0);
        assert!(close(s.rtt_min_ms, 10.0));
        assert!(close(s.rtt_avg_ms, 15.0));
        assert!(close(s.rtt_max_ms, 20.0));
        // |20-10| and |15-20| -> (10 + 5) / 2
        assert!(close(s.jitter_ms, 7.5));
    }

    #[test]
    fn one_lost_of_three() {
        let s = agg(&[ms(10), Lost, ms(14)]).unwrap();
        assert_eq!((s.sent, s.received), (3, 2));
        assert!((s.loss_pct - 100.0 / 3.0).abs() < 1e-9);
        assert!(close(s.rtt_avg_ms, 12.0));
        // Consecutive replies are 10 and 14: the lost probe is skipped.
        assert!(close(s.jitter_ms, 4.0));
    }

    #[test]
    fn all_lost_has_no_rtt() {
        let s = agg(&[Lost, Lost, Lost]).unwrap();
        assert_eq!((s.sent, s.received), (3, 0));
        assert_eq!(s.loss_pct, 100.0);
        assert_eq!(
            (s.rtt_min_ms, s.rtt_avg_ms, s.rtt_max_ms, s.jitter_ms),
            (None, None, None, None)
        );
    }

    #[test]
    fn single_reply_has_rtt_but_no_jitter() {
        let s = agg(&[Lost, ms(3), Lost]).unwrap();
        assert!(close(s.rtt_min_ms, 3.0));
        assert!(close(s.rtt_max_ms, 3.0));
        assert_eq!(s.jitter_ms, None);
    }

    #[test]
    fn skipped_probes_are_not_counted_as_sent() {
        let s = agg(&[NotSent, ms(2), Lost]).unwrap();
        assert_eq!((s.sent, s.received), (2, 1));
        assert_eq!(s.loss_pct, 50.0);
    }

    #[test]
    fn nothing_sent_is_no_window() {
        assert!(agg(&[NotSent, NotSent, NotSent]).is_none());
        assert!(agg(&[]).is_none());
    }

    #[test]
    fn sub_millisecond_rtts_keep_precision() {
        let s = agg(&[
            Replied(Duration::from_nanos(4_000)),
            Replied(Duration::from_nanos(13_000)),
        ])
        .unwrap();
        assert!(close(s.rtt_min_ms, 0.004));
        assert!(close(s.rtt_max_ms, 0.013));
        assert!(close(s.jitter_ms, 0.009));
    }
}
