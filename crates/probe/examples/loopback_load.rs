//! Load the engine with N monitors against loopback destinations
//! (127.1.0.0/16 and up; every 127/8 address answers on `lo`) and print
//! probes, CPU time per probe and memory. Loopback only: the allowlist is
//! 127.0.0.0/8.
//!
//! ```text
//! cargo run --release -p probe --example loopback_load -- 10000 25
//! #                                                      monitors seconds
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use probe::{Engine, EngineConfig, MonitorSpec, ProbeEvent};
use tokio::sync::mpsc;
use uuid::Uuid;

fn cpu_seconds() -> f64 {
    // SAFETY: all-zero is a valid rusage (plain integers).
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let cfg = EngineConfig {
        allow: vec!["127.0.0.0/8".parse().expect("cidr")],
        ..EngineConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(65_536);
    let engine = match Engine::start(cfg, tx).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return;
        }
    };
    let rss_before = rss_kib();
    for i in 0..n {
        let dst = Ipv4Addr::from(0x7f01_0000 + i);
        engine.upsert(MonitorSpec {
            id: Uuid::new_v4(),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            destination: IpAddr::V4(dst),
            resume: false,
        });
    }
    // Let the first windows start, then measure whole windows.
    let consume = tokio::spawn(async move {
        let (mut windows, mut lossy, mut max_rtt) = (0u64, 0u64, 0f64);
        while let Some(ev) = rx.recv().await {
            if let ProbeEvent::Window(w) = ev {
                windows += 1;
                if w.received < w.sent {
                    lossy += 1;
                }
                max_rtt = max_rtt.max(w.rtt_max_ms.unwrap_or(0.0));
            }
        }
        (windows, lossy, max_rtt)
    });
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (cpu0, c0) = (cpu_seconds(), engine.counters());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, c1) = (cpu_seconds(), engine.counters());
    let rss_after = rss_kib();
    let probes = c1.sent - c0.sent;
    println!(
        "monitors {n}: {probes} probes in {secs} s = {:.0}/s, CPU {:.2} s = {:.2} us/probe, \
         RSS +{} KiB = {:.0} B/monitor",
        probes as f64 / secs as f64,
        cpu1 - cpu0,
        (cpu1 - cpu0) * 1e6 / probes.max(1) as f64,
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 * 1024.0 / f64::from(n.max(1)),
    );
    println!(
        "wake-ups {:.0}/s, skipped during the measurement {}; counters: {c1:?}",
        (c1.wakeups - c0.wakeups) as f64 / secs as f64,
        c1.skipped - c0.skipped,
    );
    engine.shutdown().await;
    if let Ok((windows, lossy, max_rtt)) = consume.await {
        println!("windows {windows}, with loss {lossy}, max RTT {max_rtt:.3} ms");
    }
}
