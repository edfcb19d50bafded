//! Stopping exactly the responder a lab started: a PID alone may have been
//! reused by the time `down` runs, so a process is identified by its PID and
//! its start time (field 22 of `/proc/PID/stat`).

use crate::LabError;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::process::Child;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

/// State letter and start time from the text of `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // state is field 3; starttime is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

fn read_stat(pid: u32) -> Option<(char, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

impl ProcessId {
    pub fn of(pid: u32) -> Result<Self, LabError> {
        let (_, start_ticks) = read_stat(pid).ok_or_else(|| {
            LabError::Responder(format!("process {pid} vanished right after it started"))
        })?;
        Ok(ProcessId { pid, start_ticks })
    }

    /// Running (not a zombie) and still the same process.
    pub fn is_running(&self) -> bool {
        matches!(read_stat(self.pid), Some((state, start))
            if start == self.start_ticks && state != 'Z' && state != 'X')
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once the process is gone
    /// (or is a zombie its parent has yet to reap). A process that is no
    /// longer this one is left alone.
    pub fn terminate(&self, grace: Duration) -> Result<(), LabError> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = Pid::from_raw(self.pid as i32);
        for (signal, wait) in [
            (Signal::SIGTERM, grace),
            (Signal::SIGKILL, Duration::from_secs(2)),
        ] {
            match kill(pid, signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    return Err(LabError::io(
                        format!("kill -{signal} {}", self.pid),
                        e.into(),
                    ));
                }
            }
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if !self.is_running() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Err(LabError::Responder(format!(
            "process {} survived SIGKILL",
            self.pid
        )))
    }
}

/// Stops a child this process started and reaps it: SIGTERM, then SIGKILL
/// after `grace`.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) -> Result<(), LabError> {
    if child
        .try_wait()
        .map_err(|e| LabError::io("wait", e))?
        .is_some()
    {
        return Ok(());
    }
    let pid = Pid::from_raw(child.id() as i32);
    // The child is unreaped, so its PID cannot have been reused.
    let _ = kill(pid, Signal::SIGTERM);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if child
            .try_wait()
            .map_err(|e| LabError::io("wait", e))?
            .is_some()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().map_err(|e| LabError::io("kill", e))?;
    child.wait().map_err(|e| LabError::io("wait", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names_is_parsed() {
        let stat = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) R 1 2"), None);
    }

    #[test]
    fn own_process_is_running_and_a_wrong_start_time_is_not() {
        let me = ProcessId::of(std::process::id()).unwrap();
        assert!(me.is_running());
        let impostor = ProcessId {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!impostor.is_running());
        // Terminating a process that is not the recorded one does nothing.
        impostor.terminate(Duration::from_millis(10)).unwrap();
        assert!(me.is_running());
    }
}
