//! Settings of `vpnmon serve`, each declared once.
//!
//! The table below (`settings! { ... }`) is the only place a setting is
//! written: its help, flag, `VPNMON_*` variable, config-file key (the field
//! name), raw type, default and parser. From it come the [`Settings`] the
//! server runs with, the [`Layer`] each source fills (the TOML file is a
//! `Layer` deserialised with unknown keys refused), the clap flags
//! ([`ServeFlags`], [`StoreFlags`]) and [`resolve`], which takes each setting
//! from the first layer that has it: **flag, then environment, then file,
//! then default**. Defaults come last on purpose, after the file: a clap
//! `default_value` would look like a flag and hide the file.
//!
//! The environment is read through a lookup function ([`Flags::resolve_with`]),
//! so tests inject it instead of mutating the process's. An empty variable
//! counts as unset. `VPNMON_ADMIN_PASSWORD` is read the same way but is not
//! in the table: a secret has no flag and no file key, and `config show`
//! never prints it.
//!
//! To add a setting: one entry in the table (and a row in README.md's
//! `vpnmon serve` table); the unit tests then ask for its precedence samples.

#[macro_use]
mod declare;
mod flags;
mod raw;
#[cfg(test)]
mod tests;

pub use flags::{CONFIG_ENV, CONFIG_FLAG, Flags, ServeFlags, StoreFlags};
pub use raw::{Levels, Raw, Show, Switch, format_duration, seconds};

use anyhow::anyhow;
use domain::retention::Retention;
use serde_json::Value;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variable holding the bootstrap admin's password (environment only).
pub const ADMIN_PASSWORD_ENV: &str = "VPNMON_ADMIN_PASSWORD";

