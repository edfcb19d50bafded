//! The engine task: glues sockets, scheduler, monitor table and statistics
//! together, and the handle the rest of vpnmon holds.
//!
//! One task does everything, in this order on every wake-up: drain the
//! sockets (so a reply that arrived before a deadline is seen before its
//! window closes), apply commands, fire the due wheel events, send the
//! probes they queued, hand events to the consumer. It then sleeps until the
//! next busy tick, a readable socket, a command, or room in the event
//! channel.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::codec::{self, Family, ParseError, ProbeToken};
use crate::counters::SharedCounters;
use crate::monitors::{LinkHealth, MonitorTable, NextEvent, ReplyMatch, SlotState};
use crate::scheduler::{Cadence, TimerWheel};
use crate::socket::{self, IcmpSocket, OpenFailure, OutMsg, SEND_BATCH, SocketKind};
use crate::stats::{self, ProbeOutcome};
use crate::{EngineConfig, EngineCounters, MonitorSpec, NotProbedReason, ProbeError, ProbeEvent};

/// Receive batches per socket per wake-up before other work gets a turn.
const MAX_RX_BATCHES: usize = 64;
/// Events held back while the consumer is slow, before dropping.
const MAX_PENDING_EVENTS: usize = 1 << 18;
/// How far ahead to look for the next busy tick when sleeping.
const IDLE_LOOKAHEAD_TICKS: u64 = 512;
/// Wake on socket readability only when the next tick is further away than
/// this: replies carry kernel timestamps, so draining them on the next tick
/// costs no accuracy and saves a wake-up per reply burst.
const READ_SLACK: Duration = Duration::from_millis(50);
/// At low probe rates, wait for about this many due probes per wake-up ...
const COALESCE_BATCH: u64 = 8;
/// ... but never longer than this (nor than half of `max_lateness`).
const COALESCE_MAX: Duration = Duration::from_millis(20);
/// Most log lines per kind per this period.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// Entry point of the probe engine.
#[derive(Debug)]
pub struct Engine;

/// What socket serves a family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// The family.
    pub family: Family,
    /// The kind of socket, or why there is none.
    pub kind: Result<SocketKind, String>,
    /// Whether the kernel returns transmit timestamps on it (else RTTs
    /// start at the clock read right before each send batch).
    pub tx_timestamps: bool,
}

enum Command {
    Upsert(MonitorSpec),
    Remove(Uuid),
    Shutdown,
}

/// Handle to a running engine. Cheap to clone; all clones control the same
/// engine. The engine stops on [`EngineHandle::shutdown`], when every handle
/// is dropped, or when the event receiver is dropped.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    counters: Arc<SharedCounters>,
    thread: Arc<Mutex<Option<EngineThread>>>,
    sockets: Arc<[SocketInfo]>,
}

