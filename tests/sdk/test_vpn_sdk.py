"""VPN v5 through the official Python SDK (huaweicloudsdkvpn 3.1.219), unmodified.

Spec: shared/spec/vpn-v5.md sections 1-6 and 10.  The lifecycle class runs in
file order: create -> show/list -> update -> errors -> delete in reverse order.
"""

import re
import time
import uuid
from datetime import datetime

import pytest

from huaweicloudsdkces.v1 import (
    BatchListMetricDataRequest,
    BatchListMetricDataRequestBody,
    ListMetricsRequest,
    MetricInfo,
    MetricsDimension,
    ShowMetricDataRequest,
)
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkvpn.v5 import (
    CreateConnectionMonitorResponse,
    CreateRequestEip,
    CreateVgwRequest,
    CreateVgwRequestBody,
    CreateVgwRequestBodyContent,
    DeleteCgwRequest,
    DeleteConnectionMonitorRequest,
    DeleteVgwRequest,
    DeleteVpnConnectionRequest,
    ListCgwsRequest,
    ListConnectionMonitorsRequest,
    ListVgwsRequest,
    ListVpnConnectionsRequest,
    ShowCgwRequest,
    ShowConnectionMonitorRequest,
    ShowVgwRequest,
    ShowVpnConnectionRequest,
    UpdateCgwRequest,
    UpdateCgwRequestBody,
    UpdateCgwRequestBodyContent,
    UpdateVgwRequest,
    UpdateVgwRequestBody,
    UpdateVgwRequestBodyContent,
    UpdateVpnConnectionRequest,
    UpdateVpnConnectionRequestBody,
    UpdateVpnConnectionRequestBodyContent,
)

from sdkutil import (
    LOCAL_SUBNETS,
    PEER_SUBNETS,
    PSK,
    REQUEST_ID_RE,
    UUID_RE,
    expect_error,
    Factory,
    make_ces_client,
    make_vpn_client,
)

POOL = {f"127.0.0.{i}" for i in range(2, 10)}
WIRE_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def ok(resp, status):
    """Checks a success response: HTTP status and, for bodies, a request_id."""
    assert resp.status_code == status, f"status {resp.status_code} != {status}"
    if status == 204:
        assert not resp.raw_content, f"204 must have an empty body, got {resp.raw_content!r}"
    else:
        assert resp.request_id, "success body must carry request_id"
    return resp


def raw(resp, key):
    """The JSON object under `key` exactly as the server sent it."""
    body = resp.to_json_object()
    assert key in body, f"{key!r} missing from {body}"
    return body[key]


