//! Running things in a lab's network namespace.
//!
//! A thread that `setns`es into a namespace stays there, and every thread
//! or process it then creates starts there too. So work inside the lab is
//! done on a short-lived scoped thread ([`in_netns`]): writing its
//! `/proc/sys/net` (which resolves against the writer's namespace), running
//! `nft`, spawning the responder. The caller's own thread never moves.

use crate::LabError;
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `ip netns add NAME` puts the namespace's handle.
pub(crate) fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// An external program the lab needs, with the Debian package providing it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tool {
    Ip,
    Nft,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Ip => "ip",
            Tool::Nft => "nft",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Ip => "iproute2",
            Tool::Nft => "nftables",
        }
    }
}

/// Runs `tool args` (feeding `stdin`), returning its stdout.
pub(crate) fn run(tool: Tool, args: &[&str], stdin: Option<&str>) -> Result<String, LabError> {
    let mut cmd = Command::new(tool.program());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LabError::ToolMissing {
            tool: tool.program(),
            package: tool.package(),
        },
        _ => LabError::io(format!("running {}", tool.program()), e),
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| LabError::io(format!("writing to {}", tool.program()), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io(format!("waiting for {}", tool.program()), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: format!("{} {}", tool.program(), args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Whether `ip` failed for lack of privilege rather than anything else.
pub(crate) fn is_permission_failure(stderr: &str) -> bool {
    stderr.contains("Operation not permitted") || stderr.contains("Permission denied")
}

/// `CAP_SYS_ADMIN` in the calling thread's effective set (`None` if
/// `/proc` does not say).
pub(crate) fn has_cap_sys_admin() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    cap_sys_admin_in_status(&status)
}

fn cap_sys_admin_in_status(status: &str) -> Option<bool> {
    const CAP_SYS_ADMIN: u32 = 21;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Moves the calling thread into the namespace at `path`, for good.
pub(crate) fn enter(path: &Path) -> Result<(), LabError> {
    let ns = File::open(path).map_err(|e| LabError::io(format!("open {}", path.display()), e))?;
    setns(&ns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| LabError::io(format!("setns {}", path.display()), e.into()))
}

/// Runs `f` on a scoped thread inside the namespace at `path`.
pub(crate) fn in_netns<T: Send>(
    path: &Path,
    f: impl FnOnce() -> Result<T, LabError> + Send,
) -> Result<T, LabError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(path)?;
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Writes a `net.*` sysctl of the calling thread's namespace (`key` as in
/// `sysctl`, e.g. `net.ipv4.icmp_echo_ignore_all`).
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<(), LabError> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|e| LabError::io(format!("sysctl -w {key}={value}"), e))
}

pub(crate) fn read_sysctl(key: &str) -> Result<String, LabError> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| LabError::io(format!("sysctl {key}"), e))
}

/// The lowest and highest group id mapped into this process's user
/// namespace (`/proc/self/gid_map`), for sysctls that accept only those.
pub(crate) fn mapped_gid_range() -> Option<(u32, u32)> {
    let map = std::fs::read_to_string("/proc/self/gid_map").ok()?;
    parse_gid_map(&map)
}

fn parse_gid_map(map: &str) -> Option<(u32, u32)> {
    map.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u64>().ok());
            let (inside, _outside, count) = (f.next()??, f.next()??, f.next()??);
            let last = inside.checked_add(count)?.checked_sub(1)?;
            Some((u32::try_from(inside).ok()?, u32::try_from(last).ok()?))
        })
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_map_gives_the_mapped_range() {
        assert_eq!(
            parse_gid_map("         0          0 4294967295\n"),
            Some((0, 4294967294))
        );
        assert_eq!(
            parse_gid_map("         0      65534          1\n"),
            Some((0, 0))
        );
        assert_eq!(
            parse_gid_map("0 1000 1\n1 100000 65536\n"),
            Some((0, 65536))
        );
        assert_eq!(parse_gid_map(""), None);
        assert_eq!(parse_gid_map("0 0 0\n"), None);
    }

    #[test]
    fn cap_sys_admin_is_bit_21_of_cap_eff() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(cap_sys_admin_in_status(root), Some(true));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(cap_sys_admin_in_status(user), Some(false));
        let only_net_raw = "CapEff:\t0000000000002000\n";
        assert_eq!(cap_sys_admin_in_status(only_net_raw), Some(false));
        assert_eq!(cap_sys_admin_in_status("Name:\tx\n"), None);
    }

    #[test]
    fn permission_failures_are_recognised() {
        assert!(is_permission_failure(
            "mount --make-shared /run/netns failed: Operation not permitted"
        ));
        assert!(is_permission_failure(
            "mkdir /run/netns failed: Permission denied"
        ));
        assert!(!is_permission_failure(
            "Cannot create namespace file \"/run/netns/x\": File exists"
        ));
    }
}
