//! `vpnmon doctor`: checks, with the settings `serve` would run with, what
//! keeps vpnmon from probing, storing or serving, and prints one line per
//! problem with its remedy. Exit status 0: no problem; 1: problems (the
//! lines say which); anything else: doctor itself could not run.
//!
//! It changes nothing: the store is opened read-only (SQLite) or only
//! asked its version (PostgreSQL), ports are bound and released at once,
//! and no packet is sent.

use crate::config::Settings;
use domain::retention::Level;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// On-disk bytes of one raw window and one rollup row on SQLite (measured,
/// BENCHMARKS.md "Row sizes"), for the disk estimate.
const SQLITE_RAW_ROW: f64 = 146.5;
const SQLITE_ROLLUP_ROW: f64 = 194.7;
/// The oldest PostgreSQL major version vpnmon is built for (declarative
/// partitioning with default partitions and `DETACH ... CONCURRENTLY`
/// come later; CI runs 15).
const MIN_POSTGRES: i64 = 13;

/// One problem found: what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A short, stable name for scripts (`icmp-socket`, `eip-not-local`, ...).
    pub check: &'static str,
    /// What is wrong.
    pub what: String,
    /// How to fix it.
    pub remedy: String,
}

fn problem(check: &'static str, what: String, remedy: impl Into<String>) -> Problem {
    Problem {
        check,
        what,
        remedy: remedy.into(),
    }
}

use store::StoreFacts;

/// Runs every check; the problems found, in the order of the checks.
pub async fn check(settings: &Settings) -> Vec<Problem> {
    let mut out = Vec::new();
    if settings.probe {
        check_icmp(&mut out);
    }
    let facts = match &settings.database_url {
        Some(url) if !url.starts_with("sqlite:") => check_postgres(url, &mut out).await,
        _ => check_sqlite(settings, &mut out).await,
    };
    check_pool(settings, &facts, &mut out);
    check_ports(settings, &mut out);
    check_clock(&mut out);
    out
}

fn check_icmp(out: &mut Vec<Problem>) {
    use probe::Family;
    use probe::socket::{IcmpSocket, SocketMode};
    if let Err(e) = IcmpSocket::open(Family::V4, SocketMode::Auto, 64) {
        out.push(problem(
            "icmp-socket",
            format!("cannot open an ICMP socket: {e}"),
            "run vpnmon with CAP_NET_RAW (the systemd unit's AmbientCapabilities=CAP_NET_RAW, or \
             setcap cap_net_raw+ep on the binary), or let its group open ping sockets: \
             sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (persist it in /etc/sysctl.d/)",
        ));
    }
}

/// Addresses of `--eip-pool` (already validated by the settings).
fn pool_of_settings(settings: &Settings) -> Vec<IpAddr> {
    let mut v = Vec::new();
    for spec in &settings.eip_pool {
        for s in spec.split(',').filter(|s| !s.trim().is_empty()) {
            if let Ok(a) = domain::eip::parse_pool_spec(s) {
                v.extend(a);
            }
        }
    }
    v
}

