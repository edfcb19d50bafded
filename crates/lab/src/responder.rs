//! The userspace echo responder: answers every ICMPv4 echo request in its
//! network namespace after the delay of the request's target group.
//!
//! It stands in for `tc netem`, which these machines lack. The kernel's own
//! replies must be off in the namespace (`net.ipv4.icmp_echo_ignore_all=1`,
//! which [`Lab`](crate::Lab) sets); a raw `IPPROTO_ICMP` socket still sees
//! every request, filtered in the kernel to echo requests only
//! (`ICMP_FILTER`). Replies are whole IPv4 packets on an `IPPROTO_RAW`
//! socket, sourced from the probed address, so any of the lab's addresses
//! answers as itself.
//!
//! Timing: a request's delay counts from the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), not from when this process got round to reading it;
//! replies wait in a binary heap ordered by due time and the loop sleeps in
//! `ppoll` with a nanosecond timeout and a 1 ns timer slack until the next
//! one is due. There is no busy-wait (the responder shares two cores with the
//! prober being measured), so a reply can leave up to the wake-up latency
//! late: the exit summary reports the worst lateness seen.
//!
//! It runs under `SCHED_FIFO` where permitted (see
//! [`ResponderConfig::with_realtime`]): on a loaded machine a normal-priority
//! responder answered up to tens of milliseconds late.
//!
//! Bounds: at most `--max-pending` replies wait at once (more are dropped
//! and counted), delays are at most 60 s, and `--stop-after SECS` ends the
//! process whatever happens. SIGTERM and SIGINT end it cleanly; it prints
//! `ready` on stdout once its sockets are open and a one-line summary on
//! stderr when it exits.

use crate::echo::{self, Rejected};
use crate::group::{Delay, TargetGroup};
use crate::{LabError, parse_millis};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use socket2::{Domain, Protocol, Socket, Type};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::OsStr;
use std::fmt;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Default cap on replies waiting for their due time.
pub const DEFAULT_MAX_PENDING: usize = 65_536;
/// The line printed on stdout once the responder's sockets are open.
pub const READY_LINE: &str = "ready";
/// Longest sleep between checks of the stop flag and deadline.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// `SCHED_FIFO` priority: above every normal task, low among real-time ones.
const REALTIME_PRIORITY: libc::c_int = 10;
/// Packets read per wake-up before due replies are sent again.
const RECV_BATCH: usize = 256;

/// What a responder does: the delay of each target group (most specific
/// group wins; addresses in no group are answered at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// Most specific first.
    groups: Vec<(TargetGroup, Delay)>,
    stop_after: Option<Duration>,
    seed: u64,
    max_pending: usize,
    realtime: bool,
}

impl ResponderConfig {
    pub fn new(groups: impl IntoIterator<Item = (TargetGroup, Delay)>) -> Self {
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(g, _)| (Reverse(g.net().prefix_len()), *g));
        groups.dedup_by_key(|(g, _)| *g);
        ResponderConfig {
            groups,
            stop_after: None,
            seed: 1,
            max_pending: DEFAULT_MAX_PENDING,
            realtime: true,
        }
    }

    /// Run under `SCHED_FIFO` (the default, where permitted), so that the
    /// prober being measured, busy on the same cores, does not delay the
    /// replies: the responder stands in for a network, which the prober's
    /// CPU load does not slow down either.
    pub fn with_realtime(mut self, on: bool) -> Self {
        self.realtime = on;
        self
    }

    /// Exit after this long whatever happens (a safety cap for tests).
    pub fn with_stop_after(mut self, d: Option<Duration>) -> Self {
        self.stop_after = d;
        self
    }

    /// Seed of the jitter sequence, so a run is reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// The delay setting for a reply from `addr`.
    pub fn delay_for(&self, addr: Ipv4Addr) -> Delay {
        self.groups
            .iter()
            .find(|(g, _)| g.contains(addr))
            .map_or(Delay::ZERO, |(_, d)| *d)
    }

    /// Command-line arguments that [`ResponderConfig::from_args`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let ms = |d: Duration| {
            let us = d.as_micros();
            format!("{}.{:03}", us / 1000, us % 1000)
        };
        let mut args = Vec::new();
        for (g, d) in &self.groups {
            args.push("--group".to_owned());
            args.push(format!("{g}={}:{}", ms(d.delay()), ms(d.jitter())));
        }
        if let Some(s) = self.stop_after {
            args.push("--stop-after".to_owned());
            args.push(s.as_secs().max(1).to_string());
        }
        args.push("--seed".to_owned());
        args.push(self.seed.to_string());
        args.push("--max-pending".to_owned());
        args.push(self.max_pending.to_string());
        if !self.realtime {
            args.push("--no-realtime".to_owned());
        }
        args
    }

    /// Parses `--group CIDR=DELAY_MS:JITTER_MS` (repeatable; milliseconds,
    /// decimals allowed), `--stop-after SECS`, `--seed N`, `--max-pending N`.
    pub fn from_args<I, S>(args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut groups = Vec::new();
        let mut config = ResponderConfig::new([]);
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let flag = flag.as_ref().to_string_lossy().into_owned();
            let mut value = || {
                it.next()
                    .map(|v| v.as_ref().to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--group" => groups.push(parse_group(&value()?)?),
                "--stop-after" => {
                    let v = value()?;
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("--stop-after {v:?}: want whole seconds > 0"))?;
                    config.stop_after = Some(Duration::from_secs(secs));
                }
                "--seed" => {
                    let v = value()?;
                    config.seed = v
                        .parse()
                        .map_err(|_| format!("--seed {v:?}: want a number"))?;
                }
                "--max-pending" => {
                    let v = value()?;
                    config.max_pending = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--max-pending {v:?}: want a number > 0"))?;
                }
                "--no-realtime" => config.realtime = false,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(ResponderConfig {
            groups: ResponderConfig::new(groups).groups,
            ..config
        })
    }
}

