//! `vpnmon lab ...`: the command line of this crate. A lab is one
//! namespace in which every address of 198.18.0.0/15 answers ping; vpnmon
//! runs inside it (`ip netns exec NAME vpnmon serve ...`), probing from lab
//! addresses (the gateways' EIPs) to lab addresses (the customer gateways),
//! with loss and delay per target group.
//!
//! Mounted by the binary as `vpnmon lab` ([`LabCmd`] is its subcommand):
//! the delay responder is started as `<this executable> lab responder ...`,
//! so the subcommand must keep that name.

use crate::{Lab, LabConfig, LabError, LabStatus, LossMode, Replies, TargetGroup};
use clap::{Args, Subcommand};
use std::ffi::OsString;
use std::time::Duration;

/// Why a `vpnmon lab` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A lab operation, with what the command was doing.
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: LabError,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The blocking task running the command did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

type Result<T, E = CliError> = std::result::Result<T, E>;

/// Names what a lab operation was for, like `anyhow::Context`.
fn step<T>(r: Result<T, LabError>, what: impl FnOnce() -> String) -> Result<T> {
    r.map_err(|source| CliError::Step {
        what: what(),
        source,
    })
}

#[derive(Debug, Subcommand)]
pub enum LabCmd {
    /// Create a lab: a network namespace in which every address of
    /// 198.18.0.0/15 answers ping.
    Up(NameArg),
    /// Set the impairments of a target group (loss, delay, jitter).
    Impair(ImpairArgs),
    /// Stop the delay responder: every target in the lab goes silent, as a
    /// link that went down.
    StopResponder(NameArg),
    /// Start the delay responder again: replies resume, with each group's delay.
    StartResponder(NameArg),
    /// Stop the delay responder and let the kernel answer again (no delay;
    /// loss still applies).
    KernelReplies(NameArg),
    /// Show who answers, the groups, their impairments and the echo
    /// requests counted for each.
    Status {
        #[command(flatten)]
        name: NameArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a lab: stop its responder, delete its namespace and state.
    Down(NameArg),
    /// Internal: the echo responder that `impair --delay` starts in the lab.
    #[command(hide = true)]
    Responder {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Lab name, also the network namespace's: 1-15 of a-z, 0-9 and '-'.
    #[arg(long, env = "VPNMON_LAB")]
    name: String,
}

#[derive(Debug, Args)]
pub struct ImpairArgs {
    #[command(flatten)]
    name: NameArg,
    /// Target group: a CIDR or address inside 198.18.0.0/15. An address
    /// belongs to the most specific group containing it, and only that
    /// group's impairments apply. Without impairment flags the group is
    /// only counted (and exempt from larger groups).
    #[arg(long, value_name = "CIDR")]
    targets: TargetGroup,
    /// Drop this percentage of echo requests (0 removes the loss): exactly
    /// PCT of every 100, evenly spread, unless --random.
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(0..=100))]
    loss: Option<u8>,
    /// Drop each request independently with probability PCT/100.
    #[arg(long, requires = "loss")]
    random: bool,
    /// Delay replies, e.g. 20ms (0 removes the delay). Replies then come from
    /// a userspace responder in the lab instead of the kernel.
    #[arg(long, value_parser = crate::parse_millis)]
    delay: Option<Duration>,
    /// Spread the delay uniformly over DELAY +- JITTER, e.g. 5ms.
    #[arg(long, value_parser = crate::parse_millis, requires = "delay")]
    jitter: Option<Duration>,
    /// Remove the group and its impairments.
    #[arg(long, conflicts_with_all = ["loss", "delay"])]
    clear: bool,
}

/// Runs one `vpnmon lab` command.
pub async fn run(cmd: LabCmd) -> Result<()> {
    if let LabCmd::Responder { args } = cmd {
        let code =
            tokio::task::spawn_blocking(move || crate::responder::main_with_args(args)).await?;
        if code != 0 {
            std::process::exit(code.into());
        }
        return Ok(());
    }
    // Namespaces, nft and processes: blocking work, off the runtime.
    tokio::task::spawn_blocking(move || run_blocking(cmd)).await?
}

