//! ICMP sockets: opening (raw or datagram), batched sends with a per-packet
//! source address, batched receives with kernel timestamps.
//!
//! # Which socket
//!
//! One socket per address family serves every monitor. A raw socket
//! (`SOCK_RAW`) needs root or `CAP_NET_RAW`; it sees every ICMP packet of the
//! namespace, so an `ICMP_FILTER` / `ICMP6_FILTER` lets only echo replies
//! through, and replies to other programs are recognised by identifier and
//! token and counted. Without the capability, an ICMP datagram ("ping")
//! socket (`SOCK_DGRAM`, `IPPROTO_ICMP[V6]`) works when the process's group is
//! inside `net.ipv4.ping_group_range` (which governs IPv6 too); the kernel
//! then owns the identifier and delivers only replies to this socket.
//!
//! # Source address
//!
//! Monitors share the socket but each sends from its own `source`: every
//! message carries an `IP_PKTINFO` / `IPV6_PKTINFO` control message with the
//! source address. The kernel refuses a non-local source with `EINVAL`, and
//! [`source_is_local`] finds that out beforehand with a throwaway UDP bind.
//!
//! # Batching and timestamps
//!
//! `sendmmsg`/`recvmmsg` are called directly through `libc` rather than
//! through `nix`, because nix's `sendmmsg` applies one control-message list to
//! every message (we need one source per message) and allocates per call. The
//! header arrays live on the stack of one synchronous call, so no pointer
//! outlives the buffers it points into, and nothing is allocated per packet.
//! `SO_TIMESTAMPNS` makes the kernel stamp every received packet with
//! CLOCK_REALTIME when it arrives, before any scheduling delay of ours. On
//! the send side, `SO_TIMESTAMPING` with `SOF_TIMESTAMPING_TX_SOFTWARE` makes
//! the kernel stamp every packet when the device takes it (same clock) and
//! hand the stamp back on the socket's error queue together with the packet
//! as it left; [`IcmpSocket::recv_tx_timestamps`] reads them, and the engine
//! matches each to its probe by the token in the packet. So the RTT of the
//! eighth message of a `sendmmsg` batch does not include the kernel's work
//! on the seven before it. The clock read right before each batch remains
//! the fallback when a device gives no transmit timestamp.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::codec::Family;

/// Most messages per `sendmmsg` call. Each message gets its own kernel
/// transmit timestamp, so the batch size does not bend RTTs; only where a
/// device gives no transmit timestamps do all messages of a call share the
/// clock read before it (then the last one's RTT includes the kernel's work
/// on the others, a few microseconds each on veth or loopback).
pub const SEND_BATCH: usize = 32;
/// Most messages per `recvmmsg` call.
pub const RECV_BATCH: usize = 32;
/// Socket buffer size requested for both directions, so that the replies of
/// one tick's burst are not dropped by the kernel.
const SOCKET_BUFFER: usize = 4 << 20;
/// Room for the largest IPv4 header in front of a received ICMP message.
const MAX_IP_HEADER: usize = 60;
/// Control-message room per message: an `in6_pktinfo` (40 bytes with
/// header) on send; on receive a `timespec` (32), a drop counter (24) and an
/// `scm_timestamping` (64, present once `SO_TIMESTAMPING` reports software
/// stamps), or on the error queue an `scm_timestamping` plus the extended
/// error with its offender address (16 + 16 + 28).
const CMSG_ROOM: usize = 128;

const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
const ICMP6_FILTER: libc::c_int = 1;
const ICMPV6_ECHO_REPLY: u32 = 129;

/// Which kind of ICMP socket to open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SocketMode {
    /// Raw when permitted, else datagram.
    #[default]
    Auto,
    /// Raw only (root or `CAP_NET_RAW`).
    Raw,
    /// ICMP datagram only (`net.ipv4.ping_group_range`).
    Datagram,
}

