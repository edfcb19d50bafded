//! Which source addresses this node can send from, read from the kernel:
//! every route of type `local` (the `local` routing table, as
//! `ip route show table local type local` prints it). That covers each
//! interface address (the kernel adds a local host route for it) and AnyIP
//! prefixes (`ip route add local 198.18.0.0/15 dev lo`), one prefix each.
//!
//! Not `bind()`: with `net.ipv4.ip_nonlocal_bind=1`, common on VRRP and
//! keepalived hosts, `bind()` succeeds for any address, and every node
//! would believe it holds every gateway address.
//!
//! The dump is one `RTM_GETROUTE` request on a `NETLINK_ROUTE` socket per
//! family; the messages are built and parsed as bytes here ([`parse_dump`]
//! is a pure function, tested on captured bytes), so the only unsafe code
//! is the three socket calls.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NLMSG_HDR: usize = 16;
const RTMSG: usize = 12;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const RTN_LOCAL: u8 = 2;
const RTA_DST: u16 = 1;

/// What one dump message was.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Done,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Adds the local prefixes of one received buffer of a route dump to
/// `out`; says whether the dump is done. Malformed input is an error.
fn parse_dump(buf: &[u8], out: &mut Vec<IpNet>) -> Result<Step, String> {
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, at).ok_or("short header")? as usize;
        let kind = u16_at(buf, at + 4).ok_or("short header")?;
        if len < NLMSG_HDR || at + len > buf.len() {
            return Err(format!("bad netlink message length {len}"));
        }
        let msg = &buf[at..at + len];
        match kind {
            NLMSG_DONE => return Ok(Step::Done),
            NLMSG_ERROR => {
                let errno = u32_at(msg, NLMSG_HDR).map_or(0, |e| -(e as i32));
                return Err(format!("netlink error {errno}"));
            }
            RTM_NEWROUTE => {
                if let Some(p) = local_prefix(msg)? {
                    out.push(p);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(Step::More)
}

/// The prefix of one route message when it is a local route.
fn local_prefix(msg: &[u8]) -> Result<Option<IpNet>, String> {
    let rt = msg
        .get(NLMSG_HDR..NLMSG_HDR + RTMSG)
        .ok_or("short route message")?;
    let (family, dst_len, kind) = (rt[0], rt[1], rt[7]);
    if kind != RTN_LOCAL {
        return Ok(None);
    }
    let mut at = NLMSG_HDR + RTMSG;
    while at + 4 <= msg.len() {
        let len = u16_at(msg, at).ok_or("short attribute")? as usize;
        let ty = u16_at(msg, at + 2).ok_or("short attribute")?;
        if len < 4 || at + len > msg.len() {
            return Err(format!("bad route attribute length {len}"));
        }
        let data = &msg[at + 4..at + len];
        if ty == RTA_DST {
            let addr = match (i32::from(family), data.len()) {
                (libc::AF_INET, 4) => IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
                (libc::AF_INET6, 16) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(data);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
                _ => return Ok(None),
            };
            return Ok(IpNet::new(addr, dst_len).ok().map(|n| n.trunc()));
        }
        at += align4(len);
    }
    Ok(None)
}

/// The request: "dump the routes of `family`".
fn request(family: u8, seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + RTMSG) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(family);
    b.extend_from_slice(&[0u8; RTMSG - 1]);
    b
}

/// A netlink socket, closed on drop.
struct Netlink(libc::c_int);

impl Drop for Netlink {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours (from `socket`) and closed once.
        unsafe {
            libc::close(self.0);
        }
    }
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The local prefixes of one family.
fn dump(family: u8) -> Result<Vec<IpNet>, String> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(os_error("netlink socket"));
    }
    let sock = Netlink(fd);
    let req = request(family, 1);
    // SAFETY: `req` is a valid buffer of `req.len()` bytes; a netlink
    // socket's default destination (no address) is the kernel.
    let sent = unsafe { libc::send(sock.0, req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(os_error("netlink send"));
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::recv(sock.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(os_error("netlink recv"));
        }
        if n == 0 {
            return Err("netlink socket closed during the dump".into());
        }
        let got = usize::try_from(n).map_err(|_| "netlink recv length".to_string())?;
        if parse_dump(&buf[..got], &mut out)? == Step::Done {
            return Ok(out);
        }
    }
}

