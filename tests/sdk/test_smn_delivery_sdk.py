"""SMN publish and delivery through the official SDK (huaweicloudsdksmn 3.1.219 v2
SmnClient), end to end: `publish_message` (subject + message, message_structure,
time_to_live, and its errors), `subscribe_topic` / `confirm_subscription` (the
confirmation calls, no authentication: the token of a `subscribe_url` is the proof)
and `download_http_cert`, against a receiver written here with the standard
library's http.server on 127.0.0.1 (port 0, in a thread). The receiver records every
POSTed envelope and its headers; the test confirms the subscription, publishes, and
verifies each envelope's signature (RSA PKCS#1 v1.5, SHA-256, SMN's string to sign)
with the certificate downloaded from its `signing_cert_url`, using `cryptography`.

Every notification endpoint is http://127.0.0.1:<receiver port>/hook/<32 hex>, one
path per subscription so that tests never see each other's messages. The server's
delivery worker is woken by a publish and polls every second; deliveries are waited
for with a 10 s timeout. What was put into the outbox is read from the vpnmon
extension GET /vpnmon/{project_id}/notifications/deliveries (plain HTTP with an IAM
token: the SDK has no call for it).
"""

import base64
import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from huaweicloudsdksmn.v2 import (
    ConfirmSubscriptionRequest,
    DeleteTopicRequest,
    DownloadHttpCertRequest,
    DownloadHttpSignCertRequest,
    ListSubscriptionsByTopicRequest,
    MessageAttribute,
    PublishMessageRequest,
    PublishMessageRequestBody,
    SubscribeTopicRequest,
)

from sdkutil import (
    ADMIN_DOMAIN,
    ADMIN_PROJECT,
    ADMIN_USER,
    REQUEST_ID_RE,
    add_subscription,
    create_topic,
    expect_error,
)

DELIVERY_TIMEOUT = 10.0
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
WIRE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CONFIRMATION = "SubscriptionConfirmation"
NOTIFICATION = "Notification"


# ---------- the receiver ----------

class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what is POSTed to it.

    Answers 200 unless `fail(path, type)` told it to answer 500 to that path and
    X-SMN-MESSAGE-TYPE."""

    def __init__(self):
        self._cond = threading.Condition()
        self._posts = []
        self._failing = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                kind = headers.get("x-smn-message-type")
                with receiver._cond:
                    receiver._posts.append({"path": self.path, "headers": headers,
                                            "raw": raw, "body": body})
                    status = 500 if (self.path, kind) in receiver._failing else 200
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, fmt, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def new_endpoint(self):
        """(path, URL) of a fresh endpoint on the receiver."""
        path = f"/hook/{uuid.uuid4().hex}"
        return path, f"http://127.0.0.1:{self.port}{path}"

    def fail(self, path, kind):
        with self._cond:
            self._failing.add((path, kind))

    def posts(self, path, kind=None):
        with self._cond:
            return [p for p in self._posts if p["path"] == path
                    and (kind is None or p["headers"].get("x-smn-message-type") == kind)]

    def wait(self, path, kind, count=1, timeout=DELIVERY_TIMEOUT, message_id=None):
        """The first `count` POSTs of `kind` to `path` (of `message_id` if given),
        waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout

        def matching():
            return [p for p in self._posts if p["path"] == path
                    and p["headers"].get("x-smn-message-type") == kind
                    and (message_id is None or (p["body"] or {}).get("message_id") == message_id)]

        with self._cond:
            while len(matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(p["path"], p["headers"].get("x-smn-message-type")) for p in self._posts]
                    raise AssertionError(f"no {count} x {kind} to {path} within {timeout} s; "
                                         f"received: {seen}")
                self._cond.wait(left)
            return matching()[:count]


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


# ---------- signatures ----------

def string_to_sign(env):
    """SMN's string to sign of an envelope: each key, then its value, each followed
    by a newline, keys in this (sorted) order."""
    if env["type"] == NOTIFICATION:
        keys = ["message", "message_id"] + (["subject"] if "subject" in env else []) + \
            ["timestamp", "topic_urn", "type"]
    else:
        keys = ["message", "message_id", "subscribe_url", "timestamp", "topic_urn", "type"]
    return "".join(f"{k}\n{env[k]}\n" for k in keys)