/// The kind of an open ICMP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_RAW`.
    Raw,
    /// `SOCK_DGRAM` with `IPPROTO_ICMP` / `IPPROTO_ICMPV6`.
    Datagram,
}

impl std::fmt::Display for SocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketKind::Raw => "raw",
            SocketKind::Datagram => "datagram",
        })
    }
}

/// Why no socket of a family could be opened.
#[derive(Debug)]
pub enum OpenFailure {
    /// Not permitted; the errors of the kinds that were tried.
    Permission {
        /// Error of the raw socket, if tried.
        raw: Option<io::Error>,
        /// Error of the datagram socket, if tried.
        datagram: Option<io::Error>,
    },
    /// Some other failure (e.g. the family is not supported by the kernel).
    Other(io::Error),
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Permission { raw, datagram } => {
                f.write_str("not permitted to open an ICMP socket")?;
                if let Some(e) = raw {
                    write!(f, "; raw socket: {e} (needs root or CAP_NET_RAW)")?;
                }
                if let Some(e) = datagram {
                    write!(
                        f,
                        "; datagram socket: {e} (needs the process's group id within \
                         net.ipv4.ping_group_range, e.g. \
                         `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`)"
                    )?;
                }
                Ok(())
            }
            OpenFailure::Other(e) => write!(f, "{e}"),
        }
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// One message to send.
#[derive(Clone, Copy, Debug)]
pub struct OutMsg<'a> {
    /// The ICMP message (header + payload).
    pub packet: &'a [u8],
    /// Destination.
    pub destination: IpAddr,
    /// Source address (must be local, and of the socket's family).
    pub source: IpAddr,
}

/// One received message, borrowing the socket's receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct RxPacket<'a> {
    /// What the socket delivered: an IPv4 packet with header for raw IPv4,
    /// else the ICMP message alone.
    pub data: &'a [u8],
    /// Sender address.
    pub from: Option<IpAddr>,
    /// Kernel receive time, CLOCK_REALTIME ns (missing only if the control
    /// message was truncated).
    pub rx_ns: Option<u64>,
    /// The message did not fit the buffer (not one of ours).
    pub truncated: bool,
}

/// Below this receive buffer size the engine also wakes on readability
/// rather than only on its ticks, to drain before the buffer fills.
pub const SMALL_RECV_BUFFER: usize = 1 << 20;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_ROOM]);

struct RxSlot {
    len: usize,
    from: Option<IpAddr>,
    rx_ns: Option<u64>,
    truncated: bool,
}

/// What the control messages of one received message said.
#[derive(Default)]
struct Cmsgs {
    /// `SCM_TIMESTAMPNS`.
    timestampns: Option<u64>,
    /// The software stamp of `SCM_TIMESTAMPING`.
    timestamping: Option<u64>,
    /// `SO_RXQ_OVFL`.
    drops: Option<u32>,
    /// The message is a transmit timestamp (extended error of origin
    /// `SO_EE_ORIGIN_TIMESTAMPING`, stamp kind `SCM_TSTAMP_SND`).
    tx_stamp: bool,
}

/// An open, non-blocking ICMP socket registered with tokio.
pub struct IcmpSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    kind: SocketKind,
    buf_len: usize,
    rx_bufs: Vec<u8>,
    rx: Vec<RxSlot>,
    recv_buffer: usize,
    kernel_drops: u32,
    tx_timestamps: bool,
}

impl std::fmt::Debug for IcmpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpSocket")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .field("family", &self.family)
            .field("kind", &self.kind)
            .finish()
    }
}