fn run_blocking(cmd: LabCmd) -> Result<()> {
    match cmd {
        LabCmd::Up(NameArg { name }) => match LabConfig::new(&name)?.up() {
            Ok(lab) => {
                lab.detach();
                println!(
                    "lab {name} is up: every address of {range} answers ping in network \
                     namespace {name}.\nRun vpnmon in it, e.g.: ip netns exec {name} vpnmon \
                     serve --eip-pool 198.19.255.1-198.19.255.254 --probe-allow {range}",
                    range = crate::LAB_RANGE
                );
                Ok(())
            }
            Err(LabError::AlreadyExists { ours: true, .. }) => {
                println!("lab {name} is already up");
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
        LabCmd::Impair(args) => impair(args),
        LabCmd::StopResponder(NameArg { name }) => {
            Lab::open(&name)?.stop_responder()?;
            println!("lab {name}: responder stopped, every target is silent");
            Ok(())
        }
        LabCmd::StartResponder(NameArg { name }) => {
            let mut lab = Lab::open(&name)?;
            lab.start_responder()?;
            println!(
                "lab {name}: responder running (pid {})",
                lab.responder_pid().unwrap_or_default()
            );
            Ok(())
        }
        LabCmd::KernelReplies(NameArg { name }) => {
            Lab::open(&name)?.use_kernel_replies()?;
            println!("lab {name}: the kernel answers (no delay)");
            Ok(())
        }
        LabCmd::Status { name, json } => {
            let status = Lab::open(&name.name)?.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
            Ok(())
        }
        LabCmd::Down(NameArg { name }) => {
            if LabConfig::new(&name)?.down()? {
                println!("lab {name} removed");
            } else {
                println!("no lab {name}: nothing to remove");
            }
            Ok(())
        }
        LabCmd::Responder { .. } => unreachable!("handled in run"),
    }
}

fn impair(args: ImpairArgs) -> Result<()> {
    let name = &args.name.name;
    let mut lab = Lab::open(name)?;
    let g = args.targets;
    if args.clear {
        lab.clear(g)?;
        println!("lab {name}: group {g} removed");
        return Ok(());
    }
    if args.loss.is_none() && args.delay.is_none() {
        lab.watch(g)?;
    }
    if let Some(pct) = args.loss {
        let mode = if args.random {
            LossMode::Random
        } else {
            LossMode::Exact
        };
        step(lab.set_loss(g, pct, mode), || {
            format!("setting loss on {g}")
        })?;
    }
    if let Some(delay) = args.delay {
        step(
            lab.set_delay(g, delay, args.jitter.unwrap_or(Duration::ZERO)),
            || format!("setting delay on {g}"),
        )?;
    }
    let status = lab.status()?;
    print!("{}", render_status(&status));
    if status.replies == Replies::Silent && args.delay.is_some() {
        println!("note: the responder is stopped; `vpnmon lab start-responder` resumes replies");
    }
    Ok(())
}

fn millis(d: Duration) -> String {
    let us = d.as_micros();
    match us % 1000 {
        0 => format!("{}ms", us / 1000),
        frac => {
            let n = format!("{}.{frac:03}", us / 1000);
            format!("{}ms", n.trim_end_matches('0'))
        }
    }
}

fn render_status(s: &LabStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}: namespace {}, state {}",
        s.name,
        s.netns.display(),
        s.state_file.display()
    );
    let replies = match (s.replies, &s.responder) {
        (Replies::Kernel, _) => "kernel (no delay)".to_owned(),
        (Replies::Responder, Some(r)) => format!(
            "responder pid {} ({}; log {})",
            r.pid,
            if r.running {
                "running"
            } else {
                "NOT RUNNING: targets are silent"
            },
            r.log.display()
        ),
        (Replies::Responder, None) => "responder (not recorded)".to_owned(),
        (Replies::Silent, _) => "none: responder stopped, targets are silent".to_owned(),
    };
    let _ = writeln!(out, "replies: {replies}");
    if s.groups.is_empty() {
        let _ = writeln!(out, "groups: none (no impairments)");
        return out;
    }
    let _ = writeln!(
        out,
        "groups (the most specific group containing an address applies):"
    );
    for g in &s.groups {
        let loss = g.impairments.loss.map_or("-".to_owned(), |l| {
            let mode = match l.mode() {
                LossMode::Exact => "exact",
                LossMode::Random => "random",
            };
            format!("{}% {mode}", l.pct())
        });
        let delay = g.impairments.delay.map_or("-".to_owned(), |d| {
            if d.jitter().is_zero() {
                millis(d.delay())
            } else {
                format!("{} +-{}", millis(d.delay()), millis(d.jitter()))
            }
        });
        let _ = writeln!(
            out,
            "  {:<18} loss {:<11} delay {:<16} requests {} dropped {}",
            g.targets.to_string(),
            loss,
            delay,
            g.counters.requests,
            g.counters.dropped
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: LabCmd,
    }

    fn parse(args: &[&str]) -> Result<LabCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("lab").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn impair_parses_loss_delay_and_jitter() {
        let LabCmd::Impair(a) = parse(&[
            "impair",
            "--name",
            "l1",
            "--targets",
            "198.18.1.0/24",
            "--loss",
            "30",
            "--random",
            "--delay",
            "20ms",
            "--jitter",
            "5ms",
        ])
        .unwrap() else {
            panic!("not impair")
        };
        assert_eq!(a.name.name, "l1");
        assert_eq!(a.targets.to_string(), "198.18.1.0/24");
        assert_eq!(a.loss, Some(30));
        assert!(a.random);
        assert_eq!(a.delay, Some(Duration::from_millis(20)));
        assert_eq!(a.jitter, Some(Duration::from_millis(5)));
    }

    #[test]
    fn impair_rejects_bad_values() {
        for args in [
            &["impair", "--name", "l1", "--targets", "10.0.0.0/8"][..],
            &[
                "impair",
                "--name",
                "l1",
                "--targets",
                "198.18.1.1",
                "--loss",
                "101",
            ],
            &[
                "impair",
                "--name",
                "l1",
                "--targets",
                "198.18.1.1",
                "--random",
            ],
            &[
                "impair",
                "--name",
                "l1",
                "--targets",
                "198.18.1.1",
                "--jitter",
                "5ms",
            ],
            &[
                "impair",
                "--name",
                "l1",
                "--targets",
                "198.18.1.1",
                "--delay",
                "20",
            ],
            &[
                "impair",
                "--name",
                "l1",
                "--targets",
                "198.18.1.1",
                "--clear",
                "--loss",
                "5",
            ],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn responder_arguments_pass_through_untouched() {
        let LabCmd::Responder { args } = parse(&[
            "responder",
            "--group",
            "198.18.1.0/24=20.000:5.000",
            "--stop-after",
            "30",
        ])
        .unwrap() else {
            panic!("not responder")
        };
        assert_eq!(
            args,
            [
                "--group",
                "198.18.1.0/24=20.000:5.000",
                "--stop-after",
                "30"
            ]
        );
    }

    #[test]
    fn durations_print_in_milliseconds() {
        assert_eq!(millis(Duration::from_millis(20)), "20ms");
        assert_eq!(millis(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(millis(Duration::from_micros(250)), "0.25ms");
    }
}