/// The engine's own thread, and word of its end.
#[derive(Debug)]
struct EngineThread {
    join: std::thread::JoinHandle<()>,
    done: oneshot::Receiver<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Upsert(s) => write!(f, "Upsert({s:?})"),
            Command::Remove(id) => write!(f, "Remove({id})"),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl Engine {
    /// Validate `cfg`, open the ICMP sockets and start the engine on a
    /// thread of its own (`vpnmon-probe`, with a single-threaded tokio
    /// runtime): its wake-ups are one `epoll_wait` each, never a hand-over
    /// between the worker threads of the caller's runtime, and a busy API
    /// cannot delay a send. Events go to `events`.
    ///
    /// Fails when the configuration is invalid, the thread cannot start, or
    /// no ICMP socket of either family can be opened; a family that cannot be
    /// opened while the other can makes its monitors
    /// [`NotProbedReason::FamilyUnavailable`].
    pub async fn start(
        cfg: EngineConfig,
        events: mpsc::Sender<ProbeEvent>,
    ) -> Result<EngineHandle, ProbeError> {
        cfg.validate()?;
        let (started_tx, started_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let join = std::thread::Builder::new()
            .name("vpnmon-probe".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(ProbeError::Socket(format!(
                            "cannot start the probe runtime: {e}"
                        ))));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Engine::open(cfg, events) {
                        Ok((task, handle_parts)) => {
                            if started_tx.send(Ok(handle_parts)).is_ok() {
                                task.run().await;
                            }
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                        }
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| ProbeError::Socket(format!("cannot start the probe thread: {e}")))?;
        let started = started_rx.await;
        let (commands, counters, sockets) = match started {
            Ok(Ok(parts)) => parts,
            Ok(Err(e)) => {
                let _ = join.join();
                return Err(e);
            }
            Err(_) => {
                let _ = join.join();
                return Err(ProbeError::Socket("the probe thread ended at start".into()));
            }
        };
        Ok(EngineHandle {
            commands,
            counters,
            thread: Arc::new(Mutex::new(Some(EngineThread {
                join,
                done: done_rx,
            }))),
            sockets,
        })
    }

    /// Open the sockets and build the task; runs on the engine's thread, so
    /// that the sockets register with its runtime.
    #[allow(clippy::type_complexity)]
    fn open(
        cfg: EngineConfig,
        events: mpsc::Sender<ProbeEvent>,
    ) -> Result<
        (
            EngineTask,
            (
                mpsc::UnboundedSender<Command>,
                Arc<SharedCounters>,
                Arc<[SocketInfo]>,
            ),
        ),
        ProbeError,
    > {
        let mut sockets: [Option<IcmpSocket>; 2] = [None, None];
        let mut unavailable: [Option<String>; 2] = [None, None];
        let mut failures = Vec::new();
        let mut permission_only = true;
        for family in [Family::V4, Family::V6] {
            match IcmpSocket::open(family, cfg.socket_mode, cfg.payload_size) {
                Ok(s) => sockets[family.index()] = Some(s),
                Err(e) => {
                    if matches!(e, OpenFailure::Other(_)) {
                        permission_only = false;
                    }
                    unavailable[family.index()] = Some(e.to_string());
                    failures.push(format!("{family}: {e}"));
                }
            }
        }
        if sockets.iter().all(Option::is_none) {
            let detail = failures.join("; ");
            return Err(if permission_only {
                ProbeError::NoPermission { detail }
            } else {
                ProbeError::Socket(detail)
            });
        }
        let infos: Arc<[SocketInfo]> = [Family::V4, Family::V6]
            .into_iter()
            .map(|family| SocketInfo {
                family,
                kind: match &sockets[family.index()] {
                    Some(s) => Ok(s.kind()),
                    None => Err(unavailable[family.index()].clone().unwrap_or_default()),
                },
                tx_timestamps: sockets[family.index()]
                    .as_ref()
                    .is_some_and(IcmpSocket::tx_timestamps),
            })
            .collect();
        for info in infos.iter() {
            match &info.kind {
                Ok(kind) => tracing::info!(family = %info.family, %kind, "probe socket open"),
                Err(e) => {
                    tracing::warn!(family = %info.family, error = %e, "probe socket unavailable")
                }
            }
        }

        let counters = Arc::new(SharedCounters::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let core = Core::new(&cfg, unavailable, events, counters.clone());
        let task = EngineTask {
            sockets,
            core,
            commands: rx,
        };
        Ok((task, (tx, counters, infos)))
    }
}

impl EngineHandle {
    /// Add a monitor, or change one (same id, new addresses). Never blocks;
    /// probing starts within one window. Re-sending an unchanged spec is a
    /// no-op.
    pub fn upsert(&self, spec: MonitorSpec) {
        if self.commands.send(Command::Upsert(spec)).is_err() {
            tracing::debug!(id = %spec.id, "probe engine stopped; upsert ignored");
        }
    }

    /// Stop probing a monitor at once. Replies to its probes still in flight
    /// are counted as late.
    pub fn remove(&self, id: Uuid) {
        if self.commands.send(Command::Remove(id)).is_err() {
            tracing::debug!(%id, "probe engine stopped; remove ignored");
        }
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> EngineCounters {
        self.counters.snapshot()
    }

    /// The sockets in use, per family.
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.sockets
    }

    /// Whether the engine is still running.
    pub fn is_running(&self) -> bool {
        match self.thread.lock() {
            Ok(guard) => guard.as_ref().is_some_and(|t| !t.join.is_finished()),
            Err(_) => false,
        }
    }

    /// Stop the engine and wait for its task to end. Other clones of the
    /// handle become inert.
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown);
        let thread = match self.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(t) = thread {
            // The thread signals its end last; a dropped sender without the
            // signal means it panicked.
            let ended = t.done.await;
            if t.join.join().is_err() || ended.is_err() {
                tracing::error!("probe engine thread failed");
            }
        }
    }
}

/// Kinds of rate-limited log lines.
#[derive(Clone, Copy)]
enum LogKind {
    SendError,
    RecvError,
    SourceCheck,
    EventsBacklog,
}

/// At most one line per kind per [`LOG_PERIOD`], with the count suppressed.
#[derive(Default)]
struct LogLimiter {
    state: [(Option<Instant>, u64); 4],
}

impl LogLimiter {
    /// `Some(suppressed since last line)` when a line may be logged now.
    fn allow(&mut self, kind: LogKind) -> Option<u64> {
        let (last, suppressed) = &mut self.state[kind as usize];
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_PERIOD) {
            *suppressed += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(suppressed))
    }
}

/// How one message of a send batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendResult {
    Sent,
    /// Refused for lack of a route: sent and lost.
    Unreachable(i32),
    /// Refused for a local reason: not sent.
    Failed(i32),
}

fn classify_send_error(e: &io::Error) -> SendResult {
    let errno = e.raw_os_error().unwrap_or(0);
    match errno {
        // No route, or dropped by a firewall on the way out: the network
        // refused the probe. `ping` counts these as transmitted and lost.
        libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN | libc::EPERM => {
            SendResult::Unreachable(errno)
        }
        _ => SendResult::Failed(errno),
    }
}

struct EngineTask {
    sockets: [Option<IcmpSocket>; 2],
    core: Core,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl EngineTask {
    async fn run(mut self) {
        tracing::info!(
            interval = ?self.core.cfg.interval,
            count = self.core.cfg.count,
            timeout = ?self.core.cfg.timeout,
            "probe engine started"
        );
        let reason = loop {
            self.core.counters.wakeups += 1;
            let mut more_rx = false;
            let mut kernel_drops = 0;
            for sock in self.sockets.iter_mut().flatten() {
                // Transmit stamps first: the replies read next may answer
                // the probes they belong to.
                self.core.drain_tx_timestamps(sock);
                more_rx |= self.core.drain(sock);
                kernel_drops += u64::from(sock.kernel_drops());
            }
            self.core.counters.rx_queue_drops = kernel_drops;
            let mut stop = None;
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) => {
                        stop = Some("shutdown requested");
                        break;
                    }
                    Ok(cmd) => self.core.command(cmd),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        stop = Some("all engine handles dropped");
                        break;
                    }
                }
            }
            if let Some(reason) = stop {
                break reason;
            }
            let now = self.core.now_tick();
            self.core.run_due(now, &self.sockets);
            if !self.core.flush_events() {
                break "event receiver dropped";
            }
            self.core.publish();
            if more_rx {
                tokio::task::yield_now().await;
                continue;
            }

            let deadline = self.core.next_deadline();
            let watch_sockets = deadline.saturating_duration_since(Instant::now()) > READ_SLACK
                || self
                    .sockets
                    .iter()
                    .flatten()
                    .any(|s| s.recv_buffer() < socket::SMALL_RECV_BUFFER);
            let core = &mut self.core;
            let [v4, v6] = &self.sockets;
            let wake = tokio::select! {
                r = readable(v4.as_ref()), if watch_sockets => Wake::Readable(r),
                r = readable(v6.as_ref()), if watch_sockets => Wake::Readable(r),
                cmd = self.commands.recv() => Wake::Command(cmd),
                () = tokio::time::sleep_until(deadline) => Wake::Tick,
                permit = core.events.reserve(), if !core.pending_events.is_empty() => {
                    match permit {
                        Ok(permit) => {
                            if let Some(ev) = core.pending_events.pop_front() {
                                permit.send(ev);
                            }
                            Wake::Tick
                        }
                        Err(_) => Wake::EventsClosed,
                    }
                }
            };
            match wake {
                Wake::Tick => {}
                Wake::Readable(Ok(())) => {}
                Wake::Readable(Err(e)) => {
                    // Only when the runtime's I/O driver is gone: nothing
                    // more can be received, so stop rather than spin.
                    self.core.counters.recv_errors += 1;
                    tracing::error!(error = %e, "probe socket readiness failed");
                    break "socket readiness failed";
                }
                Wake::Command(Some(Command::Shutdown)) => break "shutdown requested",
                Wake::Command(Some(cmd)) => self.core.command(cmd),
                Wake::Command(None) => break "all engine handles dropped",
                Wake::EventsClosed => break "event receiver dropped",
            }
        };
        self.core.publish();
        tracing::info!(reason, "probe engine stopped");
    }
}

