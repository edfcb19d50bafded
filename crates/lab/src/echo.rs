//! ICMPv4 echo codec for the responder: pure functions over bytes.
//!
//! A raw `IPPROTO_ICMP` socket on Linux hands over whole IPv4 packets (header
//! in network byte order, reassembled); the reply is a whole IPv4 packet too,
//! sent on an `IPPROTO_RAW` socket (which implies `IP_HDRINCL`), so its
//! source can be whichever lab address was probed, exactly as the kernel's
//! own echo reply would be.

use std::net::Ipv4Addr;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const IPPROTO_ICMP: u8 = 1;
const IPV4_HEADER_LEN: usize = 20;
const ICMP_HEADER_LEN: usize = 8;

/// Why a received packet is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Shorter than its headers say, or than an IPv4 + ICMP header.
    Truncated,
    NotIpv4,
    NotIcmp,
    /// Some other ICMP message (replies, errors); the common case, not an error.
    NotEchoRequest,
    BadChecksum,
}

/// An echo request, borrowed from the received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRequest<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub tos: u8,
    /// The whole ICMP message: header (type 8) and payload.
    pub icmp: &'a [u8],
}

impl EchoRequest<'_> {
    pub fn identifier(&self) -> u16 {
        u16::from_be_bytes([self.icmp[4], self.icmp[5]])
    }

    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.icmp[6], self.icmp[7]])
    }

    /// Length of the reply [`build_reply`] writes.
    pub fn reply_len(&self) -> usize {
        IPV4_HEADER_LEN + self.icmp.len()
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses a received IPv4 packet as an ICMP echo request.
pub fn parse_request(packet: &[u8]) -> Result<EchoRequest<'_>, Rejected> {
    let first = *packet.first().ok_or(Rejected::Truncated)?;
    if first >> 4 != 4 {
        return Err(Rejected::NotIpv4);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN || packet.len() < ihl {
        return Err(Rejected::Truncated);
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < ihl + ICMP_HEADER_LEN || packet.len() < total {
        return Err(Rejected::Truncated);
    }
    if packet[9] != IPPROTO_ICMP {
        return Err(Rejected::NotIcmp);
    }
    let icmp = &packet[ihl..total];
    if icmp[0] != ICMP_ECHO_REQUEST || icmp[1] != 0 {
        return Err(Rejected::NotEchoRequest);
    }
    if checksum(icmp) != 0 {
        return Err(Rejected::BadChecksum);
    }
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Ok(EchoRequest {
        src: addr(12),
        dst: addr(16),
        tos: packet[1],
        icmp,
    })
}

/// Writes the echo reply to `req` into `out` (cleared first): an IPv4
/// header without options from the probed address back to the prober, TTL
/// 64, DF, the request's TOS, both checksums filled in; the ICMP identifier,
/// sequence and payload unchanged. IP options of the request are not echoed.
pub fn build_reply(req: &EchoRequest<'_>, out: &mut Vec<u8>) {
    out.clear();
    let total = req.reply_len();
    let total16 = u16::try_from(total).unwrap_or(u16::MAX);
    out.extend_from_slice(&[0x45, req.tos]);
    out.extend_from_slice(&total16.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, IPPROTO_ICMP, 0, 0]);
    out.extend_from_slice(&req.dst.octets());
    out.extend_from_slice(&req.src.octets());
    let ip_sum = checksum(&out[..IPV4_HEADER_LEN]);
    out[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(req.icmp);
    let icmp = &mut out[IPV4_HEADER_LEN..];
    icmp[0] = ICMP_ECHO_REPLY;
    icmp[2] = 0;
    icmp[3] = 0;
    let icmp_sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&icmp_sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping -c1 -s 8 198.18.1.1` from 198.18.0.1 as a raw socket receives it:
    /// id 0x1234, seq 1, payload 8 bytes, header checksums as on the wire.
    fn request() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 198, 18, 0, 1,
            198, 18, 1, 1, // IPv4
            0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, // ICMP echo request
            b'v', b'p', b'n', b'm', b'o', b'n', 0x00, 0x07, // payload
        ];
        let s = checksum(&p[..20]);
        p[10..12].copy_from_slice(&s.to_be_bytes());
        let s = checksum(&p[20..]);
        p[22..24].copy_from_slice(&s.to_be_bytes());
        p
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2; checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // Odd length: the last byte is padded with zero.
        assert_eq!(checksum(&[0x01]), !0x0100);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn echo_request_is_parsed() {
        let p = request();
        let r = parse_request(&p).unwrap();
        assert_eq!(r.src, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(r.dst, Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(r.identifier(), 0x1234);
        assert_eq!(r.sequence(), 1);
        assert_eq!(r.icmp.len(), 16);
    }

    #[test]
    fn reply_swaps_addresses_keeps_payload_and_has_valid_checksums() {
        let p = request();
        let r = parse_request(&p).unwrap();
        let mut out = Vec::new();
        build_reply(&r, &mut out);
        let expected_head = [
            0x45, 0x00, 0x00, 0x24, 0x00, 0x00, 0x40, 0x00, 0x40, 0x01, // up to checksum
        ];
        assert_eq!(out[..10], expected_head);
        assert_eq!(out[12..16], [198, 18, 1, 1]);
        assert_eq!(out[16..20], [198, 18, 0, 1]);
        assert_eq!(checksum(&out[..20]), 0, "IP header checksum");
        assert_eq!(out[20], 0, "echo reply");
        assert_eq!(out[21], 0);
        assert_eq!(out[24..], p[24..], "id, seq and payload unchanged");
        assert_eq!(checksum(&out[20..]), 0, "ICMP checksum");
        assert_eq!(out.len(), r.reply_len());
    }

    #[test]
    fn odd_length_payload_gets_a_valid_checksum() {
        let mut p = request();
        p.push(0x5a);
        p[3] += 1;
        p[22] = 0;
        p[23] = 0;
        let s = checksum(&p[20..]);
        p[22..24].copy_from_slice(&s.to_be_bytes());
        let mut out = Vec::new();
        build_reply(&parse_request(&p).unwrap(), &mut out);
        assert_eq!(out.len(), 37);
        assert_eq!(checksum(&out[20..]), 0);
    }

    #[test]
    fn ip_options_are_skipped_and_not_echoed() {
        let p = request();
        let mut with_opts = p[..20].to_vec();
        with_opts[0] = 0x46;
        with_opts[3] += 4;
        with_opts.extend_from_slice(&[0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
        with_opts.extend_from_slice(&p[20..]);
        let r = parse_request(&with_opts).unwrap();
        assert_eq!(r.icmp, &p[20..]);
        let mut out = Vec::new();
        build_reply(&r, &mut out);
        assert_eq!(out[0], 0x45);
        assert_eq!(out.len(), 36);
    }

    #[test]
    fn trailing_bytes_beyond_total_length_are_ignored() {
        let mut p = request();
        p.extend_from_slice(&[0xee; 5]);
        assert_eq!(parse_request(&p).unwrap().icmp.len(), 16);
    }

    #[test]
    fn malformed_packets_are_rejected() {
        let p = request();
        assert_eq!(parse_request(&[]), Err(Rejected::Truncated));
        for cut in [1, 19, 20, 27, 35] {
            assert_eq!(
                parse_request(&p[..cut]),
                Err(Rejected::Truncated),
                "cut at {cut}"
            );
        }
        let mut v6 = p.clone();
        v6[0] = 0x60;
        assert_eq!(parse_request(&v6), Err(Rejected::NotIpv4));
        let mut short_ihl = p.clone();
        short_ihl[0] = 0x44;
        assert_eq!(parse_request(&short_ihl), Err(Rejected::Truncated));
        let mut short_total = p.clone();
        short_total[3] = 27;
        assert_eq!(parse_request(&short_total), Err(Rejected::Truncated));
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(parse_request(&udp), Err(Rejected::NotIcmp));
        let mut reply = p.clone();
        reply[20] = 0;
        assert_eq!(parse_request(&reply), Err(Rejected::NotEchoRequest));
        let mut code = p.clone();
        code[21] = 1;
        assert_eq!(parse_request(&code), Err(Rejected::NotEchoRequest));
        let mut corrupt = p.clone();
        corrupt[30] ^= 0xff;
        assert_eq!(parse_request(&corrupt), Err(Rejected::BadChecksum));
    }
}
