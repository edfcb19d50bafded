"""Helpers shared by the SDK conformance tests (constants, factory, error checks).

Import only after conftest has pointed HOME at a scratch directory.
"""

import re
import uuid

import pytest

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkces.v1 import CesClient
from huaweicloudsdksmn.v2 import (
    AddSubscriptionRequest,
    AddSubscriptionRequestBody,
    CreateTopicRequest,
    CreateTopicRequestBody,
    SmnClient,
)
from huaweicloudsdkvpn.v5 import (
    CreateCgwRequest,
    CreateCgwRequestBody,
    CreateCgwRequestBodyContent,
    CreateConnectionMonitorRequest,
    CreateConnectionMonitorRequestBody,
    CreateConnectionMonitorRequestBodyContent,
    CreateRequestEip,
    CreateVgwRequest,
    CreateVgwRequestBody,
    CreateVgwRequestBodyContent,
    CreateVpnConnectionRequest,
    CreateVpnConnectionRequestBody,
    CreateVpnConnectionRequestBodyContent,
    ShowVgwRequest,
    VpnClient,
)

EIP_POOL = "127.0.0.2-127.0.0.9"
ADMIN_DOMAIN = "vpnmon"
ADMIN_USER = "admin"
ADMIN_PROJECT = "local-1"
PSK = "Abcd1234!x"
PEER_SUBNETS = ["10.10.0.0/16"]
LOCAL_SUBNETS = ["192.168.0.0/24"]
REQUEST_ID_RE = re.compile(r"^[0-9a-f]{32}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def make_vpn_client(endpoint, ak, sk, project_id):
    return (VpnClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))
            .with_endpoints([endpoint])
            .build())


def make_ces_client(endpoint, ak, sk, project_id):
    return (CesClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))
            .with_endpoints([endpoint])
            .build())


def make_smn_client(endpoint, ak, sk, project_id):
    return (SmnClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))
            .with_endpoints([endpoint])
            .build())


def create_topic(smn, name, display="Ops"):
    """SMN create_topic with the suite's standard display name."""
    return smn.create_topic(CreateTopicRequest(body=CreateTopicRequestBody(
        name=name, display_name=display)))


def add_subscription(smn, urn, endpoint, protocol="http", remark=None):
    """SMN add_subscription of one endpoint."""
    return smn.add_subscription(AddSubscriptionRequest(topic_urn=urn, body=AddSubscriptionRequestBody(
        protocol=protocol, endpoint=endpoint, remark=remark)))


class Factory:
    """Creates resources through the SDK with the suite's standard values."""

    def __init__(self, client):
        self.client = client
        self._ip = 10

    def vgw(self, name=None, **kw):
        content = CreateVgwRequestBodyContent(
            name=name, vpc_id=str(uuid.uuid4()), connect_subnet=str(uuid.uuid4()),
            local_subnets=list(LOCAL_SUBNETS),
            eip1=CreateRequestEip(type="5_bgp", bandwidth_size=10), **kw)
        return self.client.create_vgw(CreateVgwRequest(body=CreateVgwRequestBody(vpn_gateway=content)))

    def eip1_id(self, vgw_id):
        return self.client.show_vgw(ShowVgwRequest(vgw_id=vgw_id)).vpn_gateway.eip1.id

    def next_loopback(self):
        # 127.0.0.10 and up: loopback only (the pool uses 127.0.0.2-9).
        ip = f"127.0.0.{self._ip}"
        self._ip += 1
        return ip

    def cgw(self, name=None, id_value=None, bgp_asn=None):
        content = CreateCgwRequestBodyContent(
            name=name, id_value=id_value or self.next_loopback(),
            bgp_asn=bgp_asn if bgp_asn is not None else 65000 + self._ip)
        return self.client.create_cgw(CreateCgwRequest(body=CreateCgwRequestBody(customer_gateway=content)))

    def connection(self, vgw_id, vgw_ip, cgw_id, name=None, **kw):
        content = CreateVpnConnectionRequestBodyContent(
            name=name, vgw_id=vgw_id, vgw_ip=vgw_ip, cgw_id=cgw_id,
            peer_subnets=list(PEER_SUBNETS), psk=PSK, **kw)
        return self.client.create_vpn_connection(
            CreateVpnConnectionRequest(body=CreateVpnConnectionRequestBody(vpn_connection=content)))

    def monitor(self, vpn_connection_id):
        content = CreateConnectionMonitorRequestBodyContent(vpn_connection_id=vpn_connection_id)
        return self.client.create_connection_monitor(CreateConnectionMonitorRequest(
            body=CreateConnectionMonitorRequestBody(connection_monitor=content)))

    def stack(self, prefix):
        """Gateway (one EIP) + customer gateway + connection; returns their ids."""
        gw = self.vgw(name=f"{prefix}-gw").vpn_gateway.id
        eip = self.eip1_id(gw)
        cgw = self.cgw(name=f"{prefix}-cgw").customer_gateway.id
        conn = self.connection(gw, eip, cgw, name=f"{prefix}-conn").vpn_connection.id
        return {"vgw": gw, "eip": eip, "cgw": cgw, "conn": conn}


def expect_error(call, status, code, msg_contains=()):
    """Runs `call`, expects a ClientRequestException and checks it fully
    (code=None: the spec leaves the error code open, check the rest)."""
    with pytest.raises(exceptions.ClientRequestException) as ei:
        call()
    e = ei.value
    got = (e.status_code, e.error_code if code is not None else None)
    assert got == (status, code), f"got {e.status_code} {e.error_code} {e.error_msg!r}"
    assert e.error_msg, "error_msg must be non-empty"
    for part in ([msg_contains] if isinstance(msg_contains, str) else msg_contains):
        assert part in e.error_msg, f"{part!r} not in error_msg {e.error_msg!r}"
    assert e.request_id and REQUEST_ID_RE.fullmatch(e.request_id), \
        f"request_id {e.request_id!r} is not a 32-hex X-Request-Id"
    return e
