//! VPN connections (`vpn-connection`, singular on the wire).

use crate::DomainError;
use crate::ids::{ConnectionId, CustomerGatewayId, GatewayId, MonitorId};
use crate::validate::{self, Tag};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// Dead peer detection (`Dpd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dpd {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

/// IKE policy (`IkePolicy`); in records every field is filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkePolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ike_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase1_negotiation_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpd: Option<Dpd>,
}

/// IPsec policy (`IpsecPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pfs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encapsulation_mode: Option<String>,
}

/// A policy rule (`PolicyRule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Vec<String>>,
}

/// `CreateVpnConnectionRequestBodyContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vgw_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vgw_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgw_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subnets: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_local_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_peer_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_nqa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_hub: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_health_check: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<Vec<PolicyRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ikepolicy: Option<IkePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsecpolicy: Option<IpsecPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules_v6: Option<Vec<PolicyRule>>,
}

/// `UpdateVpnConnectionRequestBodyContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgw_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subnets: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_local_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_peer_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_hub: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<Vec<PolicyRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ikepolicy: Option<IkePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsecpolicy: Option<IpsecPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules_v6: Option<Vec<PolicyRule>>,
}

/// A VPN connection in its show shape (`ResponseVpnConnection`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: ConnectionId,
    pub name: String,
    pub status: String,
    pub vgw_id: GatewayId,
    pub vgw_ip: String,
    pub style: String,
    pub cgw_id: CustomerGatewayId,
    pub peer_subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_local_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_peer_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_nqa: Option<bool>,
    pub enable_hub: bool,
    /// Not in the show shape (`views::CONN_SHOW_DROP`): false when read from it.
    #[serde(default)]
    pub enable_health_check: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<Vec<PolicyRule>>,
    pub ikepolicy: IkePolicy,
    pub ipsecpolicy: IpsecPolicy,
    pub created_at: String,
    pub updated_at: String,
    pub enterprise_project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_monitor_id: Option<MonitorId>,
    pub ha_role: String,
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rules_v6: Option<Vec<PolicyRule>>,
}

fn opt_one_of(field: &str, v: &Option<String>, allowed: &[&str]) -> Result<(), DomainError> {
    match v {
        Some(v) => validate::one_of(field, v, allowed),
        None => Ok(()),
    }
}

fn opt_range(field: &str, v: Option<i64>, lo: i64, hi: i64) -> Result<(), DomainError> {
    match v {
        Some(v) => validate::range(field, v, lo, hi),
        None => Ok(()),
    }
}

fn merge<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
    if over.is_some() {
        base.clone_from(over);
    }
}

impl IkePolicy {
    /// The defaults of docs/spec/vpn-v5.md §3.3.
    pub fn defaults() -> IkePolicy {
        IkePolicy {
            ike_version: Some("v2".into()),
            phase1_negotiation_mode: Some("main".into()),
            authentication_algorithm: Some("sha2-256".into()),
            encryption_algorithm: Some("aes-128".into()),
            dh_group: Some("group15".into()),
            authentication_method: Some("pre-share".into()),
            lifetime_seconds: Some(86400),
            local_id_type: Some("ip".into()),
            local_id: None,
            peer_id_type: Some("ip".into()),
            peer_id: None,
            dpd: Some(Dpd {
                interval: Some(30),
                timeout: Some(15),
                msg: Some("seq-hash-notify".into()),
            }),
        }
    }