enum Wake {
    Tick,
    Readable(io::Result<()>),
    Command(Option<Command>),
    EventsClosed,
}

async fn readable(sock: Option<&IcmpSocket>) -> io::Result<()> {
    match sock {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

/// Everything but the sockets, so that a socket can be borrowed while the
/// core is mutated.
///
/// Tick 0 is a wall-clock multiple of the interval (since the Unix epoch),
/// so a monitor's windows start at the same wall-clock instants on every
/// node (`k × interval + phase`, the phase derived from the monitor's id):
/// nodes agree on a window's key, and a node that takes a monitor over
/// goes on with the same windows.
struct Core {
    cfg: EngineConfig,
    cadence: Cadence,
    tick_ns: u64,
    timeout_ns: u64,
    epoch: Instant,
    epoch_wall_ns: u64,
    engine_tag: u32,
    ident: u16,
    /// Longest coalescing gap between wake-ups, in ticks.
    max_gap_ticks: u64,
    unavailable: [Option<String>; 2],
    table: MonitorTable,
    wheel: TimerWheel,
    due: Vec<(u32, u64)>,
    pending_sends: [Vec<(u32, u16)>; 2],
    packet_len: usize,
    send_buf: Vec<u8>,
    outcomes: Vec<ProbeOutcome>,
    source_cache: HashMap<IpAddr, (Result<bool, String>, u64)>,
    events: mpsc::Sender<ProbeEvent>,
    pending_events: VecDeque<ProbeEvent>,
    events_closed: bool,
    counters: EngineCounters,
    shared: Arc<SharedCounters>,
    log: LogLimiter,
}

/// The engine's epoch: an instant and its wall-clock time, a multiple of
/// `interval_ns` since the Unix epoch at or before now. (Right after boot,
/// when the monotonic clock cannot go back that far, now, unaligned.)
fn aligned_epoch(interval_ns: u64) -> (Instant, u64) {
    let now = Instant::now();
    let wall = socket::realtime_ns();
    let back = wall % interval_ns.max(1);
    match now.checked_sub(Duration::from_nanos(back)) {
        Some(epoch) => (epoch, wall - back),
        None => (now, wall),
    }
}

impl Core {
    fn new(
        cfg: &EngineConfig,
        unavailable: [Option<String>; 2],
        events: mpsc::Sender<ProbeEvent>,
        shared: Arc<SharedCounters>,
    ) -> Self {
        let tick_ns = cfg.tick.as_nanos() as u64;
        let ticks = |d: Duration| (d.as_nanos() as u64).div_ceil(tick_ns);
        let cadence = Cadence {
            interval_ticks: cfg.interval.as_nanos() as u64 / tick_ns,
            count: cfg.count as u16,
            timeout_ticks: ticks(cfg.timeout),
            max_late_ticks: cfg.max_lateness.as_nanos() as u64 / tick_ns,
        };
        let random = Uuid::new_v4().as_u128();
        let (epoch, epoch_wall_ns) = aligned_epoch(cadence.interval_ticks * tick_ns);
        let start_tick =
            (Instant::now().duration_since(epoch).as_nanos() / u128::from(tick_ns)) as u64;
        let packet_len = codec::ICMP_HEADER_LEN + cfg.payload_size;
        Core {
            cfg: cfg.clone(),
            cadence,
            tick_ns,
            timeout_ns: cfg.timeout.as_nanos() as u64,
            epoch,
            epoch_wall_ns,
            engine_tag: random as u32,
            max_gap_ticks: (COALESCE_MAX.min(cfg.max_lateness / 2).as_nanos() as u64 / tick_ns)
                .max(1),
            ident: (random >> 32) as u16,
            unavailable,
            table: MonitorTable::new(cadence.count),
            wheel: TimerWheel::new(cadence.wheel_span(), start_tick),
            due: Vec::new(),
            pending_sends: [Vec::new(), Vec::new()],
            packet_len,
            send_buf: vec![0; packet_len * SEND_BATCH],
            outcomes: Vec::with_capacity(cfg.count as usize),
            source_cache: HashMap::new(),
            events,
            pending_events: VecDeque::new(),
            events_closed: false,
            counters: EngineCounters::default(),
            shared,
            log: LogLimiter::default(),
        }
    }

    fn now_tick(&self) -> u64 {
        (Instant::now().duration_since(self.epoch).as_nanos() / u128::from(self.tick_ns)) as u64
    }

    fn tick_instant(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_nanos(tick * self.tick_ns)
    }

    fn tick_wall(&self, tick: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.epoch_wall_ns + tick * self.tick_ns)
    }

    fn next_deadline(&self) -> Instant {
        let cursor = self.wheel.cursor();
        let tick = if self.wheel.is_empty() {
            cursor + IDLE_LOOKAHEAD_TICKS
        } else {
            let probing = (self.table.len() as u64).saturating_sub(self.counters.not_probed);
            let gap = self
                .cadence
                .wake_gap(probing, COALESCE_BATCH, self.max_gap_ticks);
            self.wheel
                .next_busy_tick(IDLE_LOOKAHEAD_TICKS)
                .unwrap_or(cursor + IDLE_LOOKAHEAD_TICKS)
                .max(cursor + gap)
        };
        self.tick_instant(tick)
    }

    fn publish(&mut self) {
        self.counters.monitors = self.table.len() as u64;
        self.shared.publish(&self.counters);
    }

    // ----- events -------------------------------------------------------

    fn emit(&mut self, ev: ProbeEvent) {
        if self.events_closed {
            return;
        }
        if !self.pending_events.is_empty() {
            self.queue_event(ev);
            return;
        }
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => self.events_closed = true,
            Err(mpsc::error::TrySendError::Full(ev)) => self.queue_event(ev),
        }
    }

    fn queue_event(&mut self, ev: ProbeEvent) {
        if self.pending_events.len() >= MAX_PENDING_EVENTS {
            self.counters.events_dropped += 1;
            if let Some(suppressed) = self.log.allow(LogKind::EventsBacklog) {
                tracing::error!(
                    backlog = self.pending_events.len(),
                    suppressed,
                    "probe event consumer is too slow; dropping events"
                );
            }
            return;
        }
        self.pending_events.push_back(ev);
    }

    /// Hand queued events over while there is room. False when the receiver
    /// is gone.
    fn flush_events(&mut self) -> bool {
        while let Some(ev) = self.pending_events.pop_front() {
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.pending_events.push_front(ev);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.events_closed = true;
                    break;
                }
            }
        }
        !self.events_closed
    }

    // ----- commands -----------------------------------------------------

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Upsert(spec) => self.upsert(spec),
            Command::Remove(id) => self.remove(id),
            Command::Shutdown => {}
        }
    }

    fn remove(&mut self, id: Uuid) {
        let Some(slot) = self.table.find(&id) else {
            return;
        };
        self.wheel.cancel(slot);
        if self.table.slot(slot).state != SlotState::Probing {
            self.counters.not_probed = self.counters.not_probed.saturating_sub(1);
        }
        let in_flight = self.table.release(slot);
        self.counters.in_flight = self.counters.in_flight.saturating_sub(u64::from(in_flight));
    }

    fn upsert(&mut self, spec: MonitorSpec) {
        let source = spec.source.to_canonical();
        let destination = spec.destination.to_canonical();
        let mut first_sent = false;
        if let Some(slot) = self.table.find(&spec.id) {
            let s = self.table.slot(slot);
            if s.source == source && s.destination == destination {
                return;
            }
            first_sent = s.first_sent;
            self.remove(spec.id);
        }
        let now = self.now_tick().max(self.wheel.cursor());
        let verdict = self.check(source, destination, now);
        let state = match &verdict {
            Ok(()) => SlotState::Probing,
            Err(
                NotProbedReason::SourceNotLocal { .. } | NotProbedReason::SourceCheckFailed { .. },
            ) => SlotState::WaitingForSource,
            Err(_) => SlotState::Parked,
        };
        let slot = self.table.insert(spec.id, source, destination, state);
        self.table.slot_mut(slot).first_sent = first_sent;
        let phase = self.cadence.phase(&spec.id);
        let start = self.cadence.next_window_start(phase, now);
        match state {
            // A monitor probed before goes on from the window in progress,
            // with the probes still ahead of it (a node that takes it over
            // does not wait for the next window boundary).
            SlotState::Probing => match spec
                .resume
                .then(|| self.cadence.window_in_progress(phase, now))
                .flatten()
            {
                Some((current, k)) => {
                    self.table.begin_window(slot, current);
                    let s = self.table.slot_mut(slot);
                    s.window_start = current;
                    s.next = NextEvent::Probe(k);
                    self.wheel
                        .schedule(slot, current + self.cadence.probe_offset(k));
                }
                None => self.schedule_window(slot, start, NextEvent::Probe(0)),
            },
            SlotState::WaitingForSource => {
                self.counters.not_probed += 1;
                self.schedule_window(slot, start, NextEvent::Recheck);
            }
            SlotState::Parked | SlotState::Free => self.counters.not_probed += 1,
        }
        if let Err(reason) = verdict {
            tracing::info!(id = %spec.id, %reason, "monitor not probed");
            self.emit(ProbeEvent::NotProbed {
                id: spec.id,
                reason,
            });
        }
    }

    /// Whether a monitor from `source` to `destination` may be probed.
    fn check(
        &mut self,
        source: IpAddr,
        destination: IpAddr,
        now: u64,
    ) -> Result<(), NotProbedReason> {
        let family = Family::of(destination);
        if Family::of(source) != family {
            return Err(NotProbedReason::FamilyMismatch {
                source,
                destination,
            });
        }
        unusable(destination)?;
        unusable(source)?;
        if !self.cfg.allows(destination) {
            return Err(NotProbedReason::DestinationNotAllowed { destination });
        }
        if let Some(detail) = &self.unavailable[family.index()] {
            return Err(NotProbedReason::FamilyUnavailable {
                family,
                detail: detail.clone(),
            });
        }
        self.check_source(source, now)
    }

    /// Whether `source` is local, cached for one interval.
    fn check_source(&mut self, source: IpAddr, now: u64) -> Result<(), NotProbedReason> {
        let fresh = self
            .source_cache
            .get(&source)
            .filter(|(_, at)| now.saturating_sub(*at) < self.cadence.interval_ticks)
            .map(|(r, _)| r.clone());
        let result = match fresh {
            Some(r) => r,
            None => {
                let r = socket::source_is_local(source).map_err(|e| e.to_string());
                if self.source_cache.len() > 65_536 {
                    self.source_cache.clear();
                }
                self.source_cache.insert(source, (r.clone(), now));
                r
            }
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotProbedReason::SourceNotLocal { source }),
            Err(detail) => {
                if let Some(suppressed) = self.log.allow(LogKind::SourceCheck) {
                    tracing::warn!(%source, error = %detail, suppressed, "source address check failed");
                }
                Err(NotProbedReason::SourceCheckFailed { source, detail })
            }
        }
    }

    // ----- schedule -----------------------------------------------------

    fn run_due(&mut self, now: u64, sockets: &[Option<IcmpSocket>; 2]) {
        self.fire_due(now);
        self.flush_all(sockets);
    }

    /// Fire every wheel event due at or before `now`; probes to send are
    /// queued in `pending_sends`.
    fn fire_due(&mut self, now: u64) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.wheel.advance(now, &mut due);
        for &(slot, _) in &due {
            self.fire(slot, now);
        }
        self.due = due;
    }

    fn flush_all(&mut self, sockets: &[Option<IcmpSocket>; 2]) {
        for family in [Family::V4, Family::V6] {
            if let Some(sock) = &sockets[family.index()] {
                self.flush_sends(sock);
            } else {
                // Cannot happen (such monitors are parked), but never leave
                // probes recorded as sent.
                let pending = std::mem::take(&mut self.pending_sends[family.index()]);
                for &(slot, k) in &pending {
                    self.table.record_not_sent(slot, k);
                }
            }
        }
    }

    /// Schedule `next` (probe 0 or a source recheck) for the window that
    /// starts at `start`. The start is recorded now, so that lateness is
    /// judged against the intended time even when the wheel has to fire the
    /// event later than asked.
    fn schedule_window(&mut self, slot: u32, start: u64, next: NextEvent) {
        let s = self.table.slot_mut(slot);
        s.window_start = start;
        s.next = next;
        self.wheel.schedule(slot, start);
    }

    fn fire(&mut self, slot: u32, now: u64) {
        let s = self.table.slot(slot);
        match (s.state, s.next) {
            (SlotState::Probing, NextEvent::Probe(k)) => {
                let start = s.window_start;
                if k == 0 {
                    self.table.begin_window(slot, start);
                }
                // Judged against the intended time, not the wheel's: an event
                // pushed to a later tick after a stall must still be skipped.
                let intended = start + self.cadence.probe_offset(k);
                if self.cadence.too_late(intended, now) {
                    self.counters.skipped += 1;
                } else {
                    // Send lateness against the schedule, measured now (the
                    // batch leaves within this wake-up).
                    let due_at = self.epoch + Duration::from_nanos(intended * self.tick_ns);
                    let late_us =
                        Instant::now().saturating_duration_since(due_at).as_micros() as u64;
                    self.counters.lateness_sum_us += late_us;
                    self.counters.late_over_5ms += u64::from(late_us > 5_000);
                    self.counters.late_over_20ms += u64::from(late_us > 20_000);
                    let family = Family::of(self.table.slot(slot).destination);
                    self.pending_sends[family.index()].push((slot, k));
                }
                if k + 1 < self.cadence.count {
                    self.table.slot_mut(slot).next = NextEvent::Probe(k + 1);
                    self.wheel
                        .schedule(slot, start + self.cadence.probe_offset(k + 1));
                } else {
                    self.table.slot_mut(slot).next = NextEvent::Close;
                    self.wheel
                        .schedule(slot, now + self.cadence.timeout_ticks + 1);
                }
            }
            (SlotState::Probing, NextEvent::Close) => self.close(slot, now),
            (SlotState::WaitingForSource, NextEvent::Recheck) => self.recheck(slot, now),
            (state, next) => {
                // Inconsistent pairing; unreachable by construction. Keep the
                // monitor alive rather than lose it.
                tracing::error!(
                    ?state,
                    ?next,
                    "probe slot in an unexpected state; rescheduling"
                );
                self.schedule_next_window(slot, now);
            }
        }
    }

    fn close(&mut self, slot: u32, now: u64) {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        let closed = self.table.close_window(slot, &mut outcomes);
        let timed_out = closed.timed_out;
        let s = self.table.slot(slot);
        let (id, window_start, link, local_error, source) =
            (s.id, s.window_start, s.link, s.local_send_error, s.source);
        let window = stats::aggregate(id, self.tick_wall(window_start), closed.outcomes);
        self.outcomes = outcomes;
        self.counters.timeouts += u64::from(timed_out);
        self.counters.in_flight = self.counters.in_flight.saturating_sub(u64::from(timed_out));
        if let Some(w) = window {
            let up = w.received > 0;
            self.emit(ProbeEvent::Window(w));
            let new_link = if up { LinkHealth::Up } else { LinkHealth::Down };
            if new_link != link {
                self.table.slot_mut(slot).link = new_link;
                self.emit(ProbeEvent::LinkChanged {
                    id,
                    up,
                    at: SystemTime::now(),
                });
            }
        }
        if local_error {
            // A send failed for a local reason: the source may have gone.
            self.source_cache.remove(&source);
            if let Err(reason) = self.check_source(source, now) {
                self.table.slot_mut(slot).state = SlotState::WaitingForSource;
                self.counters.not_probed += 1;
                let start = self.cadence.next_window_start(self.cadence.phase(&id), now);
                self.schedule_window(slot, start, NextEvent::Recheck);
                tracing::warn!(%id, %reason, "monitor no longer probed");
                self.emit(ProbeEvent::NotProbed { id, reason });
                return;
            }
        }
        self.schedule_next_window(slot, now);
    }

    /// Schedule probe 0 of the window after the current one, skipping (and
    /// counting) whole windows that a stall has already made too late.
    fn schedule_next_window(&mut self, slot: u32, now: u64) {
        let s = self.table.slot(slot);
        let mut start = s.window_start + self.cadence.interval_ticks;
        if self.cadence.too_late(start, now) {
            let phase = self.cadence.phase(&s.id);
            let resumed = self.cadence.next_window_start(phase, now.saturating_sub(1));
            let windows = (resumed - start) / self.cadence.interval_ticks;
            self.counters.skipped += windows * u64::from(self.cadence.count);
            start = resumed;
        }
        self.schedule_window(slot, start, NextEvent::Probe(0));
    }

    fn recheck(&mut self, slot: u32, now: u64) {
        let source = self.table.slot(slot).source;
        match self.check_source(source, now) {
            Ok(()) => {
                tracing::info!(id = %self.table.slot(slot).id, %source, "source address is local now; probing");
                self.table.slot_mut(slot).state = SlotState::Probing;
                self.counters.not_probed = self.counters.not_probed.saturating_sub(1);
                self.table.slot_mut(slot).next = NextEvent::Probe(0);
                // The recheck ran at this window's start: probe right away.
                self.fire(slot, now);
            }
            Err(_) => {
                let id = self.table.slot(slot).id;
                let start = self.cadence.next_window_start(self.cadence.phase(&id), now);
                self.schedule_window(slot, start, NextEvent::Recheck);
            }
        }
    }

    // ----- send ---------------------------------------------------------

    fn flush_sends(&mut self, sock: &IcmpSocket) {
        let family = sock.family();
        let pending = std::mem::take(&mut self.pending_sends[family.index()]);
        for chunk in pending.chunks(SEND_BATCH) {
            let n = chunk.len();
            // Read the clock as late as possible: right before this batch.
            let sent_ns = socket::realtime_ns();
            let mut results = [SendResult::Failed(0); SEND_BATCH];
            {
                for (i, &(slot, k)) in chunk.iter().enumerate() {
                    let token: ProbeToken =
                        self.table.prepare_send(slot, k, self.engine_tag, sent_ns);
                    let seq = self.cadence.sequence(self.table.slot(slot).window_start, k);
                    let buf = &mut self.send_buf[i * self.packet_len..(i + 1) * self.packet_len];
                    codec::encode_echo_request(family, buf, self.ident, seq, &token);
                }
                let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
                let mut msgs = [OutMsg {
                    packet: &[],
                    destination: unspecified,
                    source: unspecified,
                }; SEND_BATCH];
                for (i, &(slot, _)) in chunk.iter().enumerate() {
                    let s = self.table.slot(slot);
                    msgs[i] = OutMsg {
                        packet: &self.send_buf[i * self.packet_len..(i + 1) * self.packet_len],
                        destination: s.destination,
                        source: s.source,
                    };
                }
                let mut start = 0;
                while start < n {
                    match sock.send_batch(&msgs[start..n]) {
                        Ok(0) => {
                            // Nothing accepted and no error: give up on the rest.
                            break;
                        }
                        Ok(m) => {
                            for r in &mut results[start..start + m] {
                                *r = SendResult::Sent;
                            }
                            start += m;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // Send buffer full: the rest of this batch is not sent.
                            let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
                            for r in &mut results[start..n] {
                                *r = SendResult::Failed(errno);
                            }
                            break;
                        }
                        Err(e) => {
                            results[start] = classify_send_error(&e);
                            start += 1;
                        }
                    }
                }
            }
            for (&(slot, k), &result) in chunk.iter().zip(&results[..n]) {
                self.after_send(slot, k, result);
            }
        }
        // Keep the allocation for the next tick.
        let mut pending = pending;
        pending.clear();
        self.pending_sends[family.index()] = pending;
    }

    fn after_send(&mut self, slot: u32, k: u16, result: SendResult) {
        match result {
            SendResult::Sent => {
                self.counters.sent += 1;
                self.counters.in_flight += 1;
                let s = self.table.slot_mut(slot);
                if !s.first_sent {
                    s.first_sent = true;
                    let id = s.id;
                    self.emit(ProbeEvent::FirstProbeSent { id });
                }
            }
            SendResult::Unreachable(errno) => {
                self.counters.send_errors += 1;
                self.table.record_unreachable(slot, k);
                self.log_send_error(slot, errno);
            }
            SendResult::Failed(errno) => {
                self.counters.send_errors += 1;
                self.table.record_not_sent(slot, k);
                if matches!(errno, libc::EINVAL | libc::EADDRNOTAVAIL) {
                    self.table.slot_mut(slot).local_send_error = true;
                }
                self.log_send_error(slot, errno);
            }
        }
    }

    fn log_send_error(&mut self, slot: u32, errno: i32) {
        if let Some(suppressed) = self.log.allow(LogKind::SendError) {
            let s = self.table.slot(slot);
            tracing::warn!(
                id = %s.id,
                source = %s.source,
                destination = %s.destination,
                error = %io::Error::from_raw_os_error(errno),
                suppressed,
                "probe send failed"
            );
        }
    }

    // ----- receive ------------------------------------------------------

    /// Read what the socket holds. True if it may hold more (the batch
    /// limit was hit).
    fn drain(&mut self, sock: &mut IcmpSocket) -> bool {
        for _ in 0..MAX_RX_BATCHES {
            match sock.recv_batch() {
                Ok(0) => return false,
                Ok(n) => {
                    for i in 0..n {
                        self.handle_packet(sock, i);
                    }
                    // A short batch emptied the queue: what arrives later
                    // waits for the next wake-up (with its kernel receive
                    // time), saving a call that would find nothing.
                    if n < socket::RECV_BATCH {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.counters.recv_errors += 1;
                    if let Some(suppressed) = self.log.allow(LogKind::RecvError) {
                        tracing::warn!(family = %sock.family(), error = %e, suppressed, "probe receive failed");
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Read the kernel's transmit timestamps off the error queue and record
    /// each with its probe (found by the token in the returned packet).
    fn drain_tx_timestamps(&mut self, sock: &mut IcmpSocket) {
        for _ in 0..MAX_RX_BATCHES {
            let n = match sock.recv_tx_timestamps() {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: empty. Anything else: the error queue holds
                // nothing we can use; the send-time fallback stays.
                Err(_) => return,
            };
            for i in 0..n {
                let p = sock.packet(i);
                let Some(tx_ns) = p.rx_ns else { continue };
                let token = codec::parse_sent_echo(sock.family(), p.data, self.packet_len)
                    .filter(|e| sock.kind() == SocketKind::Datagram || e.identifier == self.ident)
                    .and_then(|e| ProbeToken::read(e.payload))
                    .filter(|t| t.engine_tag == self.engine_tag);
                if let Some(token) = token
                    && self.table.record_tx(&token, tx_ns, self.timeout_ns)
                {
                    self.counters.tx_timestamps += 1;
                }
            }
            if n < socket::RECV_BATCH {
                return;
            }
        }
    }

    fn handle_packet(&mut self, sock: &IcmpSocket, i: usize) {
        let p = sock.packet(i);
        if p.truncated {
            self.counters.malformed += 1;
            return;
        }
        let parsed = match (sock.family(), sock.kind()) {
            (Family::V4, SocketKind::Raw) => codec::parse_ipv4_packet(p.data),
            (Family::V4, SocketKind::Datagram) => codec::parse_icmp(Family::V4, p.data, true),
            (Family::V6, _) => codec::parse_icmp(Family::V6, p.data, false),
        };
        let reply = match parsed {
            Ok(r) => r,
            Err(ParseError::NotEchoReply(_)) => {
                self.counters.unmatched += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        // Raw sockets see every echo reply of the namespace; the kernel
        // sets the identifier of datagram sockets itself.
        if sock.kind() == SocketKind::Raw && reply.identifier != self.ident {
            self.counters.unmatched += 1;
            return;
        }
        let Some(token) = ProbeToken::read(reply.payload) else {
            self.counters.unmatched += 1;
            return;
        };
        if token.engine_tag != self.engine_tag {
            self.counters.unmatched += 1;
            return;
        }
        let Some(from) = p.from else {
            self.counters.unmatched += 1;
            return;
        };
        let rx_ns = match p.rx_ns {
            Some(ns) => ns,
            None => {
                self.counters.rx_timestamp_missing += 1;
                socket::realtime_ns()
            }
        };
        self.on_reply(&token, from.to_canonical(), reply.sequence, rx_ns);
    }

    /// Credit (or count) a reply that carries one of our tokens.
    fn on_reply(&mut self, token: &ProbeToken, from: IpAddr, sequence: u16, rx_ns: u64) {
        match self
            .table
            .match_reply(token, from, sequence, rx_ns, self.timeout_ns, &self.cadence)
        {
            ReplyMatch::Matched { kernel_tx, .. } => {
                self.counters.received += 1;
                self.counters.tx_timestamp_missing += u64::from(!kernel_tx);
                self.counters.in_flight = self.counters.in_flight.saturating_sub(1);
            }
            ReplyMatch::Duplicate => self.counters.duplicates += 1,
            ReplyMatch::Late => self.counters.late += 1,
            ReplyMatch::Unmatched => self.counters.unmatched += 1,
        }
    }
}

/// Addresses that cannot be probed from or to.
fn unusable(addr: IpAddr) -> Result<(), NotProbedReason> {
    let why = match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("unspecified address"),
        IpAddr::V4(a) if a.is_multicast() => Some("multicast address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("broadcast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("multicast address"),
        IpAddr::V6(a) if a.is_unicast_link_local() => {
            Some("IPv6 link-local addresses need an interface, which monitors do not name")
        }
        _ => None,
    };
    match why {
        Some(why) => Err(NotProbedReason::UnusableAddress { address: addr, why }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! The engine's scheduling and reporting logic, driven tick by tick
    //! without sockets: sends are simulated, time is a tick counter.

    use super::*;

    /// 1 s window (500 ticks of 2 ms), 3 probes, 200 ms timeout (100
    /// ticks), 50 ms max lateness (25 ticks).
    fn core() -> (Core, mpsc::Receiver<ProbeEvent>) {
        let cfg = EngineConfig {
            interval: Duration::from_secs(1),
            count: 3,
            timeout: Duration::from_millis(200),
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            tick: Duration::from_millis(2),
            ..EngineConfig::default()
        };
        let (tx, rx) = mpsc::channel(1 << 20);
        (Core::new(&cfg, [None, None], tx, Arc::default()), rx)
    }

    fn spec(i: u32) -> MonitorSpec {
        MonitorSpec {
            id: Uuid::from_u128(u128::from(i) + 1),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            destination: IpAddr::V4(Ipv4Addr::from(0x7f01_0000 + i)),
            resume: false,
        }
    }

    /// Pretend every queued probe left; returns their tokens.
    fn send_pending(core: &mut Core) -> Vec<ProbeToken> {
        let sent_ns = socket::realtime_ns();
        let mut tokens = Vec::new();
        for family in 0..2 {
            for (slot, k) in std::mem::take(&mut core.pending_sends[family]) {
                tokens.push(core.table.prepare_send(slot, k, core.engine_tag, sent_ns));
                core.after_send(slot, k, SendResult::Sent);
            }
        }
        tokens
    }

    fn drain(rx: &mut mpsc::Receiver<ProbeEvent>) -> Vec<ProbeEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn upsert_schedules_within_one_window_and_remove_cancels_at_once() {
        let (mut core, _rx) = core();
        core.upsert(spec(0));
        let slot = core.table.find(&spec(0).id).unwrap();
        let due = core.wheel.due(slot).unwrap();
        assert!(
            due > core.wheel.cursor() && due <= core.now_tick() + 500,
            "{due}"
        );
        // The same spec again changes nothing.
        core.upsert(spec(0));
        assert_eq!(core.wheel.due(slot), Some(due));
        core.remove(spec(0).id);
        assert!(core.wheel.is_empty());
        assert_eq!(core.table.len(), 0);
        // Nothing fires any more.
        core.fire_due(due + 1000);
        assert!(core.pending_sends.iter().all(Vec::is_empty));
    }

    #[test]
    fn changing_a_monitor_restarts_it_without_a_second_first_probe_event() {
        let (mut core, mut rx) = core();
        core.upsert(spec(0));
        let mut t = core.wheel.cursor();
        while core.counters.sent == 0 {
            t += 1;
            core.fire_due(t);
            send_pending(&mut core);
        }
        let moved = MonitorSpec {
            destination: "127.9.9.9".parse().unwrap(),
            ..spec(0)
        };
        core.upsert(moved);
        assert_eq!(core.counters.in_flight, 0, "old probe no longer awaited");
        for _ in 0..1000 {
            t += 1;
            core.fire_due(t);
            send_pending(&mut core);
        }
        let first_sent = drain(&mut rx)
            .into_iter()
            .filter(|e| matches!(e, ProbeEvent::FirstProbeSent { .. }))
            .count();
        assert_eq!(first_sent, 1);
    }

    #[test]
    fn probes_spread_over_ticks_and_a_stall_skips_instead_of_bursting() {
        let (mut core, mut rx) = core();
        for i in 0..1000 {
            core.upsert(spec(i));
        }
        let start = core.wheel.cursor();
        // Two windows of normal running: 3 000 probes per 500 ticks.
        let mut max_per_tick = 0;
        for t in start + 1..=start + 1000 {
            core.fire_due(t);
            max_per_tick = max_per_tick.max(send_pending(&mut core).len());
        }
        assert!(max_per_tick <= 30, "burst of {max_per_tick} in one tick");
        assert_eq!(core.counters.skipped, 0);
        let sent_before = core.counters.sent;
        assert!(sent_before >= 4_000, "{sent_before}");

        // The process stalls for 3 s (1 500 ticks), then runs again.
        let resume = start + 2_500;
        let mut max_after = 0;
        for t in resume..resume + 1_000 {
            core.fire_due(t);
            max_after = max_after.max(send_pending(&mut core).len());
        }
        assert!(max_after <= 30, "burst of {max_after} after the stall");
        // About three windows per monitor fell into the stall.
        assert!(core.counters.skipped >= 6_000, "{}", core.counters.skipped);
        assert!(core.counters.sent - sent_before >= 4_000, "probing resumed");
        // Every window reported had probes; none was invented for the stall.
        for ev in drain(&mut rx) {
            if let ProbeEvent::Window(w) = ev {
                assert!(w.sent > 0, "{w:?}");
            }
        }
    }

    #[test]
    fn link_goes_down_after_a_silent_window_and_up_after_a_reply() {
        let (mut core, mut rx) = core();
        core.upsert(spec(0));
        let id = spec(0).id;
        let destination = spec(0).destination;
        let mut t = core.wheel.cursor();
        let mut run_window = |core: &mut Core, answer: bool| -> Vec<ProbeEvent> {
            let mut events = Vec::new();
            while !events.iter().any(|e| matches!(e, ProbeEvent::Window(_))) {
                t += 1;
                core.fire_due(t);
                for token in send_pending(core) {
                    if answer && token.probe == 1 {
                        let slot = core.table.slot(token.slot);
                        let seq = core.cadence.sequence(slot.window_start, token.probe);
                        let (received, duplicates) =
                            (core.counters.received, core.counters.duplicates);
                        core.on_reply(&token, destination, seq, token.sent_ns + 40_000);
                        assert_eq!(core.counters.received, received + 1);
                        // The same reply again is a duplicate.
                        core.on_reply(&token, destination, seq, token.sent_ns + 50_000);
                        assert_eq!(core.counters.duplicates, duplicates + 1);
                    }
                }
                events.extend(drain(&mut rx));
            }
            events
        };
        let first = run_window(&mut core, false);
        assert!(matches!(first[0], ProbeEvent::FirstProbeSent { id: i } if i == id));
        let window = |evs: &[ProbeEvent]| {
            evs.iter()
                .find_map(|e| match e {
                    ProbeEvent::Window(w) => Some(w.clone()),
                    _ => None,
                })
                .unwrap()
        };
        let w = window(&first);
        assert_eq!((w.sent, w.received, w.loss_pct), (3, 0, 100.0));
        assert!(
            first
                .iter()
                .any(|e| matches!(e, ProbeEvent::LinkChanged { up: false, .. }))
        );
        assert_eq!(core.counters.timeouts, 3);

        let second = run_window(&mut core, true);
        let w = window(&second);
        assert_eq!((w.sent, w.received), (3, 1));
        assert_eq!(w.rtt_min_ms, Some(0.04));
        assert!(
            second
                .iter()
                .any(|e| matches!(e, ProbeEvent::LinkChanged { up: true, .. }))
        );

        // Another answered window: no change, no event.
        let third = run_window(&mut core, true);
        assert!(
            !third
                .iter()
                .any(|e| matches!(e, ProbeEvent::LinkChanged { .. }))
        );
        assert_eq!(core.counters.in_flight, 0);
    }

    #[test]
    fn not_probed_monitors_are_not_scheduled_except_for_source_rechecks() {
        let (mut core, mut rx) = core();
        let outside = MonitorSpec {
            destination: "198.18.0.1".parse().unwrap(),
            ..spec(1)
        };
        let not_local = MonitorSpec {
            source: "192.0.2.1".parse().unwrap(),
            ..spec(2)
        };
        let multicast = MonitorSpec {
            destination: "224.0.0.1".parse().unwrap(),
            ..spec(3)
        };
        for s in [outside, not_local, multicast] {
            core.upsert(s);
        }
        let events = drain(&mut rx);
        assert_eq!(events.len(), 3, "{events:#?}");
        assert_eq!(core.counters.not_probed, 3);
        // Only the source recheck is scheduled.
        assert_eq!(core.wheel.len(), 1);
        let t = core.wheel.cursor() + 2_000;
        core.fire_due(t);
        assert!(core.pending_sends.iter().all(Vec::is_empty));
        assert!(drain(&mut rx).is_empty(), "no repeated NotProbed");
        assert_eq!(core.wheel.len(), 1);
        core.remove(not_local.id);
        assert!(core.wheel.is_empty());
        assert_eq!(core.counters.not_probed, 2);
    }

    #[test]
    fn send_errors_are_classified() {
        let e = |n| classify_send_error(&io::Error::from_raw_os_error(n));
        assert_eq!(
            e(libc::ENETUNREACH),
            SendResult::Unreachable(libc::ENETUNREACH)
        );
        assert_eq!(e(libc::EPERM), SendResult::Unreachable(libc::EPERM));
        assert_eq!(e(libc::ENOBUFS), SendResult::Failed(libc::ENOBUFS));
        assert_eq!(e(libc::EINVAL), SendResult::Failed(libc::EINVAL));
    }
}