settings! {
    /// Address to listen on.
    listen: SocketAddr {
        flag: "listen",
        value: "ADDR:PORT",
        env: "VPNMON_LISTEN",
        raw: String,
        default: SocketAddr::from(([127, 0, 0, 1], 8080)),
        parse: parse_listen,
    }
    /// Data directory holding the SQLite database.
    data_dir: PathBuf {
        flag: "data-dir",
        value: "DIR",
        env: "VPNMON_DATA_DIR",
        raw: PathBuf,
        default: PathBuf::from("./vpnmon-data"),
        parse: keep,
        shared: true,
    }
    /// Database URL (postgres://... or sqlite://...); overrides --data-dir.
    database_url: Option<String> {
        flag: "database-url",
        value: "URL",
        env: "VPNMON_DATABASE_URL",
        raw: String,
        default: None,
        parse: set,
        shared: true,
    }
    /// File holding the key that seals AK/SK secrets (default: vpnmon.key in the data directory with SQLite, $CREDENTIALS_DIRECTORY/vpnmon-master-key under systemd, in the database with PostgreSQL).
    master_key_file: Option<PathBuf> {
        flag: "master-key-file",
        value: "FILE",
        env: "VPNMON_MASTER_KEY_FILE",
        raw: PathBuf,
        default: None,
        parse: set,
        shared: true,
    }
    /// EIP pool: addresses, CIDRs or ranges (a-b); repeatable or comma-separated.
    eip_pool: Vec<String> {
        flag: "eip-pool",
        value: "SPEC",
        env: "VPNMON_EIP_POOL",
        raw: Vec<String>,
        default: Vec::new(),
        parse: keep,
    }
    /// Log format: text or json.
    log_format: String {
        flag: "log-format",
        value: "text|json",
        env: "VPNMON_LOG_FORMAT",
        raw: String,
        default: "text".to_string(),
        parse: parse_log_format,
    }
    /// Probe destinations allowed (CIDR); repeatable or comma-separated. Default: everything.
    probe_allow: Vec<ipnet::IpNet> {
        flag: "probe-allow",
        value: "CIDR",
        env: "VPNMON_PROBE_ALLOW",
        raw: Vec<String>,
        default: Vec::new(),
        parse: parse_allow_list,
    }
    /// Private and loopback networks (CIDR) that SMN HTTP(S) subscription endpoints may be in; repeatable or comma-separated. Default: none.
    notify_allow: Vec<ipnet::IpNet> {
        flag: "notify-allow",
        value: "CIDR",
        env: "VPNMON_NOTIFY_ALLOW",
        raw: Vec<String>,
        default: Vec::new(),
        parse: parse_notify_allow_list,
    }
    /// Base URL of this node as SMN subscribers reach it, for subscribe_url, unsubscribe_url and signing_cert_url (default: http:// and the listen address).
    public_url: Option<String> {
        flag: "public-url",
        value: "URL",
        env: "VPNMON_PUBLIC_URL",
        raw: String,
        default: None,
        parse: parse_public_url,
    }
    /// Probe window.
    probe_interval: Duration {
        flag: "probe-interval",
        value: "DUR",
        env: "VPNMON_PROBE_INTERVAL",
        raw: String,
        default: Duration::from_secs(10),
        parse: duration,
    }
    /// Echo requests per window (1 to 100).
    probe_count: u32 {
        flag: "probe-count",
        value: "N",
        env: "VPNMON_PROBE_COUNT",
        raw: u32,
        default: 3,
        parse: parse_probe_count,
    }
    /// Per-probe timeout (at most the probe window).
    probe_timeout: Duration {
        flag: "probe-timeout",
        value: "DUR",
        env: "VPNMON_PROBE_TIMEOUT",
        raw: String,
        default: Duration::from_secs(1),
        parse: duration,
    }
    /// Run the probe engine (`--no-probe`: serve the API only).
    probe: bool {
        flag: "no-probe",
        env: "VPNMON_NO_PROBE",
        raw: Switch,
        default: true,
        parse: |Switch(on)| keep(on),
    }
    /// Keep each level this long: LEVEL=DUR,... (raw, 60, 300, 1200, 3600, 14400, 86400; others default) or DUR for raw.
    retention: Retention {
        flag: "retention",
        value: "LEVEL=DUR,...",
        env: "VPNMON_RETENTION",
        raw: Levels,
        default: Retention::cloud_eye(),
        parse: parse_retention,
    }
    /// Prometheus metrics listener, or `off`.
    metrics_listen: Option<SocketAddr> {
        flag: "metrics-listen",
        value: "ADDR:PORT|off",
        env: "VPNMON_METRICS_LISTEN",
        raw: String,
        default: Some(SocketAddr::from(([127, 0, 0, 1], 9180))),
        parse: parse_metrics_listen,
    }
    /// This node's name in the membership (default: the host name).
    node_name: Option<String> {
        flag: "node-name",
        value: "NAME",
        env: "VPNMON_NODE_NAME",
        raw: String,
        default: None,
        parse: set,
    }
    /// Most monitors with per-monitor metric series.
    metrics_max_monitors: usize {
        flag: "metrics-max-monitors",
        value: "N",
        env: "VPNMON_METRICS_MAX_MONITORS",
        raw: usize,
        default: 1_000,
        parse: keep,
    }
    /// Failed password logins of one user name, within --login-failure-window, that lock it.
    login_max_failures: u32 {
        flag: "login-max-failures",
        value: "N",
        env: "VPNMON_LOGIN_MAX_FAILURES",
        raw: u32,
        default: 5,
        parse: parse_failures,
    }
    /// The window failed logins are counted in.
    login_failure_window: Duration {
        flag: "login-failure-window",
        value: "DUR",
        env: "VPNMON_LOGIN_FAILURE_WINDOW",
        raw: String,
        default: Duration::from_secs(15 * 60),
        parse: positive_duration,
    }
    /// How long a locked user name (or blocked address or access key) stays locked.
    login_lockout: Duration {
        flag: "login-lockout",
        value: "DUR",
        env: "VPNMON_LOGIN_LOCKOUT",
        raw: String,
        default: Duration::from_secs(15 * 60),
        parse: positive_duration,
    }
    /// Failed logins from one client address (or bad signatures of one access key), within the window, that block it.
    login_max_failures_per_address: u32 {
        flag: "login-max-failures-per-address",
        value: "N",
        env: "VPNMON_LOGIN_MAX_FAILURES_PER_ADDRESS",
        raw: u32,
        default: 20,
        parse: parse_failures,
    }
    /// Time a client has to send a request's line and headers; also the keep-alive idle timeout.
    http_header_timeout: Duration {
        flag: "http-header-timeout",
        value: "DUR",
        env: "VPNMON_HTTP_HEADER_TIMEOUT",
        raw: String,
        default: Duration::from_secs(60),
        parse: positive_duration,
    }
    /// Time a client has to send a request's body once it is read (answered 408).
    http_body_timeout: Duration {
        flag: "http-body-timeout",
        value: "DUR",
        env: "VPNMON_HTTP_BODY_TIMEOUT",
        raw: String,
        default: Duration::from_secs(60),
        parse: positive_duration,
    }
    /// Most HTTP connections open at once; one more is answered 429 and closed.
    http_max_connections: usize {
        flag: "http-max-connections",
        value: "N",
        env: "VPNMON_HTTP_MAX_CONNECTIONS",
        raw: usize,
        default: 10_000,
        parse: parse_max_connections,
    }
}

/// Rules between settings, checked after each has been resolved.
fn check(s: &Settings) -> anyhow::Result<()> {
    if s.probe_timeout > s.probe_interval {
        return Err(anyhow!("--probe-timeout must not exceed --probe-interval"));
    }
    Ok(())
}

