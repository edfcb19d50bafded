//! The VPN v5 resources: create, show, list, delete, with table or JSON
//! output. Commands accept a resource's id or, where it has one, its name.
//!
//! Create bodies are the domain's request structs, which the server parses
//! with `deny_unknown_fields`; answers stay JSON values for printing and are
//! read into the domain's show structs where a field is needed (list rows,
//! the gateway a connection is created on).

use crate::OutputFormat;
use crate::session::{Api, Session};
use crate::table::{Table, vertical};
use anyhow::{Context, Result, anyhow, bail};
use domain::connection::{CreateConnection, PolicyRule, VpnConnection};
use domain::customer_gateway::{CreateCgw, CustomerGateway};
use domain::eip::EipRequest;
use domain::gateway::{CreateVgw, VpnGateway};
use domain::monitor::{ConnectionMonitor, CreateMonitor};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

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

/// A table cell: `-` for nothing.
fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// A list as one cell, comma-separated.
fn joined<S: AsRef<str>>(items: &[S]) -> String {
    dash(
        &items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn optional<T: ToString>(v: Option<&T>) -> String {
    v.map_or_else(|| "-".into(), |x| dash(&x.to_string()))
}

fn gateway_row(g: &VpnGateway) -> Vec<String> {
    let eips: Vec<&str> = [&g.eip1, &g.eip2]
        .into_iter()
        .flatten()
        .map(|e| e.ip_address.as_str())
        .collect();
    vec![
        g.id.to_string(),
        dash(&g.name),
        dash(&g.status),
        joined(&eips),
        joined(&g.local_subnets),
        format!("{}/{}", g.used_connection_number, g.connection_number),
        dash(&g.created_at),
    ]
}

fn cgw_row(c: &CustomerGateway) -> Vec<String> {
    vec![
        c.id.to_string(),
        dash(&c.name),
        dash(&c.id_value),
        optional(c.bgp_asn.as_ref()),
        dash(&c.created_at),
    ]
}

fn connection_row(c: &VpnConnection) -> Vec<String> {
    vec![
        c.id.to_string(),
        dash(&c.name),
        dash(&c.status),
        dash(&c.style),
        c.vgw_id.to_string(),
        c.cgw_id.to_string(),
        joined(&c.peer_subnets),
        optional(c.connection_monitor_id.as_ref()),
    ]
}

fn monitor_row(m: &ConnectionMonitor) -> Vec<String> {
    vec![
        m.id.to_string(),
        dash(&m.status),
        m.vpn_connection_id.to_string(),
        dash(&m.source_ip),
        dash(&m.destination_ip),
        dash(&m.proto_type),
    ]
}

/// One list row: the object read into its show struct.
fn row(kind: Kind, v: &Value) -> Result<Vec<String>> {
    Ok(match kind {
        Kind::Gateway => gateway_row(&typed(kind, v)?),
        Kind::CustomerGateway => cgw_row(&typed(kind, v)?),
        Kind::Connection => connection_row(&typed(kind, v)?),
        Kind::Monitor => monitor_row(&typed(kind, v)?),
    })
}

/// Reads a show object into its domain struct; the error names the field
/// that does not fit.
pub fn typed<T: DeserializeOwned>(kind: Kind, v: &Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        anyhow!(
            "the server's {} object does not fit the VPN v5 show model at {}: {}",
            kind.key(),
            e.path(),
            e.inner()
        )
    })
}