def test_string_to_sign_matches_huaweis_example():
    # The test vector of the research note (Huawei's documented example values), so
    # that the verification below is checked against SMN's definition, not the server's.
    env = {"type": NOTIFICATION, "message": "My test message",
           "message_id": "88c726942175432bac921eafd0036163", "subject": "demo",
           "timestamp": "2016-08-15T07:29:16Z",
           "topic_urn": "urn:smn:regionId:74dc9e44d0cc4573adfce91cdfdd3ba9:xxxx"}
    s = string_to_sign(env).encode()
    assert len(s) == 195
    assert hashlib.sha256(s).hexdigest() == \
        "00909757b05b77bf4a76a42f5f8dbfcda9010627623dc28b0659a3d7c7e9caec"


def http_get(url, headers=None):
    """(status, headers, body bytes) of a plain GET, errors included."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


_certs = {}


def certificate(url):
    """The X.509 certificate at `signing_cert_url` (downloaded once per URL)."""
    if url not in _certs:
        status, headers, pem = http_get(url)
        assert status == 200, (url, status, pem)
        _certs[url] = (pem, x509.load_pem_x509_certificate(pem))
    return _certs[url][1]


def verify(env):
    """Checks the envelope's signature with the certificate at its signing_cert_url."""
    assert env["signature_version"] == "v1"
    sig = base64.b64decode(env["signature"], validate=True)
    cert = certificate(env["signing_cert_url"])
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(sig, string_to_sign(env).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    # ... and not for anything else: a changed message does not verify.
    forged = dict(env, message=env["message"] + "!")
    with pytest.raises(InvalidSignature):
        key.verify(sig, string_to_sign(forged).encode("utf-8"), padding.PKCS1v15(),
                   hashes.SHA256())


# ---------- helpers ----------

@pytest.fixture(scope="module")
def token(server):
    """An IAM token of the admin in local-1 (for the vpnmon deliveries extension)."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": ADMIN_USER, "password": server.admin_password,
            "domain": {"name": ADMIN_DOMAIN}}}},
        "scope": {"project": {"name": ADMIN_PROJECT}}}}
    req = urllib.request.Request(f"{server.endpoint}/v3/auth/tokens", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        return resp.headers["X-Subject-Token"]


def deliveries(server, token, project_id, message_id):
    status, _, body = http_get(
        f"{server.endpoint}/vpnmon/{project_id}/notifications/deliveries?"
        + urllib.parse.urlencode({"message_id": message_id}),
        headers={"X-Auth-Token": token})
    assert status == 200, body
    return json.loads(body)["deliveries"]


def wait_deliveries(server, token, project_id, message_id, done, timeout=DELIVERY_TIMEOUT):
    """Polls the outbox rows of `message_id` until `done(rows)`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = deliveries(server, token, project_id, message_id)
        if done(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries of {message_id} still {rows}")
        time.sleep(0.2)


def publish(smn, urn, **body):
    return smn.publish_message(PublishMessageRequest(topic_urn=urn,
                                                     body=PublishMessageRequestBody(**body)))


def subscription_status(smn, urn, sub):
    subs = smn.list_subscriptions_by_topic(ListSubscriptionsByTopicRequest(topic_urn=urn))
    (s,) = [s for s in subs.subscriptions if s.subscription_urn == sub]
    return s.status


def subscribe_query(env):
    """topic_urn, endpoint and token of a confirmation's subscribe_url."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(env["subscribe_url"]).query, strict_parsing=True)
    assert sorted(q) == ["endpoint", "token", "topic_urn"], env["subscribe_url"]
    assert all(len(v) == 1 for v in q.values())
    return {k: v[0] for k, v in q.items()}


def confirmed(smn, receiver, name):
    """A topic with one confirmed http subscription on the receiver:
    (topic_urn, subscription_urn, path)."""
    urn = create_topic(smn, name).topic_urn
    path, endpoint = receiver.new_endpoint()
    sub = add_subscription(smn, urn, endpoint).subscription_urn
    (conf,) = receiver.wait(path, CONFIRMATION)
    r = smn.subscribe_topic(SubscribeTopicRequest(**subscribe_query(conf["body"])))
    assert r.subscription_urn == sub
    return urn, sub, path


def check_headers(post, env, sub):
    h = post["headers"]
    assert h["x-smn-message-type"] == env["type"]
    assert h["x-smn-message-id"] == env["message_id"]
    assert h["x-smn-topic-urn"] == env["topic_urn"]
    assert h["x-smn-subscription-urn"] == sub
    assert h["content-type"].split(";")[0].strip() == "application/json"


def near_now(wire_time, slack=120):
    t = datetime.strptime(wire_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return abs(t.timestamp() - time.time()) <= slack


# ---------- end to end ----------

def test_confirm_publish_and_verify_end_to_end(server, smn, receiver, token, admin_cred):
    pid = admin_cred["project_id"]
    urn = create_topic(smn, "sdk-delivery").topic_urn
    try:
        path, endpoint = receiver.new_endpoint()
        sub = add_subscription(smn, urn, endpoint, remark="receiver").subscription_urn
        assert subscription_status(smn, urn, sub) == 0

        # The SubscriptionConfirmation.
        (conf,) = receiver.wait(path, CONFIRMATION)
        env = conf["body"]
        check_headers(conf, env, sub)
        assert sorted(env) == sorted(["type", "signature_version", "topic_urn", "message_id",
                                      "message", "subscribe_url", "signing_cert_url",
                                      "timestamp", "signature"]), env
        assert (env["type"], env["topic_urn"]) == (CONFIRMATION, urn)
        assert HEX32_RE.fullmatch(env["message_id"])
        assert env["message"] == (
            f"You are invited to subscribe to topic: {urn}. To confirm this subscription, "
            "please visit the subscribe_url included in this message. The subscribe_url is "
            "valid only within 48 hours.")
        assert env["subscribe_url"].startswith(
            f"{server.endpoint}/v2/notifications/subscriptions/subscribe?"), env["subscribe_url"]
        q = subscribe_query(env)
        assert (q["topic_urn"], q["endpoint"]) == (urn, endpoint)
        assert re.fullmatch(r"[0-9a-f]{64}", q["token"]), q["token"]
        cert_url = env["signing_cert_url"]
        assert re.fullmatch(re.escape(server.endpoint) + r"/smn/SMN_local-1_[0-9a-f]{32}\.pem",
                            cert_url), cert_url
        assert WIRE_TIME_RE.fullmatch(env["timestamp"]) and near_now(env["timestamp"])
        verify(env)
        cert = certificate(cert_url)
        assert cert.public_key().key_size == 3072  # README: RSA-3072
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)

        # Unconfirmed: a publish is accepted but nothing is put into the outbox for it.
        early = publish(smn, urn, subject="early", message="before confirmation")
        assert early.status_code == 200 and HEX32_RE.fullmatch(early.message_id)
        assert deliveries(server, token, pid, early.message_id) == []

        # A wrong token confirms nothing.
        expect_error(lambda: smn.subscribe_topic(SubscribeTopicRequest(
            topic_urn=urn, endpoint=endpoint, token="0" * 64)), 404, "SMN.0013",
            "Subscription not found.")
        assert subscription_status(smn, urn, sub) == 0

        # Confirmation through the SDK's subscribe_topic (GET of subscribe_url's route).
        r = smn.subscribe_topic(SubscribeTopicRequest(**q))
        assert r.status_code == 200 and REQUEST_ID_RE.fullmatch(r.request_id)
        assert r.subscription_urn == sub
        assert subscription_status(smn, urn, sub) == 1
        again = smn.subscribe_topic(SubscribeTopicRequest(**q))
        assert (again.status_code, again.subscription_urn) == (200, sub)
        assert subscription_status(smn, urn, sub) == 1

        # Publish with the SDK; the Notification arrives, signed.
        p = publish(smn, urn, subject="vpn down", message="link 1 lost 100 % of its probes")
        assert p.status_code == 200 and REQUEST_ID_RE.fullmatch(p.request_id)
        assert HEX32_RE.fullmatch(p.message_id) and p.message_id != early.message_id
        (note,) = receiver.wait(path, NOTIFICATION)
        env = note["body"]
        check_headers(note, env, sub)
        assert sorted(env) == sorted(["type", "signature_version", "topic_urn", "message_id",
                                      "message", "subject", "unsubscribe_url",
                                      "signing_cert_url", "timestamp", "signature"]), env
        assert (env["type"], env["topic_urn"], env["message_id"], env["subject"],
                env["message"]) == (NOTIFICATION, urn, p.message_id, "vpn down",
                                    "link 1 lost 100 % of its probes")
        assert env["signing_cert_url"] == cert_url
        assert WIRE_TIME_RE.fullmatch(env["timestamp"]) and near_now(env["timestamp"])
        unsub = urllib.parse.urlsplit(env["unsubscribe_url"])
        assert env["unsubscribe_url"].startswith(
            f"{server.endpoint}/v2/notifications/subscriptions/unsubscribe?")
        uq = urllib.parse.parse_qs(unsub.query)
        assert uq["subscription_urn"] == [sub] and len(uq["token"][0]) > 0
        verify(env)

        # The outbox row of that message: one, delivered on the first attempt.
        rows = wait_deliveries(server, token, pid, p.message_id,
                               lambda rs: rs and rs[0]["state"] == "delivered")
        assert [(d["subscription_urn"], d["type"], d["attempts"], d["last_status"])
                for d in rows] == [(sub, NOTIFICATION, 1, 200)]

        # Only that Notification reached the endpoint (the early one never does).
        assert [n["body"]["message_id"] for n in receiver.posts(path, NOTIFICATION)] == \
            [p.message_id]
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_certificate_download(server, smn, receiver):
    urn = create_topic(smn, "sdk-cert").topic_urn
    try:
        path, endpoint = receiver.new_endpoint()
        add_subscription(smn, urn, endpoint)
        (conf,) = receiver.wait(path, CONFIRMATION)
        cert_url = conf["body"]["signing_cert_url"]
        status, headers, pem = http_get(cert_url)
        assert status == 200 and pem.startswith(b"-----BEGIN CERTIFICATE-----")
        file = cert_url.rsplit("/", 1)[1]

        # The SDK's two download calls (/smn/{id}, /v2/notifications/certifications/download/{id}).
        for call, req in [(smn.download_http_cert, DownloadHttpCertRequest(certificate_id=file)),
                          (smn.download_http_sign_cert,
                           DownloadHttpSignCertRequest(certificate_id=file))]:
            got = []
            call(req).consume_download_stream(lambda resp: got.append(resp.content))
            assert got == [pem]

        wrong = f"SMN_local-1_{'0' * 32}.pem"
        e = expect_error(lambda: smn.download_http_cert(DownloadHttpCertRequest(
            certificate_id=wrong)), 404, "SMN.0099")
        assert e.error_msg == "Certificate not found."
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_confirm_through_confirm_subscription(smn, receiver):
    # The SDK's other confirmation call (/rest/v2/notifications/subscription/confirm).
    urn = create_topic(smn, "sdk-confirm-rest").topic_urn
    try:
        path, endpoint = receiver.new_endpoint()
        sub = add_subscription(smn, urn, endpoint).subscription_urn
        (conf,) = receiver.wait(path, CONFIRMATION)
        q = subscribe_query(conf["body"])
        expect_error(lambda: smn.confirm_subscription(ConfirmSubscriptionRequest(
            topic_urn=urn, endpoint=endpoint + "x", token=q["token"])), 404, "SMN.0013")
        r = smn.confirm_subscription(ConfirmSubscriptionRequest(**q))
        assert r.status_code == 200 and r.subscription_urn == sub
        assert subscription_status(smn, urn, sub) == 1
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_confirm_by_get_of_subscribe_url_and_unsubscribe_url(smn, receiver):
    urn = create_topic(smn, "sdk-plain-urls").topic_urn
    try:
        path, endpoint = receiver.new_endpoint()
        sub = add_subscription(smn, urn, endpoint).subscription_urn
        (conf,) = receiver.wait(path, CONFIRMATION)
        status, _, body = http_get(conf["body"]["subscribe_url"])
        assert status == 200, body
        assert json.loads(body)["subscription_urn"] == sub
        assert subscription_status(smn, urn, sub) == 1

        m = publish(smn, urn, subject="s", message="m").message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        unsubscribe_url = note["body"]["unsubscribe_url"]
        # The URN alone is not enough.
        bare = unsubscribe_url.split("&token=")[0]
        status, _, body = http_get(bare)
        assert status == 400 and json.loads(body)["code"] == "SMN.0001", body
        status, _, body = http_get(unsubscribe_url)
        assert status == 200, body
        assert json.loads(body)["message"] == f"You have unsubscribed {sub}."
        assert smn.list_subscriptions_by_topic(ListSubscriptionsByTopicRequest(
            topic_urn=urn)).subscription_count == 0
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_publish_without_subject(smn, receiver):
    urn, sub, path = confirmed(smn, receiver, "sdk-no-subject")
    try:
        m = publish(smn, urn, message="no subject here").message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        env = note["body"]
        assert "subject" not in env and env["message"] == "no subject here"
        check_headers(note, env, sub)
        assert string_to_sign(env).startswith(f"message\nno subject here\nmessage_id\n{m}\n"
                                              "timestamp\n")
        verify(env)
        # An empty subject is no subject.
        m = publish(smn, urn, subject="", message="empty subject").message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        assert "subject" not in note["body"]
        verify(note["body"])
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_publish_unicode_and_json_message(smn, receiver):
    urn, sub, path = confirmed(smn, receiver, "sdk-unicode")
    try:
        text = json.dumps({"alarm": "ö-ü", "note": "line 1\nline 2", "emoji": "\u2713"},
                          ensure_ascii=False)
        m = publish(smn, urn, subject="Ärger \u2013 link", message=text).message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        env = note["body"]
        assert (env["subject"], env["message"]) == ("Ärger \u2013 link", text)
        check_headers(note, env, sub)
        verify(env)
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


@pytest.mark.parametrize("structure, delivered", [
    ({"default": "the default", "http": "for http"}, "for http"),
    ({"default": "the default"}, "the default"),
    ({"default": "the default", "email": "for email", "sms": "for sms"}, "the default"),
])
def test_publish_message_structure(smn, receiver, structure, delivered):
    urn, sub, path = confirmed(smn, receiver, "sdk-structure")
    try:
        m = publish(smn, urn, subject="structured",
                    message_structure=json.dumps(structure)).message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        assert note["body"]["message"] == delivered
        check_headers(note, note["body"], sub)
        verify(note["body"])
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_publish_message_structure_https_member_is_not_for_http(smn, receiver):
    urn, sub, path = confirmed(smn, receiver, "sdk-structure-https")
    try:
        m = publish(smn, urn, subject="structured", message_structure=json.dumps(
            {"default": "the default", "https": "for https"})).message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        assert note["body"]["message"] == "the default"
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_publish_message_structure_wins_over_message(smn, receiver):
    urn, sub, path = confirmed(smn, receiver, "sdk-structure-wins")
    try:
        m = publish(smn, urn, subject="both", message="plain",
                    message_structure=json.dumps({"default": "structured"})).message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        assert note["body"]["message"] == "structured"
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


@pytest.mark.parametrize("ttl", ["1", "60", "86400"])
def test_publish_time_to_live_accepted(smn, receiver, ttl):
    urn, sub, path = confirmed(smn, receiver, "sdk-ttl-ok")
    try:
        m = publish(smn, urn, subject="ttl", message=f"ttl {ttl}", time_to_live=ttl).message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        assert note["body"]["message"] == f"ttl {ttl}"
        check_headers(note, note["body"], sub)
        verify(note["body"])
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_time_to_live_bounds_retries(server, smn, receiver, token, admin_cred):
    """An endpoint answering 500: a message with time_to_live 1 is given up after its
    one attempt (the next would be past its time to live); with the default (3600 s)
    it is retried, the same message (id, timestamp, signature) each time."""
    pid = admin_cred["project_id"]
    urn, sub, path = confirmed(smn, receiver, "sdk-ttl-retry")
    receiver.fail(path, NOTIFICATION)
    try:
        short = publish(smn, urn, subject="short", message="ttl 1", time_to_live="1").message_id
        rows = wait_deliveries(server, token, pid, short,
                               lambda rs: rs and rs[0]["state"] == "failed")
        assert [(d["attempts"], d["last_status"]) for d in rows] == [(1, 500)]
        assert len(receiver.posts(path, NOTIFICATION)) == 1

        long = publish(smn, urn, subject="long", message="default ttl").message_id
        posts = receiver.wait(path, NOTIFICATION, count=2, message_id=long)
        # (The receiver sees a POST before the server records its attempt.)
        rows = wait_deliveries(server, token, pid, long,
                               lambda rs: rs and rs[0]["attempts"] >= 2)
        assert [(d["state"], d["last_status"]) for d in rows] == [("pending", 500)]
        first, second = (p["body"] for p in posts)
        assert first == second, "a retry sends the same envelope"
        verify(second)
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


# ---------- publish errors ----------

@pytest.fixture(scope="module")
def error_topic(smn):
    urn = create_topic(smn, "sdk-publish-errors").topic_urn
    yield urn
    smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


@pytest.mark.parametrize("body, field", [
    ({"subject": "no message"}, "message"),
    ({"subject": "empty", "message": ""}, "message"),
    ({"message": "x" * (256 * 1024 + 1)}, "message"),
    ({"subject": "x" * 513, "message": "m"}, "subject"),
    ({"message": "m", "time_to_live": "0"}, "time_to_live"),
    ({"message": "m", "time_to_live": "86401"}, "time_to_live"),
    ({"message": "m", "time_to_live": "-1"}, "time_to_live"),
    ({"message": "m", "time_to_live": "1.5"}, "time_to_live"),
    ({"message": "m", "time_to_live": "soon"}, "time_to_live"),
    ({"message_structure": "not json"}, "message_structure"),
    ({"message_structure": json.dumps({"http": "no default"})}, "message_structure"),
    ({"message_structure": json.dumps({"default": 1})}, "message_structure"),
    ({"message_template_name": "tpl", "tags": {"a": "b"}}, "message_template_name"),
    ({"message": "m", "message_attributes": [
        MessageAttribute(name="k", type="STRING", value="v")]}, "message_attributes"),
], ids=["no-message", "empty-message", "message-too-long", "subject-too-long", "ttl-0",
        "ttl-86401", "ttl-negative", "ttl-fraction", "ttl-word", "structure-not-json",
        "structure-no-default", "structure-default-not-string", "template", "attributes"])
def test_publish_errors(smn, error_topic, body, field):
    e = expect_error(lambda: publish(smn, error_topic, **body), 400, "SMN.0001", field)
    assert e.error_msg.startswith(f"Parameter {field}:"), e.error_msg


def test_publish_to_unknown_or_malformed_topic(smn, admin_cred):
    pid = admin_cred["project_id"]
    e = expect_error(lambda: publish(smn, f"urn:smn:local-1:{pid}:sdk-no-such-topic",
                                     message="m"), 404, "SMN.0006")
    assert e.error_msg == "Topic not found."
    expect_error(lambda: publish(smn, "not-a-urn", message="m"), 400, "SMN.0005", "topic_urn")
    expect_error(lambda: publish(smn, f"urn:smn:local-1:{pid}", message="m"), 400, "SMN.0005",
                 "topic_urn")


def test_publish_to_another_projects_topic(smn, other_smn, receiver):
    urn, sub, path = confirmed(smn, receiver, "sdk-publish-private")
    try:
        e = expect_error(lambda: publish(other_smn, urn, subject="x", message="intruder"),
                         404, "SMN.0006")
        assert e.error_msg == "Topic not found."
        # The owner's publish still goes through, and it is the only one delivered.
        m = publish(smn, urn, subject="owner", message="mine").message_id
        (note,) = receiver.wait(path, NOTIFICATION, message_id=m)
        check_headers(note, note["body"], sub)
        assert [n["body"]["message"] for n in receiver.posts(path, NOTIFICATION)] == ["mine"]
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))