def ts(value):
    """A wire timestamp (str, or datetime if python-dateutil is installed)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_wire_ts(value):
    assert isinstance(value, str) and WIRE_TS_RE.fullmatch(value), \
        f"timestamp {value!r} is not yyyy-MM-ddTHH:mm:ss.SSSZ"


def assert_marker_is_last_created_at(page_info, items):
    """Spec 1.3: next_marker is the created_at of the last item returned
    (vpnmon renders it with microseconds; at millisecond precision it must
    equal the item's created_at)."""
    m = ts(page_info.next_marker)
    assert m.replace(microsecond=m.microsecond // 1000 * 1000) == ts(items[-1].created_at), \
        (page_info.next_marker, items[-1].created_at)


def paginate(call, make_request, items_attr, limit):
    """Follows page_info.next_marker; returns (pages of ids, last response)."""
    pages, marker = [], None
    for _ in range(50):
        resp = ok(call(make_request(limit=limit, marker=marker)), 200)
        items = getattr(resp, items_attr)
        assert resp.page_info is not None, "paginated list must carry page_info"
        assert resp.page_info.current_count == len(items)
        assert len(items) <= limit
        pages.append([i.id for i in items])
        if len(items) < limit:
            return pages, resp
        assert_marker_is_last_created_at(resp.page_info, items)
        marker = resp.page_info.next_marker
    pytest.fail("pagination did not terminate")


class State(dict):
    def need(self, *keys):
        for k in keys:
            if k not in self:
                pytest.skip(f"needs {k!r} from an earlier test in this class")
        return [self[k] for k in keys] if len(keys) > 1 else self[keys[0]]


@pytest.fixture(scope="class")
def st():
    return State()


class TestLifecycle:
    # ----- VPN gateway -------------------------------------------------------

    def test_create_vgw_allocates_eip(self, vpn, factory, st):
        resp = ok(factory.vgw(name="sdk-gw-a"), 201)
        gw = resp.vpn_gateway
        assert UUID_RE.fullmatch(gw.id)
        assert gw.name == "sdk-gw-a"
        assert gw.local_subnets == LOCAL_SUBNETS
        assert gw.network_type == "public"
        assert gw.attachment_type == "vpc"
        assert gw.enterprise_project_id == "0"
        body = raw(resp, "vpn_gateway")
        for absent in ("status", "eip1", "eip2", "created_at"):
            assert absent not in body, f"create response must not carry {absent!r} (spec 3.1)"
        st["vgw"] = gw.id

    def test_show_vgw_shows_bound_eip(self, vpn, st):
        vgw = st.need("vgw")
        resp = ok(vpn.show_vgw(ShowVgwRequest(vgw_id=vgw)), 200)
        gw = resp.vpn_gateway
        assert gw.id == vgw and gw.name == "sdk-gw-a"
        assert gw.status == "ACTIVE"
        assert gw.eip1 is not None, "eip1 must be shown once ACTIVE"
        assert UUID_RE.fullmatch(gw.eip1.id)
        assert gw.eip1.ip_address in POOL
        assert gw.eip1.type == "5_bgp"
        assert gw.eip1.bandwidth_size == 10
        assert gw.eip1.ip_version == 4
        assert_wire_ts(raw(resp, "vpn_gateway")["created_at"])
        st["eip"] = gw.eip1.id
        st["eip_ip"] = gw.eip1.ip_address

    def test_list_vgws_with_vgw_id_filter(self, vpn, factory, st):
        vgw = st.need("vgw")
        st["vgw_b"] = ok(factory.vgw(name="sdk-gw-b"), 201).vpn_gateway.id
        st["eip_b"] = factory.eip1_id(st["vgw_b"])
        all_ = ok(vpn.list_vgws(ListVgwsRequest()), 200).vpn_gateways
        ids = [g.id for g in all_]
        assert {vgw, st["vgw_b"]} <= set(ids) and len(ids) == len(set(ids))
        only = ok(vpn.list_vgws(ListVgwsRequest(vgw_id=vgw)), 200).vpn_gateways
        assert [g.id for g in only] == [vgw]
        assert only[0].status == "ACTIVE" and only[0].eip1.id == st["eip"]
        none = ok(vpn.list_vgws(ListVgwsRequest(vgw_id=str(uuid.uuid4()))), 200).vpn_gateways
        assert none == []

    # ----- customer gateway --------------------------------------------------

    def test_create_and_show_cgw(self, vpn, factory, st):
        resp = ok(factory.cgw(name="sdk-cgw-a", id_value="127.0.0.10", bgp_asn=65010), 201)
        cgw = resp.customer_gateway
        assert UUID_RE.fullmatch(cgw.id)
        assert (cgw.name, cgw.id_type, cgw.id_value, cgw.bgp_asn) == \
            ("sdk-cgw-a", "ip", "127.0.0.10", 65010)
        assert_wire_ts(raw(resp, "customer_gateway")["created_at"])
        shown = ok(vpn.show_cgw(ShowCgwRequest(customer_gateway_id=cgw.id)), 200).customer_gateway
        assert (shown.id, shown.name, shown.id_type, shown.id_value, shown.bgp_asn) == \
            (cgw.id, "sdk-cgw-a", "ip", "127.0.0.10", 65010)
        assert shown.created_at == cgw.created_at
        st["cgw"] = cgw.id

    def test_list_cgws_filter_and_pagination(self, vpn, factory, st):
        cgw = st.need("cgw")
        extra = [ok(factory.cgw(name=f"sdk-cgw-{n}", id_value=f"127.0.0.{11 + i}",
                                bgp_asn=65011 + i), 201).customer_gateway.id
                 for i, n in enumerate("bcd")]
        st["extra_cgws"] = extra
        mine = {cgw, *extra}

        full = ok(vpn.list_cgws(ListCgwsRequest()), 200)
        ids = [c.id for c in full.customer_gateways]
        assert mine <= set(ids) and len(ids) == len(set(ids))
        assert full.total_count == len(ids)

        only = ok(vpn.list_cgws(ListCgwsRequest(cgw_id=cgw)), 200)
        assert [c.id for c in only.customer_gateways] == [cgw]
        assert only.customer_gateways[0].id_value == "127.0.0.10"

        pages, last = paginate(vpn.list_cgws, ListCgwsRequest, "customer_gateways", limit=2)
        flat = [i for p in pages for i in p]
        assert len(pages) >= 2, pages
        assert len(flat) == len(set(flat)), f"duplicates across pages: {pages}"
        assert set(flat) == set(ids)
        assert last.total_count == len(ids)

    # ----- VPN connection ----------------------------------------------------

    def test_create_and_show_vpn_connection(self, vpn, factory, st):
        vgw, eip, cgw = st.need("vgw", "eip", "cgw")
        resp = ok(factory.connection(vgw, eip, cgw, name="sdk-conn-a"), 201)
        c = resp.vpn_connection
        assert UUID_RE.fullmatch(c.id)
        assert (c.name, c.vgw_id, c.vgw_ip, c.cgw_id) == ("sdk-conn-a", vgw, eip, cgw)
        assert c.peer_subnets == PEER_SUBNETS
        assert c.style == "STATIC"
        body = raw(resp, "vpn_connection")
        for absent in ("status", "connection_monitor_id", "psk"):
            assert absent not in body, f"create response must not carry {absent!r} (spec 3.3)"
        assert PSK not in resp.raw_content.decode()

        shown_resp = ok(vpn.show_vpn_connection(ShowVpnConnectionRequest(vpn_connection_id=c.id)), 200)
        s = shown_resp.vpn_connection
        assert (s.id, s.name, s.vgw_id, s.vgw_ip, s.cgw_id, s.style) == \
            (c.id, "sdk-conn-a", vgw, eip, cgw, "STATIC")
        assert s.status == "ACTIVE"
        assert s.peer_subnets == PEER_SUBNETS
        assert s.connection_monitor_id is None, "no monitor yet"
        sbody = raw(shown_resp, "vpn_connection")
        assert "connection_monitor_id" not in sbody and "psk" not in sbody
        assert PSK not in shown_resp.raw_content.decode()
        assert_wire_ts(sbody["created_at"])
        st["conn"] = c.id

    def test_list_vpn_connections_filters_and_pagination(self, vpn, factory, st):
        vgw, eip, conn, vgw_b, eip_b, extra = st.need("vgw", "eip", "conn", "vgw_b", "eip_b", "extra_cgws")
        conn2 = ok(factory.connection(vgw, eip, extra[0], name="sdk-conn-b"), 201).vpn_connection.id
        conn3 = ok(factory.connection(vgw_b, eip_b, extra[1], name="sdk-conn-c"), 201).vpn_connection.id
        st["extra_conns"] = [conn2, conn3]

        full = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest()), 200)
        ids = [c.id for c in full.vpn_connections]
        assert {conn, conn2, conn3} <= set(ids) and len(ids) == len(set(ids))
        assert full.total_count == len(ids)
        assert PSK not in full.raw_content.decode(), "psk is never returned"

        by_gw = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest(vgw_id=vgw)), 200)
        assert sorted(c.id for c in by_gw.vpn_connections) == sorted([conn, conn2])
        by_gw_b = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest(vgw_id=vgw_b)), 200)
        assert [c.id for c in by_gw_b.vpn_connections] == [conn3]
        by_id = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest(vpn_id=conn)), 200)
        assert [c.id for c in by_id.vpn_connections] == [conn]
        assert by_id.vpn_connections[0].status == "ACTIVE"

        pages, last = paginate(vpn.list_vpn_connections, ListVpnConnectionsRequest,
                               "vpn_connections", limit=1)
        flat = [i for p in pages for i in p]
        assert len(flat) == len(set(flat)), f"duplicates across pages: {pages}"
        assert set(flat) == set(ids)
        assert last.total_count == len(ids)

        # filter and pagination together
        pages, _ = paginate(vpn.list_vpn_connections,
                            lambda **kw: ListVpnConnectionsRequest(vgw_id=vgw, **kw),
                            "vpn_connections", limit=1)
        assert sorted(i for p in pages for i in p) == sorted([conn, conn2])

    # ----- connection monitor ------------------------------------------------

    def test_create_monitor_then_show_differs(self, vpn, factory, st):
        conn, eip_ip = st.need("conn", "eip_ip")
        resp = ok(factory.monitor(conn), 201)
        assert isinstance(resp, CreateConnectionMonitorResponse)
        m = resp.connection_monitor
        assert not hasattr(m, "status"), "create model has no status attribute"
        assert "status" not in raw(resp, "connection_monitor"), \
            "create response must not carry status (spec 2.3)"
        assert UUID_RE.fullmatch(m.id)
        assert m.vpn_connection_id == conn
        assert m.type == "gateway"
        assert m.proto_type == "icmp"
        assert m.source_ip == eip_ip, "source_ip = address of the EIP behind vgw_ip (spec 2.5)"
        assert m.destination_ip == "127.0.0.10", "destination_ip = cgw id_value (spec 2.5)"
        st["mon"] = m.id

        shown = ok(vpn.show_connection_monitor(ShowConnectionMonitorRequest(connection_monitor_id=m.id)), 200)
        s = shown.connection_monitor
        assert s.status in ("PENDING_CREATE", "ACTIVE"), s.status
        assert (s.id, s.vpn_connection_id, s.type, s.proto_type, s.source_ip, s.destination_ip) == \
            (m.id, conn, "gateway", "icmp", eip_ip, "127.0.0.10")

    def test_connection_shows_its_monitor(self, vpn, st):
        conn, mon, vgw = st.need("conn", "mon", "vgw")
        s = ok(vpn.show_vpn_connection(ShowVpnConnectionRequest(vpn_connection_id=conn)), 200)
        assert s.vpn_connection.connection_monitor_id == mon
        listed = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest(vpn_id=conn)), 200)
        assert [c.connection_monitor_id for c in listed.vpn_connections] == [mon]
        by_gw = ok(vpn.list_vpn_connections(ListVpnConnectionsRequest(vgw_id=vgw)), 200)
        others = [c for c in by_gw.vpn_connections if c.id != conn]
        assert others and all(c.connection_monitor_id is None for c in others)

    def test_list_connection_monitors_filter(self, vpn, st):
        conn, mon, extra_conns = st.need("conn", "mon", "extra_conns")
        listed = ok(vpn.list_connection_monitors(ListConnectionMonitorsRequest(vpn_connection_id=conn)), 200)
        assert [m.id for m in listed.connection_monitors] == [mon]
        m = listed.connection_monitors[0]
        assert m.status in ("PENDING_CREATE", "ACTIVE")
        assert (m.vpn_connection_id, m.type, m.proto_type) == (conn, "gateway", "icmp")
        body = listed.to_json_object()
        assert "page_info" not in body and "total_count" not in body, "spec 2.3: list is not paginated"
        empty = ok(vpn.list_connection_monitors(
            ListConnectionMonitorsRequest(vpn_connection_id=extra_conns[0])), 200)
        assert empty.connection_monitors == []
        all_ = ok(vpn.list_connection_monitors(ListConnectionMonitorsRequest()), 200)
        assert mon in [m.id for m in all_.connection_monitors]

    # ----- errors on live resources ------------------------------------------

    def test_duplicate_monitor_is_rejected(self, factory, st):
        conn = st.need("conn")
        expect_error(lambda: factory.monitor(conn), 400, "VPN.0381", conn)

    def test_delete_gateway_in_use_is_rejected(self, vpn, st):
        vgw, conn = st.need("vgw", "conn")
        expect_error(lambda: vpn.delete_vgw(DeleteVgwRequest(vgw_id=vgw)), 400, "VPN.0001", conn)
        assert ok(vpn.show_vgw(ShowVgwRequest(vgw_id=vgw)), 200).vpn_gateway.status == "ACTIVE"

    def test_delete_cgw_in_use_is_rejected(self, vpn, st):
        cgw, conn = st.need("cgw", "conn")
        expect_error(lambda: vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=cgw)),
                     400, "VPN.0001", conn)
        ok(vpn.show_cgw(ShowCgwRequest(customer_gateway_id=cgw)), 200)

    def test_other_projects_ids_are_not_found(self, other_vpn, st):
        vgw, cgw, conn, mon = st.need("vgw", "cgw", "conn", "mon")
        calls = [
            lambda: other_vpn.show_vgw(ShowVgwRequest(vgw_id=vgw)),
            lambda: other_vpn.show_cgw(ShowCgwRequest(customer_gateway_id=cgw)),
            lambda: other_vpn.show_vpn_connection(ShowVpnConnectionRequest(vpn_connection_id=conn)),
            lambda: other_vpn.show_connection_monitor(ShowConnectionMonitorRequest(connection_monitor_id=mon)),
            lambda: other_vpn.delete_connection_monitor(DeleteConnectionMonitorRequest(connection_monitor_id=mon)),
            lambda: other_vpn.delete_vgw(DeleteVgwRequest(vgw_id=vgw)),
            lambda: other_vpn.update_cgw(UpdateCgwRequest(
                customer_gateway_id=cgw,
                body=UpdateCgwRequestBody(customer_gateway=UpdateCgwRequestBodyContent(name="stolen")))),
        ]
        for call in calls:
            expect_error(call, 404, "VPN.0004")
        # spec 10: creating on top of another project's resources -> 404 as well
        other = Factory(other_vpn)
        other._ip = 60
        expect_error(lambda: other.monitor(conn), 404, "VPN.0004")
        expect_error(lambda: other.connection(vgw, st["eip"], cgw), 404, "VPN.0004")
        # and the other project cannot see them in lists either
        assert vgw not in [g.id for g in other_vpn.list_vgws(ListVgwsRequest()).vpn_gateways]
        assert other_vpn.list_vgws(ListVgwsRequest(vgw_id=vgw)).vpn_gateways == []
        assert other_vpn.list_cgws(ListCgwsRequest(cgw_id=cgw)).customer_gateways == []
        assert other_vpn.list_vpn_connections(ListVpnConnectionsRequest(vpn_id=conn)).vpn_connections == []
        assert other_vpn.list_connection_monitors(
            ListConnectionMonitorsRequest(vpn_connection_id=conn)).connection_monitors == []

    # ----- updates -------------------------------------------------------------

    def test_update_vgw_name(self, vpn, st):
        vgw = st.need("vgw")
        resp = ok(vpn.update_vgw(UpdateVgwRequest(vgw_id=vgw, body=UpdateVgwRequestBody(
            vpn_gateway=UpdateVgwRequestBodyContent(name="sdk-gw-a-renamed")))), 200)
        assert resp.vpn_gateway.id == vgw
        assert resp.vpn_gateway.name == "sdk-gw-a-renamed"
        assert resp.vpn_gateway.local_subnets == LOCAL_SUBNETS
        shown = vpn.show_vgw(ShowVgwRequest(vgw_id=vgw)).vpn_gateway
        assert shown.name == "sdk-gw-a-renamed"
        assert shown.eip1.id == st["eip"], "renaming must not touch the EIP"

    def test_update_cgw_name(self, vpn, st):
        cgw = st.need("cgw")
        resp = ok(vpn.update_cgw(UpdateCgwRequest(customer_gateway_id=cgw, body=UpdateCgwRequestBody(
            customer_gateway=UpdateCgwRequestBodyContent(name="sdk-cgw-a-renamed")))), 200)
        assert (resp.customer_gateway.id, resp.customer_gateway.name) == (cgw, "sdk-cgw-a-renamed")
        assert resp.customer_gateway.id_value == "127.0.0.10"
        shown = vpn.show_cgw(ShowCgwRequest(customer_gateway_id=cgw)).customer_gateway
        assert shown.name == "sdk-cgw-a-renamed"

    def test_update_vpn_connection_name(self, vpn, st):
        conn, mon = st.need("conn", "mon")
        resp = ok(vpn.update_vpn_connection(UpdateVpnConnectionRequest(
            vpn_connection_id=conn, body=UpdateVpnConnectionRequestBody(
                vpn_connection=UpdateVpnConnectionRequestBodyContent(name="sdk-conn-a-renamed")))), 200)
        u = resp.vpn_connection
        assert (u.id, u.name) == (conn, "sdk-conn-a-renamed")
        assert u.connection_monitor_id == mon, "update response carries connection_monitor_id (spec 2.7)"
        assert u.peer_subnets == PEER_SUBNETS
        assert "psk" not in raw(resp, "vpn_connection")
        shown = vpn.show_vpn_connection(ShowVpnConnectionRequest(vpn_connection_id=conn)).vpn_connection
        assert shown.name == "sdk-conn-a-renamed"
        assert shown.connection_monitor_id == mon

    # ----- deletes, in reverse order ---------------------------------------------

    def test_delete_in_reverse_order(self, vpn, st):
        vgw, cgw, conn, mon = st.need("vgw", "cgw", "conn", "mon")

        ok(vpn.delete_connection_monitor(DeleteConnectionMonitorRequest(connection_monitor_id=mon)), 204)
        expect_error(lambda: vpn.show_connection_monitor(
            ShowConnectionMonitorRequest(connection_monitor_id=mon)), 404, "VPN.0004")
        s = vpn.show_vpn_connection(ShowVpnConnectionRequest(vpn_connection_id=conn))
        assert s.vpn_connection.connection_monitor_id is None
        assert "connection_monitor_id" not in raw(s, "vpn_connection")

        ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=conn)), 204)
        expect_error(lambda: vpn.show_vpn_connection(
            ShowVpnConnectionRequest(vpn_connection_id=conn)), 404, "VPN.0004")

        ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=cgw)), 204)
        expect_error(lambda: vpn.show_cgw(ShowCgwRequest(customer_gateway_id=cgw)), 404, "VPN.0004")

        # the other connection on this gateway goes first, then the gateway
        for c in st["extra_conns"]:
            ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=c)), 204)
        ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=vgw)), 204)
        expect_error(lambda: vpn.show_vgw(ShowVgwRequest(vgw_id=vgw)), 404, "VPN.0004")
        assert vpn.list_vgws(ListVgwsRequest(vgw_id=vgw)).vpn_gateways == []

        ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=st["vgw_b"])), 204)
        for c in st["extra_cgws"]:
            ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=c)), 204)
        expect_error(lambda: vpn.delete_vgw(DeleteVgwRequest(vgw_id=vgw)), 404, "VPN.0004")


