//! The engine against real sockets on loopback (127.0.0.0/8, ::1). Every
//! test sets an allowlist of loopback only, so nothing can leave the host.
//!
//! When no ICMP socket can be opened (neither root/CAP_NET_RAW nor
//! `ping_group_range`), each test prints why and returns. The datagram-socket
//! test re-runs this test binary inside `unshare -rn` (a private user and
//! network namespace), where `ping_group_range` can be opened up without
//! touching the host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::Duration;

use probe::{
    Engine, EngineConfig, EngineHandle, MonitorSpec, NotProbedReason, ProbeError, ProbeEvent,
    SocketKind, SocketMode, WindowStats,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use uuid::Uuid;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CHILD_ENV: &str = "PROBE_TEST_DATAGRAM_CHILD";

fn config(mode: SocketMode) -> EngineConfig {
    EngineConfig {
        interval: Duration::from_secs(1),
        count: 3,
        timeout: Duration::from_millis(200),
        allow: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        socket_mode: mode,
        ..EngineConfig::default()
    }
}

/// Start an engine, or say why not and return `None` (skip).
async fn start(cfg: EngineConfig) -> Option<(EngineHandle, mpsc::Receiver<ProbeEvent>)> {
    let (tx, rx) = mpsc::channel(1024);
    match Engine::start(cfg, tx).await {
        Ok(h) => Some((h, rx)),
        Err(e @ (ProbeError::NoPermission { .. } | ProbeError::Socket(_))) => {
            eprintln!("SKIP: no ICMP socket can be opened here: {e}");
            None
        }
        Err(e) => panic!("engine failed to start: {e}"),
    }
}

/// Receive events until `done` says so, failing after `limit`.
async fn collect(
    rx: &mut mpsc::Receiver<ProbeEvent>,
    limit: Duration,
    mut done: impl FnMut(&[ProbeEvent]) -> bool,
) -> Vec<ProbeEvent> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while !done(&events) {
        match timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => panic!("event channel closed; got {events:#?}"),
            Err(_) => panic!("timed out after {limit:?}; got {events:#?}"),
        }
    }
    events
}

fn windows_of(events: &[ProbeEvent], id: Uuid) -> Vec<&WindowStats> {
    events
        .iter()
        .filter_map(|e| match e {
            ProbeEvent::Window(w) if w.id == id => Some(w),
            _ => None,
        })
        .collect()
}

fn assert_clean_window(w: &WindowStats, max_rtt_ms: f64) {
    eprintln!(
        "window {}: sent {} received {} rtt min/avg/max {:?}/{:?}/{:?} ms jitter {:?} ms",
        w.id, w.sent, w.received, w.rtt_min_ms, w.rtt_avg_ms, w.rtt_max_ms, w.jitter_ms
    );
    assert_eq!((w.sent, w.received), (3, 3), "{w:?}");
    assert_eq!(w.loss_pct, 0.0, "{w:?}");
    let (min, avg, max) = (
        w.rtt_min_ms.unwrap(),
        w.rtt_avg_ms.unwrap(),
        w.rtt_max_ms.unwrap(),
    );
    assert!(min > 0.0, "RTT must be positive: {w:?}");
    assert!(min <= avg && avg <= max, "{w:?}");
    assert!(
        max < max_rtt_ms,
        "loopback RTT above {max_rtt_ms} ms: {w:?}"
    );
    assert!(w.jitter_ms.is_some_and(|j| j >= 0.0), "{w:?}");
}

fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Runs the basic loopback checks with `mode` from and to `addr`; shared by
/// the root tests and the datagram child. Returns the socket kind used.
async fn loopback_three_of_three(mode: SocketMode, addr: IpAddr) -> Option<SocketKind> {
    let (engine, mut rx) = start(config(mode)).await?;
    let family = usize::from(addr.is_ipv6());
    let kind = engine.sockets()[family].kind.clone().expect("socket");
    let id = Uuid::new_v4();
    engine.upsert(MonitorSpec {
        id,
        source: addr,
        destination: addr,
        resume: false,
    });
    // Within one window for the first probe, then three full windows.
    let events = collect(&mut rx, Duration::from_secs(6), |evs| {
        windows_of(evs, id).len() >= 3
    })
    .await;
    let first_sent = events
        .iter()
        .position(|e| matches!(e, ProbeEvent::FirstProbeSent { id: i } if *i == id))
        .expect("FirstProbeSent");
    let first_window = events
        .iter()
        .position(|e| matches!(e, ProbeEvent::Window(_)))
        .unwrap();
    assert!(first_sent < first_window, "{events:#?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ProbeEvent::FirstProbeSent { .. }))
            .count(),
        1
    );
    for w in windows_of(&events, id) {
        assert_clean_window(w, 5.0);
    }
    let windows = windows_of(&events, id);
    let gap = windows[1]
        .window_start
        .duration_since(windows[0].window_start)
        .unwrap();
    assert_eq!(gap, Duration::from_secs(1), "windows one interval apart");
    let links: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ProbeEvent::LinkChanged { id: i, up, .. } if *i == id => Some(*up),
            _ => None,
        })
        .collect();
    assert_eq!(links, [true], "link reported up once");

    let c = engine.counters();
    assert!(c.sent >= 9 && c.received >= 9, "{c:?}");
    assert_eq!(
        (
            c.timeouts,
            c.late,
            c.duplicates,
            c.malformed,
            c.send_errors,
            c.skipped
        ),
        (0, 0, 0, 0, 0, 0),
        "{c:?}"
    );
    assert_eq!((c.monitors, c.not_probed), (1, 0), "{c:?}");
    // Loopback stamps every packet as it leaves, so every RTT starts at the
    // kernel's transmit time, not at the clock read before the batch.
    assert!(engine.sockets()[family].tx_timestamps);
    assert_eq!(c.tx_timestamp_missing, 0, "{c:?}");
    assert!(c.tx_timestamps >= c.received, "{c:?}");
    engine.shutdown().await;
    Some(kind)
}

#[tokio::test]
async fn loopback_monitor_gets_three_replies_per_window_with_sub_5ms_rtt() {
    loopback_three_of_three(SocketMode::Auto, LOCALHOST).await;
}

