//! VPN gateways (`vpn-gateways`).

use crate::DomainError;
use crate::eip::{Eip, EipRequest};
use crate::ids::GatewayId;
use crate::validate::{self, Tag};
use serde::{Deserialize, Serialize};

/// `CreateVgwRequestBodyContent`: every field the SDK can send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVgw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub er_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnets: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_asn: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip1: Option<EipRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip2: Option<EipRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_private_ip_1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_private_ip_2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// `UpdateVgwRequestBodyContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateVgw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnets: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip_id_1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip_id_2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_template: Option<serde_json::Value>,
}

/// A VPN gateway, serialized in its show shape (`ResponseVpnGateway`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnGateway {
    pub id: GatewayId,
    pub name: String,
    pub status: String,
    pub network_type: String,
    pub attachment_type: String,
    pub ip_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub er_id: Option<String>,
    pub local_subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnets_v6: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_subnet: Option<String>,
    pub bgp_asn: i64,
    pub flavor: String,
    pub availability_zone_ids: Vec<String>,
    pub connection_number: i64,
    pub used_connection_number: i64,
    pub used_connection_group: i64,
    pub enterprise_project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_private_ip_1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_private_ip_2: Option<String>,
    pub ha_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip1: Option<Eip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip2: Option<Eip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_template: Option<serde_json::Value>,
    pub supported_flavors: Vec<String>,
    pub supported_features: Vec<String>,
    pub tags: Vec<Tag>,
    pub created_at: String,
    pub updated_at: String,
}

/// The flavors vpnmon accepts.
pub const FLAVORS: &[&str] = &[
    "Basic",
    "Professional1",
    "Professional2",
    "Professional1-NonFixedIP",
    "Professional2-NonFixedIP",
    "GM",
    "V300",
    "V1G",
];

/// What a validated create asks the store to do besides inserting the record.
#[derive(Debug, Clone)]
pub struct GatewayPlan {
    /// The record, without EIPs; the store binds them.
    pub gateway: VpnGateway,
    /// EIPs to bind as eip1 and eip2 (public gateways).
    pub eips: Vec<EipRequest>,
}

fn connection_number(flavor: &str) -> i64 {
    match flavor {
        "Basic" => 100,
        "Professional2" | "Professional2-NonFixedIP" => 400,
        _ => 200,
    }
}