/// Usage of the responder's arguments.
pub const USAGE: &str = "usage: responder [--group CIDR=DELAY_MS:JITTER_MS]... \
[--stop-after SECS] [--seed N] [--max-pending N] [--no-realtime]";

fn parse_group(s: &str) -> Result<(TargetGroup, Delay), String> {
    let bad = || format!("--group {s:?}: want CIDR=DELAY_MS:JITTER_MS, e.g. 198.18.1.0/24=20:5");
    let (cidr, times) = s.split_once('=').ok_or_else(bad)?;
    let (delay, jitter) = times.split_once(':').ok_or_else(bad)?;
    let group = TargetGroup::parse(cidr).map_err(|e| e.to_string())?;
    let ms = |v: &str| parse_millis(&format!("{v}ms")).map_err(|e| format!("--group {s:?}: {e}"));
    let delay = Delay::new(ms(delay)?, ms(jitter)?).map_err(|e| e.to_string())?;
    Ok((group, delay))
}

/// What a responder did, printed when it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponderStats {
    pub requests: u64,
    pub replies: u64,
    /// Received packets that were not valid echo requests.
    pub rejected: u64,
    /// Requests not answered because `max_pending` replies were waiting.
    pub queue_full: u64,
    pub recv_errors: u64,
    pub send_errors: u64,
    /// Replies left more than 1 ms after their due time.
    pub late_over_1ms: u64,
    pub late_max: Duration,
}

impl fmt::Display for ResponderStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} replies={} rejected={} queue_full={} recv_errors={} send_errors={} \
             late_over_1ms={} late_max_us={}",
            self.requests,
            self.replies,
            self.rejected,
            self.queue_full,
            self.recv_errors,
            self.send_errors,
            self.late_over_1ms,
            self.late_max.as_micros()
        )
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// One reply waiting for its due time; ordered by due time, then arrival.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due: Instant,
    order: u64,
    dst: Ipv4Addr,
    packet: Vec<u8>,
}

/// Linux's `ICMP_FILTER` raw-socket option (not in the libc crate): a mask
/// of ICMP types the socket does *not* receive.
const ICMP_FILTER: libc::c_int = 1;

fn sys(context: &str) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |e| LabError::io(context, e)
}

fn open_sockets() -> Result<(Socket, Socket), LabError> {
    let rx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(sys("raw ICMP socket (needs CAP_NET_RAW)"))?;
    rx.set_nonblocking(true).map_err(sys("O_NONBLOCK"))?;
    if setsockopt(&rx, sockopt::RcvBufForce, &(8 << 20)).is_err() {
        rx.set_recv_buffer_size(8 << 20).map_err(sys("SO_RCVBUF"))?;
    }
    setsockopt(&rx, sockopt::ReceiveTimestampns, &true)
        .map_err(|e| LabError::io("SO_TIMESTAMPNS", e.into()))?;
    let only_echo_requests: u32 = !(1 << 8);
    // SAFETY: a valid fd, a pointer to a live u32 and its size.
    let rc = unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::SOL_RAW,
            ICMP_FILTER,
            (&raw const only_echo_requests).cast(),
            size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(LabError::io("ICMP_FILTER", std::io::Error::last_os_error()));
    }
    let tx = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )
    .map_err(sys("raw IP socket (needs CAP_NET_RAW)"))?;
    tx.set_nonblocking(true).map_err(sys("O_NONBLOCK"))?;
    if setsockopt(&tx, sockopt::SndBufForce, &(4 << 20)).is_err() {
        tx.set_send_buffer_size(4 << 20).map_err(sys("SO_SNDBUF"))?;
    }
    Ok((rx, tx))
}

