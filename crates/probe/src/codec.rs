//! ICMP echo request/reply encoding and parsing, as pure functions.
//!
//! Nothing here touches a socket, so every function can be tested against
//! hand-built packets.
//!
//! # Packet layout
//!
//! ```text
//! ICMP header (8 bytes)   type, code, checksum, identifier, sequence
//! probe token (24 bytes)  magic "vpnm", engine tag u32, slot u32,
//!                         generation u16, probe index u16, send time u64 (ns)
//! padding                 bytes 0, 1, 2, ... up to the configured payload size
//! ```
//!
//! All multi-byte fields are big-endian. The token is what matches a reply to
//! its probe: ICMP datagram ("ping") sockets rewrite the identifier, and the
//! 16-bit sequence alone is too small to tell 100 000 monitors apart, so the
//! payload carries the monitor slot, a slot generation (so a reply to a removed
//! monitor can never be credited to the monitor that reused its slot) and the
//! exact send timestamp (so a reply to an earlier window is recognised as
//! late instead of being counted twice).
//!
//! # Checksums
//!
//! IPv4: we compute the ICMP checksum when encoding and verify it when parsing
//! (raw IPv4 sockets see packets before the kernel's ICMP layer has checked
//! them). IPv6: the ICMPv6 checksum covers a pseudo-header with both
//! addresses; the kernel always computes it for raw ICMPv6 sockets (RFC 3542
//! §3.1, the `IPV6_CHECKSUM` offset is fixed at 2) and for ICMPv6 datagram
//! sockets, and it drops incoming packets with a bad checksum before they
//! reach either kind of socket. So for IPv6 the field is left zero on encode
//! and not checked on parse.

use std::fmt;

/// Length of the ICMP echo header.
pub const ICMP_HEADER_LEN: usize = 8;
/// Length of the probe token at the start of the echo payload.
pub const TOKEN_LEN: usize = 24;
/// Magic bytes at the start of every probe token.
pub const MAGIC: [u8; 4] = *b"vpnm";

const ICMPV4_ECHO_REPLY: u8 = 0;
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const IPPROTO_ICMP: u8 = 1;

