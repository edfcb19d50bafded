//! [`Lab`]: building, changing and removing one lab.

use crate::LabError;
use crate::group::{
    Delay, GroupCounters, Groups, Impairments, LAB_RANGE, Loss, LossMode, TargetGroup,
};
use crate::name::LabName;
use crate::netns::{self, Tool};
use crate::nft;
use crate::process::{self, ProcessId};
use crate::responder::{READY_LINE, ResponderConfig};
use crate::state::{self, LabState, ResponderRecord};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Default directory of the labs' state and responder log files.
pub const DEFAULT_STATE_DIR: &str = "/run/vpnmon-lab";
/// How long a starting responder may take to open its sockets.
const RESPONDER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a responder gets to exit on SIGTERM before SIGKILL.
const RESPONDER_STOP_GRACE: Duration = Duration::from_secs(2);

/// Who answers the echo requests sent to a lab's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replies {
    /// The kernel (as after `up`): no delay, loss still applies.
    Kernel,
    /// The userspace responder, with each group's delay.
    Responder,
    /// Nobody: kernel replies are off and the responder is stopped, so every
    /// target is silent (a link that went down).
    Silent,
}

/// How to build or reach a lab. [`Lab::up`] and [`Lab::open`] use the
/// defaults; tests change the responder command and add a safety cap.
#[derive(Debug, Clone)]
pub struct LabConfig {
    name: LabName,
    responder_program: Option<PathBuf>,
    responder_args: Vec<OsString>,
    responder_stop_after: Option<Duration>,
    state_dir: PathBuf,
}

impl LabConfig {
    /// Defaults: state in `/run/vpnmon-lab`, and the responder is this very
    /// executable run as `<exe> lab responder ...` (the `vpnmon` binary).
    pub fn new(name: &str) -> Result<Self, LabError> {
        Ok(LabConfig {
            name: LabName::parse(name)?,
            responder_program: None,
            responder_args: vec!["lab".into(), "responder".into()],
            responder_stop_after: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        })
    }

    /// Runs the responder as `program leading_args... <responder args>`
    /// (for example the `vpnmon-lab-responder` binary of this crate, with
    /// no leading arguments).
    pub fn responder_command<I, S>(mut self, program: impl Into<PathBuf>, leading_args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.responder_program = Some(program.into());
        self.responder_args = leading_args.into_iter().map(Into::into).collect();
        self
    }

    /// Responders started through this configuration exit after `d`
    /// whatever happens, so a test that dies leaves no process for long.
    pub fn responder_stop_after(mut self, d: Duration) -> Self {
        self.responder_stop_after = Some(d);
        self
    }

    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    pub fn name(&self) -> &LabName {
        &self.name
    }

    fn netns_path(&self) -> PathBuf {
        netns::netns_path(self.name.as_str())
    }

