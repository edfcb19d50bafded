//! Elastic IPs. vpnmon has no EIP service: the operator configures a pool
//! of addresses owned by the gateway host(s) (`--eip-pool`), and a gateway's
//! `eip1`/`eip2` bind entries of that pool (docs/spec/vpn-v5.md §10).

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How a gateway asks for an EIP (`CreateRequestEip`): an existing pool
/// entry by `id`, or a new one allocated from the pool by parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EipRequest {
    /// Id of a pool entry to bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `5_bgp` or `5_sbgp`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub eip_type: Option<String>,
    /// `bandwidth`, `traffic` or `95peak_plus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_mode: Option<String>,
    /// Mbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_size: Option<i64>,
    /// Bandwidth name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_name: Option<String>,
    /// Shared bandwidth id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_id: Option<String>,
}

impl EipRequest {
    /// Checks the request's fields; `field` is `eip1` or `eip2`.
    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        if let Some(id) = &self.id {
            crate::validate::uuid_ref(&format!("{field}.id"), id)?;
            return Ok(());
        }
        if self.eip_type.is_none() && self.bandwidth_id.is_none() {
            return Err(DomainError::invalid(format!(
                "{field} needs either id (an EIP of the pool) or type and bandwidth_size (a new EIP)"
            )));
        }
        if let Some(t) = &self.eip_type {
            crate::validate::one_of(&format!("{field}.type"), t, &["5_bgp", "5_sbgp"])?;
        }
        if let Some(c) = &self.charge_mode {
            crate::validate::one_of(
                &format!("{field}.charge_mode"),
                c,
                &["bandwidth", "traffic", "95peak_plus"],
            )?;
        }
        if let Some(b) = self.bandwidth_size {
            crate::validate::range(&format!("{field}.bandwidth_size"), b, 1, 1000)?;
        }
        if let Some(id) = &self.bandwidth_id {
            crate::validate::uuid_ref(&format!("{field}.bandwidth_id"), id)?;
        }
        Ok(())
    }
}

/// An EIP as the gateway shows it (`ResponseEip`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eip {
    /// Pool entry id.
    pub id: String,
    /// Always 4 or 6 (an integer on the wire).
    pub ip_version: i64,
    /// `5_bgp` unless asked otherwise.
    #[serde(rename = "type")]
    pub eip_type: String,
    /// The address.
    pub ip_address: String,
    /// Charge mode.
    pub charge_mode: String,
    /// Bandwidth id.
    pub bandwidth_id: String,
    /// Mbit/s.
    pub bandwidth_size: i64,
    /// Bandwidth name.
    pub bandwidth_name: String,
    /// `PER` (dedicated) or `WHOLE` (shared).
    pub share_type: String,
}

impl Eip {
    /// The EIP shown for pool entry `id` with `address`, bound by `req`.
    pub fn bound(id: &str, address: &str, req: &EipRequest) -> Eip {
        let ip_version = if address.contains(':') { 6 } else { 4 };
        let bandwidth_id = req.bandwidth_id.clone().unwrap_or_else(|| {
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()).to_string()
        });
        Eip {
            id: id.to_string(),
            ip_version,
            eip_type: req.eip_type.clone().unwrap_or_else(|| "5_bgp".into()),
            ip_address: address.to_string(),
            charge_mode: req
                .charge_mode
                .clone()
                .unwrap_or_else(|| "bandwidth".into()),
            bandwidth_size: req.bandwidth_size.unwrap_or(100),
            bandwidth_name: req
                .bandwidth_name
                .clone()
                .unwrap_or_else(|| format!("vpngw-bandwidth-{}", &id[..4])),
            share_type: if req.bandwidth_id.is_some() {
                "WHOLE"
            } else {
                "PER"
            }
            .into(),
            bandwidth_id,
        }
    }
}

/// Why binding a pool entry failed, in the API's words; `field` names the
/// request field (`vpn_gateway.eip1`, `vpn_gateway.eip_id_2`, ...).
pub mod bind_error {
    use crate::DomainError;

    /// The entry `id` is bound to a gateway of this project already.
    pub fn already_bound(field: &str, id: &str) -> DomainError {
        DomainError::invalid(format!("{field}.id {id} is already bound to a VPN gateway"))
    }

    /// No entry `id` in the pool, or it belongs to another project.
    pub fn not_in_pool(field: &str, id: &str) -> DomainError {
        DomainError::invalid(format!(
            "{field}.id {id} is not an EIP of this project's pool"
        ))
    }

    /// The pool has no free entry for this project.
    pub fn exhausted(field: &str) -> DomainError {
        DomainError::invalid(format!(
            "{field}: the EIP pool is exhausted (the operator sets it with --eip-pool)"
        ))
    }
}

/// The pool entry id of an address: stable, so that restarting with the
/// same `--eip-pool` gives the same ids (UUID v5 of the address).
pub fn pool_entry_id(addr: &IpAddr) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("vpnmon-eip:{addr}").as_bytes(),
    )
    .to_string()
}

/// Largest pool accepted from one spec, so a typo like `/8` fails loudly.
pub const MAX_POOL_SPEC: u128 = 1 << 20;

/// Parses one pool spec: an address, a CIDR (`198.18.0.0/24`, every address
/// of it) or a range (`127.0.0.2-127.0.0.9`, inclusive).
pub fn parse_pool_spec(spec: &str) -> Result<Vec<IpAddr>, String> {
    let spec = spec.trim();
    if let Some((a, b)) = spec.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad range start in {spec:?}"))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("bad range end in {spec:?}"))?;
        return match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (a, b) = (u32::from(a), u32::from(b));
                if b < a || u128::from(b - a) >= MAX_POOL_SPEC {
                    return Err(format!("range {spec:?} is empty or too large"));
                }
                Ok((a..=b).map(|x| IpAddr::V4(x.into())).collect())
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let (a, b) = (u128::from(a), u128::from(b));
                if b < a || b - a >= MAX_POOL_SPEC {
                    return Err(format!("range {spec:?} is empty or too large"));
                }
                Ok((a..=b).map(|x| IpAddr::V6(x.into())).collect())
            }
            _ => Err(format!("range {spec:?} mixes IPv4 and IPv6")),
        };
    }
    if spec.contains('/') {
        let net: ipnet::IpNet = spec.parse().map_err(|_| format!("bad CIDR {spec:?}"))?;
        let size: u128 = 1u128 << (net.max_prefix_len() - net.prefix_len()).min(127);
        if size > MAX_POOL_SPEC {
            return Err(format!("CIDR {spec:?} is too large for an EIP pool"));
        }
        return Ok(net.hosts().collect());
    }
    spec.parse::<IpAddr>()
        .map(|a| vec![a])
        .map_err(|_| format!("bad address {spec:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_specs_parse() {
        assert_eq!(parse_pool_spec("127.0.0.2-127.0.0.9").unwrap().len(), 8);
        assert_eq!(parse_pool_spec("198.18.0.0/30").unwrap().len(), 2);
        assert_eq!(parse_pool_spec("198.18.0.7").unwrap().len(), 1);
        assert!(parse_pool_spec("10.0.0.0/8").is_err());
        assert!(parse_pool_spec("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_pool_spec("nonsense").is_err());
    }

    #[test]
    fn pool_ids_are_stable() {
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(pool_entry_id(&a), pool_entry_id(&a));
        assert_ne!(
            pool_entry_id(&a),
            pool_entry_id(&"127.0.0.3".parse().unwrap())
        );
    }
}