struct Sender {
    tx: Socket,
    stats: ResponderStats,
}

impl Sender {
    fn send(&mut self, packet: &[u8], dst: Ipv4Addr) {
        let to = SocketAddrV4::new(dst, 0).into();
        match self.tx.send_to(packet, &to) {
            Ok(_) => self.stats.replies += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                // The first error and then one in 1000, so a storm stays readable.
                if self.stats.send_errors % 1000 == 1 {
                    eprintln!(
                        "responder: send to {dst} failed ({} so far): {e}",
                        self.stats.send_errors
                    );
                }
            }
        }
    }
}

/// Runs the responder in the calling thread's network namespace until
/// SIGTERM or SIGINT (handlers installed here) or `stop_after`. `ready` is
/// called once the sockets are open.
pub fn run(config: &ResponderConfig, ready: impl FnOnce()) -> Result<ResponderStats, LabError> {
    STOP.store(false, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }
            .map_err(|e| LabError::io(format!("sigaction {sig}"), e.into()))?;
    }
    // Wake up on time: the default 50 us slack would add to every delay.
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    if config.realtime {
        let param = libc::sched_param {
            sched_priority: REALTIME_PRIORITY,
        };
        // SAFETY: 0 is the calling thread; `param` is a live sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) } != 0 {
            eprintln!(
                "responder: no SCHED_FIFO ({}); replies may be late under CPU load",
                std::io::Error::last_os_error()
            );
        }
    }

    let (rx, tx) = open_sockets()?;
    ready();

    let deadline = config.stop_after.map(|d| Instant::now() + d);
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut sender = Sender {
        tx,
        stats: ResponderStats::default(),
    };
    let mut order = 0u64;
    let mut buf = vec![0u8; 65_536];
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let mut scratch = Vec::with_capacity(1500);

    while !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        while heap.peek().is_some_and(|p| p.0.due <= now) {
            let Some(Reverse(p)) = heap.pop() else { break };
            let late = Instant::now().saturating_duration_since(p.due);
            sender.stats.late_max = sender.stats.late_max.max(late);
            if late > Duration::from_millis(1) {
                sender.stats.late_over_1ms += 1;
            }
            sender.send(&p.packet, p.dst);
        }

        let now = Instant::now();
        let mut wait = MAX_WAIT;
        if let Some(p) = heap.peek() {
            wait = wait.min(p.0.due.saturating_duration_since(now));
        }
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(LabError::io("ppoll", e.into())),
        }

        for _ in 0..RECV_BATCH {
            let (len, stamp) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                match recvmsg::<SockaddrIn>(
                    rx.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(msg) => {
                        let stamp = msg.cmsgs().ok().and_then(|mut c| {
                            c.find_map(|m| match m {
                                ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                                _ => None,
                            })
                        });
                        (msg.bytes, stamp)
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        sender.stats.recv_errors += 1;
                        if sender.stats.recv_errors % 1000 == 1 {
                            eprintln!(
                                "responder: receive failed ({} so far): {e}",
                                sender.stats.recv_errors
                            );
                        }
                        break;
                    }
                }
            };
            let arrival = arrival_instant(stamp);
            let req = match echo::parse_request(&buf[..len]) {
                Ok(req) => req,
                Err(Rejected::NotEchoRequest) => continue,
                Err(_) => {
                    sender.stats.rejected += 1;
                    continue;
                }
            };
            sender.stats.requests += 1;
            let delay = sample(config.delay_for(req.dst), &mut rng);
            if delay.is_zero() {
                echo::build_reply(&req, &mut scratch);
                sender.send(&scratch, req.src);
            } else if heap.len() >= config.max_pending {
                sender.stats.queue_full += 1;
            } else {
                let mut packet = Vec::with_capacity(req.reply_len());
                echo::build_reply(&req, &mut packet);
                order += 1;
                heap.push(Reverse(Pending {
                    due: arrival + delay,
                    order,
                    dst: req.src,
                    packet,
                }));
            }
        }
    }
    Ok(sender.stats)
}

