"""SMN topics and HTTP(S) subscriptions through the official SDK (huaweicloudsdksmn
3.1.219 v2 SmnClient), unmodified: topics create (idempotent by name), list, show,
update, delete; subscriptions add, list by topic, list all, cancel; with SMN's error
body (research note alarms-dashboard.md section 5). The server runs with
--notify-allow 127.0.0.0/8, so loopback endpoints are accepted.
"""

import re

import pytest

from huaweicloudsdksmn.v2 import (
    CancelSubscriptionRequest,
    DeleteTopicRequest,
    ListSubscriptionsByTopicRequest,
    ListSubscriptionsRequest,
    ListTopicDetailsRequest,
    ListTopicsRequest,
    UpdateTopicRequest,
    UpdateTopicRequestBody,
)

from sdkutil import add_subscription as add
from sdkutil import create_topic as create
from sdkutil import expect_error

SMN_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_topic_lifecycle(smn, admin_cred):
    pid = admin_cred["project_id"]
    r = create(smn, "sdk-ops")
    assert r.status_code == 201 and r.request_id
    urn = r.topic_urn
    assert urn == f"urn:smn:local-1:{pid}:sdk-ops"
    try:
        again = create(smn, "sdk-ops", display="other")
        assert (again.status_code, again.topic_urn) == (200, urn)

        d = smn.list_topic_details(ListTopicDetailsRequest(topic_urn=urn))
        assert d.status_code == 200 and d.request_id
        assert (d.name, d.display_name, d.topic_urn, d.push_policy) == ("sdk-ops", "Ops", urn, 0)
        assert re.fullmatch(r"[0-9a-f]{32}", d.topic_id), d.topic_id
        assert SMN_TIME_RE.fullmatch(d.create_time) and SMN_TIME_RE.fullmatch(d.update_time)

        u = smn.update_topic(UpdateTopicRequest(topic_urn=urn, body=UpdateTopicRequestBody(
            display_name="Operations")))
        assert u.status_code == 200 and u.request_id
        listed = smn.list_topics(ListTopicsRequest(offset=0, limit=100))
        assert listed.status_code == 200
        mine = [t for t in listed.topics if t.topic_urn == urn]
        assert [t.display_name for t in mine] == ["Operations"]
        assert listed.topic_count == len(listed.topics)
        only = smn.list_topics(ListTopicsRequest(name="sdk-ops"))
        assert only.topic_count == 1 and only.topics[0].topic_urn == urn
    finally:
        r = smn.delete_topic(DeleteTopicRequest(topic_urn=urn))
        assert r.status_code == 200
    e = expect_error(lambda: smn.list_topic_details(ListTopicDetailsRequest(topic_urn=urn)),
                     404, "SMN.0006", "Topic not found.")
    assert e.error_msg == "Topic not found."


@pytest.mark.parametrize("name, display, code", [
    ("a b", "x", "SMN.0002"),
    ("-x", "x", "SMN.0002"),
    ("ok", "x" * 193, "SMN.0003"),
])
def test_topic_create_errors(smn, name, display, code):
    expect_error(lambda: create(smn, name, display), 400, code)


def test_topic_list_and_urn_errors(smn):
    expect_error(lambda: smn.list_topics(ListTopicsRequest(limit=101)), 400, "SMN.0015", "limit")
    expect_error(lambda: smn.list_topic_details(ListTopicDetailsRequest(topic_urn="nope")), 400,
                 "SMN.0005", "topic_urn")


def test_topics_of_another_project_are_not_found(smn, other_smn):
    urn = create(smn, "sdk-private").topic_urn
    try:
        expect_error(lambda: other_smn.list_topic_details(ListTopicDetailsRequest(topic_urn=urn)),
                     404, "SMN.0006")
        expect_error(lambda: other_smn.update_topic(UpdateTopicRequest(
            topic_urn=urn, body=UpdateTopicRequestBody(display_name="x"))), 404, "SMN.0006")
        expect_error(lambda: other_smn.delete_topic(DeleteTopicRequest(topic_urn=urn)), 404,
                     "SMN.0006")
        assert urn not in [t.topic_urn for t in other_smn.list_topics(ListTopicsRequest()).topics]
        assert smn.list_topic_details(ListTopicDetailsRequest(topic_urn=urn)).name == "sdk-private"
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_subscription_lifecycle(smn, admin_cred):
    urn = create(smn, "sdk-subs").topic_urn
    try:
        r = add(smn, urn, "http://127.0.0.1:9/hook", remark="local")
        assert r.status_code == 201 and r.request_id
        sub = r.subscription_urn
        assert re.fullmatch(re.escape(urn) + r":[0-9a-f]{32}", sub), sub
        again = add(smn, urn, "http://127.0.0.1:9/hook")
        assert (again.status_code, again.subscription_urn) == (200, sub)

        by_topic = smn.list_subscriptions_by_topic(ListSubscriptionsByTopicRequest(
            topic_urn=urn, offset=0, limit=10))
        assert by_topic.status_code == 200 and by_topic.subscription_count == 1
        (s,) = by_topic.subscriptions
        assert (s.topic_urn, s.protocol, s.subscription_urn, s.endpoint, s.remark, s.status) == \
            (urn, "http", sub, "http://127.0.0.1:9/hook", "local", 0)
        assert s.owner == admin_cred["project_id"]
        everything = smn.list_subscriptions(ListSubscriptionsRequest(limit=100))
        assert sub in [x.subscription_urn for x in everything.subscriptions]

        r = smn.cancel_subscription(CancelSubscriptionRequest(subscription_urn=sub))
        assert r.status_code == 200 and r.request_id
        expect_error(lambda: smn.cancel_subscription(CancelSubscriptionRequest(
            subscription_urn=sub)), 404, "SMN.0013", "Subscription not found.")
        assert smn.list_subscriptions_by_topic(ListSubscriptionsByTopicRequest(
            topic_urn=urn)).subscription_count == 0
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


@pytest.mark.parametrize("protocol, endpoint, code", [
    ("email", "ops@example.com", "SMN.0011"),
    ("http", "https://203.0.113.7/", "SMN.0012"),
    ("http", "http://10.1.2.3/hook", "SMN.0012"),
])
def test_subscription_errors(smn, protocol, endpoint, code):
    urn = create(smn, "sdk-sub-errors").topic_urn
    try:
        expect_error(lambda: add(smn, urn, endpoint, protocol=protocol), 400, code)
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))


def test_subscriptions_of_another_project_are_not_found(smn, other_smn):
    urn = create(smn, "sdk-sub-private").topic_urn
    try:
        sub = add(smn, urn, "http://127.0.0.1:9/x").subscription_urn
        expect_error(lambda: other_smn.cancel_subscription(CancelSubscriptionRequest(
            subscription_urn=sub)), 404, "SMN.0013")
        expect_error(lambda: other_smn.list_subscriptions_by_topic(
            ListSubscriptionsByTopicRequest(topic_urn=urn)), 404, "SMN.0006")
        expect_error(lambda: add(other_smn, urn, "http://127.0.0.1:9/y"), 404, "SMN.0006")
        assert sub not in [x.subscription_urn for x in
                           other_smn.list_subscriptions(ListSubscriptionsRequest()).subscriptions]
    finally:
        smn.delete_topic(DeleteTopicRequest(topic_urn=urn))