fn check_pool(settings: &Settings, facts: &StoreFacts, out: &mut Vec<Problem>) {
    let mut pool = pool_of_settings(settings);
    pool.extend(facts.pool.iter().copied());
    pool.sort();
    pool.dedup();
    // An address is local when a socket can be bound to it (no packet).
    let foreign: Vec<IpAddr> = pool
        .into_iter()
        .filter(|a| std::net::UdpSocket::bind(SocketAddr::new(*a, 0)).is_err())
        .collect();
    if foreign.is_empty() || !settings.probe {
        return;
    }
    let shown: Vec<String> = foreign.iter().take(8).map(IpAddr::to_string).collect();
    let more = foreign.len().saturating_sub(shown.len());
    out.push(problem(
        "eip-not-local",
        format!(
            "{} EIP pool address{} not on this host: {}{}; monitors of gateways with them are \
             not probed here",
            foreign.len(),
            if foreign.len() == 1 { " is" } else { "es are" },
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
        "add them to an interface of this host (ip addr add ADDR/32 dev lo), or run vpnmon on the \
         node that has them (several nodes on one PostgreSQL share the work by address)",
    ));
}

/// Bytes one monitor's measurements take at this retention on SQLite.
pub fn bytes_per_monitor(settings: &Settings) -> f64 {
    let interval = settings.probe_interval.as_secs_f64().max(1.0);
    let mut total = 0.0;
    for (level, keep) in settings.retention.levels() {
        let (period, row) = match level {
            Level::Raw => (interval, SQLITE_RAW_ROW),
            Level::Rollup(p) => (p as f64, SQLITE_ROLLUP_ROW),
        };
        total += keep.as_secs_f64() / period * row;
    }
    total
}

fn mb(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

async fn check_sqlite(settings: &Settings, out: &mut Vec<Problem>) -> StoreFacts {
    let db = match crate::admin::sqlite_database(settings) {
        Ok(db) => db,
        Err(e) => {
            out.push(problem("store", format!("{e}"), "give a database file"));
            return StoreFacts::default();
        }
    };
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // The nearest directory that exists: where the data directory is made.
    let mut existing = dir.clone();
    while !existing.exists() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p.to_path_buf(),
            _ => {
                existing = std::path::PathBuf::from(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        out.push(problem(
            "data-dir",
            format!(
                "the data directory {} cannot be created: {} is not a directory",
                dir.display(),
                existing.display()
            ),
            "set --data-dir (data_dir in the config file) to a directory vpnmon may create or write",
        ));
        return StoreFacts::default();
    }
    if let Err(e) = writable(&existing) {
        out.push(problem(
            "data-dir",
            format!("{} is not writable by this user: {e}", existing.display()),
            "give the data directory to the user vpnmon runs as (chown vpnmon: DIR), or set \
             --data-dir to one it owns (the package's StateDirectory=vpnmon is /var/lib/vpnmon)",
        ));
    }
    let facts = if db.exists() {
        match store::inspect_sqlite(&db).await {
            Ok(f) => f,
            Err(e) => {
                out.push(problem(
                    "store",
                    format!("cannot read {}: {e}", db.display()),
                    "restore it from a backup (vpnmon admin restore FILE) if it is damaged",
                ));
                StoreFacts::default()
            }
        }
    } else {
        StoreFacts::default()
    };
    if let Some(free) = free_bytes(&existing) {
        let monitors = facts.monitors.max(1);
        let need = bytes_per_monitor(settings) * monitors as f64;
        let have = free as f64 + facts.bytes as f64;
        if need > have {
            out.push(problem(
                "disk-space",
                format!(
                    "{} monitor{} at this retention need about {} of measurements ({} each); {} has {} free{}",
                    monitors,
                    if monitors == 1 { "" } else { "s" },
                    mb(need),
                    mb(bytes_per_monitor(settings)),
                    existing.display(),
                    mb(free as f64),
                    if facts.bytes > 0 {
                        format!(" besides the store's {}", mb(facts.bytes as f64))
                    } else {
                        String::new()
                    }
                ),
                "free space or move --data-dir to a larger disk, or keep less: --retention \
                 raw=1d,300=5d,... (see the README, Retention)",
            ));
        }
    }
    facts
}

fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".vpnmon-doctor-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data, for which all zeroes is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid out-parameter.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (r == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

async fn check_postgres(url: &str, out: &mut Vec<Problem>) -> StoreFacts {
    let facts = match store::inspect_postgres(url, Duration::from_secs(10)).await {
        Ok(f) => f,
        Err(store::PostgresTrouble::Unreachable(e)) => {
            out.push(problem(
                "postgres",
                format!("PostgreSQL is unreachable: {e}"),
                "start it (systemctl start postgresql), check host, port, user and password in \
                 --database-url, and that pg_hba.conf lets this host in",
            ));
            return StoreFacts::default();
        }
        Err(store::PostgresTrouble::NoAnswer(d)) => {
            out.push(problem(
                "postgres",
                format!("PostgreSQL did not answer within {} s", d.as_secs()),
                "check that the server in --database-url is up and reachable (firewall, host, port)",
            ));
            return StoreFacts::default();
        }
    };
    match facts.server_version {
        Some(v) if v / 10_000 < MIN_POSTGRES => out.push(problem(
            "postgres",
            format!(
                "PostgreSQL {} is older than {MIN_POSTGRES}, the oldest vpnmon supports",
                v / 10_000
            ),
            format!(
                "upgrade the server to PostgreSQL {MIN_POSTGRES} or newer (vpnmon is tested on 15)"
            ),
        )),
        Some(_) => {}
        None => out.push(problem(
            "postgres",
            "PostgreSQL did not say its version".into(),
            "check that --database-url names a PostgreSQL server",
        )),
    }
    facts
}

fn check_ports(settings: &Settings, out: &mut Vec<Problem>) {
    let mut ports = vec![("API", settings.listen)];
    if let Some(m) = settings.metrics_listen {
        ports.push(("metrics", m));
    }
    for (what, addr) in ports {
        if addr.port() == 0 {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind(addr) {
            let remedy = if e.kind() == std::io::ErrorKind::AddrInUse {
                "stop what listens there (ss -ltnp 'sport = :PORT' shows it; a vpnmon that is \
                 already running is fine), or choose another address"
            } else {
                "choose an address of this host, and a port above 1023 or grant CAP_NET_BIND_SERVICE"
            };
            let flag = if what == "API" {
                "--listen"
            } else {
                "--metrics-listen"
            };
            out.push(problem(
                "port",
                format!("the {what} address {addr} ({flag}) cannot be bound: {e}"),
                remedy.replace("PORT", &addr.port().to_string()),
            ));
        }
    }
}

fn check_clock(out: &mut Vec<Problem>) {
    // SAFETY: timex is plain data, for which all zeroes is a valid value.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid out-parameter; with modes 0 it only reads.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state == libc::TIME_ERROR || t.status & libc::STA_UNSYNC != 0 {
        out.push(problem(
            "clock",
            "the system clock is not synchronised (the kernel's NTP state says so): window \
             times, token expiry and node leases drift"
                .into(),
            "run a time daemon (systemd-timesyncd, chrony or ntpd) and wait until \
             `timedatectl` shows \"System clock synchronized: yes\"",
        ));
    }
}

/// Prints the problems (text: one line each; JSON: an array) and says
/// whether there were none.
pub fn report(problems: &[Problem], out: crate::admin::Output) -> bool {
    match out {
        crate::admin::Output::Json => {
            let v: Vec<_> = problems
                .iter()
                .map(|p| json!({"check": p.check, "problem": p.what, "remedy": p.remedy}))
                .collect();
            println!("{}", json!(v));
        }
        crate::admin::Output::Text => {
            for p in problems {
                println!("{}: {} -- fix: {}", p.check, p.what, p.remedy);
            }
            if problems.is_empty() {
                println!("no problems found");
            }
        }
    }
    problems.is_empty()
}