    fn validate(&self) -> Result<(), DomainError> {
        opt_one_of("ikepolicy.ike_version", &self.ike_version, &["v1", "v2"])?;
        opt_one_of(
            "ikepolicy.phase1_negotiation_mode",
            &self.phase1_negotiation_mode,
            &["main", "aggressive"],
        )?;
        opt_one_of(
            "ikepolicy.authentication_algorithm",
            &self.authentication_algorithm,
            &["sha2-512", "sha2-384", "sha2-256", "sha1", "md5", "sm3"],
        )?;
        opt_one_of(
            "ikepolicy.encryption_algorithm",
            &self.encryption_algorithm,
            &[
                "aes-256-gcm-16",
                "aes-128-gcm-16",
                "aes-256",
                "aes-192",
                "aes-128",
                "3des",
                "sm4",
            ],
        )?;
        opt_one_of(
            "ikepolicy.dh_group",
            &self.dh_group,
            &[
                "group1", "group2", "group5", "group14", "group15", "group16", "group19",
                "group20", "group21",
            ],
        )?;
        opt_one_of(
            "ikepolicy.authentication_method",
            &self.authentication_method,
            &["pre-share", "digital-envelope-v2"],
        )?;
        opt_range(
            "ikepolicy.lifetime_seconds",
            self.lifetime_seconds,
            60,
            604_800,
        )?;
        opt_one_of(
            "ikepolicy.local_id_type",
            &self.local_id_type,
            &["ip", "fqdn"],
        )?;
        opt_one_of(
            "ikepolicy.peer_id_type",
            &self.peer_id_type,
            &["ip", "fqdn", "any"],
        )?;
        if let Some(d) = &self.dpd {
            opt_range("ikepolicy.dpd.timeout", d.timeout, 2, 60)?;
            opt_range("ikepolicy.dpd.interval", d.interval, 10, 3600)?;
            opt_one_of(
                "ikepolicy.dpd.msg",
                &d.msg,
                &["seq-hash-notify", "seq-notify-hash"],
            )?;
        }
        Ok(())
    }

    fn merged(&self, over: &IkePolicy) -> IkePolicy {
        let mut m = self.clone();
        merge(&mut m.ike_version, &over.ike_version);
        merge(
            &mut m.phase1_negotiation_mode,
            &over.phase1_negotiation_mode,
        );
        merge(
            &mut m.authentication_algorithm,
            &over.authentication_algorithm,
        );
        merge(&mut m.encryption_algorithm, &over.encryption_algorithm);
        merge(&mut m.dh_group, &over.dh_group);
        merge(&mut m.authentication_method, &over.authentication_method);
        merge(&mut m.lifetime_seconds, &over.lifetime_seconds);
        merge(&mut m.local_id_type, &over.local_id_type);
        merge(&mut m.local_id, &over.local_id);
        merge(&mut m.peer_id_type, &over.peer_id_type);
        merge(&mut m.peer_id, &over.peer_id);
        if let Some(od) = &over.dpd {
            let mut d = m.dpd.clone().unwrap_or(Dpd {
                interval: None,
                timeout: None,
                msg: None,
            });
            merge(&mut d.interval, &od.interval);
            merge(&mut d.timeout, &od.timeout);
            merge(&mut d.msg, &od.msg);
            m.dpd = Some(d);
        }
        m
    }
}

impl IpsecPolicy {
    /// The defaults of docs/spec/vpn-v5.md §3.3.
    pub fn defaults() -> IpsecPolicy {
        IpsecPolicy {
            authentication_algorithm: Some("sha2-256".into()),
            encryption_algorithm: Some("aes-128".into()),
            pfs: Some("group15".into()),
            transform_protocol: Some("esp".into()),
            lifetime_seconds: Some(3600),
            encapsulation_mode: Some("tunnel".into()),
        }
    }

