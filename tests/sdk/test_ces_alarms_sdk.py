"""Cloud Eye alarm rules, API v1, through the official SDK (huaweicloudsdkces 3.1.219 v1
CesClient), unmodified: create, list, show, update, enable/disable, delete and
alarm-histories, with their errors (research note alarms-dashboard.md section 2).
"""

import re
import time

import pytest

from huaweicloudsdkces.v1 import (
    Condition,
    CreateAlarmMetric,
    CreateAlarmRequest,
    CreateAlarmRequestBody,
    CreateMetricDimension,
    DeleteAlarmRequest,
    ListAlarmHistoriesRequest,
    ListAlarmsRequest,
    Notification,
    ShowAlarmRequest,
    UpdateAlarmActionRequest,
    UpdateAlarmActionRequestBody,
    UpdateAlarmRequest,
    UpdateAlarmRequestBody,
)
from huaweicloudsdkvpn.v5 import DeleteCgwRequest, DeleteVgwRequest, DeleteVpnConnectionRequest

from sdkutil import expect_error, make_ces_client

ALARM_ID_RE = re.compile(r"^al[0-9A-Za-z]{22}$")


@pytest.fixture(scope="module")
def ces(server, admin_cred):
    return make_ces_client(server.endpoint, admin_cred["access"], admin_cred["secret"],
                           admin_cred["project_id"])


@pytest.fixture(scope="module")
def other_ces(server, other):
    c = other["cred"]
    return make_ces_client(server.endpoint, c["access"], c["secret"], c["project_id"])


@pytest.fixture(scope="module")
def conn(vpn, factory):
    """A connection to hang rules on (no monitor needed for the rule API)."""
    s = factory.stack("sdk-alarm")
    yield s["conn"]
    vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=s["conn"]))
    vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=s["cgw"]))
    vpn.delete_vgw(DeleteVgwRequest(vgw_id=s["vgw"]))


def urn(project_id, name="ops"):
    return f"urn:smn:local-1:{project_id}:{name}"


def body(conn, project_id, **kw):
    fields = dict(
        alarm_name="vpn-loss",
        metric=CreateAlarmMetric(namespace="SYS.VPN", metric_name="link_packet_loss_rate",
                                 dimensions=[CreateMetricDimension(name="evpn_connection_id",
                                                                   value=conn)]),
        condition=Condition(comparison_operator=">=", count=3, filter="average", period=1,
                            value=5, unit="%", suppress_duration=300),
        alarm_enabled=True, alarm_action_enabled=True, alarm_level=2,
        alarm_actions=[Notification(type="notification", notification_list=[urn(project_id)])],
        ok_actions=[Notification(type="notification", notification_list=[urn(project_id)])],
    )
    fields.update(kw)
    return CreateAlarmRequestBody(**fields)


def create(ces, b):
    r = ces.create_alarm(CreateAlarmRequest(body=b))
    assert r.status_code == 201, r.status_code
    assert ALARM_ID_RE.fullmatch(r.alarm_id), r.alarm_id
    return r.alarm_id