impl IcmpSocket {
    /// Open an ICMP socket of `family` in `mode`, sized for echo payloads of
    /// up to `max_payload` bytes. Must be called inside a tokio runtime.
    pub fn open(family: Family, mode: SocketMode, max_payload: usize) -> Result<Self, OpenFailure> {
        let (sock, kind) = match mode {
            SocketMode::Raw => match open_kind(family, SocketKind::Raw) {
                Ok(s) => (s, SocketKind::Raw),
                Err(e) if is_permission(&e) => {
                    return Err(OpenFailure::Permission {
                        raw: Some(e),
                        datagram: None,
                    });
                }
                Err(e) => return Err(OpenFailure::Other(e)),
            },
            SocketMode::Datagram => match open_kind(family, SocketKind::Datagram) {
                Ok(s) => (s, SocketKind::Datagram),
                Err(e) if is_permission(&e) => {
                    return Err(OpenFailure::Permission {
                        raw: None,
                        datagram: Some(e),
                    });
                }
                Err(e) => return Err(OpenFailure::Other(e)),
            },
            SocketMode::Auto => match open_kind(family, SocketKind::Raw) {
                Ok(s) => (s, SocketKind::Raw),
                Err(raw) if is_permission(&raw) => match open_kind(family, SocketKind::Datagram) {
                    Ok(s) => (s, SocketKind::Datagram),
                    Err(dgram) if is_permission(&dgram) => {
                        return Err(OpenFailure::Permission {
                            raw: Some(raw),
                            datagram: Some(dgram),
                        });
                    }
                    Err(e) => return Err(OpenFailure::Other(e)),
                },
                Err(e) => return Err(OpenFailure::Other(e)),
            },
        };
        let recv_buffer = sock.recv_buffer_size().unwrap_or(0);
        let tx_timestamps = enable_tx_timestamps(&sock);
        // SAFETY: the socket owns its descriptor, and the AsyncFd owns the
        // socket until it is dropped; nothing else closes or replaces it.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map_err(|e| OpenFailure::Other(e.into_parts().1))?;
        // Header room, ICMP header, payload, and slack so a longer foreign
        // packet is seen as truncated rather than silently cut to size.
        let buf_len = (MAX_IP_HEADER + 8 + max_payload + 64).next_multiple_of(64);
        Ok(IcmpSocket {
            fd,
            family,
            kind,
            buf_len,
            rx_bufs: vec![0; buf_len * RECV_BATCH],
            rx: (0..RECV_BATCH)
                .map(|_| RxSlot {
                    len: 0,
                    from: None,
                    rx_ns: None,
                    truncated: false,
                })
                .collect(),
            recv_buffer,
            kernel_drops: 0,
            tx_timestamps,
        })
    }

    /// The receive buffer the kernel granted, in bytes.
    pub fn recv_buffer(&self) -> usize {
        self.recv_buffer
    }

    /// Packets the kernel dropped because the receive buffer was full
    /// (`SO_RXQ_OVFL`), as last reported; a cause of false loss.
    pub fn kernel_drops(&self) -> u32 {
        self.kernel_drops
    }

    /// Whether the kernel returns transmit timestamps on this socket.
    pub fn tx_timestamps(&self) -> bool {
        self.tx_timestamps
    }

