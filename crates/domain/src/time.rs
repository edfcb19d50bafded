//! Timestamps as the wire shows them: UTC, milliseconds, `Z`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Renders a timestamp as `yyyy-MM-ddTHH:mm:ss.SSSZ`.
pub fn wire_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Renders a timestamp with microseconds, used for pagination markers so
/// that two resources created in the same millisecond stay distinct.
pub fn wire_us(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Microseconds since the epoch.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Parses a pagination marker (any RFC 3339 timestamp) into microseconds.
pub fn parse_marker(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
}

/// The timestamp for a number of microseconds since the epoch.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Where the time comes from: one clock for the API and the store alike
/// (`created_at`, token expiry, EIP binding), injectable so tests control
/// all time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
