"""IAM token through huaweicloudsdkiam 3.1.219 (spec 5.1, 6.4, 10), then plain HTTP.

The IAM SDK AK/SK-signs POST /v3/auth/tokens with GlobalCredentials (adding
X-Domain-Id); vpnmon ignores that signature and checks the password.
"""

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkiam.v3 import (
    AuthScope,
    AuthScopeProject,
    IamClient,
    KeystoneCreateUserTokenByPasswordRequest,
    KeystoneCreateUserTokenByPasswordRequestBody,
    PwdAuth,
    PwdIdentity,
    PwdPassword,
    PwdPasswordUser,
    PwdPasswordUserDomain,
)

from sdkutil import ADMIN_DOMAIN, ADMIN_PROJECT, ADMIN_USER, REQUEST_ID_RE, expect_error


def iam_client(server, cred, domain_id):
    return (IamClient.new_builder()
            .with_credentials(GlobalCredentials(cred["access"], cred["secret"], domain_id))
            .with_endpoints([server.endpoint])
            .build())


def token_request(user, password, project_name=None, project_id=None, domain=ADMIN_DOMAIN):
    body = KeystoneCreateUserTokenByPasswordRequestBody(auth=PwdAuth(
        identity=PwdIdentity(methods=["password"], password=PwdPassword(user=PwdPasswordUser(
            domain=PwdPasswordUserDomain(name=domain), name=user, password=password))),
        scope=AuthScope(project=AuthScopeProject(name=project_name, id=project_id))))
    return KeystoneCreateUserTokenByPasswordRequest(nocatalog="true", body=body)


def http_get(url, token):
    """Plain HTTP GET with X-Auth-Token; returns (status, headers, parsed body)."""
    req = urllib.request.Request(url, headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def ts(value):
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_password_token_then_plain_http(server, admin_cred, domain_id):
    iam = iam_client(server, admin_cred, domain_id)
    resp = iam.keystone_create_user_token_by_password(
        token_request(ADMIN_USER, server.admin_password, project_name=ADMIN_PROJECT))
    assert resp.status_code == 201
    token = resp.x_subject_token
    assert token, "X-Subject-Token header must carry the token"
    t = resp.token
    assert t.methods == ["password"]
    assert t.catalog == [], "nocatalog=true -> empty catalog"
    assert (t.project.id, t.project.name) == (admin_cred["project_id"], ADMIN_PROJECT)
    assert (t.project.domain.id, t.project.domain.name) == (domain_id, ADMIN_DOMAIN)
    assert t.user.name == ADMIN_USER and t.user.domain.name == ADMIN_DOMAIN
    assert ts(t.expires_at) - ts(t.issued_at) == timedelta(hours=24), (t.issued_at, t.expires_at)

    pid = admin_cred["project_id"]
    status, headers, body = http_get(f"{server.endpoint}/v5/{pid}/connection-monitors", token)
    assert status == 200, body
    assert isinstance(body["connection_monitors"], list)
    rid = headers.get("X-Request-Id")
    assert rid and REQUEST_ID_RE.fullmatch(rid), rid
    assert body["request_id"] == rid, "body request_id mirrors X-Request-Id"


def test_token_scoped_by_project_id(server, admin_cred, domain_id):
    iam = iam_client(server, admin_cred, domain_id)
    resp = iam.keystone_create_user_token_by_password(
        token_request(ADMIN_USER, server.admin_password, project_id=admin_cred["project_id"]))
    assert resp.status_code == 201
    assert resp.token.project.id == admin_cred["project_id"]
    status, _, body = http_get(
        f"{server.endpoint}/v5/{admin_cred['project_id']}/vpn-gateways", resp.x_subject_token)
    assert status == 200, body
    assert isinstance(body["vpn_gateways"], list)


def test_wrong_password_is_unauthorized(server, admin_cred, domain_id):
    # spec 5.1: IAM's error body for bad credentials is unconfirmed; status 401 is.
    iam = iam_client(server, admin_cred, domain_id)
    expect_error(lambda: iam.keystone_create_user_token_by_password(
        token_request(ADMIN_USER, server.admin_password + "x", project_name=ADMIN_PROJECT)),
        401, None)
    expect_error(lambda: iam.keystone_create_user_token_by_password(
        token_request("no-such-user", server.admin_password, project_name=ADMIN_PROJECT)),
        401, None)


def test_token_of_another_project_is_forbidden(server, admin_cred, other, domain_id):
    # spec 10: a path project_id other than the token's project -> 403 VPN.0003
    iam = iam_client(server, admin_cred, domain_id)
    resp = iam.keystone_create_user_token_by_password(
        token_request("bob", other["password"], project_name=other["project_name"]))
    assert resp.status_code == 201
    assert resp.token.project.id == other["project"]["id"]
    bob_token = resp.x_subject_token

    status, _, body = http_get(
        f"{server.endpoint}/v5/{other['project']['id']}/connection-monitors", bob_token)
    assert status == 200, body

    status, headers, body = http_get(
        f"{server.endpoint}/v5/{admin_cred['project_id']}/connection-monitors", bob_token)
    assert (status, body["error_code"]) == (403, "VPN.0003"), body
    assert body["error_msg"]
    assert body["request_id"] == headers.get("X-Request-Id")


def test_bad_token_is_unauthorized(server, admin_cred):
    status, headers, body = http_get(
        f"{server.endpoint}/v5/{admin_cred['project_id']}/connection-monitors", "not-a-token")
    assert (status, body["error_code"]) == (401, "APIGW.0301"), body
    assert body["error_msg"]
    assert REQUEST_ID_RE.fullmatch(headers.get("X-Request-Id") or ""), headers
