//! Settings of `vpnmon serve`, layered: command-line flags, then `VPNMON_*`
//! environment variables (clap reads both, flags winning), then the TOML
//! file given with `--config`, then defaults.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `[serve]` settings as they may appear in the TOML file (every key optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub eip_pool: Option<Vec<String>>,
    pub log_format: Option<String>,
    pub probe_allow: Option<Vec<String>>,
    pub probe_interval: Option<String>,
    pub probe_count: Option<u32>,
    pub probe_timeout: Option<String>,
    pub probe: Option<bool>,
    pub retention: Option<String>,
    pub metrics_listen: Option<String>,
    pub metrics_max_monitors: Option<usize>,
}

impl FileSettings {
    /// Reads and parses a TOML settings file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }
}

/// Resolved settings of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory (SQLite file, unless `database_url` is set).
    pub data_dir: PathBuf,
    /// `postgres://...` or `sqlite://...`; overrides the data directory's SQLite.
    pub database_url: Option<String>,
    /// EIP pool specs (address, CIDR or range).
    pub eip_pool: Vec<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// Probe destinations allowed (CIDRs); empty = everything.
    pub probe_allow: Vec<ipnet::IpNet>,
    /// Probe window.
    pub probe_interval: Duration,
    /// Echo requests per window.
    pub probe_count: u32,
    /// Per-probe timeout.
    pub probe_timeout: Duration,
    /// Whether to run the probe engine.
    pub probe: bool,
    /// How long raw datapoints are kept.
    pub retention: Duration,
    /// Where to serve Prometheus metrics (`None`: not served).
    pub metrics_listen: Option<SocketAddr>,
    /// Most monitors with per-monitor metric series.
    pub metrics_max_monitors: usize,
    /// Password of the bootstrap admin (`VPNMON_ADMIN_PASSWORD`); generated when unset.
    pub admin_password: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./vpnmon-data"),
            database_url: None,
            eip_pool: Vec::new(),
            log_format: "text".into(),
            probe_allow: Vec::new(),
            probe_interval: Duration::from_secs(10),
            probe_count: 3,
            probe_timeout: Duration::from_secs(1),
            probe: true,
            retention: Duration::from_secs(7 * 24 * 3600),
            admin_password: None,
            metrics_listen: None,
            metrics_max_monitors: 1_000,
        }
    }
}

/// Parses durations like `10s`, `250ms`, `2m`, `1h`, `7d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
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

/// Parses a CIDR or a bare address (as a /32 or /128).
pub fn parse_allow(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("bad probe allowlist entry {s:?} (want a CIDR like 127.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn allowlist_entries() {
        assert_eq!(
            parse_allow("127.0.0.0/8").unwrap().to_string(),
            "127.0.0.0/8"
        );
        assert_eq!(
            parse_allow("198.18.0.1").unwrap().to_string(),
            "198.18.0.1/32"
        );
        assert!(parse_allow("nope").is_err());
    }
}