# ----- errors that need no lifecycle state -----------------------------------------


def test_show_and_delete_unknown_monitor(vpn):
    unknown = str(uuid.uuid4())
    expect_error(lambda: vpn.show_connection_monitor(
        ShowConnectionMonitorRequest(connection_monitor_id=unknown)), 404, "VPN.0004")
    expect_error(lambda: vpn.delete_connection_monitor(
        DeleteConnectionMonitorRequest(connection_monitor_id=unknown)), 404, "VPN.0004")


def test_monitor_for_unknown_connection(factory):
    # spec 10: a monitor for a connection that does not exist -> 404 VPN.0004
    expect_error(lambda: factory.monitor(str(uuid.uuid4())), 404, "VPN.0004")


def test_bad_cidr_in_local_subnets(vpn, factory):
    before = [g.id for g in vpn.list_vgws(ListVgwsRequest()).vpn_gateways]
    e = expect_error(lambda: _create_vgw_with_subnets(factory, ["192.168.0.0/33"]),
                     400, "VPN.0001", "local_subnets")
    assert "192.168.0.0/33" in e.error_msg
    expect_error(lambda: _create_vgw_with_subnets(factory, ["not-a-cidr"]), 400, "VPN.0001",
                 "local_subnets")
    after = [g.id for g in vpn.list_vgws(ListVgwsRequest()).vpn_gateways]
    assert after == before, "a rejected create must not leave a gateway behind"