impl Default for Settings {
    /// [`Settings::defaults`] without the metrics listener: a server built
    /// in-process (tests, the lab) must not take a fixed port unless asked.
    fn default() -> Self {
        Settings {
            metrics_listen: None,
            ..Settings::defaults()
        }
    }
}

/// One setting's declaration (generated from the table).
#[derive(Debug)]
pub struct Spec {
    /// The config-file key, also the field of [`Settings`] and the clap id.
    pub key: &'static str,
    /// The long flag, without `--`.
    pub flag: &'static str,
    /// The flag's value in help (`None`: a switch without a value).
    pub value_name: Option<&'static str>,
    /// The environment variable.
    pub env: &'static str,
    /// The help text, one doc line per entry.
    pub doc: &'static [&'static str],
    /// Also a (global) flag of `vpnmon admin`.
    pub shared: bool,
    /// Gives the clap argument its action and value parser.
    shape: fn(clap::Arg) -> clap::Arg,
}

/// Which settings a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// All of them (`serve`, `config show`).
    Serve,
    /// Only the store's location (`admin`); the others keep their defaults.
    Store,
}

impl Scope {
    fn covers(self, shared: bool) -> bool {
        self == Scope::Serve || shared
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// A `VPNMON_*` variable.
    Env,
    /// The config file.
    File,
    /// Nothing gave it.
    Default,
}

fn pick<'a, R>(
    flag: &'a Option<R>,
    env: &'a Option<R>,
    file: &'a Option<R>,
) -> (Option<&'a R>, Source) {
    match (flag, env, file) {
        (Some(v), _, _) => (Some(v), Source::Flag),
        (None, Some(v), _) => (Some(v), Source::Env),
        (None, None, Some(v)) => (Some(v), Source::File),
        (None, None, None) => (None, Source::Default),
    }
}

/// The sources of one command's settings, before resolution.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    /// From the command line.
    pub flags: Layer,
    /// From the `VPNMON_*` variables.
    pub env: Layer,
    /// From the TOML file.
    pub file: Layer,
    /// The file the `file` layer was read from.
    pub config: Option<PathBuf>,
    /// From [`ADMIN_PASSWORD_ENV`]; empty counts as unset.
    pub admin_password: Option<String>,
}

/// Resolved settings and where each came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The values.
    pub settings: Settings,
    /// Per key, in table order.
    pub sources: Vec<(&'static str, Source)>,
    /// The config file read, if any.
    pub config: Option<PathBuf>,
}

/// A setting's value as `config show` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The config-file key.
    pub key: &'static str,
    /// For `-o json`.
    pub json: Value,
    /// For text output and `--help`; empty when unset.
    pub text: String,
}

/// Reads the process environment (what `vpnmon` itself passes to [`Flags::resolve_with`]).
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

impl<const SERVE: bool> Flags<SERVE> {
    /// Resolves these flags with the process environment and the config file.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        self.resolve_with(&process_env)
    }

    /// Resolves these flags with the environment `env` and the config file
    /// (from `--config` or `VPNMON_CONFIG`). Settings outside this command's
    /// scope keep their defaults and are not read from anywhere.
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<OsString>) -> anyhow::Result<Resolved> {
        resolve(&self.layers(env)?)
    }

    /// Gathers the layers: reads the environment and the file.
    pub fn layers(&self, env: &dyn Fn(&str) -> Option<OsString>) -> anyhow::Result<Layers> {
        let scope = Self::SCOPE;
        let env_layer = Layer::from_env(env, scope)?;
        let config = self
            .config
            .clone()
            .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
        let file = match &config {
            Some(path) => Layer::load(path)?.retain(scope),
            None => Layer::default(),
        };
        let admin_password = env(ADMIN_PASSWORD_ENV)
            .and_then(|v| v.into_string().ok())
            .filter(|p| !p.is_empty());
        Ok(Layers {
            flags: self.layer.clone().retain(scope),
            env: env_layer,
            file,
            config,
            admin_password,
        })
    }
}

impl Layer {
    /// Reads and parses a TOML settings file.
    pub fn load(path: &Path) -> anyhow::Result<Layer> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read config file {}: {e}", path.display()))?;
        Layer::from_toml(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
    }

    /// Parses the text of a settings file; an unknown key is an error naming it.
    pub fn from_toml(text: &str) -> Result<Layer, toml::de::Error> {
        toml::from_str(text)
    }
}

