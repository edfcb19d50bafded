//! How long each level of stored measurements is kept: raw probe windows
//! and each rollup period.
//!
//! The default is Cloud Eye's own schedule, which its users know (raw data
//! 2 days, 300 s 10 days, 1200 s 20 days, 3600 s 155 days, 14400 s 300 days,
//! 86400 s 5 years); the 60 s level is vpnmon's own and is kept like the raw
//! windows, 2 days.
//!
//! An operator writes `raw=2d,60=2d,300=10d,...` (any subset, any order) or
//! a plain duration, which names the raw level (what the setting meant
//! before it had levels). The rule between levels: a level is never kept
//! shorter than the level below it (raw <= 60 <= 300 <= ...), since each
//! rollup is what is left of the level below once it is gone, and a CES
//! query for a long range must not find the coarse data missing where the
//! fine data is still there. A level the operator names that breaks the
//! rule is refused, naming both levels; a level left at its default is
//! raised to the level below it instead, so `--retention 7d` (raw windows a
//! week) still means what it always did, with the 60 s rollups kept a week
//! too.

use crate::time::parse_duration;
use std::fmt;
use std::time::Duration;

/// Rollup periods (seconds), shortest first; each is rolled up from the one
/// before it, the first from the raw windows.
pub const ROLLUP_PERIODS: [i64; 6] = [60, 300, 1200, 3600, 14400, 86400];

const DAY: u64 = 86_400;

/// One level of stored measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The raw probe windows.
    Raw,
    /// The rollups of one period (seconds, one of [`ROLLUP_PERIODS`]).
    Rollup(i64),
}

impl Level {
    /// Every level, shortest first: raw, then the rollup periods.
    pub const ALL: [Level; 7] = [
        Level::Raw,
        Level::Rollup(ROLLUP_PERIODS[0]),
        Level::Rollup(ROLLUP_PERIODS[1]),
        Level::Rollup(ROLLUP_PERIODS[2]),
        Level::Rollup(ROLLUP_PERIODS[3]),
        Level::Rollup(ROLLUP_PERIODS[4]),
        Level::Rollup(ROLLUP_PERIODS[5]),
    ];

    /// The level an operator writes as `name` (`raw`, `60`, `300`, ...).
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim();
        Level::ALL.into_iter().find(|l| l.to_string() == name)
    }

    /// Where the level is in [`Level::ALL`]; `None` for a period that is
    /// not rolled up.
    fn index(self) -> Option<usize> {
        Level::ALL.iter().position(|&l| l == self)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::Raw => f.write_str("raw"),
            Level::Rollup(p) => write!(f, "{p}"),
        }
    }
}

/// How long each level is kept: every level has a positive duration, none
/// shorter than the level below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    keep: [Duration; 7],
}

impl Default for Retention {
    fn default() -> Self {
        Retention::cloud_eye()
    }
}

impl Retention {
    /// Cloud Eye's schedule (and 2 days for the 60 s level).
    pub const fn cloud_eye() -> Retention {
        Retention {
            keep: [
                Duration::from_secs(2 * DAY),
                Duration::from_secs(2 * DAY),
                Duration::from_secs(10 * DAY),
                Duration::from_secs(20 * DAY),
                Duration::from_secs(155 * DAY),
                Duration::from_secs(300 * DAY),
                Duration::from_secs(5 * 365 * DAY),
            ],
        }
    }

    /// Cloud Eye's schedule with the levels in `given` set as given. A level
    /// not given keeps its default, raised to the level below it when that
    /// is longer; a level given shorter than the level below it is refused.
    pub fn with(given: &[(Level, Duration)]) -> Result<Retention, String> {
        let mut keep = Retention::cloud_eye().keep;
        let mut named = [false; 7];
        for &(level, d) in given {
            let Some(i) = level.index() else {
                return Err(unknown(&level.to_string()));
            };
            if named[i] {
                return Err(format!("level {level} is given twice"));
            }
            if d.is_zero() {
                return Err(format!("level {level} must be kept a positive duration"));
            }
            named[i] = true;
            keep[i] = d;
        }
        for i in 1..keep.len() {
            if keep[i] >= keep[i - 1] {
                continue;
            }
            if !named[i] {
                keep[i] = keep[i - 1];
                continue;
            }
            let (level, below) = (Level::ALL[i], Level::ALL[i - 1]);
            return Err(format!(
                "level {level} ({}) would be kept shorter than level {below} below it ({}); \
                 keep each level at least as long as the one below it",
                show(keep[i]),
                show(keep[i - 1]),
            ));
        }
        Ok(Retention { keep })
    }

    /// Parses `raw=2d,60=2d,300=10d,...` (levels in any order; the others
    /// keep their defaults, see [`Retention::with`]) or a plain duration,
    /// which is the raw level's.
    pub fn parse(text: &str) -> Result<Retention, String> {
        if !text.contains('=') {
            return Retention::with(&[(Level::Raw, parse_duration(text)?)]);
        }
        let mut given = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!(
                    "bad level {part:?} (want LEVEL=DURATION, e.g. 300=10d)"
                ));
            };
            given.push((level(name)?, level_duration(name, value)?));
        }
        Retention::with(&given)
    }

    /// Parses the levels of a table (a config file's `retention = { raw = "2d", 300 = "10d" }`).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Retention, String> {
        let mut given = Vec::new();
        for (name, value) in pairs {
            given.push((level(name)?, level_duration(name, value)?));
        }
        Retention::with(&given)
    }

    /// How long `level` is kept (`None` for a period that is not rolled up).
    pub fn keep(&self, level: Level) -> Option<Duration> {
        level.index().map(|i| self.keep[i])
    }

    /// Every level with how long it is kept, shortest level first.
    pub fn levels(&self) -> impl Iterator<Item = (Level, Duration)> + '_ {
        Level::ALL.into_iter().zip(self.keep)
    }
}

