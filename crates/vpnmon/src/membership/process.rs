//! Which process holds a node's lease, in a form another process on the
//! same host can check: `linux:<boot id>:<pid namespace>:<pid>:<start>`,
//! the start being the process's start time in clock ticks since boot
//! (`/proc/<pid>/stat` field 22), so a PID used again by another process
//! does not pass for the old one.
//!
//! A node restarted after a crash (or `kill -9`) would otherwise wait for
//! its predecessor's lease to run out (up to 8 s) before it probes the
//! monitors rendezvous hashing gives to that dead node. With this, [`dead`]
//! tells at the join that the predecessor is gone, and its lease is
//! removed at once. Only a process in this boot and this PID namespace is
//! judged; any other (another host, a container with its own PIDs, an older
//! vpnmon that did not say) is left to its lease.

use std::fs;

/// This process, or `None` where it cannot be told (not Linux).
pub fn this_process() -> Option<String> {
    let boot = boot_id()?;
    let ns = pid_namespace()?;
    let pid = std::process::id();
    let start = start_ticks(pid)?;
    Some(format!("linux:{boot}:{ns}:{pid}:{start}"))
}

/// Whether `process` (as [`this_process`] wrote it) is a process of this
/// boot and PID namespace that has ended. False when it cannot be judged.
pub fn dead(process: &str) -> bool {
    let mut parts = process.split(':');
    let (Some("linux"), Some(boot), Some(ns), Some(pid), Some(start), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    if boot_id().as_deref() != Some(boot) || pid_namespace().as_deref() != Some(ns) {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match start_ticks(pid) {
        None => true,
        Some(now) => now.to_string() != start,
    }
}

fn boot_id() -> Option<String> {
    let s = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let s = s.trim();
    (!s.is_empty() && !s.contains(':')).then(|| s.to_string())
}

/// The PID namespace's inode, from the `pid:[4026531836]` link.
fn pid_namespace() -> Option<String> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    let s = link.to_str()?;
    let inode = s.strip_prefix("pid:[")?.strip_suffix(']')?;
    inode
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| inode.to_string())
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name,
/// which may hold spaces and parentheses itself).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_process_that_ended_is_dead() {
        let me = this_process().expect("Linux with /proc");
        assert!(!dead(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_ticks(pid);
        child.wait().unwrap();
        let (boot, ns) = (boot_id().unwrap(), pid_namespace().unwrap());
        // Reaped: /proc/<pid> is gone (unless the PID was used again at once,
        // which the start time tells apart).
        let ended = format!("linux:{boot}:{ns}:{pid}:{}", start.unwrap_or(0));
        assert!(dead(&ended), "{ended}");
    }

    #[test]
    fn a_reused_pid_is_told_apart_by_its_start_time() {
        let me = this_process().unwrap();
        let (head, start) = me.rsplit_once(':').unwrap();
        let other_start = start.parse::<u64>().unwrap() + 1;
        assert!(dead(&format!("{head}:{other_start}")));
    }

    #[test]
    fn other_boots_namespaces_and_unknown_forms_are_not_judged() {
        let me = this_process().unwrap();
        let f: Vec<&str> = me.split(':').collect();
        let gone = |boot: &str, ns: &str| format!("linux:{boot}:{ns}:{}:1", u32::MAX - 1);
        assert!(dead(&gone(f[1], f[2])), "a PID that does not exist here");
        assert!(!dead(&gone("another-boot", f[2])), "another boot (host)");
        assert!(!dead(&gone(f[1], "1")), "another PID namespace");
        assert!(!dead("windows:1:2:3:4"));
        assert!(!dead(""));
        assert!(!dead(&format!("{me}:extra")));
        assert!(!dead(&format!("linux:{}:{}:notapid:1", f[1], f[2])));
    }
}
