//! The VPN v5 resources: create, show, list, delete, with table or JSON
//! output. Commands accept a resource's id or, where it has one, its name.

use crate::OutputFormat;
use crate::session::{Api, Session};
use crate::table::{Table, cell, vertical};
use anyhow::{Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// A kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gateway,
    CustomerGateway,
    Connection,
    Monitor,
}

impl Kind {
    /// Path below `/v5/{project_id}/`.
    fn path(self) -> &'static str {
        match self {
            Kind::Gateway => "vpn-gateways",
            Kind::CustomerGateway => "customer-gateways",
            Kind::Connection => "vpn-connection",
            Kind::Monitor => "connection-monitors",
        }
    }
    /// Key of one resource in a body.
    fn key(self) -> &'static str {
        match self {
            Kind::Gateway => "vpn_gateway",
            Kind::CustomerGateway => "customer_gateway",
            Kind::Connection => "vpn_connection",
            Kind::Monitor => "connection_monitor",
        }
    }
    /// Key of a list in a body.
    fn list_key(self) -> &'static str {
        match self {
            Kind::Gateway => "vpn_gateways",
            Kind::CustomerGateway => "customer_gateways",
            Kind::Connection => "vpn_connections",
            Kind::Monitor => "connection_monitors",
        }
    }
    /// Page size for paginated lists (the server's maximum).
    fn page_limit(self) -> Option<u32> {
        match self {
            Kind::CustomerGateway => Some(200),
            Kind::Connection => Some(2000),
            Kind::Gateway | Kind::Monitor => None,
        }
    }
    /// For messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Gateway => "VPN gateway",
            Kind::CustomerGateway => "customer gateway",
            Kind::Connection => "VPN connection",
            Kind::Monitor => "connection monitor",
        }
    }
    fn has_name(self) -> bool {
        self != Kind::Monitor
    }
}

fn text(v: &Value, k: &str) -> String {
    cell(v.get(k).unwrap_or(&Value::Null))
}

/// The list columns of a kind and one resource's cells.
fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Gateway => &[
            "ID",
            "NAME",
            "STATUS",
            "EIP",
            "LOCAL_SUBNETS",
            "CONNECTIONS",
            "CREATED",
        ],
        Kind::CustomerGateway => &["ID", "NAME", "IP", "BGP_ASN", "CREATED"],
        Kind::Connection => &[
            "ID",
            "NAME",
            "STATUS",
            "STYLE",
            "GATEWAY",
            "CUSTOMER_GATEWAY",
            "PEER_SUBNETS",
            "MONITOR",
        ],
        Kind::Monitor => &[
            "ID",
            "STATUS",
            "CONNECTION",
            "SOURCE",
            "DESTINATION",
            "PROTO",
        ],
    }
}

fn row(kind: Kind, v: &Value) -> Vec<String> {
    match kind {
        Kind::Gateway => {
            let eips: Vec<String> = ["eip1", "eip2"]
                .iter()
                .filter_map(|k| v.get(*k)?.get("ip_address")?.as_str())
                .map(str::to_string)
                .collect();
            vec![
                text(v, "id"),
                text(v, "name"),
                text(v, "status"),
                cell(&json!(eips)),
                text(v, "local_subnets"),
                format!(
                    "{}/{}",
                    text(v, "used_connection_number"),
                    text(v, "connection_number")
                ),
                text(v, "created_at"),
            ]
        }
        Kind::CustomerGateway => vec![
            text(v, "id"),
            text(v, "name"),
            text(v, "id_value"),
            text(v, "bgp_asn"),
            text(v, "created_at"),
        ],
        Kind::Connection => vec![
            text(v, "id"),
            text(v, "name"),
            text(v, "status"),
            text(v, "style"),
            text(v, "vgw_id"),
            text(v, "cgw_id"),
            text(v, "peer_subnets"),
            text(v, "connection_monitor_id"),
        ],
        Kind::Monitor => vec![
            text(v, "id"),
            text(v, "status"),
            text(v, "vpn_connection_id"),
            text(v, "source_ip"),
            text(v, "destination_ip"),
            text(v, "proto_type"),
        ],
    }
}