/// Every prefix this host can send from (IPv4 and IPv6), sorted and
/// without duplicates. Blocking (a few syscalls): call it from a blocking
/// thread.
pub fn local_prefixes() -> Result<Vec<IpNet>, String> {
    let mut all = dump(libc::AF_INET as u8)?;
    // A host without IPv6 answers the IPv6 dump with an error; IPv4 alone
    // is then the answer.
    match dump(libc::AF_INET6 as u8) {
        Ok(v6) => all.extend(v6),
        Err(e) => tracing::debug!(error = %e, "no IPv6 local routes"),
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// How often the kernel's local routes are read again (a VRRP move is
/// seen within this, and published with the next lease renewal).
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the local prefixes into `view` now and every [`REFRESH_EVERY`]
/// until `stop`; a change makes the prober decide again what it probes.
pub async fn watch(
    view: std::sync::Arc<super::view::View>,
    prober: std::sync::Arc<dyn super::Fence>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        match tokio::task::spawn_blocking(local_prefixes).await {
            Ok(Ok(p)) => {
                failing = false;
                let n = p.len();
                if view.set_local(p) {
                    tracing::info!(prefixes = n, "local addresses changed");
                    prober.reassess();
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the local addresses; keeping the last ones");
                }
                failing = true;
            }
            Err(e) => tracing::error!(error = %e, "the address reader failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(family: u8, dst_len: u8, kind: u8, dst: &[u8]) -> Vec<u8> {
        let attr_len = 4 + dst.len();
        let len = NLMSG_HDR + RTMSG + align4(attr_len);
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b.extend_from_slice(&[family, dst_len, 0, 0, 255, 2, 254, kind, 0, 0, 0, 0]);
        b.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        b.extend_from_slice(&RTA_DST.to_ne_bytes());
        b.extend_from_slice(dst);
        b.resize(len, 0);
        b
    }

    fn done() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&20u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        b.extend_from_slice(&[0u8; 14]);
        b
    }

    #[test]
    fn local_routes_become_prefixes_and_others_are_skipped() {
        let mut buf = route(libc::AF_INET as u8, 32, RTN_LOCAL, &[198, 18, 0, 5]);
        buf.extend(route(libc::AF_INET as u8, 15, RTN_LOCAL, &[198, 18, 7, 1]));
        buf.extend(route(libc::AF_INET as u8, 32, 3, &[198, 18, 0, 255])); // broadcast
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 5;
        buf.extend(route(libc::AF_INET6 as u8, 128, RTN_LOCAL, &v6));
        let mut out = Vec::new();
        assert_eq!(parse_dump(&buf, &mut out), Ok(Step::More));
        let shown: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["198.18.0.5/32", "198.18.0.0/15", "2001:db8::5/128"]);
        assert_eq!(parse_dump(&done(), &mut out), Ok(Step::Done));
    }

    #[test]
    fn a_truncated_message_is_an_error() {
        let mut buf = route(libc::AF_INET as u8, 32, RTN_LOCAL, &[127, 0, 0, 1]);
        buf.truncate(buf.len() - 6);
        let mut out = Vec::new();
        assert!(parse_dump(&buf, &mut out).is_err());
    }

    #[test]
    fn the_kernel_says_this_host_can_send_from_loopback() {
        // Every Linux host (and network namespace with lo up) has the local
        // route 127.0.0.0/8; the test reads the real kernel tables.
        let p = local_prefixes().expect("dump the local routes");
        assert!(
            p.iter()
                .any(|n| n.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST))),
            "{p:?}"
        );
    }
}