def test_alarm_lifecycle(ces, conn, admin_cred):
    pid = admin_cred["project_id"]
    aid = create(ces, body(conn, pid))
    try:
        shown = ces.show_alarm(ShowAlarmRequest(alarm_id=aid))
        assert shown.status_code == 200
        (a,) = shown.metric_alarms
        assert (a.alarm_id, a.alarm_name, a.alarm_level) == (aid, "vpn-loss", 2)
        assert a.alarm_state == "insufficient_data"
        assert a.alarm_enabled is True and a.alarm_action_enabled is True
        assert a.metric.namespace == "SYS.VPN"
        assert a.metric.metric_name == "link_packet_loss_rate"
        assert [(d.name, d.value) for d in a.metric.dimensions] == [("evpn_connection_id", conn)]
        c = a.condition
        assert (c.comparison_operator, c.count, c.value, c.unit) == (">=", 3, 5.0, "%")
        # The enum-typed fields decode by value: one outside the SDK's enum
        # would come back as an empty object.
        assert (c.period, c.filter, c.suppress_duration) == (1, "average", 300)
        assert [n.notification_list for n in a.alarm_actions] == [[urn(pid)]]
        assert [n.type for n in a.ok_actions] == ["notification"]
        assert isinstance(a.update_time, int) and a.update_time > 1_700_000_000_000

        listed = ces.list_alarms(ListAlarmsRequest(limit=10, order="desc"))
        assert listed.status_code == 200
        assert aid in [x.alarm_id for x in listed.metric_alarms]
        assert listed.meta_data.total >= 1 and listed.meta_data.count == len(listed.metric_alarms)
        assert listed.meta_data.marker == listed.metric_alarms[-1].alarm_id

        r = ces.update_alarm(UpdateAlarmRequest(alarm_id=aid, body=UpdateAlarmRequestBody(
            alarm_name="vpn-loss2",
            condition=Condition(comparison_operator=">", count=2, filter="max", period=300,
                                unit="%", value=10, suppress_duration=0),
            alarm_action_enabled=True, alarm_level=1,
            alarm_actions=[Notification(type="notification", notification_list=[urn(pid)])],
            ok_actions=[Notification(type="notification", notification_list=[urn(pid)])])))
        assert r.status_code == 204
        (a,) = ces.show_alarm(ShowAlarmRequest(alarm_id=aid)).metric_alarms
        assert (a.alarm_name, a.alarm_level) == ("vpn-loss2", 1)
        assert (a.condition.comparison_operator, a.condition.count) == (">", 2)

        r = ces.update_alarm_action(UpdateAlarmActionRequest(
            alarm_id=aid, body=UpdateAlarmActionRequestBody(alarm_enabled=False)))
        assert r.status_code == 204
        (a,) = ces.show_alarm(ShowAlarmRequest(alarm_id=aid)).metric_alarms
        assert a.alarm_enabled is False
        r = ces.update_alarm_action(UpdateAlarmActionRequest(
            alarm_id=aid, body=UpdateAlarmActionRequestBody(alarm_enabled=True)))
        assert r.status_code == 204
    finally:
        r = ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid))
        assert r.status_code == 204
    expect_error(lambda: ces.show_alarm(ShowAlarmRequest(alarm_id=aid)), 404, "ces.0016")
    expect_error(lambda: ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid)), 404, "ces.0016")


def test_alarm_list_pages_with_start(ces, conn, admin_cred):
    pid = admin_cred["project_id"]
    ids = [create(ces, body(conn, pid, alarm_name=f"page-{i}")) for i in range(3)]
    try:
        first = ces.list_alarms(ListAlarmsRequest(limit=2, order="asc"))
        seen = [x.alarm_id for x in first.metric_alarms]
        rest = ces.list_alarms(ListAlarmsRequest(limit=100, order="asc",
                                                 start=first.meta_data.marker))
        seen += [x.alarm_id for x in rest.metric_alarms]
        assert [i for i in seen if i in ids] == ids
        assert len(seen) == len(set(seen)) == first.meta_data.total
        desc = ces.list_alarms(ListAlarmsRequest(order="desc"))
        assert [x.alarm_id for x in desc.metric_alarms if x.alarm_id in ids] == ids[::-1]
        expect_error(lambda: ces.list_alarms(ListAlarmsRequest(limit=101)), 400, "ces.0014",
                     "limit: ")
        expect_error(lambda: ces.list_alarms(ListAlarmsRequest(order="up")), 400, "ces.0014",
                     "order: ")
        expect_error(lambda: ces.list_alarms(ListAlarmsRequest(start="al" + "0" * 22)), 400,
                     "ces.0014", "start: alarm al0000000000000000000000 does not exist")
    finally:
        for i in ids:
            ces.delete_alarm(DeleteAlarmRequest(alarm_id=i))