/// Written as an operator would (`raw=2d,60=2d,300=10d,...`), read back by
/// [`Retention::parse`].
impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (level, d)) in self.levels().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{level}={}", show(d))?;
        }
        Ok(())
    }
}

fn level(name: &str) -> Result<Level, String> {
    Level::parse(name).ok_or_else(|| unknown(name.trim()))
}

fn unknown(name: &str) -> String {
    format!("unknown level {name:?} (levels: raw, 60, 300, 1200, 3600, 14400, 86400)")
}

fn level_duration(name: &str, value: &str) -> Result<Duration, String> {
    parse_duration(value).map_err(|e| format!("level {}: {e}", name.trim()))
}

/// A whole number of years, days, hours, minutes or seconds, else seconds.
fn show(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return format!("{}s", d.as_secs_f64());
    }
    for (unit, size) in [("y", 365 * DAY), ("d", DAY), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * DAY)
    }

    #[test]
    fn the_default_is_cloud_eyes_schedule() {
        let r = Retention::default();
        let want = [
            (Level::Raw, days(2)),
            (Level::Rollup(60), days(2)),
            (Level::Rollup(300), days(10)),
            (Level::Rollup(1200), days(20)),
            (Level::Rollup(3600), days(155)),
            (Level::Rollup(14400), days(300)),
            (Level::Rollup(86400), days(5 * 365)),
        ];
        assert_eq!(r.levels().collect::<Vec<_>>(), want);
        assert_eq!(
            r.to_string(),
            "raw=2d,60=2d,300=10d,1200=20d,3600=155d,14400=300d,86400=5y"
        );
        assert_eq!(Retention::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn levels_are_set_in_any_order_the_others_keep_their_defaults() {
        let r = Retention::parse("300=12d, raw=36h,86400=6y").unwrap();
        assert_eq!(r.keep(Level::Raw).unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(r.keep(Level::Rollup(60)).unwrap(), days(2));
        assert_eq!(r.keep(Level::Rollup(300)).unwrap(), days(12));
        assert_eq!(r.keep(Level::Rollup(1200)).unwrap(), days(20));
        assert_eq!(r.keep(Level::Rollup(86400)).unwrap(), days(6 * 365));
        let table = Retention::from_pairs([("raw", "36h"), ("300", "12d"), ("86400", "6y")]);
        assert_eq!(table, Ok(r));
    }

    #[test]
    fn a_plain_duration_is_the_raw_level_and_raises_the_levels_left_at_their_default() {
        let r = Retention::parse("7d").unwrap();
        assert_eq!(r.keep(Level::Raw).unwrap(), days(7));
        assert_eq!(r.keep(Level::Rollup(60)).unwrap(), days(7));
        assert_eq!(r.keep(Level::Rollup(300)).unwrap(), days(10));
        assert_eq!(
            Retention::parse("1d")
                .unwrap()
                .keep(Level::Rollup(60))
                .unwrap(),
            days(2)
        );
        let r = Retention::parse("raw=400d").unwrap();
        assert_eq!(r.keep(Level::Rollup(14400)).unwrap(), days(400));
        assert_eq!(r.keep(Level::Rollup(86400)).unwrap(), days(5 * 365));
    }

    #[test]
    fn a_level_kept_shorter_than_the_level_below_it_is_refused_naming_both() {
        assert_eq!(
            Retention::parse("raw=3d,60=2d"),
            Err(
                "level 60 (2d) would be kept shorter than level raw below it (3d); \
                 keep each level at least as long as the one below it"
                    .to_string()
            )
        );
        assert_eq!(
            Retention::parse("300=1d"),
            Err(
                "level 300 (1d) would be kept shorter than level 60 below it (2d); \
                 keep each level at least as long as the one below it"
                    .to_string()
            )
        );
        // Equal is allowed (Cloud Eye keeps raw and 60 s alike).
        assert!(Retention::parse("raw=5d,60=5d,300=5d").is_ok());
    }

    #[test]
    fn unknown_repeated_and_malformed_levels_are_refused() {
        assert_eq!(
            Retention::parse("30=1d"),
            Err("unknown level \"30\" (levels: raw, 60, 300, 1200, 3600, 14400, 86400)".into())
        );
        assert_eq!(
            Retention::with(&[(Level::Rollup(61), days(1))]),
            Err("unknown level \"61\" (levels: raw, 60, 300, 1200, 3600, 14400, 86400)".into())
        );
        assert_eq!(Retention::default().keep(Level::Rollup(61)), None);
        assert_eq!(
            Retention::parse("raw=1d,raw=2d"),
            Err("level raw is given twice".into())
        );
        assert_eq!(
            Retention::parse("raw=1d,60"),
            Err("bad level \"60\" (want LEVEL=DURATION, e.g. 300=10d)".into())
        );
        assert_eq!(
            Retention::parse("300=5x"),
            Err("level 300: bad duration unit in \"5x\" (use ms, s, m, h or d)".into())
        );
        assert_eq!(
            Retention::parse("0s"),
            Err("duration \"0s\" must be positive".into())
        );
    }
}