/// Prints one resource.
pub fn print_object(v: &Value, out: OutputFormat) {
    match out {
        OutputFormat::Json => println!("{}", pretty(v)),
        OutputFormat::Table => vertical(v).print(),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn unwrap_key(body: Option<Value>, key: &str) -> Result<Value> {
    body.and_then(|mut b| b.get_mut(key).map(Value::take))
        .filter(Value::is_object)
        .ok_or_else(|| anyhow!("the server's answer has no {key} object"))
}

/// Every resource of a kind, following `page_info.next_marker`.
pub async fn list_all(s: &mut Session, kind: Kind, query: &[(&str, String)]) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut q: Vec<(&str, String)> = query.to_vec();
        if let Some(l) = kind.page_limit() {
            q.push(("limit", l.to_string()));
        }
        if let Some(m) = &marker {
            q.push(("marker", m.clone()));
        }
        let body = s.call(Method::GET, Api::Vpn, kind.path(), &q, None).await?;
        let mut body = body.ok_or_else(|| anyhow!("the server's list answer is empty"))?;
        match body.get_mut(kind.list_key()).map(Value::take) {
            Some(Value::Array(a)) => {
                let n = a.len();
                items.extend(a);
                let next = body
                    .pointer("/page_info/next_marker")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string);
                match next {
                    Some(m) if n > 0 && marker.as_deref() != Some(m.as_str()) => marker = Some(m),
                    _ => return Ok(items),
                }
            }
            _ => bail!("the server's answer has no {} array", kind.list_key()),
        }
    }
}

/// The id of a resource given by id or by name.
pub async fn resolve(s: &mut Session, kind: Kind, arg: &str) -> Result<String> {
    if let Some(id) = domain::ids::parse_resource_id(arg) {
        return Ok(id);
    }
    if !kind.has_name() {
        bail!("{arg:?} is not a {} id (a UUID)", kind.label());
    }
    let all = list_all(s, kind, &[]).await?;
    let hits: Vec<&Value> = all
        .iter()
        .filter(|v| v.get("name").and_then(Value::as_str) == Some(arg))
        .collect();
    match hits.as_slice() {
        [one] => one
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the {} named {arg:?} has no id", kind.label())),
        [] => bail!("no {} with id or name {arg:?}", kind.label()),
        _ => bail!(
            "{} {}s are named {arg:?}: use the id",
            hits.len(),
            kind.label()
        ),
    }
}

/// One resource, by id or name.
pub async fn get(s: &mut Session, kind: Kind, arg: &str) -> Result<Value> {
    let id = resolve(s, kind, arg).await?;
    let body = s
        .call(
            Method::GET,
            Api::Vpn,
            &format!("{}/{id}", kind.path()),
            &[],
            None,
        )
        .await?;
    unwrap_key(body, kind.key())
}

/// `... show ID`.
pub async fn show(s: &mut Session, kind: Kind, arg: &str, out: OutputFormat) -> Result<()> {
    let v = get(s, kind, arg).await?;
    print_object(&v, out);
    Ok(())
}

/// `... list`.
pub async fn list(
    s: &mut Session,
    kind: Kind,
    query: &[(&str, String)],
    out: OutputFormat,
) -> Result<()> {
    let items = list_all(s, kind, query).await?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&Value::Array(items))),
        OutputFormat::Table => {
            let mut t = Table::new(columns(kind).iter().copied());
            for v in &items {
                t.row(row(kind, v));
            }
            t.print();
        }
    }
    Ok(())
}

/// `... delete ID`: a confirmation line, or nothing with `-o json` (the
/// server answers 204 without a body).
pub async fn delete(s: &mut Session, kind: Kind, arg: &str, out: OutputFormat) -> Result<()> {
    let id = resolve(s, kind, arg).await?;
    s.call(
        Method::DELETE,
        Api::Vpn,
        &format!("{}/{id}", kind.path()),
        &[],
        None,
    )
    .await?;
    if out == OutputFormat::Table {
        println!("deleted {} {id}", kind.label());
    }
    Ok(())
}