def _create_vgw_with_subnets(factory, subnets):
    content = CreateVgwRequestBodyContent(
        name="sdk-bad-cidr", vpc_id=str(uuid.uuid4()), connect_subnet=str(uuid.uuid4()),
        local_subnets=subnets, eip1=CreateRequestEip(type="5_bgp", bandwidth_size=10))
    return factory.client.create_vgw(CreateVgwRequest(body=CreateVgwRequestBody(vpn_gateway=content)))


def test_wrong_sk_is_unauthorized(server, admin_cred):
    sk = admin_cred["secret"]
    wrong = sk[:-1] + ("X" if sk[-1] != "X" else "Y")
    bad = make_vpn_client(server.endpoint, admin_cred["access"], wrong, admin_cred["project_id"])
    e = expect_error(lambda: bad.list_vgws(ListVgwsRequest()), 401, "APIGW.0301", "signature")
    assert sk not in e.error_msg and wrong not in e.error_msg
    expect_error(lambda: bad.show_connection_monitor(
        ShowConnectionMonitorRequest(connection_monitor_id=str(uuid.uuid4()))), 401, "APIGW.0301")


def test_unknown_ak_is_unauthorized(server, admin_cred):
    bad = make_vpn_client(server.endpoint, "UNKNOWNAK00000000000", admin_cred["secret"],
                          admin_cred["project_id"])
    # issue 5: the message says which check failed
    expect_error(lambda: bad.list_vgws(ListVgwsRequest()), 401, "APIGW.0301", "unknown access key")


