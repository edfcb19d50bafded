//! A small ICMP echo prober for the tests, independent of vpnmon's engine
//! and of installed ping tools: one raw socket, requests sent at a fixed
//! interval, replies matched by identifier, sequence and source.

use lab::echo::checksum;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The "gateway EIP" the tests probe from.
pub const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);

static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// Round-trip times of `count` echo requests to `dst`, one every
/// `interval`; `None` for a request without a reply within `timeout`.
/// Must run inside the lab (see `Lab::run_in`).
pub fn ping(
    dst: Ipv4Addr,
    count: u16,
    interval: Duration,
    timeout: Duration,
) -> Vec<Option<Duration>> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw socket");
    sock.bind(&SockAddr::from(SocketAddrV4::new(SOURCE, 0)))
        .expect("bind the probe source");
    // Echo replies only.
    let filter: u32 = !1;
    // SAFETY: a valid fd and a pointer to a live u32 with its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_RAW,
            1, // ICMP_FILTER
            (&raw const filter).cast(),
            4,
        )
    };
    assert_eq!(rc, 0, "ICMP_FILTER: {}", std::io::Error::last_os_error());
    let on: libc::c_int = 1;
    // SAFETY: as above, with a c_int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            4,
        )
    };
    assert_eq!(rc, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
    let ident =
        (std::process::id() as u16) ^ NEXT_ID.fetch_add(1, Ordering::Relaxed).rotate_left(8);
    let to = SockAddr::from(SocketAddrV4::new(dst, 0));

    let n = usize::from(count);
    let mut sent_at: Vec<Option<Instant>> = vec![None; n];
    let mut rtts: Vec<Option<Duration>> = vec![None; n];
    let start = Instant::now();
    let mut next = 0usize;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        let next_send = start + interval * next as u32;
        if next < n && now >= next_send {
            let mut pkt = vec![8, 0, 0, 0];
            pkt.extend_from_slice(&ident.to_be_bytes());
            pkt.extend_from_slice(&(next as u16).to_be_bytes());
            pkt.extend_from_slice(b"vpnmon-lab-test!");
            let sum = checksum(&pkt);
            pkt[2..4].copy_from_slice(&sum.to_be_bytes());
            sent_at[next] = Some(Instant::now());
            sock.send_to(&pkt, &to).expect("send echo request");
            next += 1;
            continue;
        }
        let deadline = if next < n {
            next_send
        } else {
            if rtts.iter().all(Option::is_some) {
                break;
            }
            sent_at[n - 1].map_or(now, |t| t + timeout)
        };
        if now >= deadline && next == n {
            break;
        }
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_micros(100));
        sock.set_read_timeout(Some(wait)).expect("SO_RCVTIMEO");
        let (len, got) = match recv_stamped(&sock, &mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => panic!("receive: {e}"),
        };
        let pkt = &buf[..len];
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let Some(icmp) = pkt.get(ihl..ihl + 8) else {
            continue;
        };
        let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
        let id = u16::from_be_bytes([icmp[4], icmp[5]]);
        let seq = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
        if icmp[0] != 0 || id != ident || src != dst || seq >= n {
            continue;
        }
        assert_eq!(checksum(&pkt[ihl..]), 0, "reply checksum from {src}");
        if let (Some(sent), None) = (sent_at[seq], rtts[seq]) {
            let rtt = got - sent;
            if rtt <= timeout {
                rtts[seq] = Some(rtt);
            }
        }
    }
    rtts
}

pub fn lost(rtts: &[Option<Duration>]) -> usize {
    rtts.iter().filter(|r| r.is_none()).count()
}

pub fn millis(rtts: &[Option<Duration>]) -> Vec<f64> {
    rtts.iter()
        .flatten()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect()
}

/// Receives one packet with its kernel receive time (`SO_TIMESTAMPNS`)
/// mapped onto the monotonic clock, so a descheduled test thread does not
/// lengthen the round trips it measures.
fn recv_stamped(sock: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, Instant)> {
    let mut cmsg = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below are live.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: a valid fd and msghdr.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let now = Instant::now();
    let wall = SystemTime::now();
    // SAFETY: walking the control messages the kernel wrote into `cmsg`.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !c.is_null() {
        // SAFETY: `c` is a valid cmsghdr within `cmsg`.
        let hdr = unsafe { &*c };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: SCM_TIMESTAMPNS carries a timespec.
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            let at = UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            let age = wall.duration_since(at).unwrap_or_default();
            return Ok((n as usize, now.checked_sub(age).unwrap_or(now)));
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(&raw const msg, c) };
    }
    Ok((n as usize, now))
}
