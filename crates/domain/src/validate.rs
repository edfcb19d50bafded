//! Field validators shared by the resources. Each returns a
//! [`DomainError::Invalid`] whose message names the field.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A resource tag `{key, value}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// 1-128 characters.
    pub key: String,
    /// 0-255 characters.
    pub value: String,
}

/// Validates a resource name: 1-64 characters of `[A-Za-z0-9_.-]`.
pub fn name(field: &str, v: &str) -> Result<(), DomainError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "{field} must be 1-64 characters of letters, digits, '_', '.' or '-'"
        )))
    }
}

/// A default name like `vpngw-1a2b`.
pub fn default_name(prefix: &str, id: &str) -> String {
    format!("{prefix}-{}", &id[..4.min(id.len())])
}

/// Validates an IPv4 address in dotted-quad form.
pub fn ipv4(field: &str, v: &str) -> Result<Ipv4Addr, DomainError> {
    v.parse::<Ipv4Addr>()
        .map_err(|_| DomainError::invalid(format!("{field} is not a valid IPv4 address: {v:?}")))
}

/// Validates an IPv4 CIDR with no host bits set, e.g. `192.168.0.0/24`.
pub fn cidr_v4(field: &str, v: &str) -> Result<ipnet::Ipv4Net, DomainError> {
    let net: ipnet::Ipv4Net = v
        .parse()
        .map_err(|_| DomainError::invalid(format!("{field} is not a valid IPv4 CIDR: {v:?}")))?;
    if net.trunc() != net {
        return Err(DomainError::invalid(format!(
            "{field} has host bits set: {v:?} (did you mean {}?)",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Validates a list of IPv4 CIDRs: 1..=max entries, no duplicates; returns
/// them in canonical form (`10.0.0.0/08` becomes `10.0.0.0/8`), which is
/// what is stored and shown.
pub fn cidr_list(field: &str, v: &[String], max: usize) -> Result<Vec<String>, DomainError> {
    if v.is_empty() {
        return Err(DomainError::invalid(format!("{field} must not be empty")));
    }
    if v.len() > max {
        return Err(DomainError::invalid(format!(
            "{field} has {} entries, at most {max} are allowed",
            v.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(v.len());
    for (i, c) in v.iter().enumerate() {
        let net = cidr_v4(&format!("{field}[{i}]"), c)?;
        if !seen.insert(net) {
            return Err(DomainError::invalid(format!("{field} repeats {c:?}")));
        }
        out.push(net.to_string());
    }
    Ok(out)
}

/// Ranges no subnet behind a VPN can use: "this network" and the default
/// route, loopback, link-local (the tunnel interfaces' 169.254.0.0/16),
/// multicast and the reserved class E.
const UNUSABLE: [(&str, [u8; 4], u8); 5] = [
    ("\"this network\" (or the default route)", [0, 0, 0, 0], 8),
    ("loopback", [127, 0, 0, 0], 8),
    ("link-local (tunnel addresses)", [169, 254, 0, 0], 16),
    ("multicast", [224, 0, 0, 0], 4),
    ("reserved", [240, 0, 0, 0], 4),
];

/// Checks that no subnet of a (canonical) list overlaps a range no VPN
/// subnet can use.
pub fn routable_subnets(field: &str, v: &[String]) -> Result<(), DomainError> {
    for (i, c) in v.iter().enumerate() {
        let net = cidr_v4(&format!("{field}[{i}]"), c)?;
        for (what, addr, len) in UNUSABLE {
            let r = ipnet::Ipv4Net::new(Ipv4Addr::from(addr), len)
                .map_err(|_| DomainError::Internal("unusable range table".into()))?;
            if r.contains(&net.network()) || net.contains(&r.network()) {
                return Err(DomainError::invalid(format!(
                    "{field}[{i}] {c} overlaps the {what} range {r}"
                )));
            }
        }
    }
    Ok(())
}

/// Validates a UUID-shaped reference to another resource.
pub fn uuid_ref(field: &str, v: &str) -> Result<String, DomainError> {
    crate::ids::parse_resource_id(v)
        .ok_or_else(|| DomainError::invalid(format!("{field} is not a valid UUID: {v:?}")))
}

/// Parses a reference to another resource into its typed id.
pub fn id_ref<T: crate::ids::ResourceId>(field: &str, v: &str) -> Result<T, DomainError> {
    T::parse(v).ok_or_else(|| DomainError::invalid(format!("{field} is not a valid UUID: {v:?}")))
}

/// Validates tags: at most 20, key 1-128 and value 0-255 characters.
pub fn tags(v: &[Tag]) -> Result<(), DomainError> {
    if v.len() > 20 {
        return Err(DomainError::invalid("tags: at most 20 tags are allowed"));
    }
    for (i, t) in v.iter().enumerate() {
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(DomainError::invalid(format!(
                "tags[{i}].key must be 1-128 characters"
            )));
        }
        if t.value.chars().count() > 255 {
            return Err(DomainError::invalid(format!(
                "tags[{i}].value must be at most 255 characters"
            )));
        }
    }
    Ok(())
}

/// Validates that a string is one of the allowed values.
pub fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), DomainError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "{field} must be one of {}, got {v:?}",
            allowed.join(", ")
        )))
    }
}

/// Validates an integer range.
pub fn range(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), DomainError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "{field} must be between {lo} and {hi}, got {v}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rejects_host_bits_and_garbage() {
        assert!(cidr_v4("f", "192.168.0.0/24").is_ok());
        let e = cidr_v4("f", "192.168.0.1/24").unwrap_err();
        assert!(e.to_string().contains("host bits"));
        assert!(cidr_v4("f", "192.168.0.0/33").is_err());
        assert!(cidr_v4("f", "abc").is_err());
    }

    #[test]
    fn names_are_limited() {
        assert!(name("name", "vpngw-1").is_ok());
        assert!(name("name", "").is_err());
        assert!(name("name", "a b").is_err());
        assert!(name("name", &"a".repeat(65)).is_err());
    }
}