def test_user_without_role_in_project_is_forbidden(server, admin_cred, other):
    # bob's AK/SK is valid, but bob has no role in the admin's project
    c = other["cred"]
    client = make_vpn_client(server.endpoint, c["access"], c["secret"], admin_cred["project_id"])
    expect_error(lambda: client.list_vgws(ListVgwsRequest()), 403, "VPN.0003")
    expect_error(lambda: client.list_connection_monitors(ListConnectionMonitorsRequest()), 403, "VPN.0003")


def test_other_project_sees_its_own_empty_world(other_vpn):
    assert ok(other_vpn.list_vgws(ListVgwsRequest()), 200).vpn_gateways == []
    assert ok(other_vpn.list_connection_monitors(ListConnectionMonitorsRequest()), 200).connection_monitors == []


def test_deleting_connection_deletes_its_monitor(vpn, factory):
    # spec 10: the monitor is deleted with its connection
    s = factory.stack("sdk-cascade")
    mon = ok(factory.monitor(s["conn"]), 201).connection_monitor.id
    ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=s["conn"])), 204)
    expect_error(lambda: vpn.show_connection_monitor(
        ShowConnectionMonitorRequest(connection_monitor_id=mon)), 404, "VPN.0004")
    assert vpn.list_connection_monitors(
        ListConnectionMonitorsRequest(vpn_connection_id=s["conn"])).connection_monitors == []
    ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=s["cgw"])), 204)
    ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=s["vgw"])), 204)