/// The kernel's receive timestamp (CLOCK_REALTIME) as an `Instant`; never
/// later than now.
fn arrival_instant(stamp: Option<TimeSpec>) -> Instant {
    let now = Instant::now();
    let Some(ts) = stamp else { return now };
    let (Ok(sec), Ok(nsec)) = (u64::try_from(ts.tv_sec()), u32::try_from(ts.tv_nsec())) else {
        return now;
    };
    let Some(at) = SystemTime::UNIX_EPOCH.checked_add(Duration::new(sec, nsec)) else {
        return now;
    };
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

/// A delay drawn uniformly from the setting's bounds, to the microsecond.
fn sample(d: Delay, rng: &mut SmallRng) -> Duration {
    let (lo, hi) = d.bounds();
    if lo == hi {
        return lo;
    }
    Duration::from_micros(rng.random_range(lo.as_micros() as u64..=hi.as_micros() as u64))
}

/// Entry point of a responder process: parses `args`, runs, prints
/// [`READY_LINE`] on stdout when listening and a summary on stderr at the
/// end. Returns the process exit code (2 for bad arguments).
pub fn main_with_args<I, S>(args: I) -> u8
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let config = match ResponderConfig::from_args(args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return 2;
        }
    };
    let ready = || {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // The parent reads this line; if it has gone, there is nobody to tell.
        let _ = writeln!(out, "{READY_LINE}").and_then(|()| out.flush());
    };
    match run(&config, ready) {
        Ok(stats) => {
            eprintln!("responder exit: {stats}");
            0
        }
        Err(e) => {
            eprintln!("responder failed: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> TargetGroup {
        TargetGroup::parse(s).unwrap()
    }

    fn d(ms: u64, jitter_us: u64) -> Delay {
        Delay::new(Duration::from_millis(ms), Duration::from_micros(jitter_us)).unwrap()
    }

    #[test]
    fn args_round_trip() {
        let c = ResponderConfig::new([
            (g("198.18.0.0/15"), d(5, 0)),
            (g("198.18.1.0/24"), d(20, 5_500)),
        ])
        .with_stop_after(Some(Duration::from_secs(30)))
        .with_seed(7)
        .with_max_pending(10)
        .with_realtime(false);
        let args = c.to_args();
        assert_eq!(
            args,
            [
                "--group",
                "198.18.1.0/24=20.000:5.500",
                "--group",
                "198.18.0.0/15=5.000:0.000",
                "--stop-after",
                "30",
                "--seed",
                "7",
                "--max-pending",
                "10",
                "--no-realtime"
            ]
        );
        assert_eq!(ResponderConfig::from_args(&args).unwrap(), c);
    }

    #[test]
    fn most_specific_group_decides_the_delay() {
        let c = ResponderConfig::new([
            (g("198.18.0.0/15"), d(5, 0)),
            (g("198.18.1.0/24"), d(20, 0)),
            (g("198.18.1.7"), Delay::ZERO),
        ]);
        assert_eq!(c.delay_for(Ipv4Addr::new(198, 18, 1, 1)), d(20, 0));
        assert_eq!(c.delay_for(Ipv4Addr::new(198, 18, 1, 7)), Delay::ZERO);
        assert_eq!(c.delay_for(Ipv4Addr::new(198, 19, 0, 1)), d(5, 0));
        assert_eq!(c.delay_for(Ipv4Addr::new(127, 0, 0, 1)), Delay::ZERO);
    }

    #[test]
    fn bad_arguments_are_explained() {
        for (args, want) in [
            (vec!["--group"], "needs a value"),
            (vec!["--group", "198.18.1.0/24"], "CIDR=DELAY_MS:JITTER_MS"),
            (
                vec!["--group", "198.18.1.0/24=20"],
                "CIDR=DELAY_MS:JITTER_MS",
            ),
            (vec!["--group", "10.0.0.0/8=20:0"], "inside 198.18.0.0/15"),
            (vec!["--group", "198.18.1.0/24=x:0"], "bad duration"),
            (
                vec!["--group", "198.18.1.0/24=70000:0"],
                "between 0 and 60s",
            ),
            (vec!["--stop-after", "0"], "whole seconds"),
            (vec!["--max-pending", "0"], "number > 0"),
            (vec!["--bogus"], "unknown argument"),
        ] {
            let err = ResponderConfig::from_args(&args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn sampled_delays_stay_within_bounds_and_cover_them() {
        let mut rng = SmallRng::seed_from_u64(1);
        let setting = d(20, 5_000);
        let samples: Vec<Duration> = (0..2000).map(|_| sample(setting, &mut rng)).collect();
        let (lo, hi) = setting.bounds();
        assert!(samples.iter().all(|s| (lo..=hi).contains(s)));
        assert!(samples.iter().any(|s| *s < Duration::from_millis(16)));
        assert!(samples.iter().any(|s| *s > Duration::from_millis(24)));
        assert_eq!(sample(d(3, 0), &mut rng), Duration::from_millis(3));
    }

    #[test]
    fn arrival_is_never_in_the_future() {
        let before = Instant::now();
        assert!(arrival_instant(None) >= before);
        let future = TimeSpec::new(i64::MAX, 0);
        assert!(arrival_instant(Some(future)) <= Instant::now());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let ten_ms_ago = TimeSpec::from_duration(now - Duration::from_millis(10));
        let a = arrival_instant(Some(ten_ms_ago));
        let age = Instant::now() - a;
        assert!(
            (Duration::from_millis(10)..Duration::from_millis(200)).contains(&age),
            "{age:?}"
        );
    }
}