/// Address family of a packet or socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 / ICMP.
    V4,
    /// IPv6 / ICMPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: std::net::IpAddr) -> Self {
        match addr {
            std::net::IpAddr::V4(_) => Family::V4,
            std::net::IpAddr::V6(_) => Family::V6,
        }
    }

    /// Index for per-family arrays (0 = IPv4, 1 = IPv6).
    pub fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    fn echo_request(self) -> u8 {
        match self {
            Family::V4 => ICMPV4_ECHO_REQUEST,
            Family::V6 => ICMPV6_ECHO_REQUEST,
        }
    }

    fn echo_reply(self) -> u8 {
        match self {
            Family::V4 => ICMPV4_ECHO_REPLY,
            Family::V6 => ICMPV6_ECHO_REPLY,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// What a probe carries in its payload to be matched on reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeToken {
    /// Random per engine: tells our probes from other programs' and other
    /// engines' (a raw socket sees every echo reply in the namespace).
    pub engine_tag: u32,
    /// Index of the monitor in the engine's slot table.
    pub slot: u32,
    /// Generation of that slot; bumped whenever the slot is freed or its
    /// monitor changes.
    pub generation: u16,
    /// Index of the probe within its window (0..count).
    pub probe: u16,
    /// CLOCK_REALTIME nanoseconds taken right before the send.
    pub sent_ns: u64,
}

impl ProbeToken {
    /// Write the token into the first [`TOKEN_LEN`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`TOKEN_LEN`]; callers size buffers from a
    /// validated payload size.
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.engine_tag.to_be_bytes());
        out[8..12].copy_from_slice(&self.slot.to_be_bytes());
        out[12..14].copy_from_slice(&self.generation.to_be_bytes());
        out[14..16].copy_from_slice(&self.probe.to_be_bytes());
        out[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Read a token from the start of an echo payload; `None` when the
    /// payload is too short or does not start with [`MAGIC`] (someone else's
    /// ping).
    pub fn read(payload: &[u8]) -> Option<Self> {
        let t = payload.get(..TOKEN_LEN)?;
        if t[0..4] != MAGIC {
            return None;
        }
        Some(ProbeToken {
            engine_tag: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            slot: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            generation: u16::from_be_bytes([t[12], t[13]]),
            probe: u16::from_be_bytes([t[14], t[15]]),
            sent_ns: u64::from_be_bytes([t[16], t[17], t[18], t[19], t[20], t[21], t[22], t[23]]),
        })
    }
}

/// The Internet checksum (RFC 1071): ones' complement of the ones' complement
/// sum of 16-bit big-endian words, an odd trailing byte padded with zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Encode an echo request into `buf`, which must be exactly
/// `ICMP_HEADER_LEN + payload_size` bytes with `payload_size >= TOKEN_LEN`.
///
/// For IPv4 the checksum is filled in; for IPv6 it is left zero for the
/// kernel (see the module docs). For ICMP datagram sockets the kernel also
/// replaces `identifier` with the socket's own.
///
/// # Panics
/// If `buf` is shorter than `ICMP_HEADER_LEN + TOKEN_LEN`.
pub fn encode_echo_request(
    family: Family,
    buf: &mut [u8],
    identifier: u16,
    sequence: u16,
    token: &ProbeToken,
) {
    buf[0] = family.echo_request();
    buf[1] = 0;
    buf[2] = 0;
    buf[3] = 0;
    buf[4..6].copy_from_slice(&identifier.to_be_bytes());
    buf[6..8].copy_from_slice(&sequence.to_be_bytes());
    token.write(&mut buf[ICMP_HEADER_LEN..]);
    for (i, b) in buf[ICMP_HEADER_LEN + TOKEN_LEN..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if family == Family::V4 {
        let sum = internet_checksum(buf);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Why a received packet is not an echo reply we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its headers say, or than an ICMP echo header.
    Truncated,
    /// IPv4 header with a bad version, header length or total length.
    BadIpHeader,
    /// IPv4 packet that is not ICMP.
    NotIcmp,
    /// A fragment (should never reach a raw socket; the kernel reassembles).
    Fragment,
    /// ICMPv4 checksum mismatch.
    BadChecksum,
    /// An ICMP message other than an echo reply (type given).
    NotEchoReply(u8),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated => f.write_str("truncated packet"),
            ParseError::BadIpHeader => f.write_str("malformed IPv4 header"),
            ParseError::NotIcmp => f.write_str("not an ICMP packet"),
            ParseError::Fragment => f.write_str("IPv4 fragment"),
            ParseError::BadChecksum => f.write_str("bad ICMP checksum"),
            ParseError::NotEchoReply(t) => write!(f, "ICMP type {t} is not an echo reply"),
        }
    }
}

/// A parsed echo reply, borrowing its payload from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// ICMP identifier (for datagram sockets: the socket's, set by the kernel).
    pub identifier: u16,
    /// ICMP sequence number.
    pub sequence: u16,
    /// Echo payload (starts with our [`ProbeToken`] when the reply is ours).
    pub payload: &'a [u8],
}

/// Parse an ICMP message without IP header: what ICMP datagram sockets of
/// both families and raw ICMPv6 sockets deliver.
///
/// `verify_checksum` should be true for ICMPv4 and false for ICMPv6 (see the
/// module docs).
pub fn parse_icmp(
    family: Family,
    icmp: &[u8],
    verify_checksum: bool,
) -> Result<EchoReply<'_>, ParseError> {
    if icmp.len() < ICMP_HEADER_LEN {
        return Err(ParseError::Truncated);
    }
    if icmp[0] != family.echo_reply() {
        return Err(ParseError::NotEchoReply(icmp[0]));
    }
    if icmp[1] != 0 {
        return Err(ParseError::NotEchoReply(icmp[0]));
    }
    if verify_checksum && internet_checksum(icmp) != 0 {
        return Err(ParseError::BadChecksum);
    }
    Ok(EchoReply {
        identifier: u16::from_be_bytes([icmp[4], icmp[5]]),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: &icmp[ICMP_HEADER_LEN..],
    })
}