/// Validates a create request and builds the gateway.
pub fn plan_create(req: CreateVgw, id: GatewayId, now: &str) -> Result<GatewayPlan, DomainError> {
    let network_type = req.network_type.unwrap_or_else(|| "public".into());
    validate::one_of(
        "vpn_gateway.network_type",
        &network_type,
        &["public", "private"],
    )?;
    let attachment_type = req.attachment_type.unwrap_or_else(|| "vpc".into());
    validate::one_of(
        "vpn_gateway.attachment_type",
        &attachment_type,
        &["vpc", "er"],
    )?;
    let ip_version = req.ip_version.unwrap_or_else(|| "ipv4".into());
    validate::one_of("vpn_gateway.ip_version", &ip_version, &["ipv4", "ipv6"])?;
    let flavor = req.flavor.unwrap_or_else(|| "Professional1".into());
    validate::one_of("vpn_gateway.flavor", &flavor, FLAVORS)?;
    if flavor == "Basic" && (attachment_type == "er" || network_type == "private") {
        return Err(DomainError::invalid(
            "vpn_gateway.flavor Basic is not allowed with attachment_type er or network_type private",
        ));
    }
    let ha_mode = req.ha_mode.unwrap_or_else(|| "active-active".into());
    validate::one_of(
        "vpn_gateway.ha_mode",
        &ha_mode,
        &["active-active", "active-standby"],
    )?;
    let name = match req.name {
        Some(n) => {
            validate::name("vpn_gateway.name", &n)?;
            n
        }
        None => validate::default_name("vpngw", &id.to_string()),
    };
    let bgp_asn = req.bgp_asn.unwrap_or(64512);
    validate::range("vpn_gateway.bgp_asn", bgp_asn, 1, 4_294_967_295)?;

    let (vpc_id, connect_subnet, er_id) = if attachment_type == "vpc" {
        let vpc = req.vpc_id.ok_or_else(|| {
            DomainError::invalid("vpn_gateway.vpc_id is required when attachment_type is vpc")
        })?;
        let vpc = validate::uuid_ref("vpn_gateway.vpc_id", &vpc)?;
        let sub = req.connect_subnet.ok_or_else(|| {
            DomainError::invalid(
                "vpn_gateway.connect_subnet is required when attachment_type is vpc",
            )
        })?;
        let sub = validate::uuid_ref("vpn_gateway.connect_subnet", &sub)?;
        (Some(vpc), Some(sub), None)
    } else {
        let er = req.er_id.ok_or_else(|| {
            DomainError::invalid("vpn_gateway.er_id is required when attachment_type is er")
        })?;
        (
            None,
            None,
            Some(validate::uuid_ref("vpn_gateway.er_id", &er)?),
        )
    };
    let mut local_subnets = req.local_subnets.unwrap_or_default();
    // Required for an IPv4 VPC gateway; checked whenever given.
    if (attachment_type == "vpc" && ip_version == "ipv4") || !local_subnets.is_empty() {
        local_subnets = validate::cidr_list("vpn_gateway.local_subnets", &local_subnets, 50)?;
        validate::routable_subnets("vpn_gateway.local_subnets", &local_subnets)?;
    }
    let access_vpc_id = match req.access_vpc_id {
        Some(v) => Some(validate::uuid_ref("vpn_gateway.access_vpc_id", &v)?),
        None => vpc_id.clone(),
    };
    let access_subnet_id = match req.access_subnet_id {
        Some(v) => Some(validate::uuid_ref("vpn_gateway.access_subnet_id", &v)?),
        None => connect_subnet.clone(),
    };
    let tags = req.tags.unwrap_or_default();
    validate::tags(&tags)?;
    let enterprise_project_id = req.enterprise_project_id.unwrap_or_else(|| "0".into());

    let mut eips = Vec::new();
    let (mut ip1, mut ip2) = (None, None);
    if network_type == "public" {
        let e1 = req.eip1.ok_or_else(|| {
            DomainError::invalid("vpn_gateway.eip1 is required for a public gateway")
        })?;
        e1.validate("vpn_gateway.eip1")?;
        eips.push(e1);
        if let Some(e2) = req.eip2 {
            e2.validate("vpn_gateway.eip2")?;
            if e2.id.is_some() && e2.id == eips[0].id {
                return Err(DomainError::invalid(
                    "vpn_gateway.eip1 and eip2 must differ",
                ));
            }
            eips.push(e2);
        }
        if req.access_private_ip_1.is_some() || req.access_private_ip_2.is_some() {
            return Err(DomainError::invalid(
                "vpn_gateway.access_private_ip_1/2 are only for private gateways",
            ));
        }
    } else {
        if req.eip1.is_some() || req.eip2.is_some() {
            return Err(DomainError::invalid(
                "vpn_gateway.eip1/eip2 are only for public gateways",
            ));
        }
        match (req.access_private_ip_1, req.access_private_ip_2) {
            (Some(a), Some(b)) => {
                validate::ipv4("vpn_gateway.access_private_ip_1", &a)?;
                validate::ipv4("vpn_gateway.access_private_ip_2", &b)?;
                if a == b {
                    return Err(DomainError::invalid(
                        "vpn_gateway.access_private_ip_1 and access_private_ip_2 must differ",
                    ));
                }
                (ip1, ip2) = (Some(a), Some(b));
            }
            (None, None) => {
                return Err(DomainError::invalid(
                    "vpn_gateway.access_private_ip_1 and access_private_ip_2 are required for a private gateway \
                     (vpnmon probes from them)",
                ));
            }
            _ => {
                return Err(DomainError::invalid(
                    "vpn_gateway.access_private_ip_1 and access_private_ip_2 must be given together",
                ));
            }
        }
    }

    Ok(GatewayPlan {
        gateway: VpnGateway {
            id,
            name,
            status: "ACTIVE".into(),
            network_type,
            attachment_type,
            ip_version,
            vpc_id,
            er_id,
            local_subnets,
            local_subnets_v6: req.local_subnets_v6,
            connect_subnet,
            bgp_asn,
            connection_number: connection_number(&flavor),
            flavor,
            availability_zone_ids: req
                .availability_zone_ids
                .unwrap_or_else(|| vec!["local-1a".into()]),
            used_connection_number: 0,
            used_connection_group: 0,
            enterprise_project_id,
            access_vpc_id,
            access_subnet_id,
            access_private_ip_1: ip1,
            access_private_ip_2: ip2,
            ha_mode,
            eip1: None,
            eip2: None,
            policy_template: None,
            supported_flavors: FLAVORS[..6].iter().map(|s| s.to_string()).collect(),
            supported_features: vec!["connection_monitor".into()],
            tags,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        },
        eips,
    })
}