    fn validate(&self) -> Result<(), DomainError> {
        opt_one_of(
            "ipsecpolicy.authentication_algorithm",
            &self.authentication_algorithm,
            &["sha2-512", "sha2-384", "sha2-256", "sha1", "md5", "sm3"],
        )?;
        opt_one_of(
            "ipsecpolicy.encryption_algorithm",
            &self.encryption_algorithm,
            &[
                "aes-256-gcm-16",
                "aes-128-gcm-16",
                "aes-256",
                "aes-192",
                "aes-128",
                "3des",
                "sm4",
            ],
        )?;
        opt_one_of(
            "ipsecpolicy.pfs",
            &self.pfs,
            &[
                "group1", "group2", "group5", "group14", "group15", "group16", "group19",
                "group20", "group21", "disable",
            ],
        )?;
        opt_one_of(
            "ipsecpolicy.transform_protocol",
            &self.transform_protocol,
            &["esp"],
        )?;
        opt_range(
            "ipsecpolicy.lifetime_seconds",
            self.lifetime_seconds,
            30,
            604_800,
        )?;
        opt_one_of(
            "ipsecpolicy.encapsulation_mode",
            &self.encapsulation_mode,
            &["tunnel"],
        )?;
        Ok(())
    }

    fn merged(&self, over: &IpsecPolicy) -> IpsecPolicy {
        let mut m = self.clone();
        merge(
            &mut m.authentication_algorithm,
            &over.authentication_algorithm,
        );
        merge(&mut m.encryption_algorithm, &over.encryption_algorithm);
        merge(&mut m.pfs, &over.pfs);
        merge(&mut m.transform_protocol, &over.transform_protocol);
        merge(&mut m.lifetime_seconds, &over.lifetime_seconds);
        merge(&mut m.encapsulation_mode, &over.encapsulation_mode);
        m
    }
}

/// Checks a pre-shared key: 8-128 characters, at least three of upper case,
/// lower case, digits and the special characters the API allows.
pub fn validate_psk(field: &str, psk: &str) -> Result<(), DomainError> {
    const SPECIAL: &str = "~!@#$%^()-_+={ },./:;";
    let n = psk.chars().count();
    if !(8..=128).contains(&n) {
        return Err(DomainError::invalid(format!(
            "{field} must be 8-128 characters"
        )));
    }
    if psk
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !SPECIAL.contains(c))
    {
        return Err(DomainError::invalid(format!(
            "{field} may only contain letters, digits and {SPECIAL}"
        )));
    }
    let classes = [
        psk.chars().any(|c| c.is_ascii_uppercase()),
        psk.chars().any(|c| c.is_ascii_lowercase()),
        psk.chars().any(|c| c.is_ascii_digit()),
        psk.chars().any(|c| SPECIAL.contains(c)),
    ];
    if classes.iter().filter(|b| **b).count() < 3 {
        return Err(DomainError::invalid(format!(
            "{field} must contain at least three of: upper case, lower case, digits, special characters"
        )));
    }
    Ok(())
}

const RESERVED: &[&str] = &[
    "100.64.0.0/10",
    "214.0.0.0/8",
    "127.0.0.0/8",
    "224.0.0.0/4",
    "0.0.0.0/8",
];

/// Checks peer subnets and returns them in canonical form.
fn validate_peer_subnets(field: &str, v: &[String]) -> Result<Vec<String>, DomainError> {
    let v = validate::cidr_list(field, v, 50)?;
    validate::routable_subnets(field, &v)?;
    for c in &v {
        let net: ipnet::Ipv4Net = c
            .parse()
            .map_err(|_| DomainError::invalid(format!("{field}: bad CIDR")))?;
        for r in RESERVED {
            let r: ipnet::Ipv4Net = r
                .parse()
                .map_err(|_| DomainError::Internal("reserved list".into()))?;
            if r.contains(&net.network()) || net.contains(&r.network()) {
                return Err(DomainError::invalid(format!(
                    "{field}: {c} overlaps the reserved range {r}"
                )));
            }
        }
    }
    Ok(v)
}