async fn create(s: &mut Session, kind: Kind, inner: Map<String, Value>, out: OutputFormat) -> Result<()> {
    let body = json!({ kind.key(): inner });
    let answer = s
        .call(Method::POST, Api::Vpn, kind.path(), &[], Some(&body))
        .await?;
    let v = unwrap_key(answer, kind.key())?;
    print_object(&v, out);
    Ok(())
}

/// `gateway create`.
pub struct GatewayCreate {
    pub name: Option<String>,
    pub vpc_id: String,
    pub subnet_id: String,
    pub local_subnets: Vec<String>,
    pub eip_id: Option<String>,
    pub eip_bandwidth: i64,
}

/// The `vpn_gateway` object of a create request.
pub fn gateway_body(r: &GatewayCreate) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(n) = &r.name {
        m.insert("name".into(), json!(n));
    }
    m.insert("vpc_id".into(), json!(r.vpc_id));
    m.insert("connect_subnet".into(), json!(r.subnet_id));
    m.insert("local_subnets".into(), json!(r.local_subnets));
    let eip = match &r.eip_id {
        Some(id) => json!({"id": id}),
        None => json!({"type": "5_bgp", "bandwidth_size": r.eip_bandwidth}),
    };
    m.insert("eip1".into(), eip);
    m
}

/// `gateway create ...`.
pub async fn gateway_create(s: &mut Session, r: GatewayCreate, out: OutputFormat) -> Result<()> {
    create(s, Kind::Gateway, gateway_body(&r), out).await
}

/// `customer-gateway create ...`.
pub async fn cgw_create(
    s: &mut Session,
    ip: &str,
    name: Option<String>,
    bgp_asn: Option<i64>,
    out: OutputFormat,
) -> Result<()> {
    let mut m = Map::new();
    m.insert("id_type".into(), json!("ip"));
    m.insert("id_value".into(), json!(ip));
    if let Some(n) = name {
        m.insert("name".into(), json!(n));
    }
    if let Some(a) = bgp_asn {
        m.insert("bgp_asn".into(), json!(a));
    }
    create(s, Kind::CustomerGateway, m, out).await
}

/// `connection create`.
pub struct ConnectionCreate {
    pub gateway: String,
    pub eip_id: Option<String>,
    pub customer_gateway: String,
    pub peer_subnets: Vec<String>,
    pub psk: String,
    pub name: Option<String>,
    pub style: Option<&'static str>,
}

/// The `vpn_connection` object of a create request; `gateway` is the
/// gateway's show object when the request needs it (default EIP, policy
/// rules).
pub fn connection_body(
    r: &ConnectionCreate,
    vgw_id: &str,
    cgw_id: &str,
    gateway: Option<&Value>,
) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    if let Some(n) = &r.name {
        m.insert("name".into(), json!(n));
    }
    m.insert("vgw_id".into(), json!(vgw_id));
    let eip = match (&r.eip_id, gateway) {
        (Some(e), _) => e.clone(),
        (None, Some(g)) => g
            .pointer("/eip1/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("gateway {vgw_id} has no eip1: give --eip-id"))?,
        (None, None) => bail!("give --eip-id"),
    };
    m.insert("vgw_ip".into(), json!(eip));
    m.insert("cgw_id".into(), json!(cgw_id));
    if !r.peer_subnets.is_empty() {
        m.insert("peer_subnets".into(), json!(r.peer_subnets));
    }
    m.insert("psk".into(), json!(r.psk));
    if let Some(st) = r.style {
        m.insert("style".into(), json!(st));
    }
    if r.style == Some("policy") {
        // One rule per local subnet of the gateway, to all peer subnets.
        let locals: Vec<&str> = gateway
            .and_then(|g| g.get("local_subnets"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if locals.is_empty() {
            bail!("style policy needs the gateway's local subnets, and gateway {vgw_id} has none");
        }
        let rules: Vec<Value> = locals
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"rule_index": i + 1, "source": l, "destination": r.peer_subnets}))
            .collect();
        m.insert("policy_rules".into(), Value::Array(rules));
    }
    Ok(m)
}