    /// Creates the lab: `ip netns add NAME`, loopback up, `local
    /// 198.18.0.0/15 dev lo`, kernel echo replies on (not rate-limited), and
    /// unprivileged ICMP sockets allowed for every group id. The returned
    /// [`Lab`] removes it when dropped.
    pub fn up(self) -> Result<Lab, LabError> {
        let name = self.name.as_str().to_owned();
        if self.netns_path().exists() {
            let ours = state::load(&self.state_dir, &name)?.is_some();
            return Err(LabError::AlreadyExists { name, ours });
        }
        if netns::has_cap_sys_admin() == Some(false) {
            return Err(LabError::NotPermitted(
                "creating a network namespace needs CAP_SYS_ADMIN (run as root)".into(),
            ));
        }
        match netns::run(Tool::Ip, &["netns", "add", &name], None) {
            Ok(_) => {}
            Err(LabError::Command { stderr, .. }) if netns::is_permission_failure(&stderr) => {
                return Err(LabError::NotPermitted(format!(
                    "ip netns add {name}: {stderr}"
                )));
            }
            Err(e) => return Err(e),
        }
        // From here on, dropping `lab` on an error removes the namespace.
        let mut lab = Lab {
            state: LabState::new(&name),
            config: self,
            child: None,
            owned: true,
        };
        state::save(&lab.config.state_dir, &lab.state)?;
        netns::run(Tool::Ip, &["-n", &name, "link", "set", "lo", "up"], None)?;
        let range = LAB_RANGE.to_string();
        netns::run(
            Tool::Ip,
            &["-n", &name, "route", "add", "local", &range, "dev", "lo"],
            None,
        )?;
        lab.in_lab(|| {
            netns::write_sysctl("net.ipv4.icmp_echo_ignore_all", "0")?;
            netns::write_sysctl("net.ipv4.icmp_ratelimit", "0")?;
            // Every group id; in a user namespace only the ids it maps are
            // valid (the kernel refuses the rest with EINVAL).
            netns::write_sysctl("net.ipv4.ping_group_range", "0 2147483647").or_else(|e| {
                match netns::mapped_gid_range() {
                    Some((lo, hi)) => {
                        netns::write_sysctl("net.ipv4.ping_group_range", &format!("{lo} {hi}"))
                    }
                    None => Err(e),
                }
            })
        })?;
        lab.state.replies = Replies::Kernel;
        Ok(lab)
    }

    /// Attaches to a lab that is up (made by this or another process). The
    /// returned [`Lab`] leaves the lab up when dropped.
    pub fn open(self) -> Result<Lab, LabError> {
        let name = self.name.as_str().to_owned();
        let exists = self.netns_path().exists();
        match state::load(&self.state_dir, &name)? {
            Some(state) if exists => Ok(Lab {
                state,
                config: self,
                child: None,
                owned: false,
            }),
            None if exists => Err(LabError::NotALab(name)),
            _ => Err(LabError::NotFound(name)),
        }
    }

    /// Removes the lab whatever state it is in: stops the recorded
    /// responder (only if PID and start time still match), deletes the
    /// namespace and the state file. Returns `false` if there was nothing to
    /// remove. A namespace without a state file is not a lab and is left alone.
    pub fn down(&self) -> Result<bool, LabError> {
        let name = self.name.as_str();
        let exists = self.netns_path().exists();
        let Some(state) = state::load(&self.state_dir, name)? else {
            return if exists {
                Err(LabError::NotALab(name.to_owned()))
            } else {
                Ok(false)
            };
        };
        if let Some(r) = &state.responder {
            r.process.terminate(RESPONDER_STOP_GRACE)?;
        }
        if exists {
            netns::run(Tool::Ip, &["netns", "del", name], None)?;
        }
        state::remove(&self.state_dir, name)?;
        Ok(true)
    }
}

/// One lab: a network namespace in which every address of 198.18.0.0/15
/// answers echo requests, with impairments per target group.
///
/// All changes are recorded in the lab's state file, so a lab built by one
/// process can be changed and removed by another ([`Lab::open`]). A handle
/// works from what it last read or wrote: change a lab through one handle
/// at a time.
///
/// Any change to the groups reloads the nftables table (restarting every
/// exact-loss sequence and counter) and, while the responder answers and
/// the change alters some address's delay, restarts the responder (replies
/// in flight are lost). Set impairments up before measuring.
#[derive(Debug)]
pub struct Lab {
    config: LabConfig,
    state: LabState,
    /// The responder, when this handle started it (so it can be reaped).
    child: Option<Child>,
    /// Tear the lab down on drop.
    owned: bool,
}

/// A snapshot of a lab, as `vpnmon lab status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabStatus {
    pub name: String,
    pub netns: PathBuf,
    pub state_file: PathBuf,
    pub replies: Replies,
    pub responder: Option<ResponderStatus>,
    /// Kernel echo replies switched off (`icmp_echo_ignore_all=1`).
    pub kernel_replies_off: bool,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponderStatus {
    pub pid: u32,
    pub running: bool,
    pub log: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    pub targets: TargetGroup,
    #[serde(flatten)]
    pub impairments: Impairments,
    pub counters: GroupCounters,
}