/// Peer subnets must not overlap the gateway's local subnets (traffic to
/// them would never enter the tunnel); on create and on update alike.
pub fn check_peers_against_local(peers: &[String], local: &[String]) -> Result<(), DomainError> {
    for p in peers {
        let pn: ipnet::Ipv4Net = p
            .parse()
            .map_err(|_| DomainError::invalid("vpn_connection.peer_subnets: bad CIDR"))?;
        for l in local {
            if let Ok(ln) = l.parse::<ipnet::Ipv4Net>()
                && (ln.contains(&pn.network()) || pn.contains(&ln.network()))
            {
                return Err(DomainError::invalid(format!(
                    "vpn_connection.peer_subnets {p} overlaps the gateway's local subnet {l}"
                )));
            }
        }
    }
    Ok(())
}

/// A `/30` tunnel address pair in 169.254.0.0/16 as `(local, peer)` CIDRs.
fn parse_tunnel(local: &str, peer: &str) -> Result<(u32, u32), DomainError> {
    let p = |f: &str, v: &str| -> Result<ipnet::Ipv4Net, DomainError> {
        let n: ipnet::Ipv4Net = v.parse().map_err(|_| {
            DomainError::invalid(format!("vpn_connection.{f} is not a valid CIDR: {v:?}"))
        })?;
        let o = n.addr().octets();
        if n.prefix_len() != 30 || o[0] != 169 || o[1] != 254 || o[2] == 195 {
            return Err(DomainError::invalid(format!(
                "vpn_connection.{f} must be a /30 in 169.254.0.0/16 outside 169.254.195.0/24"
            )));
        }
        let host = u32::from(n.addr()) & 3;
        if host == 0 || host == 3 {
            return Err(DomainError::invalid(format!(
                "vpn_connection.{f} must be a host address of its /30"
            )));
        }
        Ok(n)
    };
    let (l, r) = (
        p("tunnel_local_address", local)?,
        p("tunnel_peer_address", peer)?,
    );
    if l.network() != r.network() || l.addr() == r.addr() {
        return Err(DomainError::invalid(
            "vpn_connection.tunnel_local_address and tunnel_peer_address must be the two hosts of one /30",
        ));
    }
    Ok((u32::from(l.network()), u32::from(l.addr())))
}

/// The /30 network (as u32) of a connection's tunnel address, if any.
pub fn tunnel_network(c: &VpnConnection) -> Option<u32> {
    let n: ipnet::Ipv4Net = c.tunnel_local_address.as_deref()?.parse().ok()?;
    Some(u32::from(n.network()))
}

/// Picks a free /30 for a route-mode connection of a gateway: tunnel
/// addresses only need to be unique per gateway, so with 16 319 usable /30s
/// and at most a few hundred connections per gateway this never runs out.
/// The first candidate comes from the connection id, so picks spread out.
pub fn assign_tunnel(conn_id: &str, used: &HashSet<u32>) -> Result<(String, String), DomainError> {
    let seed = conn_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let slots = 1u32 << 14; // /30s in a /16
    for i in 0..slots {
        let slot = (seed.wrapping_add(i)) % slots;
        let net = (169u32 << 24) | (254 << 16) | (slot << 2);
        let third = (net >> 8) & 0xff;
        if third == 195 || (net & 0xffff) == 0 || used.contains(&net) {
            continue;
        }
        let l = Ipv4Addr::from(net + 1);
        let p = Ipv4Addr::from(net + 2);
        return Ok((format!("{l}/30"), format!("{p}/30")));
    }
    Err(DomainError::invalid(
        "no free tunnel address on this gateway; give tunnel_local_address and tunnel_peer_address",
    ))
}

/// The gateway and customer gateway a create request refers to (both
/// required, both UUIDs), for the store to load before [`create`].
pub fn create_refs(req: &CreateConnection) -> Result<(GatewayId, CustomerGatewayId), DomainError> {
    let vgw_id = validate::id_ref(
        "vpn_connection.vgw_id",
        req.vgw_id
            .as_deref()
            .ok_or_else(|| DomainError::invalid("vpn_connection.vgw_id is required"))?,
    )?;
    let cgw_id = validate::id_ref(
        "vpn_connection.cgw_id",
        req.cgw_id
            .as_deref()
            .ok_or_else(|| DomainError::invalid("vpn_connection.cgw_id is required"))?,
    )?;
    Ok((vgw_id, cgw_id))
}

