//! Labs without root: run a test again inside a private user, network and
//! mount namespace (`unshare --user --map-root-user --net --mount`).
//!
//! There the test process is root of a user namespace that owns a fresh
//! network namespace, so everything a lab does works as it does for root:
//! `ip netns add` (under a private tmpfs on `/run`, since the real one is
//! not writable), veth pairs, routes, sysctls, nftables, raw and datagram
//! ICMP sockets, and the responder (without `SCHED_FIFO`, which a user
//! namespace cannot grant; it says so and runs at normal priority). Nothing
//! it creates is visible outside, and it all disappears with the process.
//!
//! A test that finds it may not build a lab calls [`rerun_test`] with its
//! own name; the copy runs with [`CHILD_ENV`] set and the parent reports
//! its result.

use std::process::Command;

/// Set in the environment of a test re-run inside its own namespaces.
pub const CHILD_ENV: &str = "VPNMON_LAB_USERNS_CHILD";

/// Gives the child its own `/run` (for `/run/netns` and the lab's state),
/// then runs the test binary.
const CHILD_SCRIPT: &str = "mount -t tmpfs -o mode=0755 vpnmon-lab-run /run && exec \"$@\"";

/// Whether this process is such a re-run.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// How a re-run went, when it could run at all.
#[derive(Debug, PartialEq, Eq)]
pub enum Rerun {
    /// The test ran inside the namespaces and passed.
    Passed,
    /// Unprivileged user namespaces are not available here (why).
    Unavailable(String),
}

fn unshare() -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--",
    ]);
    c
}

/// Run test `test` (its exact name in this test binary) again, alone,
/// inside a private user, network and mount namespace. `Err` carries the
/// child's output when the test failed there.
pub fn rerun_test(test: &str) -> Result<Rerun, String> {
    match unshare().arg("true").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Ok(Rerun::Unavailable(format!(
                "`unshare --user --map-root-user --net --mount` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        Err(e) => return Ok(Rerun::Unavailable(format!("cannot run `unshare`: {e}"))),
    }
    let exe = std::env::current_exe().map_err(|e| format!("current test binary: {e}"))?;
    let out = unshare()
        .args(["/bin/sh", "-c", CHILD_SCRIPT, "sh"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .map_err(|e| format!("cannot run the test in a user namespace: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stdout.contains("test result: ok. 1 passed") {
        Ok(Rerun::Passed)
    } else {
        Err(format!(
            "{test} inside `unshare` ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        ))
    }
}

/// What a test does when it may not build a lab (`reason`): in a re-run,
/// print why it skips; otherwise re-run test `test` (its exact name) in its
/// own namespaces and print how that went, or why it cannot. Panics with the
/// child's output when the test failed there.
pub fn rerun_or_skip(test: &str, reason: &str) {
    if is_child() {
        eprintln!("SKIP {test}: {reason} (even inside a user namespace)");
        return;
    }
    match rerun_test(test) {
        Ok(Rerun::Passed) => {
            eprintln!("{test}: not root ({reason}); passed inside `unshare --user --net --mount`")
        }
        Ok(Rerun::Unavailable(why)) => eprintln!("SKIP {test}: {reason}; and {why}"),
        Err(out) => panic!("{out}"),
    }
}