impl Lab {
    /// Creates lab `name` with the default [`LabConfig`]; see [`LabConfig::up`].
    pub fn up(name: &str) -> Result<Lab, LabError> {
        LabConfig::new(name)?.up()
    }

    /// Attaches to lab `name`; see [`LabConfig::open`].
    pub fn open(name: &str) -> Result<Lab, LabError> {
        LabConfig::new(name)?.open()
    }

    pub fn name(&self) -> &LabName {
        &self.config.name
    }

    /// `/run/netns/NAME`: for `setns`, `ip netns exec` or `nsenter --net=`.
    pub fn netns_path(&self) -> PathBuf {
        self.config.netns_path()
    }

    pub fn replies(&self) -> Replies {
        self.state.replies
    }

    /// The groups and their impairments, ordered by network.
    pub fn groups(&self) -> Vec<(TargetGroup, Impairments)> {
        self.state.groups().into_iter().collect()
    }

    /// PID of the responder this lab recorded, if one should be running.
    pub fn responder_pid(&self) -> Option<u32> {
        self.state.responder.as_ref().map(|r| r.process.pid)
    }

    /// Drops `pct` % of the echo requests sent to `targets` (0 removes the
    /// loss). Exact loss drops exactly `pct` of every 100 consecutive
    /// requests to the group, spread evenly; random loss drops each with
    /// probability `pct`/100. Loss applies before anything answers, whoever
    /// answers. Changing any group restarts every group's exact-loss
    /// sequence and counters.
    pub fn set_loss(
        &mut self,
        targets: TargetGroup,
        pct: u8,
        mode: LossMode,
    ) -> Result<(), LabError> {
        let loss = Loss::new(pct, mode)?;
        self.change(targets, |i| i.loss = (pct > 0).then_some(loss))
    }

    /// Delays the replies from `targets` by `delay` ± `jitter` (uniform);
    /// zero removes the delay. Replies then come from the userspace
    /// responder: the first delay switches the kernel's replies off and
    /// starts it, later changes restart it (replies in flight are lost). A
    /// lab whose responder was stopped stays silent until
    /// [`Lab::start_responder`].
    pub fn set_delay(
        &mut self,
        targets: TargetGroup,
        delay: Duration,
        jitter: Duration,
    ) -> Result<(), LabError> {
        let d = Delay::new(delay, jitter)?;
        self.change(targets, |i| i.delay = (!d.is_zero()).then_some(d))
    }

    /// Makes `targets` a group without impairments, so that its echo
    /// requests are counted ([`Lab::counters`]) and it is exempt from the
    /// impairments of any larger group around it.
    pub fn watch(&mut self, targets: TargetGroup) -> Result<(), LabError> {
        self.change(targets, |_| {})
    }

    /// Removes the group `targets` and its impairments.
    pub fn clear(&mut self, targets: TargetGroup) -> Result<(), LabError> {
        let mut groups = self.state.groups();
        if groups.remove(&targets).is_some() {
            self.apply(groups)?;
        }
        Ok(())
    }

    fn change(
        &mut self,
        targets: TargetGroup,
        f: impl FnOnce(&mut Impairments),
    ) -> Result<(), LabError> {
        let mut groups = self.state.groups();
        f(groups.entry(targets).or_default());
        self.apply(groups)
    }

    fn apply(&mut self, groups: Groups) -> Result<(), LabError> {
        let had_groups = !self.state.groups.is_empty();
        if had_groups || !groups.is_empty() {
            let script = nft::render(&groups);
            self.in_lab(|| netns::run(Tool::Nft, &["-f", "-"], Some(&script)).map(drop))?;
        }
        self.state.set_groups(&groups);
        let wants_delay = groups.values().any(|i| i.delay.is_some());
        match self.state.replies {
            Replies::Kernel if wants_delay => self.start_responder()?,
            Replies::Responder => {
                let running_args = self.state.responder.as_ref().map(|r| &r.args);
                if running_args != Some(&self.responder_config().to_args()) {
                    self.start_responder()?;
                }
            }
            Replies::Kernel | Replies::Silent => {}
        }
        self.save()
    }