/// Parse an IPv4 packet as delivered by a raw ICMP socket (IP header
/// included, options honoured through IHL), then its ICMP echo reply.
pub fn parse_ipv4_packet(packet: &[u8]) -> Result<EchoReply<'_>, ParseError> {
    let first = *packet.first().ok_or(ParseError::Truncated)?;
    if first >> 4 != 4 {
        return Err(ParseError::BadIpHeader);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 {
        return Err(ParseError::BadIpHeader);
    }
    if packet.len() < header_len {
        return Err(ParseError::Truncated);
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total_len < header_len {
        return Err(ParseError::BadIpHeader);
    }
    if total_len > packet.len() {
        return Err(ParseError::Truncated);
    }
    let flags_fragment = u16::from_be_bytes([packet[6], packet[7]]);
    // More-fragments flag or a non-zero fragment offset.
    if flags_fragment & 0x3fff != 0 {
        return Err(ParseError::Fragment);
    }
    if packet[9] != IPPROTO_ICMP {
        return Err(ParseError::NotIcmp);
    }
    parse_icmp(Family::V4, &packet[header_len..total_len], true)
}

/// Find our own echo request in what the error queue returns with a kernel
/// transmit timestamp: the packet as it left, with whatever link-layer and
/// IP headers the device saw in front, so the ICMP message (`icmp_len`
/// bytes, as we built it) is its tail. `None` when the tail is not an echo
/// request of `family`.
pub fn parse_sent_echo(family: Family, data: &[u8], icmp_len: usize) -> Option<EchoReply<'_>> {
    if icmp_len < ICMP_HEADER_LEN || data.len() < icmp_len {
        return None;
    }
    let icmp = &data[data.len() - icmp_len..];
    if icmp[0] != family.echo_request() || icmp[1] != 0 {
        return None;
    }
    Some(EchoReply {
        identifier: u16::from_be_bytes([icmp[4], icmp[5]]),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: &icmp[ICMP_HEADER_LEN..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: ProbeToken = ProbeToken {
        engine_tag: 0xdead_beef,
        slot: 7,
        generation: 3,
        probe: 2,
        sent_ns: 0x0102_0304_0506_0708,
    };

    /// An echo reply built by hand, byte by byte: id 0x1234, seq 0x0005,
    /// payload = our token + 4 padding bytes. The checksum 0x5927 was worked
    /// out independently of `internet_checksum` (Python, RFC 1071 sum).
    const REPLY_V4_ICMP: [u8; 36] = [
        0x00, 0x00, 0x59, 0x27, 0x12, 0x34, 0x00, 0x05, // type, code, csum, id, seq
        b'v', b'p', b'n', b'm', 0xde, 0xad, 0xbe, 0xef, // magic, engine tag
        0x00, 0x00, 0x00, 0x07, 0x00, 0x03, 0x00, 0x02, // slot, generation, probe
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // sent_ns
        0x00, 0x01, 0x02, 0x03, // padding
    ];

    fn ipv4_header(total_len: u16, ihl_words: u8, proto: u8) -> Vec<u8> {
        let mut h = vec![
            0x40 | ihl_words,
            0x00,
            (total_len >> 8) as u8,
            total_len as u8,
            0x00,
            0x01,
            0x00,
            0x00,
            64,
            proto,
            0x00,
            0x00,
            127,
            0,
            0,
            1,
            127,
            0,
            0,
            1,
        ];
        // IP options (NOPs) when the header is longer than 20 bytes.
        h.resize(usize::from(ihl_words) * 4, 0x01);
        h
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn checksum_pads_odd_length_with_zero() {
        assert_eq!(internet_checksum(&[0x12, 0x34, 0x56]), !0x6834);
        assert_eq!(internet_checksum(&[]), 0xffff);
    }

    #[test]
    fn checksum_of_packet_with_its_checksum_is_zero() {
        assert_eq!(internet_checksum(&REPLY_V4_ICMP), 0);
    }

    #[test]
    fn token_round_trips() {
        let mut buf = [0u8; TOKEN_LEN];
        TOKEN.write(&mut buf);
        assert_eq!(ProbeToken::read(&buf), Some(TOKEN));
        assert_eq!(&buf[..], &REPLY_V4_ICMP[8..32]);
    }

    #[test]
    fn token_rejects_foreign_and_short_payloads() {
        // iputils ping fills its payload with a timeval and a byte ramp.
        let foreign = [0u8; 48];
        assert_eq!(ProbeToken::read(&foreign), None);
        assert_eq!(ProbeToken::read(&REPLY_V4_ICMP[8..31]), None);
    }

    #[test]
    fn encode_v4_request_matches_hand_built_bytes() {
        let mut buf = [0u8; 36];
        encode_echo_request(Family::V4, &mut buf, 0x1234, 5, &TOKEN);
        let mut expected = REPLY_V4_ICMP;
        expected[0] = 8;
        // Type 8 instead of 0 adds 0x0800 to the sum, so the checksum drops by it.
        expected[2..4].copy_from_slice(&(0x5927u16 - 0x0800).to_be_bytes());
        assert_eq!(buf, expected);
        assert_eq!(internet_checksum(&buf), 0);
    }

    #[test]
    fn encode_v6_request_leaves_checksum_to_kernel() {
        let mut buf = [0xffu8; 40];
        encode_echo_request(Family::V6, &mut buf, 0xabcd, 0xfffe, &TOKEN);
        assert_eq!(&buf[0..8], &[128, 0, 0, 0, 0xab, 0xcd, 0xff, 0xfe]);
        assert_eq!(ProbeToken::read(&buf[8..]), Some(TOKEN));
        assert_eq!(&buf[32..], &[0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn parse_v4_datagram_reply() {
        let reply = parse_icmp(Family::V4, &REPLY_V4_ICMP, true).unwrap();
        assert_eq!(reply.identifier, 0x1234);
        assert_eq!(reply.sequence, 5);
        assert_eq!(reply.payload, &REPLY_V4_ICMP[8..]);
        assert_eq!(ProbeToken::read(reply.payload), Some(TOKEN));
    }

    #[test]
    fn parse_v4_rejects_bad_checksum() {
        let mut pkt = REPLY_V4_ICMP;
        pkt[35] ^= 0x40;
        assert_eq!(
            parse_icmp(Family::V4, &pkt, true),
            Err(ParseError::BadChecksum)
        );
        // Without verification (IPv6 path) the same bytes parse.
        assert!(parse_icmp(Family::V4, &pkt, false).is_ok());
    }

    #[test]
    fn parse_rejects_requests_and_other_types() {
        let mut pkt = REPLY_V4_ICMP;
        pkt[0] = 8;
        assert_eq!(
            parse_icmp(Family::V4, &pkt, false),
            Err(ParseError::NotEchoReply(8))
        );
        pkt[0] = 3; // destination unreachable
        assert_eq!(
            parse_icmp(Family::V4, &pkt, false),
            Err(ParseError::NotEchoReply(3))
        );
        let mut code = REPLY_V4_ICMP;
        code[1] = 1;
        assert_eq!(
            parse_icmp(Family::V4, &code, false),
            Err(ParseError::NotEchoReply(0))
        );
    }

    #[test]
    fn parse_v6_reply_type_129() {
        let mut pkt = REPLY_V4_ICMP;
        pkt[0] = 129;
        let reply = parse_icmp(Family::V6, &pkt, false).unwrap();
        assert_eq!(reply.sequence, 5);
        assert_eq!(
            parse_icmp(Family::V6, &REPLY_V4_ICMP, false),
            Err(ParseError::NotEchoReply(0))
        );
    }

    #[test]
    fn parse_truncated_icmp_header() {
        for len in 0..ICMP_HEADER_LEN {
            assert_eq!(
                parse_icmp(Family::V4, &REPLY_V4_ICMP[..len], false),
                Err(ParseError::Truncated),
                "len {len}"
            );
        }
        // A bare header parses; the token is then simply absent.
        let mut hdr = [0u8, 0, 0, 0, 0, 0, 0, 0];
        let sum = internet_checksum(&hdr);
        hdr[2..4].copy_from_slice(&sum.to_be_bytes());
        let reply = parse_icmp(Family::V4, &hdr, true).unwrap();
        assert!(reply.payload.is_empty());
        assert_eq!(ProbeToken::read(reply.payload), None);
    }

    #[test]
    fn parse_raw_ipv4_packet() {
        let mut pkt = ipv4_header(20 + 36, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP);
        let reply = parse_ipv4_packet(&pkt).unwrap();
        assert_eq!(reply.sequence, 5);
        assert_eq!(ProbeToken::read(reply.payload), Some(TOKEN));
    }

    #[test]
    fn parse_raw_ipv4_packet_with_options_honours_ihl() {
        let mut pkt = ipv4_header(28 + 36, 7, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP);
        let reply = parse_ipv4_packet(&pkt).unwrap();
        assert_eq!(reply.identifier, 0x1234);
        assert_eq!(ProbeToken::read(reply.payload), Some(TOKEN));
    }

    #[test]
    fn parse_raw_ipv4_ignores_bytes_beyond_total_length() {
        let mut pkt = ipv4_header(20 + 36, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP);
        pkt.extend_from_slice(&[0xaa; 10]);
        let reply = parse_ipv4_packet(&pkt).unwrap();
        assert_eq!(reply.payload.len(), 28);
    }

    #[test]
    fn parse_raw_ipv4_malformed_headers() {
        assert_eq!(parse_ipv4_packet(&[]), Err(ParseError::Truncated));
        // IPv6 version nibble.
        let mut v6 = ipv4_header(56, 5, 1);
        v6[0] = 0x65;
        assert_eq!(parse_ipv4_packet(&v6), Err(ParseError::BadIpHeader));
        // IHL below 5 words.
        let mut short_ihl = ipv4_header(56, 5, 1);
        short_ihl[0] = 0x44;
        assert_eq!(parse_ipv4_packet(&short_ihl), Err(ParseError::BadIpHeader));
        // IHL longer than the packet.
        assert_eq!(
            parse_ipv4_packet(&ipv4_header(60, 15, 1)[..40]),
            Err(ParseError::Truncated)
        );
        // Total length shorter than the header.
        let mut pkt = ipv4_header(10, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP);
        assert_eq!(parse_ipv4_packet(&pkt), Err(ParseError::BadIpHeader));
        // Total length longer than what arrived.
        let mut pkt = ipv4_header(20 + 36, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP[..30]);
        assert_eq!(parse_ipv4_packet(&pkt), Err(ParseError::Truncated));
        // UDP, not ICMP.
        let mut udp = ipv4_header(56, 5, 17);
        udp.extend_from_slice(&REPLY_V4_ICMP);
        assert_eq!(parse_ipv4_packet(&udp), Err(ParseError::NotIcmp));
        // A fragment (MF set) and a later fragment (offset 185).
        for frag in [[0x20, 0x00], [0x00, 0xb9]] {
            let mut f = ipv4_header(56, 5, 1);
            f[6..8].copy_from_slice(&frag);
            f.extend_from_slice(&REPLY_V4_ICMP);
            assert_eq!(parse_ipv4_packet(&f), Err(ParseError::Fragment));
        }
        // Don't-fragment alone is fine.
        let mut df = ipv4_header(56, 5, 1);
        df[6] = 0x40;
        df.extend_from_slice(&REPLY_V4_ICMP);
        assert!(parse_ipv4_packet(&df).is_ok());
    }

    #[test]
    fn parse_raw_ipv4_truncated_icmp() {
        let mut pkt = ipv4_header(20 + 6, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP[..6]);
        assert_eq!(parse_ipv4_packet(&pkt), Err(ParseError::Truncated));
    }

    #[test]
    fn every_prefix_of_a_valid_packet_is_rejected_or_parsed_without_panic() {
        let mut pkt = ipv4_header(20 + 36, 5, 1);
        pkt.extend_from_slice(&REPLY_V4_ICMP);
        for len in 0..pkt.len() {
            assert!(parse_ipv4_packet(&pkt[..len]).is_err(), "prefix {len}");
        }
        for len in 0..REPLY_V4_ICMP.len() {
            let _ = parse_icmp(Family::V6, &REPLY_V4_ICMP[..len], false);
        }
    }

    #[test]
    fn sent_echo_is_found_behind_link_and_ip_headers() {
        let token = ProbeToken {
            engine_tag: 7,
            slot: 42,
            generation: 3,
            probe: 1,
            sent_ns: 1_700_000_000_123_456_789,
        };
        for family in [Family::V4, Family::V6] {
            let mut icmp = vec![0; ICMP_HEADER_LEN + 32];
            encode_echo_request(family, &mut icmp, 0x1234, 77, &token);
            // Ethernet header and an IPv4 header in front, as a veth's
            // transmit timestamp returns it.
            let mut frame = vec![0xee; 14];
            frame.extend(ipv4_header(20 + icmp.len() as u16, 5, 1));
            frame.extend_from_slice(&icmp);
            let e = parse_sent_echo(family, &frame, icmp.len()).unwrap();
            assert_eq!((e.identifier, e.sequence), (0x1234, 77));
            assert_eq!(ProbeToken::read(e.payload), Some(token));
            // The bare ICMP message works too.
            assert!(parse_sent_echo(family, &icmp, icmp.len()).is_some());
            // Too short, or the wrong family's type: not ours.
            assert!(parse_sent_echo(family, &icmp[1..], icmp.len()).is_none());
            assert!(parse_sent_echo(family, &icmp, 4).is_none());
            let other = if family == Family::V4 {
                Family::V6
            } else {
                Family::V4
            };
            assert!(parse_sent_echo(other, &frame, icmp.len()).is_none());
        }
    }
}