/// `connection create ...`.
pub async fn connection_create(s: &mut Session, r: ConnectionCreate, out: OutputFormat) -> Result<()> {
    let vgw_id = resolve(s, Kind::Gateway, &r.gateway).await?;
    let cgw_id = resolve(s, Kind::CustomerGateway, &r.customer_gateway).await?;
    let gateway = if r.eip_id.is_none() || r.style == Some("policy") {
        Some(get(s, Kind::Gateway, &vgw_id).await?)
    } else {
        None
    };
    let body = connection_body(&r, &vgw_id, &cgw_id, gateway.as_ref())?;
    create(s, Kind::Connection, body, out).await
}

/// `monitor create --connection ID`.
pub async fn monitor_create(s: &mut Session, connection: &str, out: OutputFormat) -> Result<()> {
    let conn = resolve(s, Kind::Connection, connection).await?;
    let mut m = Map::new();
    m.insert("vpn_connection_id".into(), json!(conn));
    create(s, Kind::Monitor, m, out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_gets_a_new_pool_eip_unless_one_is_named() {
        let mut r = GatewayCreate {
            name: None,
            vpc_id: "v".into(),
            subnet_id: "s".into(),
            local_subnets: vec!["192.168.0.0/24".into()],
            eip_id: None,
            eip_bandwidth: 20,
        };
        let b = Value::Object(gateway_body(&r));
        assert_eq!(
            b,
            json!({"vpc_id": "v", "connect_subnet": "s", "local_subnets": ["192.168.0.0/24"],
                   "eip1": {"type": "5_bgp", "bandwidth_size": 20}})
        );
        r.eip_id = Some("e".into());
        r.name = Some("gw".into());
        let b = Value::Object(gateway_body(&r));
        assert_eq!(b["eip1"], json!({"id": "e"}));
        assert_eq!(b["name"], "gw");
    }

    #[test]
    fn a_policy_connection_gets_one_rule_per_local_subnet() {
        let r = ConnectionCreate {
            gateway: "g".into(),
            eip_id: None,
            customer_gateway: "c".into(),
            peer_subnets: vec!["10.0.0.0/16".into(), "10.1.0.0/16".into()],
            psk: "Abcd1234!x".into(),
            name: None,
            style: Some("policy"),
        };
        let g =
            json!({"eip1": {"id": "eip-1"}, "local_subnets": ["192.168.0.0/24", "192.168.1.0/24"]});
        let b = Value::Object(connection_body(&r, "g-id", "c-id", Some(&g)).unwrap());
        assert_eq!(b["vgw_ip"], "eip-1");
        assert_eq!(b["style"], "policy");
        assert_eq!(
            b["policy_rules"],
            json!([
                {"rule_index": 1, "source": "192.168.0.0/24", "destination": ["10.0.0.0/16", "10.1.0.0/16"]},
                {"rule_index": 2, "source": "192.168.1.0/24", "destination": ["10.0.0.0/16", "10.1.0.0/16"]}
            ])
        );
        let no_eip = json!({"local_subnets": []});
        let e = connection_body(&r, "g-id", "c-id", Some(&no_eip)).unwrap_err();
        assert!(e.to_string().contains("--eip-id"), "{e}");
    }

    #[test]
    fn list_rows_pick_the_interesting_fields() {
        let g = json!({"id": "g", "name": "gw", "status": "ACTIVE", "eip1": {"ip_address": "127.0.0.2"},
                       "eip2": {"ip_address": "127.0.0.3"}, "local_subnets": ["192.168.0.0/24"],
                       "used_connection_number": 1, "connection_number": 200, "created_at": "t"});
        assert_eq!(
            row(Kind::Gateway, &g),
            [
                "g",
                "gw",
                "ACTIVE",
                "127.0.0.2,127.0.0.3",
                "192.168.0.0/24",
                "1/200",
                "t"
            ]
        );
        for k in [
            Kind::Gateway,
            Kind::CustomerGateway,
            Kind::Connection,
            Kind::Monitor,
        ] {
            assert_eq!(columns(k).len(), row(k, &json!({})).len(), "{k:?}");
        }
    }
}