/// Validates a create request against its gateway and builds the
/// connection. `used_tunnels` are the /30s the gateway already uses.
pub fn create(
    req: CreateConnection,
    id: ConnectionId,
    now: &str,
    gateway: &crate::gateway::VpnGateway,
    cgw: &crate::customer_gateway::CustomerGateway,
    used_tunnels: &HashSet<u32>,
) -> Result<VpnConnection, DomainError> {
    let style = req
        .style
        .clone()
        .unwrap_or_else(|| "static".into())
        .to_ascii_lowercase();
    validate::one_of("vpn_connection.style", &style, &["policy", "static", "bgp"])?;
    let vgw_ip = req
        .vgw_ip
        .clone()
        .ok_or_else(|| DomainError::invalid("vpn_connection.vgw_ip is required"))?;
    if !gateway.vgw_ips().iter().any(|(k, _)| *k == vgw_ip) {
        return Err(DomainError::invalid(format!(
            "vpn_connection.vgw_ip {vgw_ip} is not an EIP id (or private address) of gateway {}",
            gateway.id
        )));
    }
    let name = match &req.name {
        Some(n) => {
            validate::name("vpn_connection.name", n)?;
            n.clone()
        }
        None => validate::default_name("vpn", &id.to_string()),
    };
    let mut peer_subnets = req.peer_subnets.clone().unwrap_or_default();
    // Required except for policy/bgp connections of an ER gateway; checked whenever given.
    if gateway.attachment_type == "vpc" || style == "static" || !peer_subnets.is_empty() {
        peer_subnets = validate_peer_subnets("vpn_connection.peer_subnets", &peer_subnets)?;
    }
    check_peers_against_local(&peer_subnets, &gateway.local_subnets)?;
    match &req.psk {
        Some(psk) => validate_psk("vpn_connection.psk", psk)?,
        None => return Err(DomainError::invalid("vpn_connection.psk is required")),
    }
    if req.enable_nqa == Some(true) && style != "static" {
        return Err(DomainError::invalid(
            "vpn_connection.enable_nqa is only allowed with style static",
        ));
    }
    if req.enable_hub == Some(true) && style != "bgp" {
        return Err(DomainError::invalid(
            "vpn_connection.enable_hub is only allowed with style bgp",
        ));
    }
    let ha_role = req.ha_role.clone().unwrap_or_else(|| "master".into());
    validate::one_of("vpn_connection.ha_role", &ha_role, &["master", "slave"])?;
    let tags = req.tags.clone().unwrap_or_default();
    validate::tags(&tags)?;
    if let Some(rules) = &req.policy_rules {
        validate_rules(rules)?;
    } else if style == "policy" {
        return Err(DomainError::invalid(
            "vpn_connection.policy_rules is required with style policy",
        ));
    }
    let ike_req = req.ikepolicy.clone().unwrap_or_default();
    ike_req.validate()?;
    let ipsec_req = req.ipsecpolicy.clone().unwrap_or_default();
    ipsec_req.validate()?;

    let (tunnel_local_address, tunnel_peer_address) = match (
        &req.tunnel_local_address,
        &req.tunnel_peer_address,
    ) {
        (Some(l), Some(p)) => {
            if style == "policy" {
                return Err(DomainError::invalid(
                    "vpn_connection.tunnel_local_address is not used with style policy",
                ));
            }
            let (net, _) = parse_tunnel(l, p)?;
            if used_tunnels.contains(&net) {
                return Err(DomainError::invalid(format!(
                    "vpn_connection.tunnel_local_address {l} is already used on this gateway"
                )));
            }
            (Some(l.clone()), Some(p.clone()))
        }
        // BGP peers and NQA need tunnel addresses: assign one or fail.
        (None, None) if style == "bgp" || req.enable_nqa == Some(true) => {
            let (l, p) = assign_tunnel(&id.to_string(), used_tunnels)?;
            (Some(l), Some(p))
        }
        // A plain static connection shows one like the real service, but
        // does not need one: past the 16 319 /30s of a gateway it has none,
        // so connection counts are never capped by tunnel addresses.
        (None, None) if style == "static" => match assign_tunnel(&id.to_string(), used_tunnels) {
            Ok((l, p)) => (Some(l), Some(p)),
            Err(_) => (None, None),
        },
        (None, None) => (None, None),
        _ => {
            return Err(DomainError::invalid(
                "vpn_connection.tunnel_local_address and tunnel_peer_address must be given together",
            ));
        }
    };

    Ok(VpnConnection {
        id,
        name,
        status: "ACTIVE".into(),
        vgw_id: gateway.id,
        vgw_ip,
        style: style.to_ascii_uppercase(),
        cgw_id: cgw.id,
        peer_subnets,
        tunnel_local_address,
        tunnel_peer_address,
        enable_nqa: (style == "static").then_some(req.enable_nqa.unwrap_or(false)),
        enable_hub: req.enable_hub.unwrap_or(false),
        enable_health_check: req.enable_health_check.unwrap_or(false),
        policy_rules: req.policy_rules.clone(),
        ikepolicy: IkePolicy::defaults().merged(&ike_req),
        ipsecpolicy: IpsecPolicy::defaults().merged(&ipsec_req),
        created_at: now.to_string(),
        updated_at: now.to_string(),
        enterprise_project_id: gateway.enterprise_project_id.clone(),
        connection_monitor_id: None,
        ha_role,
        tags,
        peer_subnets_v6: req.peer_subnets_v6.clone(),
        policy_rules_v6: req.policy_rules_v6.clone(),
    })
}