@pytest.mark.parametrize("change, field", [
    (dict(condition=Condition(comparison_operator=">=", count=3, filter="average", period=60,
                              value=5)), "condition.period: 60"),
    (dict(condition=Condition(comparison_operator="!=", count=3, filter="average", period=1,
                              value=5)), "condition.comparison_operator:"),
    (dict(condition=Condition(comparison_operator=">=", count=9, filter="average", period=1,
                              value=5)), "condition.count: 9"),
    (dict(condition=Condition(comparison_operator=">=", count=1, filter="p99", period=1,
                              value=5)), "condition.filter:"),
    (dict(condition=Condition(comparison_operator=">=", count=1, filter="max", period=1,
                              value=5, suppress_duration=7)), "condition.suppress_duration: 7"),
    (dict(alarm_level=7), "alarm_level: 7"),
    (dict(metric=CreateAlarmMetric(namespace="SYS.ECS", metric_name="cpu_util",
                                   dimensions=[CreateMetricDimension(name="instance_id",
                                                                     value="x")])),
     "metric.namespace:"),
    (dict(metric=CreateAlarmMetric(namespace="SYS.VPN", metric_name="bytes_in",
                                   dimensions=[])), "metric.metric_name:"),
    (dict(alarm_actions=[Notification(type="notification", notification_list=["not-a-urn"])]),
     "alarm_actions[0].notificationList[0]:"),
])
def test_alarm_create_errors_name_the_field(ces, conn, admin_cred, change, field):
    b = body(conn, admin_cred["project_id"], **change)
    expect_error(lambda: ces.create_alarm(CreateAlarmRequest(body=b)), 400, "ces.0014", field)


def test_alarm_on_an_unknown_or_foreign_connection_is_400(ces, other_ces, conn, admin_cred,
                                                         other):
    pid = admin_cred["project_id"]
    missing = "00000000-0000-4000-8000-000000000000"
    b = body(missing, pid)
    expect_error(lambda: ces.create_alarm(CreateAlarmRequest(body=b)), 400, "ces.0014",
                 f"metric.dimensions[0].value: VPN connection {missing} does not exist")
    opid = other["cred"]["project_id"]
    b = body(conn, opid)
    expect_error(lambda: other_ces.create_alarm(CreateAlarmRequest(body=b)), 400, "ces.0014",
                 f"VPN connection {conn} does not exist")
    # A topic of another project.
    b = body(conn, pid, ok_actions=[Notification(type="notification",
                                                 notification_list=[urn(opid)])])
    expect_error(lambda: ces.create_alarm(CreateAlarmRequest(body=b)), 400, "ces.0014",
                 "is not a topic of this project")


def test_alarms_of_another_project_are_not_found(ces, other_ces, conn, admin_cred):
    aid = create(ces, body(conn, admin_cred["project_id"]))
    try:
        expect_error(lambda: other_ces.show_alarm(ShowAlarmRequest(alarm_id=aid)), 404,
                     "ces.0016")
        expect_error(lambda: other_ces.update_alarm(UpdateAlarmRequest(
            alarm_id=aid, body=UpdateAlarmRequestBody(alarm_level=1))), 404, "ces.0016")
        expect_error(lambda: other_ces.update_alarm_action(UpdateAlarmActionRequest(
            alarm_id=aid, body=UpdateAlarmActionRequestBody(alarm_enabled=False))), 404,
            "ces.0016")
        expect_error(lambda: other_ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid)), 404,
                     "ces.0016")
        assert aid not in [x.alarm_id for x in
                           other_ces.list_alarms(ListAlarmsRequest()).metric_alarms]
        assert other_ces.list_alarm_histories(
            ListAlarmHistoriesRequest(alarm_id=aid)).meta_data.total == 0
        (a,) = ces.show_alarm(ShowAlarmRequest(alarm_id=aid)).metric_alarms
        assert a.alarm_enabled is True and a.alarm_level == 2
    finally:
        ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid))


def test_alarm_path_id_and_update_errors(ces, conn, admin_cred):
    expect_error(lambda: ces.show_alarm(ShowAlarmRequest(alarm_id="alnope")), 400, "ces.0014",
                 "alarm_id: ")
    aid = create(ces, body(conn, admin_cred["project_id"]))
    try:
        expect_error(lambda: ces.update_alarm(UpdateAlarmRequest(
            alarm_id=aid, body=UpdateAlarmRequestBody(alarm_level=0))), 400, "ces.0014",
            "alarm_level: 0")
        expect_error(lambda: ces.update_alarm(UpdateAlarmRequest(
            alarm_id=aid, body=UpdateAlarmRequestBody(alarm_actions=[], ok_actions=[]))), 400,
            "ces.0014", "alarm_actions: alarm_action_enabled is true")
        expect_error(lambda: ces.update_alarm_action(UpdateAlarmActionRequest(
            alarm_id=aid, body=UpdateAlarmActionRequestBody())), 400, "ces.0014",
            "alarm_enabled is required")
    finally:
        ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid))