    /// The socket's family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The socket's kind.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Wait until the socket is readable, then clear tokio's readiness: the
    /// caller must drain with [`IcmpSocket::recv_batch`] until it returns
    /// `WouldBlock` (or call this again only after having done so).
    pub async fn readable(&self) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        guard.clear_ready();
        Ok(())
    }

    /// Send up to [`SEND_BATCH`] messages with one `sendmmsg`. Returns how
    /// many the kernel accepted (at least one), or the error of the first
    /// message when none was accepted; the caller resumes after it.
    pub fn send_batch(&self, msgs: &[OutMsg<'_>]) -> io::Result<usize> {
        // Messages of another family cannot share this socket: send the
        // ones before the first such message; if it is first, report it.
        let same_family = |m: &OutMsg<'_>| {
            Family::of(m.destination) == self.family && Family::of(m.source) == self.family
        };
        let n = msgs
            .iter()
            .take(SEND_BATCH)
            .position(|m| !same_family(m))
            .unwrap_or(msgs.len().min(SEND_BATCH));
        if n == 0 {
            return if msgs.is_empty() {
                Ok(0)
            } else {
                Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
            };
        }
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; SEND_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above, all-zero is a valid iovec.
        let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { mem::zeroed() };
        let mut ctrl = [CmsgBuf([0; CMSG_ROOM]); SEND_BATCH];
        // SAFETY: as above, all-zero is a valid mmsghdr (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { mem::zeroed() };
        for i in 0..n {
            let msg = &msgs[i];
            let name_len = write_sockaddr(msg.destination, &mut names[i]);
            iovs[i] = libc::iovec {
                iov_base: msg.packet.as_ptr().cast_mut().cast(),
                iov_len: msg.packet.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&raw mut names[i]).cast();
            h.msg_namelen = name_len;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i].0.as_mut_ptr().cast();
            // SAFETY: the header points at `ctrl[i]`, which is CMSG_ROOM
            // bytes, 8-aligned, and large enough for one pktinfo message.
            unsafe { write_pktinfo(h, msg.source) };
        }
        // SAFETY: every header points into the arrays above and into the
        // caller's packets, all alive for the duration of the call.
        let ret = unsafe {
            libc::sendmmsg(
                self.fd.get_ref().as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ret as usize)
    }

    /// Receive up to [`RECV_BATCH`] messages without blocking. Returns the
    /// number received (read them with [`IcmpSocket::packet`]); `WouldBlock`
    /// when the socket is empty.
    pub fn recv_batch(&mut self) -> io::Result<usize> {
        self.recv_into(0)
    }

    /// Read up to [`RECV_BATCH`] transmit timestamps from the error queue
    /// without blocking. Returns the number of messages read; for each,
    /// [`IcmpSocket::packet`] gives the packet as it left (link-layer and IP
    /// headers included, as the device saw it; find the ICMP message with
    /// [`crate::codec::parse_sent_echo`]) and its `rx_ns` is the kernel's
    /// transmit time, `None` for an error-queue message that is not a
    /// transmit timestamp. `WouldBlock` when the queue is empty.
    pub fn recv_tx_timestamps(&mut self) -> io::Result<usize> {
        if !self.tx_timestamps {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.recv_into(libc::MSG_ERRQUEUE)
    }

    fn recv_into(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above, all-zero is a valid iovec.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { mem::zeroed() };
        let mut ctrl = [CmsgBuf([0; CMSG_ROOM]); RECV_BATCH];
        // SAFETY: as above, all-zero is a valid mmsghdr (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { mem::zeroed() };
        for (i, buf) in self.rx_bufs.chunks_exact_mut(self.buf_len).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&raw mut names[i]).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i].0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_ROOM;
        }
        // SAFETY: every header points into the arrays above and into
        // `self.rx_bufs`, all alive and exclusively borrowed for the call.
        let ret = unsafe {
            libc::recvmmsg(
                self.fd.get_ref().as_raw_fd(),
                hdrs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT | flags,
                std::ptr::null_mut(),
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = ret as usize;
        for i in 0..n {
            let h = &hdrs[i].msg_hdr;
            let slot = &mut self.rx[i];
            slot.len = (hdrs[i].msg_len as usize).min(self.buf_len);
            slot.truncated = h.msg_flags & libc::MSG_TRUNC != 0;
            slot.from = read_sockaddr(&names[i], h.msg_namelen);
            // SAFETY: the kernel filled `msg_control`/`msg_controllen` for
            // this header; the buffer is still alive.
            let c = unsafe { read_cmsgs(h) };
            if flags & libc::MSG_ERRQUEUE != 0 {
                slot.rx_ns = c.timestamping.filter(|_| c.tx_stamp);
            } else {
                slot.rx_ns = c.timestampns;
                if let Some(d) = c.drops {
                    self.kernel_drops = self.kernel_drops.max(d);
                }
            }
        }
        Ok(n)
    }

    /// Message `i` of the last [`IcmpSocket::recv_batch`].
    pub fn packet(&self, i: usize) -> RxPacket<'_> {
        let slot = &self.rx[i];
        let start = i * self.buf_len;
        RxPacket {
            data: &self.rx_bufs[start..start + slot.len],
            from: slot.from,
            rx_ns: slot.rx_ns,
            truncated: slot.truncated,
        }
    }
}