fn validate_rules(rules: &[PolicyRule]) -> Result<(), DomainError> {
    if rules.len() > 5 {
        return Err(DomainError::invalid(
            "vpn_connection.policy_rules: at most 5 rules",
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        if let Some(s) = &r.source {
            validate::cidr_v4(&format!("vpn_connection.policy_rules[{i}].source"), s)?;
        }
        if let Some(d) = &r.destination {
            let field = format!("vpn_connection.policy_rules[{i}].destination");
            let d = validate::cidr_list(&field, d, 50)?;
            validate::routable_subnets(&field, &d)?;
        }
    }
    Ok(())
}

impl VpnConnection {
    /// The customer gateway an update moves the connection to, if it names
    /// one (a UUID); the store checks that it exists, then
    /// [`Self::check_cgw_change`].
    pub fn update_cgw_ref(
        req: &UpdateConnection,
    ) -> Result<Option<CustomerGatewayId>, DomainError> {
        req.cgw_id
            .as_deref()
            .map(|c| validate::id_ref("vpn_connection.cgw_id", c))
            .transpose()
    }

    /// A monitored connection keeps its customer gateway (the monitor
    /// probes that address): the monitor must be deleted first.
    pub fn check_cgw_change(&self, cgw_id: &CustomerGatewayId) -> Result<(), DomainError> {
        match &self.connection_monitor_id {
            Some(m) if *cgw_id != self.cgw_id => Err(DomainError::invalid(format!(
                "vpn_connection.cgw_id cannot change while connection monitor {m} exists; delete it first"
            ))),
            _ => Ok(()),
        }
    }

    /// Applies an update (the store has checked a new `cgw_id` exists).
    pub fn apply_update(
        &mut self,
        req: &UpdateConnection,
        now: &str,
        used_tunnels: &HashSet<u32>,
        gateway_local_subnets: &[String],
    ) -> Result<(), DomainError> {
        if let Some(n) = &req.name {
            validate::name("vpn_connection.name", n)?;
            self.name = n.clone();
        }
        if let Some(c) = &req.cgw_id {
            self.cgw_id = validate::id_ref("vpn_connection.cgw_id", c)?;
        }
        if let Some(s) = &req.peer_subnets {
            let s = validate_peer_subnets("vpn_connection.peer_subnets", s)?;
            check_peers_against_local(&s, gateway_local_subnets)?;
            self.peer_subnets = s;
        }
        match (&req.tunnel_local_address, &req.tunnel_peer_address) {
            (Some(l), Some(p)) => {
                if self.style == "POLICY" {
                    return Err(DomainError::invalid(
                        "vpn_connection.tunnel_local_address is not used with style policy",
                    ));
                }
                let (net, _) = parse_tunnel(l, p)?;
                if Some(net) != tunnel_network(self) && used_tunnels.contains(&net) {
                    return Err(DomainError::invalid(format!(
                        "vpn_connection.tunnel_local_address {l} is already used on this gateway"
                    )));
                }
                self.tunnel_local_address = Some(l.clone());
                self.tunnel_peer_address = Some(p.clone());
            }
            (None, None) => {}
            _ => {
                return Err(DomainError::invalid(
                    "vpn_connection.tunnel_local_address and tunnel_peer_address must be given together",
                ));
            }
        }
        if let Some(h) = req.enable_hub {
            if h && self.style != "BGP" {
                return Err(DomainError::invalid(
                    "vpn_connection.enable_hub is only allowed with style bgp",
                ));
            }
            self.enable_hub = h;
        }
        if let Some(psk) = &req.psk {
            validate_psk("vpn_connection.psk", psk)?;
        }
        if let Some(r) = &req.policy_rules {
            validate_rules(r)?;
            self.policy_rules = Some(r.clone());
        }
        if let Some(i) = &req.ikepolicy {
            i.validate()?;
            self.ikepolicy = self.ikepolicy.merged(i);
        }
        if let Some(i) = &req.ipsecpolicy {
            i.validate()?;
            self.ipsecpolicy = self.ipsecpolicy.merged(i);
        }
        if let Some(v) = &req.peer_subnets_v6 {
            self.peer_subnets_v6 = Some(v.clone());
        }
        if let Some(v) = &req.policy_rules_v6 {
            self.policy_rules_v6 = Some(v.clone());
        }
        self.updated_at = now.to_string();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_rules() {
        assert!(validate_psk("psk", "Abcd1234!x").is_ok());
        assert!(validate_psk("psk", "short1A").is_err());
        assert!(validate_psk("psk", "alllowercase").is_err());
        assert!(validate_psk("psk", "Abcd1234\u{e9}x").is_err());
    }

    #[test]
    fn tunnel_assignment_avoids_used_and_195() {
        let mut used = HashSet::new();
        for i in 0..2000 {
            let (l, p) = assign_tunnel(&format!("conn-{i}"), &used).unwrap();
            let (net, _) = parse_tunnel(&l, &p).unwrap();
            assert!(used.insert(net), "duplicate {l}");
        }
    }

    #[test]
    fn tunnel_space_is_16319_per_gateway_and_then_fails_cleanly() {
        let mut used = HashSet::new();
        while let Ok((l, p)) = assign_tunnel(&format!("c{}", used.len()), &used) {
            used.insert(parse_tunnel(&l, &p).unwrap().0);
        }
        assert_eq!(
            used.len(),
            16_319,
            "16 384 minus 169.254.195.0/24 and 169.254.0.0/30"
        );
    }

    #[test]
    fn tunnel_pairs_must_share_a_30() {
        assert!(parse_tunnel("169.254.56.225/30", "169.254.56.226/30").is_ok());
        assert!(parse_tunnel("169.254.56.225/30", "169.254.56.230/30").is_err());
        assert!(parse_tunnel("169.254.195.1/30", "169.254.195.2/30").is_err());
        assert!(parse_tunnel("10.0.0.1/30", "10.0.0.2/30").is_err());
    }
}
