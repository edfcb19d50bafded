//! The resource rules the store applies inside its transactions, as pure
//! functions: references a create or update names, what a monitored
//! connection may not change, which EIPs an update rebinds, and the words of
//! the errors (the store writes none of its own).

use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::eip::bind_error;
use domain::error::Kind;
use domain::gateway::{UpdateVgw, VpnGateway};
use domain::{ConnectionId, CustomerGatewayId, DomainError, GatewayId, MonitorId};
use serde_json::{Value, json};
use std::path::Path;

fn golden<T: serde::de::DeserializeOwned>(file: &str, key: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("golden file");
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    serde_json::from_value(v[key].take()).expect("the record")
}

fn invalid(msg: &str) -> DomainError {
    DomainError::Invalid(msg.to_string())
}

const G: &str = "0b0d5e6b-1f1e-4a4e-9a5b-111111111111";
const C: &str = "0b0d5e6b-1f1e-4a4e-9a5b-222222222222";

fn create(body: Value) -> CreateConnection {
    serde_json::from_value(body).expect("a create body")
}

#[test]
fn a_connection_create_names_its_gateway_and_customer_gateway_as_uuids() {
    assert_eq!(
        domain::connection::create_refs(&create(json!({"vgw_id": G, "cgw_id": C}))),
        Ok((
            GatewayId::parse(G).unwrap(),
            CustomerGatewayId::parse(C).unwrap()
        ))
    );
    assert_eq!(
        domain::connection::create_refs(&create(json!({"cgw_id": C}))),
        Err(invalid("vpn_connection.vgw_id is required"))
    );
    assert_eq!(
        domain::connection::create_refs(&create(json!({"vgw_id": G}))),
        Err(invalid("vpn_connection.cgw_id is required"))
    );
    assert_eq!(
        domain::connection::create_refs(&create(json!({"vgw_id": "gw-1", "cgw_id": C}))),
        Err(invalid(
            r#"vpn_connection.vgw_id is not a valid UUID: "gw-1""#
        ))
    );
}

#[test]
fn a_monitored_connection_keeps_its_customer_gateway() {
    let mut conn: VpnConnection = golden("vpn_connection_show_response.json", "vpn_connection");
    let other = CustomerGatewayId::random();
    let update: UpdateConnection =
        serde_json::from_value(json!({"cgw_id": other.to_string()})).unwrap();
    assert_eq!(VpnConnection::update_cgw_ref(&update), Ok(Some(other)));
    let none: UpdateConnection = serde_json::from_value(json!({"name": "x"})).unwrap();
    assert_eq!(VpnConnection::update_cgw_ref(&none), Ok(None));
    let bad: UpdateConnection = serde_json::from_value(json!({"cgw_id": "nope"})).unwrap();
    assert_eq!(
        VpnConnection::update_cgw_ref(&bad),
        Err(invalid(
            r#"vpn_connection.cgw_id is not a valid UUID: "nope""#
        ))
    );

    conn.connection_monitor_id = None;
    assert_eq!(
        conn.check_cgw_change(&other),
        Ok(()),
        "no monitor: free to move"
    );
    let m = MonitorId::random();
    conn.connection_monitor_id = Some(m);
    assert_eq!(
        conn.check_cgw_change(&conn.cgw_id.clone()),
        Ok(()),
        "the same one"
    );
    assert_eq!(
        conn.check_cgw_change(&other),
        Err(DomainError::Invalid(format!(
            "vpn_connection.cgw_id cannot change while connection monitor {m} exists; delete it first"
        )))
    );
}

#[test]
fn a_gateway_update_rebinds_only_the_eips_it_changes_and_only_on_a_public_gateway() {
    let mut g: VpnGateway = golden("vpn_gateway_show_response.json", "vpn_gateway");
    let held = g.eip1.as_ref().expect("eip1").id.clone();
    let fresh = "0b0d5e6b-1f1e-4a4e-9a5b-333333333333".to_string();
    let same: UpdateVgw = serde_json::from_value(json!({"eip_id_1": held})).unwrap();
    assert_eq!(g.eip_rebinds(&same), Ok(vec![]));
    let change: UpdateVgw = serde_json::from_value(json!({"eip_id_2": fresh})).unwrap();
    assert_eq!(g.eip_rebinds(&change), Ok(vec![(2, fresh.clone())]));
    g.network_type = "private".into();
    assert_eq!(
        g.eip_rebinds(&change),
        Err(invalid(
            "vpn_gateway.eip_id_2: a private gateway has no EIPs"
        ))
    );
}