def test_alarm_histories_query_and_errors(ces):
    # The SDK's full query (research note 2.6): accepted; nothing matches a
    # window in 2025 on a fresh server.
    r = ces.list_alarm_histories(ListAlarmHistoriesRequest(
        alarm_id="al" + "0" * 22, alarm_level=2, alarm_status="alarm", _from="1735686000000",
        limit="10", namespace="SYS.VPN", start="0", to="1735689600000"))
    assert r.status_code == 200
    assert r.alarm_histories == [] and r.meta_data.total == 0
    expect_error(lambda: ces.list_alarm_histories(ListAlarmHistoriesRequest(alarm_status="bad")),
                 400, "ces.0014", "alarm_status: ")
    expect_error(lambda: ces.list_alarm_histories(ListAlarmHistoriesRequest(limit="500")),
                 400, "ces.0014", "limit: ")
    expect_error(lambda: ces.list_alarm_histories(ListAlarmHistoriesRequest(
        _from="2000", to="1000")), 400, "ces.0014", "from: ")


def _wait(what, fetch, done, timeout=30.0, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not reached within {timeout:.0f} s (last: {value!r})")
        time.sleep(step)


def test_rules_are_evaluated_as_real_windows_are_stored(ces, vpn, factory, admin_cred):
    """A monitor on loopback (every reply, RTT > 0): a loss rule goes ok, a
    latency rule `>= 0` goes to alarm at its first window; the history has
    both changes with the window's time and value."""
    pid = admin_cred["project_id"]
    s = factory.stack("sdk-eval")
    conn = s["conn"]
    mon = factory.monitor(conn).connection_monitor.id
    loss = create(ces, body(conn, pid, alarm_name="eval-loss", alarm_action_enabled=False,
                            alarm_actions=None, ok_actions=None,
                            condition=Condition(comparison_operator=">=", count=2,
                                                filter="average", period=1, value=50,
                                                unit="%")))
    lat = create(ces, body(
        conn, pid, alarm_name="eval-latency", alarm_action_enabled=False, alarm_actions=None,
        ok_actions=None,
        metric=CreateAlarmMetric(namespace="SYS.VPN", metric_name="public_average_latency",
                                 dimensions=[CreateMetricDimension(name="vpn_connection_id",
                                                                   value=conn)]),
        condition=Condition(comparison_operator=">=", count=1, filter="average", period=1,
                            value=0, unit="ms")))
    try:
        def state(aid):
            return ces.show_alarm(ShowAlarmRequest(alarm_id=aid)).metric_alarms[0].alarm_state
        _wait("loss rule ok", lambda: state(loss), lambda st: st == "ok")
        _wait("latency rule alarm", lambda: state(lat), lambda st: st == "alarm")
        for aid, status in [(loss, "ok"), (lat, "alarm")]:
            h = ces.list_alarm_histories(ListAlarmHistoriesRequest(alarm_id=aid))
            assert h.meta_data.total == 1, h
            (rec,) = h.alarm_histories
            assert (rec.alarm_id, rec.alarm_status) == (aid, status)
            (dp,) = rec.datapoints
            assert dp.time == rec.trigger_time
            (a,) = ces.show_alarm(ShowAlarmRequest(alarm_id=aid)).metric_alarms
            assert a.update_time == rec.trigger_time
            if status == "ok":
                assert dp.value == 0.0
            else:
                assert 0 < dp.value < 5, f"loopback RTT {dp.value} ms"
    finally:
        for aid in (loss, lat):
            ces.delete_alarm(DeleteAlarmRequest(alarm_id=aid))
        vpn.delete_vpn_connection(DeleteVpnConnectionRequest(vpn_connection_id=conn))
        vpn.delete_cgw(DeleteCgwRequest(customer_gateway_id=s["cgw"]))
        vpn.delete_vgw(DeleteVgwRequest(vgw_id=s["vgw"]))
    assert mon