fn open_kind(family: Family, kind: SocketKind) -> io::Result<Socket> {
    let (domain, proto) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = match kind {
        SocketKind::Raw => Type::RAW,
        SocketKind::Datagram => Type::DGRAM,
    };
    let sock = Socket::new(domain, ty, Some(proto))?;
    sock.set_nonblocking(true)?;
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)?;
    // Report receive-queue overflows with each packet (diagnostics only).
    let _ = setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1);
    // FORCE variants exceed net.core.[rw]mem_max with CAP_NET_ADMIN; fall
    // back to the capped ones without it.
    if setsockopt_int(
        &sock,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        SOCKET_BUFFER as i32,
    )
    .is_err()
    {
        sock.set_recv_buffer_size(SOCKET_BUFFER)?;
    }
    if setsockopt_int(
        &sock,
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        SOCKET_BUFFER as i32,
    )
    .is_err()
    {
        sock.set_send_buffer_size(SOCKET_BUFFER)?;
    }
    if family == Family::V4 {
        // Don't fragment: an echo request of a few dozen bytes never needs
        // it, and a DF packet gets IP id 0 instead of one from the kernel's
        // shared id generator (a hash and an atomic per packet).
        let _ = setsockopt_int(
            &sock,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        );
    }
    if kind == SocketKind::Raw {
        match family {
            Family::V4 => {
                // Bit set = type blocked: pass only echo reply (type 0).
                let mask: u32 = !1;
                setsockopt_raw(&sock, SOL_RAW, ICMP_FILTER, &mask)?;
            }
            Family::V6 => {
                let mut filter = [u32::MAX; 8];
                filter[(ICMPV6_ECHO_REPLY >> 5) as usize] &= !(1 << (ICMPV6_ECHO_REPLY & 31));
                setsockopt_raw(&sock, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)?;
            }
        }
    }
    Ok(sock)
}

/// Ask for software transmit timestamps, returned with the packet on the
/// error queue. False when the kernel refuses (the engine then keeps the
/// clock read before each batch as the send time).
fn enable_tx_timestamps(sock: &Socket) -> bool {
    let flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as i32).is_ok()
}

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: i32,
) -> io::Result<()> {
    setsockopt_raw(sock, level, name, &value)
}