impl Resolved {
    /// `config show -o json`: one object keyed by config-file key; durations
    /// in seconds, `retention` per level (`{"raw": seconds, "60": seconds, ...}`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.settings
                .shown()
                .into_iter()
                .map(|s| (s.key.to_string(), s.json))
                .collect(),
        )
    }

    /// `config show`: one line per setting, with where its value came from.
    pub fn to_text(&self) -> String {
        let shown = self.settings.shown();
        let width = shown.iter().map(|s| s.key.len()).max().unwrap_or(0);
        let value_width = shown.iter().map(|s| s.text.len()).max().unwrap_or(0);
        let mut out = String::new();
        for s in &shown {
            let spec = SPECS.iter().find(|spec| spec.key == s.key);
            let from = match self.source(s.key) {
                Source::Flag => format!("--{}", spec.map_or(s.key, |x| x.flag)),
                Source::Env => spec.map_or(s.key, |x| x.env).to_string(),
                Source::File => match &self.config {
                    Some(p) => format!("file {}", p.display()),
                    None => "file".to_string(),
                },
                Source::Default => "default".to_string(),
            };
            let text = if s.text.is_empty() { "-" } else { &s.text };
            out.push_str(&format!("{:width$}  {text:value_width$}  {from}\n", s.key));
        }
        out
    }

    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(Source::Default, |(_, s)| *s)
    }
}

/// Why a value was refused. The flag's name is put in front, whichever
/// source gave the value, as the messages have always read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `--flag: <why>`
    Bad(String),
    /// `--flag must <rule>`
    Must(&'static str),
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Refusal::Bad(why)
    }
}

impl Refusal {
    fn at(self, flag: &str) -> anyhow::Error {
        match self {
            Refusal::Bad(why) => anyhow!("--{flag}: {why}"),
            Refusal::Must(rule) => anyhow!("--{flag} must {rule}"),
        }
    }
}

/// The raw value as it is.
fn keep<T>(v: T) -> Result<T, Refusal> {
    Ok(v)
}

/// The raw value, for a setting that is unset by default.
fn set<T>(v: T) -> Result<Option<T>, Refusal> {
    Ok(Some(v))
}

fn parse_listen(s: String) -> Result<SocketAddr, Refusal> {
    s.parse()
        .map_err(|_| Refusal::Bad(format!("bad address {s:?} (want IP:PORT)")))
}

fn parse_metrics_listen(s: String) -> Result<Option<SocketAddr>, Refusal> {
    if s == "off" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| Refusal::Bad(format!("bad address {s:?} (want IP:PORT or off)")))
}

fn parse_log_format(s: String) -> Result<String, Refusal> {
    match s.as_str() {
        "text" | "json" => Ok(s),
        _ => Err(Refusal::Must("be text or json")),
    }
}

fn parse_probe_count(n: u32) -> Result<u32, Refusal> {
    if (1..=100).contains(&n) {
        Ok(n)
    } else {
        Err(Refusal::Must("be between 1 and 100"))
    }
}

fn parse_allow_list(entries: Vec<String>) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .filter(|x| !x.trim().is_empty())
        .map(|x| parse_allow(x))
        .collect()
}

fn parse_notify_allow_list(entries: Vec<String>) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            parse_allow(x).map_err(|_| {
                format!(
                    "bad notify allowlist entry {:?} (want a CIDR like 127.0.0.0/8)",
                    x.trim()
                )
            })
        })
        .collect()
}

fn parse_public_url(s: String) -> Result<Option<String>, String> {
    let t = s.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .ok_or_else(|| format!("bad public URL {s:?} (want http(s)://host[:port][/path])"))?;
    if rest.is_empty() || rest.starts_with('/') || t.contains(['?', '#', ' ']) {
        return Err(format!(
            "bad public URL {s:?} (want http(s)://host[:port][/path], no query)"
        ));
    }
    Ok(Some(t.to_string()))
}

fn duration(s: String) -> Result<Duration, String> {
    parse_duration(&s)
}

fn positive_duration(s: String) -> Result<Duration, String> {
    let d = parse_duration(&s)?;
    if d.is_zero() {
        return Err(format!("bad duration {s:?} (must be more than 0)"));
    }
    Ok(d)
}

fn parse_failures(n: u32) -> Result<u32, Refusal> {
    if (1..=1_000_000).contains(&n) {
        Ok(n)
    } else {
        Err(Refusal::Must("be between 1 and 1000000"))
    }
}

fn parse_max_connections(n: usize) -> Result<usize, Refusal> {
    if (1..=1_000_000).contains(&n) {
        Ok(n)
    } else {
        Err(Refusal::Must("be between 1 and 1000000"))
    }
}

fn parse_retention(raw: Levels) -> Result<Retention, String> {
    match &raw {
        Levels::Text(text) => Retention::parse(text),
        Levels::Table(table) => {
            Retention::from_pairs(table.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    }
}

pub use domain::time::parse_duration;

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