/// A request body: the resource under its singular key, as the server's
/// `CreateBody` structs read it (`crates/api/src/routes/*.rs`).
pub fn envelope<T: Serialize>(kind: Kind, inner: &T) -> Result<Value> {
    let inner = serde_json::to_value(inner)
        .with_context(|| format!("encoding the {} request", kind.key()))?;
    let mut m = Map::new();
    m.insert(kind.key().to_string(), inner);
    Ok(Value::Object(m))
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
                t.row(row(kind, v)?);
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

async fn create<T: Serialize>(
    s: &mut Session,
    kind: Kind,
    req: &T,
    out: OutputFormat,
) -> Result<()> {
    let body = envelope(kind, req)?;
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

/// The `vpn_gateway` of a create request: a VPC-attached public gateway
/// whose eip1 is the named pool entry or a new one from the pool.
pub fn gateway_body(r: &GatewayCreate) -> CreateVgw {
    let eip1 = match &r.eip_id {
        Some(id) => EipRequest {
            id: Some(id.clone()),
            ..EipRequest::default()
        },
        None => EipRequest {
            eip_type: Some("5_bgp".into()),
            bandwidth_size: Some(r.eip_bandwidth),
            ..EipRequest::default()
        },
    };
    CreateVgw {
        name: r.name.clone(),
        vpc_id: Some(r.vpc_id.clone()),
        connect_subnet: Some(r.subnet_id.clone()),
        local_subnets: Some(r.local_subnets.clone()),
        eip1: Some(eip1),
        ..CreateVgw::default()
    }
}

/// `gateway create ...`.
pub async fn gateway_create(s: &mut Session, r: GatewayCreate, out: OutputFormat) -> Result<()> {
    create(s, Kind::Gateway, &gateway_body(&r), out).await
}

/// The `customer_gateway` of a create request: identified by its address.
pub fn cgw_body(ip: &str, name: Option<String>, bgp_asn: Option<i64>) -> CreateCgw {
    CreateCgw {
        name,
        id_type: Some("ip".into()),
        id_value: Some(ip.to_string()),
        bgp_asn,
        ..CreateCgw::default()
    }
}

/// `customer-gateway create ...`.
pub async fn cgw_create(
    s: &mut Session,
    ip: &str,
    name: Option<String>,
    bgp_asn: Option<i64>,
    out: OutputFormat,
) -> Result<()> {
    create(s, Kind::CustomerGateway, &cgw_body(ip, name, bgp_asn), out).await
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

/// The `vpn_connection` of a create request; `gateway` is the gateway's
/// show object when the request needs it (default EIP, policy rules).
pub fn connection_body(
    r: &ConnectionCreate,
    vgw_id: &str,
    cgw_id: &str,
    gateway: Option<&VpnGateway>,
) -> Result<CreateConnection> {
    let vgw_ip = match (&r.eip_id, gateway) {
        (Some(e), _) => e.clone(),
        (None, Some(g)) => g
            .eip1
            .as_ref()
            .map(|e| e.id.clone())
            .ok_or_else(|| anyhow!("gateway {vgw_id} has no eip1: give --eip-id"))?,
        (None, None) => bail!("give --eip-id"),
    };
    let policy_rules = if r.style == Some("policy") {
        // One rule per local subnet of the gateway, to all peer subnets.
        let locals = gateway
            .map(|g| g.local_subnets.as_slice())
            .unwrap_or_default();
        if locals.is_empty() {
            bail!("style policy needs the gateway's local subnets, and gateway {vgw_id} has none");
        }
        let rules = (1..)
            .zip(locals)
            .map(|(i, l)| PolicyRule {
                rule_index: Some(i),
                source: Some(l.clone()),
                destination: Some(r.peer_subnets.clone()),
            })
            .collect();
        Some(rules)
    } else {
        None
    };
    Ok(CreateConnection {
        name: r.name.clone(),
        vgw_id: Some(vgw_id.to_string()),
        vgw_ip: Some(vgw_ip),
        cgw_id: Some(cgw_id.to_string()),
        peer_subnets: (!r.peer_subnets.is_empty()).then(|| r.peer_subnets.clone()),
        psk: Some(r.psk.clone()),
        style: r.style.map(str::to_string),
        policy_rules,
        ..CreateConnection::default()
    })
}

/// `connection create ...`.
pub async fn connection_create(
    s: &mut Session,
    r: ConnectionCreate,
    out: OutputFormat,
) -> Result<()> {
    let vgw_id = resolve(s, Kind::Gateway, &r.gateway).await?;
    let cgw_id = resolve(s, Kind::CustomerGateway, &r.customer_gateway).await?;
    let gateway: Option<VpnGateway> = if r.eip_id.is_none() || r.style == Some("policy") {
        let v = get(s, Kind::Gateway, &vgw_id).await?;
        Some(typed(Kind::Gateway, &v)?)
    } else {
        None
    };
    let body = connection_body(&r, &vgw_id, &cgw_id, gateway.as_ref())?;
    create(s, Kind::Connection, &body, out).await
}

/// The `connection_monitor` of a create request.
pub fn monitor_body(vpn_connection_id: &str) -> CreateMonitor {
    CreateMonitor {
        vpn_connection_id: Some(vpn_connection_id.to_string()),
    }
}

/// `monitor create --connection ID`.
pub async fn monitor_create(s: &mut Session, connection: &str, out: OutputFormat) -> Result<()> {
    let conn = resolve(s, Kind::Connection, connection).await?;
    create(s, Kind::Monitor, &monitor_body(&conn), out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A show object from the domain's golden files (the spec's examples).
    fn golden(file: &str, key: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../domain/tests/golden")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v[key].take()
    }

    fn gateway() -> VpnGateway {
        let v = golden("vpn_gateway_show_response.json", "vpn_gateway");
        typed(Kind::Gateway, &v).unwrap()
    }

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
        let b = serde_json::to_value(gateway_body(&r)).unwrap();
        assert_eq!(
            b,
            json!({"vpc_id": "v", "connect_subnet": "s", "local_subnets": ["192.168.0.0/24"],
                   "eip1": {"type": "5_bgp", "bandwidth_size": 20}})
        );
        r.eip_id = Some("e".into());
        r.name = Some("gw".into());
        let b = serde_json::to_value(gateway_body(&r)).unwrap();
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
        let mut g = gateway();
        g.local_subnets = vec!["192.168.0.0/24".into(), "192.168.1.0/24".into()];
        let b =
            serde_json::to_value(connection_body(&r, "g-id", "c-id", Some(&g)).unwrap()).unwrap();
        assert_eq!(b["vgw_ip"], "9b1d4e6f-3a2c-4b5d-8e7f-6a5b4c3d2e1f");
        assert_eq!(b["style"], "policy");
        assert_eq!(
            b["policy_rules"],
            json!([
                {"rule_index": 1, "source": "192.168.0.0/24", "destination": ["10.0.0.0/16", "10.1.0.0/16"]},
                {"rule_index": 2, "source": "192.168.1.0/24", "destination": ["10.0.0.0/16", "10.1.0.0/16"]}
            ])
        );
        g.eip1 = None;
        let e = connection_body(&r, "g-id", "c-id", Some(&g)).unwrap_err();
        assert!(e.to_string().contains("--eip-id"), "{e}");
        g = gateway();
        g.local_subnets.clear();
        let e = connection_body(&r, "g-id", "c-id", Some(&g)).unwrap_err();
        assert!(e.to_string().contains("local subnets"), "{e}");
    }

    #[test]
    fn list_rows_pick_the_interesting_fields() {
        let g = golden("vpn_gateway_show_response.json", "vpn_gateway");
        assert_eq!(
            row(Kind::Gateway, &g).unwrap(),
            [
                "1a2b7f3e-9c41-4d2a-8b6e-5f0c3d2e1a90",
                "vpngw-1a2b",
                "ACTIVE",
                "198.18.100.10,198.18.100.11",
                "192.168.0.0/24",
                "1/200",
                "2025-01-01T00:00:00.000Z"
            ]
        );
        let c = golden("vpn_connection_show_response.json", "vpn_connection");
        assert_eq!(
            row(Kind::Connection, &c).unwrap(),
            [
                "5e6f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
                "vpn-5e6f",
                "ACTIVE",
                "STATIC",
                "1a2b7f3e-9c41-4d2a-8b6e-5f0c3d2e1a90",
                "3c4d9e21-7a5b-4c8d-9e0f-1a2b3c4d5e6f",
                "10.10.0.0/16",
                "e0c6d86a-a284-4669-874a-fde57ff6745f"
            ]
        );
        let mut cgw = golden("customer_gateway_create_response.json", "customer_gateway");
        cgw.as_object_mut().unwrap().remove("bgp_asn");
        assert_eq!(
            row(Kind::CustomerGateway, &cgw).unwrap(),
            [
                "3c4d9e21-7a5b-4c8d-9e0f-1a2b3c4d5e6f",
                "cgw-3c4d",
                "198.18.101.20",
                "-",
                "2025-01-01T00:01:00.000Z"
            ]
        );
        for (k, file, key) in [
            (
                Kind::Gateway,
                "vpn_gateway_show_response.json",
                "vpn_gateway",
            ),
            (
                Kind::CustomerGateway,
                "customer_gateway_create_response.json",
                "customer_gateway",
            ),
            (
                Kind::Connection,
                "vpn_connection_show_response.json",
                "vpn_connection",
            ),
            (
                Kind::Monitor,
                "connection_monitor_show_response.json",
                "connection_monitor",
            ),
        ] {
            let r = row(k, &golden(file, key)).unwrap();
            assert_eq!(columns(k).len(), r.len(), "{k:?}");
        }
    }

    #[test]
    fn an_object_that_does_not_fit_the_show_model_names_the_field() {
        let mut m = golden(
            "connection_monitor_show_response.json",
            "connection_monitor",
        );
        m["source_ip"] = json!(7);
        let e = row(Kind::Monitor, &m).unwrap_err().to_string();
        assert!(
            e.contains("connection_monitor") && e.contains("source_ip"),
            "{e}"
        );
    }
}
