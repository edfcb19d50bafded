//! Test hosts for vpnmon: one network namespace per lab, in which vpnmon (or a
//! test) runs and where every address of 198.18.0.0/15 answers ICMP echo.
//!
//! Design choices:
//!
//! - **One namespace, no veth.** `ip route add local 198.18.0.0/15 dev lo`
//!   inside the namespace makes every lab address local, so gateway EIPs
//!   (probe sources) and customer gateways (targets) all exist at once and
//!   100 000 targets cost nothing to set up. The host's network is never
//!   touched, and no traffic leaves the namespace.
//! - **Impairments per target group.** A group is a CIDR inside the lab
//!   range; an address belongs to the most specific group that contains it
//!   (longest prefix wins, as in routing), and only that group's settings
//!   apply to it. Loss is nftables in the namespace (`numgen inc` for exact
//!   loss, `numgen random` for random loss); every group also counts the echo
//!   requests sent to it, so a test can see what reached the "wire".
//! - **Delay without netem.** These machines have no `tc netem`: the kernel's
//!   echo replies are switched off in the namespace and a userspace
//!   [`responder`] answers every echo request, after the delay of the
//!   request's group. It runs as its own process (`vpnmon lab responder`,
//!   started with `ip netns exec`), so a lab outlives the command that set it
//!   up and `down` stops exactly the process it recorded (PID and start
//!   time) in the lab's state file.
//! - **Pure parts apart from I/O.** Names, groups, the nftables ruleset, the
//!   responder's arguments and the echo codec are pure functions with unit
//!   tests; [`Lab`] only runs commands and processes.
//! - **The command line lives here too** ([`cli`]): the binary mounts
//!   [`cli::LabCmd`] as `vpnmon lab` and calls [`cli::run`], so flags and
//!   their parsing sit next to what they drive.
//!
//! A test of vpnmon against a lab (as root; [`LabError::NotPermitted`]
//! otherwise, which a test reports as its reason to skip):
//!
//! ```no_run
//! use lab::{LabConfig, LossMode, TargetGroup};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), lab::LabError> {
//! // In a test binary current_exe() is not vpnmon, so name the responder:
//! // in vpnmon's own tests, env!("CARGO_BIN_EXE_vpnmon").
//! let vpnmon = "target/debug/vpnmon";
//! let mut lab = LabConfig::new("vpnmon-t1")?
//!     .responder_command(vpnmon, ["lab", "responder"])
//!     .responder_stop_after(Duration::from_secs(300))
//!     .up()?; // removed again when `lab` is dropped
//! let lossy = TargetGroup::parse("198.18.1.0/24")?;
//! lab.set_loss(lossy, 30, LossMode::Exact)?;
//! let slow = TargetGroup::parse("198.18.2.0/24")?;
//! lab.set_delay(slow, Duration::from_millis(20), Duration::from_millis(5))?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         lab.enter_current_thread()?;
//!         let rt = tokio::runtime::Runtime::new().expect("runtime"); // workers start in the lab
//!         rt.block_on(async { /* start vpnmon, probe 198.19.255.1 -> 198.18.1.1 ... */ });
//!         Ok::<_, lab::LabError>(())
//!     });
//! });
//! lab.stop_responder()?; // every target goes silent: links go down
//! lab.start_responder()?; // and come back
//! # Ok(()) }
//! ```

mod error;
mod group;
mod lab;
mod name;
mod netns;
mod nft;
mod process;
mod state;

pub mod cli;
pub mod echo;
pub mod responder;
pub mod userns;

pub use error::LabError;
pub use group::{
    Delay, GroupCounters, Impairments, LAB_RANGE, Loss, LossMode, TargetGroup, parse_millis,
};
pub use lab::{Lab, LabConfig, LabStatus, Replies, ResponderStatus};
pub use name::LabName;