def test_connection_on_eip2_monitors_from_eip2(vpn, factory):
    # spec 2.5: source_ip is the address of whichever EIP (eip1/eip2) vgw_ip names
    gw_resp = ok(factory.vgw(name="sdk-two-eips",
                             eip2=CreateRequestEip(type="5_bgp", bandwidth_size=20)), 201)
    gw = ok(vpn.show_vgw(ShowVgwRequest(vgw_id=gw_resp.vpn_gateway.id)), 200).vpn_gateway
    assert gw.eip1.ip_address in POOL and gw.eip2.ip_address in POOL
    assert gw.eip1.ip_address != gw.eip2.ip_address and gw.eip1.id != gw.eip2.id
    assert gw.eip2.bandwidth_size == 20
    cgw = ok(factory.cgw(name="sdk-two-eips-cgw"), 201).customer_gateway
    conn = ok(factory.connection(gw.id, gw.eip2.id, cgw.id), 201).vpn_connection
    assert conn.vgw_ip == gw.eip2.id
    mon = ok(factory.monitor(conn.id), 201).connection_monitor
    assert (mon.source_ip, mon.destination_ip) == (gw.eip2.ip_address, cgw.id_value)
    ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=conn.id)), 204)
    ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=cgw.id)), 204)
    ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=gw.id)), 204)