    /// Echo requests sent to `targets` (a group) since the groups last changed.
    pub fn counters(&self, targets: TargetGroup) -> Result<GroupCounters, LabError> {
        self.all_counters()?
            .into_iter()
            .find(|(g, _)| *g == targets)
            .map(|(_, c)| c)
            .ok_or_else(|| LabError::InvalidTargets {
                cidr: targets.to_string(),
                reason: "not a group of this lab".into(),
            })
    }

    /// Counters of every group, ordered by network.
    pub fn all_counters(&self) -> Result<Vec<(TargetGroup, GroupCounters)>, LabError> {
        let groups = self.state.groups();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let json = self.in_lab(|| {
            netns::run(
                Tool::Nft,
                &["-j", "list", "counters", "table", "inet", nft::TABLE],
                None,
            )
        })?;
        nft::parse_counters(&json, groups.into_keys())
    }

    /// Stops the responder and leaves kernel replies off: every target goes
    /// silent, as when a link goes down.
    pub fn stop_responder(&mut self) -> Result<(), LabError> {
        self.in_lab(|| netns::write_sysctl("net.ipv4.icmp_echo_ignore_all", "1"))?;
        self.kill_responder()?;
        self.state.replies = Replies::Silent;
        self.save()
    }

    /// (Re)starts the responder with the current groups' delays (addresses
    /// without one are answered at once); kernel replies are switched off
    /// first. Returns once the responder is listening.
    pub fn start_responder(&mut self) -> Result<(), LabError> {
        self.in_lab(|| netns::write_sysctl("net.ipv4.icmp_echo_ignore_all", "1"))?;
        self.kill_responder()?;
        self.state.replies = Replies::Silent;
        self.save()?;
        let config = self.responder_config();
        let args = config.to_args();
        let (child, process) = self.spawn_responder(&args)?;
        self.child = Some(child);
        self.state.responder = Some(ResponderRecord { process, args });
        self.state.replies = Replies::Responder;
        self.save()
    }

    /// Stops the responder, if any, and lets the kernel answer again
    /// (without delay; loss still applies).
    pub fn use_kernel_replies(&mut self) -> Result<(), LabError> {
        self.kill_responder()?;
        self.in_lab(|| netns::write_sysctl("net.ipv4.icmp_echo_ignore_all", "0"))?;
        self.state.replies = Replies::Kernel;
        self.save()
    }

    /// Moves the calling thread into the lab for good. Threads it creates
    /// afterwards start in the lab too, so a tokio runtime built on this
    /// thread has all its workers there. Use a dedicated thread.
    pub fn enter_current_thread(&self) -> Result<(), LabError> {
        netns::enter(&self.netns_path())
    }

