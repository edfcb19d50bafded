//! Durations on the command line (`--since 1h`, `--interval 500ms`).
//!
//! The same syntax as the server's settings (`crates/vpnmon/src/config.rs`,
//! `parse_duration`); kept here because the client cannot depend on the
//! binary crate. Both should move to one shared home when the settings are
//! declared once.

use std::time::Duration;

/// Parses `10s`, `250ms`, `5m`, `2h`, `7d` or a bare number of seconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (try 10s, 250ms, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m, h or d)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert!(parse("0s").is_err());
        assert!(parse("5x").is_err());
        assert!(parse("").is_err());
    }
}