impl VpnGateway {
    /// The addresses a connection may use as `vgw_ip`: EIP ids for a public
    /// gateway, private addresses for a private one; with the address each
    /// stands for.
    pub fn vgw_ips(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in [&self.eip1, &self.eip2].into_iter().flatten() {
            out.push((e.id.clone(), e.ip_address.clone()));
        }
        for a in [&self.access_private_ip_1, &self.access_private_ip_2]
            .into_iter()
            .flatten()
        {
            out.push((a.clone(), a.clone()));
        }
        out
    }

    /// The EIP slots (1 or 2) an update rebinds, with the pool entry each
    /// should get: slots asking for the entry they already hold are left
    /// out. A private gateway has no EIPs to rebind.
    pub fn eip_rebinds(&self, req: &UpdateVgw) -> Result<Vec<(u8, String)>, DomainError> {
        let mut out = Vec::new();
        for (slot, want) in [(1u8, &req.eip_id_1), (2u8, &req.eip_id_2)] {
            let Some(want) = want else { continue };
            if self.eip(slot).map(|e| &e.id) == Some(want) {
                continue;
            }
            if self.network_type != "public" {
                return Err(DomainError::invalid(format!(
                    "vpn_gateway.eip_id_{slot}: a private gateway has no EIPs"
                )));
            }
            out.push((slot, want.clone()));
        }
        Ok(out)
    }

    /// The EIP in `slot` cannot be rebound while connection `connection_id` uses it.
    pub fn eip_in_use(slot: u8, eip_id: &str, connection_id: &str) -> DomainError {
        DomainError::invalid(format!(
            "vpn_gateway.eip_id_{slot}: EIP {eip_id} is used by vpn connection {connection_id}"
        ))
    }

    /// The EIP in slot 1 or 2.
    pub fn eip(&self, slot: u8) -> Option<&Eip> {
        if slot == 1 {
            self.eip1.as_ref()
        } else {
            self.eip2.as_ref()
        }
    }

    /// Puts an EIP in slot 1 or 2.
    pub fn set_eip(&mut self, slot: u8, eip: Eip) {
        if slot == 1 {
            self.eip1 = Some(eip);
        } else {
            self.eip2 = Some(eip);
        }
    }

    /// Applies an update whose EIP rebinding (if any) the store has done.
    pub fn apply_update(&mut self, req: &UpdateVgw, now: &str) -> Result<(), DomainError> {
        if let Some(n) = &req.name {
            validate::name("vpn_gateway.name", n)?;
            self.name = n.clone();
        }
        if let Some(s) = &req.local_subnets {
            let s = validate::cidr_list("vpn_gateway.local_subnets", s, 50)?;
            validate::routable_subnets("vpn_gateway.local_subnets", &s)?;
            self.local_subnets = s;
        }
        if let Some(s) = &req.local_subnets_v6 {
            self.local_subnets_v6 = Some(s.clone());
        }
        if let Some(p) = &req.policy_template {
            if !p.is_object() {
                return Err(DomainError::invalid(
                    "vpn_gateway.policy_template must be an object",
                ));
            }
            self.policy_template = Some(p.clone());
        }
        for (f, v) in [
            ("vpn_gateway.eip_id_1", &req.eip_id_1),
            ("vpn_gateway.eip_id_2", &req.eip_id_2),
        ] {
            if let Some(v) = v {
                validate::uuid_ref(f, v)?;
            }
        }
        self.updated_at = now.to_string();
        Ok(())
    }
}