    /// Runs `f` on a new thread inside the lab and returns its result.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        self.in_lab(|| Ok(f()))
    }

    /// `ip netns exec NAME program`, to add arguments to and run.
    pub fn command(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.config.name.as_str()])
            .arg(program.into());
        cmd
    }

    pub fn status(&self) -> Result<LabStatus, LabError> {
        let counters = self.all_counters()?;
        let groups = self
            .state
            .groups()
            .into_iter()
            .map(|(targets, impairments)| GroupStatus {
                targets,
                impairments,
                counters: counters
                    .iter()
                    .find(|(g, _)| *g == targets)
                    .map_or_else(GroupCounters::default, |(_, c)| *c),
            })
            .collect();
        let kernel_replies_off =
            self.in_lab(|| netns::read_sysctl("net.ipv4.icmp_echo_ignore_all"))? == "1";
        Ok(LabStatus {
            name: self.config.name.to_string(),
            netns: self.netns_path(),
            state_file: state::path(&self.config.state_dir, self.config.name.as_str()),
            replies: self.state.replies,
            responder: self.state.responder.as_ref().map(|r| ResponderStatus {
                pid: r.process.pid,
                running: r.process.is_running(),
                log: state::log_path(&self.config.state_dir, self.config.name.as_str()),
            }),
            kernel_replies_off,
            groups,
        })
    }

    /// Removes the lab now, reporting errors (dropping does it silently).
    pub fn down(mut self) -> Result<(), LabError> {
        self.owned = false;
        self.teardown()
    }

    /// Leaves the lab up after this handle is gone (`vpnmon lab up`).
    pub fn detach(mut self) {
        self.owned = false;
    }

    fn teardown(&mut self) -> Result<(), LabError> {
        let stopped = self.kill_responder();
        let removed = self.config.down();
        stopped.and(removed).map(drop)
    }

    fn responder_config(&self) -> ResponderConfig {
        let delays = self
            .state
            .groups()
            .into_iter()
            .map(|(g, i)| (g, i.delay.unwrap_or(Delay::ZERO)));
        ResponderConfig::new(delays).with_stop_after(self.config.responder_stop_after)
    }

    fn kill_responder(&mut self) -> Result<(), LabError> {
        let result = match (self.child.as_mut(), &self.state.responder) {
            (Some(child), _) => process::stop_child(child, RESPONDER_STOP_GRACE),
            (None, Some(r)) => r.process.terminate(RESPONDER_STOP_GRACE),
            (None, None) => Ok(()),
        };
        if result.is_ok() {
            self.child = None;
            self.state.responder = None;
        }
        result
    }

    fn spawn_responder(&self, args: &[String]) -> Result<(Child, ProcessId), LabError> {
        let program = match &self.config.responder_program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| LabError::io("finding the vpnmon executable", e))?,
        };
        std::fs::create_dir_all(&self.config.state_dir)
            .map_err(|e| LabError::io(format!("create {}", self.config.state_dir.display()), e))?;
        let log_path = state::log_path(&self.config.state_dir, self.config.name.as_str());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| LabError::io(format!("open {}", log_path.display()), e))?;
        let log_start = log
            .metadata()
            .map_err(|e| LabError::io(format!("stat {}", log_path.display()), e))?
            .len();
        let mut cmd = Command::new(&program);
        cmd.args(&self.config.responder_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the command that
            // started it must not stop it.
            .process_group(0);
        let mut child = self.in_lab(|| {
            cmd.spawn()
                .map_err(|e| LabError::io(format!("starting {}", program.display()), e))
        })?;
        let stdout = child.stdout.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = stdout.map(|s| BufReader::new(s).read_line(&mut line));
            let _ = tx.send(matches!(read, Some(Ok(_))) && line.trim() == READY_LINE);
        });
        let ready = rx.recv_timeout(RESPONDER_START_TIMEOUT).unwrap_or(false);
        if !ready {
            let _ = process::stop_child(&mut child, Duration::ZERO);
            return Err(LabError::Responder(format!(
                "`{} ...` did not start: {}",
                program.display(),
                log_tail(&log_path, log_start)
            )));
        }
        let process = ProcessId::of(child.id())?;
        Ok((child, process))
    }

    fn in_lab<T: Send>(
        &self,
        f: impl FnOnce() -> Result<T, LabError> + Send,
    ) -> Result<T, LabError> {
        netns::in_netns(&self.netns_path(), f)
    }

    fn save(&self) -> Result<(), LabError> {
        state::save(&self.config.state_dir, &self.state)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.teardown()
        {
            eprintln!("lab {}: teardown failed: {e}", self.config.name);
        }
    }
}

/// What a failed responder wrote to its log since `from` (at most 2 KB).
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.take(2048).read_to_string(&mut text);
    }
    match text.trim() {
        "" => format!("no output (log: {})", path.display()),
        t => t.to_owned(),
    }
}
