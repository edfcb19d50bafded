//! Wire projections: the SDK's create and update models are subsets of its
//! show models, so each is a list of the keys kept from the show shape.

use serde::Serialize;
use serde_json::{Map, Value};

/// `CreateResponseVpnGateway`.
pub const VGW_CREATE: &[&str] = &[
    "id",
    "name",
    "attachment_type",
    "ip_version",
    "certificate_id",
    "er_id",
    "vpc_id",
    "local_subnets",
    "local_subnets_v6",
    "connect_subnet",
    "network_type",
    "access_vpc_id",
    "access_subnet_id",
    "bgp_asn",
    "flavor",
    "connection_number",
    "used_connection_number",
    "used_connection_group",
    "enterprise_project_id",
    "ha_mode",
    "policy_template",
    "tags",
];
/// `UpdateResponseVpnGateway`: the show shape without status and a few extras.
pub const VGW_UPDATE_DROP: &[&str] = &["status", "supported_flavors", "supported_features"];
/// `CreateResponseVpnConnection` drops these from the show shape.
pub const CONN_CREATE_DROP: &[&str] = &["status", "connection_monitor_id"];
/// `UpdateResponseVpnConnection` drops these from the show shape.
pub const CONN_UPDATE_DROP: &[&str] = &["status", "enable_health_check"];
/// The show shape of a connection has no `enable_health_check`.
pub const CONN_SHOW_DROP: &[&str] = &["enable_health_check"];
/// `CreateConnectionMonitorInfo` has no status.
pub const MONITOR_CREATE_DROP: &[&str] = &["status"];

fn object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The show shape of a record.
pub fn show<T: Serialize>(v: &T) -> Value {
    Value::Object(object(v))
}

/// The show shape with `drop` keys removed.
pub fn without<T: Serialize>(v: &T, drop: &[&str]) -> Value {
    let mut m = object(v);
    for k in drop {
        m.remove(*k);
    }
    Value::Object(m)
}

/// Only the `keep` keys of the show shape.
pub fn only<T: Serialize>(v: &T, keep: &[&str]) -> Value {
    let m = object(v);
    Value::Object(
        m.into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .collect(),
    )
}