fn setsockopt_raw<T>(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T of the size we pass.
    let ret = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_sockaddr(ip: IpAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match ip {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn read_sockaddr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// Write one `IP_PKTINFO` / `IPV6_PKTINFO` control message selecting
/// `source`, and set `msg_controllen`.
///
/// # Safety
/// `h.msg_control` must point to at least [`CMSG_ROOM`] writable bytes
/// aligned for `cmsghdr`.
unsafe fn write_pktinfo(h: &mut libc::msghdr, source: IpAddr) {
    // SAFETY: the caller guarantees the buffer; CMSG_SPACE of either
    // pktinfo is at most 40 <= CMSG_ROOM, so CMSG_FIRSTHDR is non-null and
    // the data fits.
    unsafe {
        match source {
            IpAddr::V4(a) => {
                let size = mem::size_of::<libc::in_pktinfo>() as libc::c_uint;
                h.msg_controllen = libc::CMSG_SPACE(size) as usize;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as usize;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
            }
            IpAddr::V6(a) => {
                let size = mem::size_of::<libc::in6_pktinfo>() as libc::c_uint;
                h.msg_controllen = libc::CMSG_SPACE(size) as usize;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as usize;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: a.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
            }
        }
    }
}

/// What the control messages of a received message say: kernel timestamps,
/// the `SO_RXQ_OVFL` drop count, and whether it is a transmit timestamp.
///
/// # Safety
/// `h` must be a header just filled by `recvmsg`/`recvmmsg` whose control
/// buffer is still alive.
unsafe fn read_cmsgs(h: &libc::msghdr) -> Cmsgs {
    let mut out = Cmsgs::default();
    let ns = |t: libc::timespec| match (u64::try_from(t.tv_sec), u64::try_from(t.tv_nsec)) {
        (Ok(s), Ok(n)) if s != 0 || n != 0 => Some(s * 1_000_000_000 + n),
        _ => None,
    };
    // SAFETY: walking the control messages the kernel wrote, with the libc
    // macros that bound-check against msg_controllen; each payload is read
    // unaligned with the type its level and type say it has.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    out.timestampns = ns(std::ptr::read_unaligned(data.cast()));
                }
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => {
                    // struct scm_timestamping { timespec ts[3]; }: [0] is
                    // the software stamp.
                    let t: [libc::timespec; 3] = std::ptr::read_unaligned(data.cast());
                    out.timestamping = ns(t[0]);
                }
                (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                    out.drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                }
                (libc::SOL_IP, libc::IP_RECVERR) | (libc::SOL_IPV6, libc::IPV6_RECVERR) => {
                    let e: libc::sock_extended_err = std::ptr::read_unaligned(data.cast());
                    out.tx_stamp = e.ee_errno == libc::ENOMSG as u32
                        && e.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                        && e.ee_info == SCM_TSTAMP_SND;
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    out
}

/// `SCM_TSTAMP_SND` of `linux/errqueue.h`: the stamp was taken when the
/// device took the packet.
const SCM_TSTAMP_SND: u32 = 0;

/// CLOCK_REALTIME now, in ns since the Unix epoch: the clock of
/// `SO_TIMESTAMPNS`, read the way the kernel timestamps are expressed.
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Whether `addr` is a local address of this network namespace, found by
/// binding a throwaway UDP socket to it (`EADDRNOTAVAIL` = not local). This is
/// the kernel's own notion of local (it honours `local` routes, as the test
/// lab's any-IP ranges use), so a `true` here means the kernel will accept it
/// as a per-packet source. Caveat: with `net.ipv4.ip_nonlocal_bind=1` every
/// address binds; sends from a non-local source then fail with `EINVAL` and
/// the engine reports them as send errors.
pub fn source_is_local(addr: IpAddr) -> io::Result<bool> {
    match std::net::UdpSocket::bind((addr, 0)) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips() {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        for ip in [
            IpAddr::V4(Ipv4Addr::new(198, 18, 3, 4)),
            IpAddr::V6("2001:db8::42".parse().unwrap()),
        ] {
            let len = write_sockaddr(ip, &mut ss);
            assert_eq!(read_sockaddr(&ss, len), Some(ip));
            assert_eq!(read_sockaddr(&ss, 2), None);
        }
    }

    #[test]
    fn loopback_is_local_and_benchmark_range_is_not() {
        assert!(source_is_local(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap());
        // 192.0.2.0/24 (TEST-NET-1) is never assigned on test machines.
        assert!(!source_is_local(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77))).unwrap());
    }

    #[test]
    fn permission_error_names_both_remedies() {
        let e = OpenFailure::Permission {
            raw: Some(io::Error::from_raw_os_error(libc::EPERM)),
            datagram: Some(io::Error::from_raw_os_error(libc::EACCES)),
        }
        .to_string();
        assert!(e.contains("CAP_NET_RAW"), "{e}");
        assert!(e.contains("ping_group_range"), "{e}");
    }

    #[test]
    fn realtime_clock_is_after_2020() {
        assert!(realtime_ns() > 1_577_836_800_000_000_000);
    }
}