def test_vgw_ip_must_be_an_eip_id(vpn, factory):
    # spec 3.3: vgw_ip is the EIP *id* for a public gateway, not its address
    s = factory.stack("sdk-vgwip")
    addr = vpn.show_vgw(ShowVgwRequest(vgw_id=s["vgw"])).vpn_gateway.eip1.ip_address
    expect_error(lambda: factory.connection(s["vgw"], addr, s["cgw"]), 400, "VPN.0001", "vgw_ip")
    expect_error(lambda: factory.connection(s["vgw"], str(uuid.uuid4()), s["cgw"]),
                 400, "VPN.0001", "vgw_ip")
    ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=s["conn"])), 204)
    ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=s["cgw"])), 204)
    ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=s["vgw"])), 204)


def test_cgw_marker_equal_to_last_created_at(vpn, factory):
    """Spec 1.3: the marker is the created_at of the last resource returned, so
    passing the last item's created_at as marker must not return that item again."""
    mine = [ok(factory.cgw(name=f"sdk-marker-{i}"), 201).customer_gateway.id for i in range(2)]
    first = ok(vpn.list_cgws(ListCgwsRequest(limit=1)), 200).customer_gateways
    assert len(first) == 1
    nxt = ok(vpn.list_cgws(ListCgwsRequest(limit=1, marker=str(first[0].created_at))), 200)
    assert first[0].id not in [c.id for c in nxt.customer_gateways], \
        f"marker={first[0].created_at} (the last item's created_at) returned that item again"
    for c in mine:
        ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=c)), 204)


def test_eip_pool_exhaustion_and_release(vpn, factory):
    # spec 10: an exhausted pool -> 400 VPN.0001 saying so; deleting a gateway frees its EIP
    made = []
    try:
        for _ in range(len(POOL) + 1):
            try:
                made.append(factory.vgw(name=f"sdk-pool-{len(made)}").vpn_gateway.id)
            except exceptions.ClientRequestException as e:
                assert (e.status_code, e.error_code) == (400, "VPN.0001"), e
                assert "pool" in e.error_msg and "exhausted" in e.error_msg, e.error_msg
                assert REQUEST_ID_RE.fullmatch(e.request_id)
                break
        else:
            pytest.fail(f"{len(made)} gateways from a pool of {len(POOL)} addresses")
        assert made, "no free EIP at all: gateways leaked by earlier tests?"
        addrs = {vpn.show_vgw(ShowVgwRequest(vgw_id=g)).vpn_gateway.eip1.ip_address for g in made}
        assert len(addrs) == len(made) and addrs <= POOL
    finally:
        for g in made:
            ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=g)), 204)
    again = ok(factory.vgw(name="sdk-pool-again"), 201).vpn_gateway.id
    assert vpn.show_vgw(ShowVgwRequest(vgw_id=again)).vpn_gateway.eip1.ip_address in addrs
    ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=again)), 204)


def test_success_body_request_id(vpn):
    resp = ok(vpn.list_vgws(ListVgwsRequest()), 200)
    assert REQUEST_ID_RE.fullmatch(resp.request_id), resp.request_id