#[test]
fn store_errors_are_worded_by_the_domain() {
    let g = GatewayId::random();
    let k = ConnectionId::random();
    assert_eq!(
        DomainError::in_use(Kind::VpnGateway, &g, &k.to_string()),
        DomainError::Invalid(format!("vpn gateway {g} is used by vpn connection {k}"))
    );
    assert_eq!(
        VpnGateway::eip_in_use(1, "e1", "k1"),
        invalid("vpn_gateway.eip_id_1: EIP e1 is used by vpn connection k1")
    );
    assert_eq!(
        bind_error::already_bound("vpn_gateway.eip1", "e1"),
        invalid("vpn_gateway.eip1.id e1 is already bound to a VPN gateway")
    );
    assert_eq!(
        bind_error::not_in_pool("vpn_gateway.eip1", "e1"),
        invalid("vpn_gateway.eip1.id e1 is not an EIP of this project's pool")
    );
    assert_eq!(
        bind_error::exhausted("vpn_gateway.eip2"),
        invalid(
            "vpn_gateway.eip2: the EIP pool is exhausted (the operator sets it with --eip-pool)"
        )
    );
    assert_eq!(
        DomainError::already_exists(Kind::Project, "p"),
        invalid(r#"project "p" already exists"#)
    );
}

#[test]
fn subnets_are_stored_canonical_and_unusable_ranges_are_refused() {
    use domain::validate::{cidr_list, routable_subnets};
    assert_eq!(
        cidr_list("f", &["10.0.0.0/08".into(), "192.168.1.0/24".into()], 50),
        Ok(vec!["10.0.0.0/8".to_string(), "192.168.1.0/24".to_string()])
    );
    assert_eq!(
        cidr_list("f", &["10.0.0.0/8".into(), "10.0.0.0/08".into()], 50),
        Err(invalid(r#"f repeats "10.0.0.0/08""#)),
        "the same subnet twice, however written"
    );
    for (bad, what) in [
        (
            "0.0.0.0/0",
            "\"this network\" (or the default route) range 0.0.0.0/8",
        ),
        ("224.0.0.0/4", "multicast range 224.0.0.0/4"),
        ("127.0.0.0/8", "loopback range 127.0.0.0/8"),
        (
            "169.254.0.0/16",
            "link-local (tunnel addresses) range 169.254.0.0/16",
        ),
        (
            "169.254.10.0/30",
            "link-local (tunnel addresses) range 169.254.0.0/16",
        ),
        ("240.0.0.0/8", "reserved range 240.0.0.0/4"),
    ] {
        assert_eq!(
            routable_subnets("vpn_gateway.local_subnets", &[bad.to_string()]),
            Err(DomainError::Invalid(format!(
                "vpn_gateway.local_subnets[0] {bad} overlaps the {what}"
            ))),
            "{bad}"
        );
    }
    assert_eq!(
        routable_subnets("f", &["10.0.0.0/8".into(), "192.168.0.0/16".into()]),
        Ok(())
    );
}

#[test]
fn an_update_keeps_peer_subnets_off_the_gateways_local_subnets() {
    let mut conn: VpnConnection = golden("vpn_connection_show_response.json", "vpn_connection");
    let local = vec!["192.168.0.0/24".to_string()];
    let clash: UpdateConnection =
        serde_json::from_value(json!({"peer_subnets": ["192.168.0.0/16"]})).unwrap();
    assert_eq!(
        conn.apply_update(
            &clash,
            "2026-01-01T00:00:00.000Z",
            &Default::default(),
            &local
        ),
        Err(invalid(
            "vpn_connection.peer_subnets 192.168.0.0/16 overlaps the gateway's local subnet 192.168.0.0/24"
        ))
    );
    let fine: UpdateConnection =
        serde_json::from_value(json!({"peer_subnets": ["10.0.0.0/08"]})).unwrap();
    conn.apply_update(
        &fine,
        "2026-01-01T00:00:00.000Z",
        &Default::default(),
        &local,
    )
    .unwrap();
    assert_eq!(conn.peer_subnets, vec!["10.0.0.0/8".to_string()]);
}
