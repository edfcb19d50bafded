//! Customer gateways (`customer-gateways`): the peer whose address a
//! connection monitor probes.

use crate::DomainError;
use crate::ids::CustomerGatewayId;
use crate::validate::{self, Tag};
use serde::{Deserialize, Serialize};

/// `CaCertificateRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaCertificateRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `CreateCgwRequestBodyContent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCgw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_asn: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<CaCertificateRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// `UpdateCgwRequestBodyContent`: only the name and certificate change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCgw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<CaCertificateRequest>,
}

/// A customer gateway in its show shape (`ResponseCustomerGateway`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerGateway {
    pub id: CustomerGatewayId,
    pub name: String,
    pub id_type: String,
    pub id_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_asn: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<serde_json::Value>,
    pub tags: Vec<Tag>,
    pub created_at: String,
    pub updated_at: String,
}

fn certificate(c: &CaCertificateRequest) -> Result<serde_json::Value, DomainError> {
    if c.id.is_none() && c.content.is_none() {
        return Err(DomainError::invalid(
            "customer_gateway.ca_certificate needs id or content",
        ));
    }
    if let Some(content) = &c.content
        && !content.contains("BEGIN CERTIFICATE")
    {
        return Err(DomainError::invalid(
            "customer_gateway.ca_certificate.content must be a PEM certificate",
        ));
    }
    Ok(serde_json::json!({
        "id": c.id.clone().unwrap_or_else(crate::ids::new_resource_id),
        "is_updatable": true,
    }))
}

/// Validates a create request and builds the customer gateway.
pub fn create(
    req: CreateCgw,
    id: CustomerGatewayId,
    now: &str,
) -> Result<CustomerGateway, DomainError> {
    let id_type = req.id_type.unwrap_or_else(|| "ip".into());
    validate::one_of("customer_gateway.id_type", &id_type, &["ip", "fqdn"])?;
    let id_value = req
        .id_value
        .ok_or_else(|| DomainError::invalid("customer_gateway.id_value is required"))?;
    if id_value.is_empty() || id_value.len() > 128 {
        return Err(DomainError::invalid(
            "customer_gateway.id_value must be 1-128 characters",
        ));
    }
    if id_type == "ip" {
        let ip = validate::ipv4("customer_gateway.id_value", &id_value)?;
        if ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() || ip.octets()[0] >= 240 {
            return Err(DomainError::invalid(format!(
                "customer_gateway.id_value {id_value} is not a unicast address"
            )));
        }
    } else {
        let ok = id_value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !ok {
            return Err(DomainError::invalid(
                "customer_gateway.id_value is not a valid FQDN",
            ));
        }
        if req.bgp_asn.is_some() {
            return Err(DomainError::invalid(
                "customer_gateway.bgp_asn is only allowed with id_type ip",
            ));
        }
    }
    if let Some(asn) = req.bgp_asn {
        validate::range("customer_gateway.bgp_asn", asn, 1, 4_294_967_295)?;
    }
    let name = match req.name {
        Some(n) => {
            validate::name("customer_gateway.name", &n)?;
            n
        }
        None => validate::default_name("cgw", &id.to_string()),
    };
    let tags = req.tags.unwrap_or_default();
    validate::tags(&tags)?;
    let ca_certificate = req.ca_certificate.as_ref().map(certificate).transpose()?;
    Ok(CustomerGateway {
        id,
        name,
        id_type,
        id_value,
        bgp_asn: req.bgp_asn,
        ca_certificate,
        tags,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    })
}

impl CustomerGateway {
    /// Applies an update.
    pub fn apply_update(&mut self, req: &UpdateCgw, now: &str) -> Result<(), DomainError> {
        if let Some(n) = &req.name {
            validate::name("customer_gateway.name", n)?;
            self.name = n.clone();
        }
        if let Some(c) = &req.ca_certificate {
            self.ca_certificate = Some(certificate(c)?);
        }
        self.updated_at = now.to_string();
        Ok(())
    }

    /// The address a monitor probes: `id_value` for `id_type` ip.
    pub fn probe_address(&self) -> Option<&str> {
        (self.id_type == "ip").then_some(self.id_value.as_str())
    }
}