def _wait_for(what, probe, done, timeout=20.0, step=0.25):
    """Calls `probe` until `done(value)`; fails after `timeout` s showing the
    last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not reached within {timeout:.0f} s (last: {value!r})")
        time.sleep(step)


def ces_ok(resp):
    """A CES success: 200 (the CES response models carry no request_id)."""
    assert resp.status_code == 200, f"status {resp.status_code} != 200"
    return resp


def test_ces_link_metrics(server, admin_cred, vpn, factory):
    """Spec 7.2 and 10: the Cloud Eye SDK reads the real probe results of a
    monitor (loopback: RTT well under 5 ms, no loss)."""
    ces = make_ces_client(server.endpoint, admin_cred["access"], admin_cred["secret"],
                          admin_cred["project_id"])
    s = factory.stack("sdk-ces")
    conn = s["conn"]
    try:
        mon = ok(factory.monitor(conn), 201).connection_monitor.id
        _wait_for("monitor ACTIVE",
                  lambda: vpn.show_connection_monitor(
                      ShowConnectionMonitorRequest(connection_monitor_id=mon)).connection_monitor.status,
                  lambda status: status == "ACTIVE")

        dim = f"evpn_connection_id,{conn}"
        start = int(time.time() * 1000) - 5 * 60 * 1000

        def show(metric, to, dim_0=dim):
            return ces_ok(ces.show_metric_data(ShowMetricDataRequest(
                namespace="SYS.VPN", metric_name=metric, dim_0=dim_0, filter="average",
                period=1, _from=start, to=to)))

        first = _wait_for("2 datapoints of link_average_latency",
                          lambda: show("link_average_latency", int(time.time() * 1000) + 60 * 1000),
                          lambda r: len(r.datapoints) >= 2)
        assert first.metric_name == "link_average_latency"
        # Windows of one monitor are written in order, so every window that
        # starts before the last one seen is stored: pin `to` past it and the
        # set of points no longer changes between the calls below.
        to = first.datapoints[-1].timestamp + 1
        lat = show("link_average_latency", to).datapoints
        assert len(lat) >= 2
        stamps = [p.timestamp for p in lat]
        assert stamps == sorted(set(stamps)), f"timestamps not strictly increasing: {stamps}"
        assert start - 1000 < stamps[0] and stamps[-1] < to, (start, stamps, to)
        for p in lat:
            assert 0 < p.average < 5, f"loopback RTT {p.average} ms"
            assert p.unit == "ms"
        # Only the requested filter's value is in a point.
        assert [sorted(p) for p in first.to_json_object()["datapoints"]] == \
            [["average", "timestamp", "unit"]] * len(first.datapoints)

        loss = show("link_packet_loss_rate", to).datapoints
        assert [p.timestamp for p in loss] == stamps, "every window has a reply on loopback"
        assert all(p.average == 0.0 and p.unit == "%" for p in loss), [p.average for p in loss]

        # The public_* alias under vpn_connection_id carries the same values.
        alias = show("public_average_latency", to, dim_0=f"vpn_connection_id,{conn}").datapoints
        assert [(p.timestamp, p.average) for p in alias] == [(p.timestamp, p.average) for p in lat]

        batch = ces_ok(ces.batch_list_metric_data(BatchListMetricDataRequest(
            body=BatchListMetricDataRequestBody(
                metrics=[MetricInfo(namespace="SYS.VPN", metric_name="link_average_latency",
                                    dimensions=[MetricsDimension(name="evpn_connection_id", value=conn)])],
                period="1", filter="average", _from=start, to=to))))
        (m,) = batch.metrics
        assert (m.namespace, m.metric_name, m.unit) == ("SYS.VPN", "link_average_latency", "ms")
        assert [(d.name, d.value) for d in m.dimensions] == [("evpn_connection_id", conn)]
        assert [(p.timestamp, p.average) for p in m.datapoints] == \
            [(p.timestamp, p.average) for p in lat]

        listed = ces_ok(ces.list_metrics(ListMetricsRequest(namespace="SYS.VPN", limit=1000)))
        mine = sorted((x.metric_name, x.dimensions[0].name, x.unit) for x in listed.metrics
                      if [d.value for d in x.dimensions] == [conn])
        assert mine == sorted([
            ("link_average_latency", "evpn_connection_id", "ms"),
            ("link_max_latency", "evpn_connection_id", "ms"),
            ("link_packet_loss_rate", "evpn_connection_id", "%"),
            ("public_average_latency", "vpn_connection_id", "ms"),
            ("public_max_latency", "vpn_connection_id", "ms"),
            ("public_packet_loss_rate", "vpn_connection_id", "%"),
        ])
        only = ces_ok(ces.list_metrics(ListMetricsRequest(dim_0=dim)))
        assert sorted(x.metric_name for x in only.metrics) == [
            "link_average_latency", "link_max_latency", "link_packet_loss_rate"]
        assert only.meta_data.count == 3 and only.meta_data.total == 3
    finally:
        ok(vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=conn)), 204)
        ok(vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=s["cgw"])), 204)
        ok(vpn.delete_vgw(DeleteVgwRequest(vgw_id=s["vgw"])), 204)