#[tokio::test]
async fn ipv6_loopback_monitor_gets_three_replies_per_window() {
    if !has_ipv6_loopback() {
        eprintln!("SKIP: no IPv6 loopback address here");
        return;
    }
    loopback_three_of_three(SocketMode::Auto, IpAddr::V6(Ipv6Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn removed_monitor_stops_sending_at_once() {
    let Some((engine, mut rx)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let id = Uuid::new_v4();
    engine.upsert(MonitorSpec {
        id,
        source: LOCALHOST,
        destination: LOCALHOST,
        resume: false,
    });
    collect(&mut rx, Duration::from_secs(4), |evs| {
        !windows_of(evs, id).is_empty()
    })
    .await;
    engine.remove(id);
    // Let the command land, then nothing more may be sent for 1.5 windows.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = engine.counters();
    assert_eq!(before.monitors, 0, "{before:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = engine.counters();
    assert_eq!(after.sent, before.sent, "probes sent after remove");
    assert_eq!(after.in_flight, 0, "{after:?}");
    let mut late_events = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        late_events.push(ev);
    }
    assert!(
        windows_of(&late_events, id).is_empty(),
        "windows after remove: {late_events:#?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn unprobeable_monitors_say_why_and_send_nothing() {
    let Some((engine, mut rx)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let outside = Uuid::new_v4();
    let not_local = Uuid::new_v4();
    let mismatch = Uuid::new_v4();
    // 198.19.0.1 is in the benchmark range but outside this test's
    // allowlist: the engine must refuse it before sending anything.
    engine.upsert(MonitorSpec {
        id: outside,
        source: LOCALHOST,
        destination: "198.19.0.1".parse().unwrap(),
        resume: false,
    });
    // 192.0.2.1 (TEST-NET-1) is not an address of this host.
    engine.upsert(MonitorSpec {
        id: not_local,
        source: "192.0.2.1".parse().unwrap(),
        destination: LOCALHOST,
        resume: false,
    });
    engine.upsert(MonitorSpec {
        id: mismatch,
        source: LOCALHOST,
        destination: IpAddr::V6(Ipv6Addr::LOCALHOST),
        resume: false,
    });
    let events = collect(&mut rx, Duration::from_secs(2), |evs| evs.len() >= 3).await;
    let reason = |id: Uuid| {
        events
            .iter()
            .find_map(|e| match e {
                ProbeEvent::NotProbed { id: i, reason } if *i == id => Some(reason.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no NotProbed for {id}: {events:#?}"))
    };
    assert!(matches!(
        reason(outside),
        NotProbedReason::DestinationNotAllowed { .. }
    ));
    let r = reason(not_local);
    assert!(matches!(r, NotProbedReason::SourceNotLocal { .. }), "{r:?}");
    assert!(r.to_string().contains("192.0.2.1"), "{r}");
    assert!(matches!(
        reason(mismatch),
        NotProbedReason::FamilyMismatch { .. }
    ));
    // Over more than one window (and one source recheck), nothing is sent
    // and nothing else is reported.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let c = engine.counters();
    assert_eq!((c.sent, c.send_errors), (0, 0), "{c:?}");
    assert_eq!((c.monitors, c.not_probed), (3, 3), "{c:?}");
    assert!(rx.try_recv().is_err(), "no further events");
    engine.shutdown().await;
}

#[tokio::test]
async fn many_monitors_share_one_socket_and_each_gets_its_own_replies() {
    let Some((engine, mut rx)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    // 60 monitors, each to its own loopback destination, several sources.
    let specs: Vec<MonitorSpec> = (0..60u8)
        .map(|i| MonitorSpec {
            id: Uuid::new_v4(),
            source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i % 3)),
            destination: IpAddr::V4(Ipv4Addr::new(127, 0, 1, i)),
            resume: false,
        })
        .collect();
    for s in &specs {
        engine.upsert(*s);
    }
    let events = collect(&mut rx, Duration::from_secs(5), |evs| {
        specs.iter().all(|s| windows_of(evs, s.id).len() >= 2)
    })
    .await;
    for s in &specs {
        for w in windows_of(&events, s.id) {
            assert_clean_window(w, 5.0);
        }
    }
    let c = engine.counters();
    assert_eq!((c.timeouts, c.late, c.duplicates), (0, 0, 0), "{c:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn two_engines_ignore_each_others_replies() {
    let Some((a, mut rx_a)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let Some((b, mut rx_b)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let (ida, idb) = (Uuid::new_v4(), Uuid::new_v4());
    for (engine, id) in [(&a, ida), (&b, idb)] {
        engine.upsert(MonitorSpec {
            id,
            source: LOCALHOST,
            destination: LOCALHOST,
            resume: false,
        });
    }
    let ev_a = collect(&mut rx_a, Duration::from_secs(5), |e| {
        windows_of(e, ida).len() >= 2
    });
    let ev_b = collect(&mut rx_b, Duration::from_secs(5), |e| {
        windows_of(e, idb).len() >= 2
    });
    let (ev_a, ev_b) = tokio::join!(ev_a, ev_b);
    for w in windows_of(&ev_a, ida)
        .into_iter()
        .chain(windows_of(&ev_b, idb))
    {
        assert_clean_window(w, 5.0);
    }
    assert!(windows_of(&ev_a, idb).is_empty() && windows_of(&ev_b, ida).is_empty());
    for engine in [&a, &b] {
        let c = engine.counters();
        assert_eq!(
            (c.received, c.duplicates),
            (c.sent - c.in_flight, 0),
            "{c:?}"
        );
        if engine.sockets()[0].kind == Ok(SocketKind::Raw) {
            // A raw socket sees the other engine's replies too: counted, not credited.
            assert!(c.unmatched >= 3, "{c:?}");
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// The source address is set per packet: capture our own echo requests on a
/// second raw socket and read their IP source.
#[tokio::test]
async fn probes_leave_from_the_monitor_source_address() {
    use socket2::{Domain, Protocol, Socket, Type};
    let capture = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP: cannot open a raw capture socket: {e}");
            return;
        }
    };
    capture
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let Some((engine, _rx)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let source = Ipv4Addr::new(127, 0, 0, 7);
    let destination = Ipv4Addr::new(127, 0, 0, 8);
    engine.upsert(MonitorSpec {
        id: Uuid::new_v4(),
        source: source.into(),
        destination: destination.into(),
        resume: false,
    });
    let found = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        while std::time::Instant::now() < deadline {
            let Ok(n) = capture.recv(&mut buf) else {
                continue;
            };
            // SAFETY: recv initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let is_our_request = pkt.len() >= ihl + 12
                && pkt[ihl] == 8
                && &pkt[ihl + 8..ihl + 12] == b"vpnm"
                && pkt[16..20] == destination.octets();
            if is_our_request {
                return Some(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]));
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(found, Some(source), "echo request source address");
    engine.shutdown().await;
}

#[test]
fn datagram_sockets_work_in_a_private_network_namespace() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let probe_ns = Command::new("unshare").args(["-rn", "true"]).output();
    match probe_ns {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIP: unprivileged user+network namespaces unavailable (`unshare -rn` failed: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIP: `unshare` not runnable: {e}");
            return;
        }
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .arg("-rn")
        .arg(&exe)
        .args([
            "--exact",
            "datagram_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines().filter(|l| l.contains("datagram-child:")) {
        eprintln!("{line}");
    }
    assert!(
        out.status.success() && stdout.contains("datagram-child: ok"),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

/// Body of the test above; runs only as its child inside `unshare -rn`.
#[test]
#[ignore = "run by datagram_sockets_work_in_a_private_network_namespace inside unshare -rn"]
fn datagram_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        eprintln!("this test only runs as a child inside `unshare -rn`");
        return;
    }
    // We are root of a fresh user namespace that owns a fresh network
    // namespace: open ICMP datagram sockets to our group and bring lo up.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 0").unwrap();
    let up = ["ip", "/usr/sbin/ip", "/sbin/ip"].iter().any(|ip| {
        Command::new(ip)
            .args(["link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(up, "could not bring lo up");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kind = rt
        .block_on(loopback_three_of_three(SocketMode::Datagram, LOCALHOST))
        .expect("datagram socket must open after setting ping_group_range");
    assert_eq!(kind, SocketKind::Datagram);
    if has_ipv6_loopback() {
        let kind = rt
            .block_on(loopback_three_of_three(
                SocketMode::Datagram,
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ))
            .expect("IPv6 datagram socket");
        assert_eq!(kind, SocketKind::Datagram);
        println!("datagram-child: IPv6 ok");
    } else {
        println!("datagram-child: no IPv6 loopback in the namespace; IPv6 not checked");
    }
    println!("datagram-child: ok");
}

/// Nanoseconds since the Unix epoch.
fn wall_ns(t: std::time::SystemTime) -> u128 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_aligned_to_wall_clock_and_a_resumed_monitor_joins_the_window_in_progress() {
    let Some((a, mut rx_a)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    let id = Uuid::new_v4();
    let spec = |resume| MonitorSpec {
        id,
        source: LOCALHOST,
        destination: LOCALHOST,
        resume,
    };
    a.upsert(spec(false));
    let ev_a = collect(&mut rx_a, Duration::from_secs(5), |e| {
        windows_of(e, id).len() >= 2
    })
    .await;
    let wa = windows_of(&ev_a, id);
    // A new monitor starts at a window boundary: full windows.
    assert_clean_window(wa[0], 5.0);
    let interval = Duration::from_secs(1).as_nanos();
    let phase = wall_ns(wa[0].window_start) % interval;
    assert_eq!(
        wall_ns(wa[1].window_start) - wall_ns(wa[0].window_start),
        interval
    );
    // Another engine (a node taking the monitor over) started later: the
    // same window keys, to the nanosecond.
    a.remove(id);
    let Some((b, mut rx_b)) = start(config(SocketMode::Auto)).await else {
        return;
    };
    // Half-way through a window: probes at 0, 333 and 666 ms of it.
    let now = wall_ns(std::time::SystemTime::now());
    let in_window = (now + interval - phase) % interval;
    let wait = (interval + interval / 2 - in_window) % interval;
    tokio::time::sleep(Duration::from_nanos(wait as u64)).await;
    let joined = wall_ns(std::time::SystemTime::now());
    b.upsert(spec(true));
    let ev_b = collect(&mut rx_b, Duration::from_secs(4), |e| {
        windows_of(e, id).len() >= 2
    })
    .await;
    let wb = windows_of(&ev_b, id);
    for w in &wb {
        assert_eq!(wall_ns(w.window_start) % interval, phase, "{w:?}");
    }
    let first = wb[0];
    assert!(
        wall_ns(first.window_start) <= joined && joined - wall_ns(first.window_start) < interval,
        "the first window is the one in progress when the monitor was given: {first:?}"
    );
    assert!(
        (1..3).contains(&first.sent),
        "only the probes still ahead of it: {first:?}"
    );
    assert_eq!(first.received, first.sent, "{first:?}");
    assert_clean_window(wb[1], 5.0);
    a.shutdown().await;
    b.shutdown().await;
}
