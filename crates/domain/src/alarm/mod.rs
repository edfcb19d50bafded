//! Cloud Eye alarm rules (CES API v1) on the link metrics of a VPN
//! connection: the request shapes `huaweicloudsdkces` v1 sends, their
//! validation into an [`AlarmRule`], the rule's show shape
//! (`MetricAlarmsResp`) and its history record (`AlarmHistoryInfoResp`).
//!
//! Design choices:
//! - A v1 rule is one resource and one policy: one connection (by the
//!   metric's own dimension, `evpn_connection_id` for `link_*`,
//!   `vpn_connection_id` for `public_*`), one metric of `SYS.VPN`, one
//!   condition. Everything else CES accepts (resource groups, events,
//!   other namespaces) is refused with the field named, so a rule that is
//!   stored is one vpnmon can evaluate.
//! - Only the enumerated values are stored and shown: the SDK decodes
//!   `period`, `filter` and `suppress_duration` by value lookup, and a value
//!   outside its enum turns into an empty object on the client.
//! - Notification targets are SMN topic URNs `urn:smn:<region>:<project>:<name>`
//!   of the caller's own project; that the topic exists is not checked
//!   (topics are a later addition).
//! - CES documents that when both `alarm_actions` and `ok_actions` are given
//!   their lists must be equal; vpnmon does not require it (ok notices may
//!   go elsewhere). It does require an action when `alarm_action_enabled`.
//! - Evaluation is the pure state machine in [`eval`].

pub mod eval;
pub mod notice;

use crate::{AlarmId, ConnectionId, DomainError, ProjectId};
use serde::{Deserialize, Serialize};

pub use crate::metric::{Filter, Measure, NAMESPACE, VpnMetric};
/// `condition.period` values: 1 (each raw window) and the rollup periods.
pub const PERIODS: [i64; 6] = [1, 300, 1200, 3600, 14400, 86400];
/// `condition.suppress_duration` values (seconds; 0 = notify once).
pub const SUPPRESS_DURATIONS: [i64; 10] =
    [0, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400];
/// Most SMN topics in one notification list.
pub const MAX_TOPICS: usize = 20;

fn bad(field: &str, msg: impl std::fmt::Display) -> DomainError {
    DomainError::invalid(format!("{field}: {msg}"))
}

/// `condition.comparison_operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "=")]
    Eq,
}

impl Comparison {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">" => Comparison::Gt,
            ">=" => Comparison::Ge,
            "<" => Comparison::Lt,
            "<=" => Comparison::Le,
            "=" => Comparison::Eq,
            _ => return None,
        })
    }

    /// The operator as the wire writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "=",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
            Comparison::Eq => value == threshold,
        }
    }
}

/// A rule's state (`alarm_state`, history `alarm_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    /// The state as the wire shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "ok",
            AlarmState::Alarm => "alarm",
            AlarmState::InsufficientData => "insufficient_data",
        }
    }

    /// Parses a wire state.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

// ---------- request shapes ----------

/// `metric` of a create body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricReq {
    pub namespace: String,
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<DimensionReq>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group_id: Option<String>,
}

/// One `{name, value}` dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionReq {
    pub name: String,
    pub value: String,
}

/// `condition` of a create or update body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionReq {
    pub comparison_operator: String,
    pub count: i64,
    pub filter: String,
    pub period: i64,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_duration: Option<i64>,
}

/// One entry of `alarm_actions` / `ok_actions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationReq {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "notificationList")]
    pub notification_list: Vec<String>,
}

/// `POST /V1.0/{project_id}/alarms` (CreateAlarmRequestBody).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAlarm {
    pub alarm_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_description: Option<String>,
    pub metric: MetricReq,
    pub condition: ConditionReq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_action_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_actions: Option<Vec<NotificationReq>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_actions: Option<Vec<NotificationReq>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insufficientdata_actions: Option<Vec<NotificationReq>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_action_begin_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_action_end_time: Option<String>,
}

/// `PUT /V1.0/{project_id}/alarms/{alarm_id}` (UpdateAlarmRequestBody):
/// every field optional; the metric cannot change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlarm {
    #[serde(default)]
    pub alarm_name: Option<String>,
    #[serde(default)]
    pub alarm_description: Option<String>,
    #[serde(default)]
    pub condition: Option<ConditionReq>,
    #[serde(default)]
    pub alarm_action_enabled: Option<bool>,
    #[serde(default)]
    pub alarm_level: Option<i64>,
    #[serde(default)]
    pub alarm_type: Option<String>,
    #[serde(default)]
    pub alarm_actions: Option<Vec<NotificationReq>>,
    #[serde(default)]
    pub ok_actions: Option<Vec<NotificationReq>>,
    #[serde(default)]
    pub insufficientdata_actions: Option<Vec<NotificationReq>>,
}

/// `PUT /V1.0/{project_id}/alarms/{alarm_id}/action`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmAction {
    pub alarm_enabled: bool,
}

// ---------- the record ----------

/// The watched metric: one metric of `SYS.VPN` on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "MetricWire", try_from = "MetricWire")]
pub struct Metric {
    pub metric: VpnMetric,
    pub connection: ConnectionId,
}

#[derive(Serialize, Deserialize)]
struct MetricWire {
    namespace: String,
    metric_name: String,
    dimensions: Vec<DimensionReq>,
}

impl From<Metric> for MetricWire {
    fn from(m: Metric) -> Self {
        MetricWire {
            namespace: NAMESPACE.into(),
            metric_name: m.metric.name().into(),
            dimensions: vec![DimensionReq {
                name: m.metric.dimension().into(),
                value: m.connection.to_string(),
            }],
        }
    }
}

impl TryFrom<MetricWire> for Metric {
    type Error = DomainError;
    fn try_from(w: MetricWire) -> Result<Self, DomainError> {
        metric(&MetricReq {
            namespace: w.namespace,
            metric_name: w.metric_name,
            dimensions: Some(w.dimensions),
            resource_group_id: None,
        })
    }
}

/// A validated condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub comparison_operator: Comparison,
    /// Consecutive breaching periods that raise the alarm (1-5).
    pub count: i64,
    pub filter: Filter,
    /// Seconds; 1 = each raw window.
    pub period: i64,
    pub unit: String,
    pub value: f64,
    /// Seconds between repeated alarm notices (0 = once).
    pub suppress_duration: i64,
}

/// One notification action: SMN topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "notificationList")]
    pub notification_list: Vec<String>,
}

/// An alarm rule as stored and shown (`MetricAlarmsResp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRule {
    pub alarm_id: AlarmId,
    pub alarm_name: String,
    pub alarm_description: String,
    pub metric: Metric,
    pub condition: Condition,
    pub alarm_enabled: bool,
    pub alarm_level: i64,
    pub alarm_type: String,
    pub alarm_action_enabled: bool,
    pub alarm_actions: Vec<Notification>,
    pub ok_actions: Vec<Notification>,
    pub insufficientdata_actions: Vec<Notification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_action_begin_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_action_end_time: Option<String>,
    pub enterprise_project_id: String,
    /// Milliseconds: the last change of `alarm_state` (creation at first).
    pub update_time: i64,
    pub alarm_state: AlarmState,
}

/// One datapoint of a history record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Milliseconds.
    pub time: i64,
    pub value: f64,
}

/// A state change of a rule (`AlarmHistoryInfoResp`): the rule as it was,
/// the new status and the datapoint that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmHistory {
    pub alarm_id: AlarmId,
    pub alarm_name: String,
    pub alarm_description: String,
    pub metric: Metric,
    pub condition: Condition,
    pub alarm_level: i64,
    pub alarm_type: String,
    pub alarm_enabled: bool,
    pub alarm_action_enabled: bool,
    pub alarm_actions: Vec<Notification>,
    pub ok_actions: Vec<Notification>,
    pub insufficientdata_actions: Vec<Notification>,
    pub update_time: i64,
    pub enterprise_project_id: String,
    /// Milliseconds: the time of the data that caused the change.
    pub trigger_time: i64,
    pub alarm_status: AlarmState,
    pub datapoints: Vec<Datapoint>,
}

/// The history record of `rule` moving to `status` at `time_ms` because of
/// `value` (none for a change without data, e.g. insufficient data).
pub fn history(
    rule: &AlarmRule,
    status: AlarmState,
    time_ms: i64,
    value: Option<f64>,
) -> AlarmHistory {
    AlarmHistory {
        alarm_id: rule.alarm_id,
        alarm_name: rule.alarm_name.clone(),
        alarm_description: rule.alarm_description.clone(),
        metric: rule.metric,
        condition: rule.condition.clone(),
        alarm_level: rule.alarm_level,
        alarm_type: rule.alarm_type.clone(),
        alarm_enabled: rule.alarm_enabled,
        alarm_action_enabled: rule.alarm_action_enabled,
        alarm_actions: rule.alarm_actions.clone(),
        ok_actions: rule.ok_actions.clone(),
        insufficientdata_actions: rule.insufficientdata_actions.clone(),
        update_time: time_ms,
        enterprise_project_id: rule.enterprise_project_id.clone(),
        trigger_time: time_ms,
        alarm_status: status,
        datapoints: value
            .map(|v| Datapoint {
                time: time_ms,
                value: v,
            })
            .into_iter()
            .collect(),
    }
}

// ---------- validation ----------

/// `alarm_name`: 1-128 characters, letters, digits, `_`, `-` or CJK.
fn alarm_name(field: &str, v: &str) -> Result<String, DomainError> {
    let n = v.chars().count();
    let ok = (1..=128).contains(&n)
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '_'
                || c == '-'
                || ('\u{4e00}'..='\u{9fff}').contains(&c)
        });
    if ok {
        Ok(v.to_string())
    } else {
        Err(bad(
            field,
            format!("{v:?} must be 1-128 letters, digits, '_', '-' or CJK characters"),
        ))
    }
}

fn description(field: &str, v: Option<&str>) -> Result<String, DomainError> {
    let v = v.unwrap_or("");
    if v.chars().count() > 256 {
        return Err(bad(field, "must be at most 256 characters"));
    }
    Ok(v.to_string())
}

fn level(field: &str, v: Option<i64>) -> Result<i64, DomainError> {
    match v {
        None => Ok(2),
        Some(l @ 1..=4) => Ok(l),
        Some(l) => Err(bad(
            field,
            format!("{l} is not one of 1 (critical), 2 (major), 3 (minor), 4 (informational)"),
        )),
    }
}

fn alarm_type(field: &str, v: Option<&str>) -> Result<String, DomainError> {
    match v {
        None | Some("MULTI_INSTANCE") => Ok("MULTI_INSTANCE".into()),
        Some(t) => Err(bad(
            field,
            format!("{t:?} is not supported (metric rules are MULTI_INSTANCE)"),
        )),
    }
}

/// Validates the watched metric: `SYS.VPN`, a known metric, exactly the
/// metric's own connection dimension with a connection id.
pub fn metric(m: &MetricReq) -> Result<Metric, DomainError> {
    if m.namespace != NAMESPACE {
        return Err(bad(
            "metric.namespace",
            format!("{:?} is not supported (only {NAMESPACE})", m.namespace),
        ));
    }
    let metric = VpnMetric::parse(&m.metric_name).ok_or_else(|| {
        bad(
            "metric.metric_name",
            format!(
                "unknown metric {:?} in {NAMESPACE} (known: {})",
                m.metric_name,
                VpnMetric::ALL.map(|x| x.name()).join(", ")
            ),
        )
    })?;
    if m.resource_group_id.is_some() {
        return Err(bad(
            "metric.resource_group_id",
            "resource groups are not supported; name one connection in metric.dimensions",
        ));
    }
    let dims = m.dimensions.as_deref().unwrap_or(&[]);
    let [d] = dims else {
        return Err(bad(
            "metric.dimensions",
            format!(
                "must hold exactly one dimension, {} (one connection per rule), got {}",
                metric.dimension(),
                dims.len()
            ),
        ));
    };
    if d.name != metric.dimension() {
        return Err(bad(
            "metric.dimensions[0].name",
            format!(
                "{:?} is not a dimension of {} (use {})",
                d.name,
                metric.name(),
                metric.dimension()
            ),
        ));
    }
    let connection = ConnectionId::parse(&d.value).ok_or_else(|| {
        bad(
            "metric.dimensions[0].value",
            format!("{:?} is not a VPN connection id (a UUID)", d.value),
        )
    })?;
    Ok(Metric { metric, connection })
}

/// The error when the rule's connection is not one of the caller's.
pub fn unknown_connection(id: &ConnectionId) -> DomainError {
    bad(
        "metric.dimensions[0].value",
        format!("VPN connection {id} does not exist"),
    )
}

/// The error when a list's `start` names no rule of the caller's.
pub fn unknown_start(id: &AlarmId) -> DomainError {
    bad("start", format!("alarm {id} does not exist"))
}

/// Validates a condition.
pub fn condition(c: &ConditionReq) -> Result<Condition, DomainError> {
    let comparison_operator = Comparison::parse(&c.comparison_operator).ok_or_else(|| {
        bad(
            "condition.comparison_operator",
            format!("{:?} is not one of >, >=, <, <=, =", c.comparison_operator),
        )
    })?;
    if !(1..=5).contains(&c.count) {
        return Err(bad(
            "condition.count",
            format!("{} is not between 1 and 5", c.count),
        ));
    }
    let filter = Filter::parse(&c.filter).ok_or_else(|| {
        bad(
            "condition.filter",
            format!(
                "{:?} is not one of average, max, min, sum, variance",
                c.filter
            ),
        )
    })?;
    if !PERIODS.contains(&c.period) {
        return Err(bad(
            "condition.period",
            format!(
                "{} is not one of 1, 300, 1200, 3600, 14400, 86400",
                c.period
            ),
        ));
    }
    if !c.value.is_finite() || c.value.abs() > 1.797e108 {
        return Err(bad(
            "condition.value",
            "must be a number between -1.797e108 and 1.797e108",
        ));
    }
    let unit = c.unit.clone().unwrap_or_default();
    if unit.chars().count() > 32 {
        return Err(bad("condition.unit", "must be at most 32 characters"));
    }
    let suppress_duration = c.suppress_duration.unwrap_or(0);
    if !SUPPRESS_DURATIONS.contains(&suppress_duration) {
        return Err(bad(
            "condition.suppress_duration",
            format!(
                "{suppress_duration} is not one of 0, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400"
            ),
        ));
    }
    Ok(Condition {
        comparison_operator,
        count: c.count,
        filter,
        period: c.period,
        unit,
        value: c.value,
        suppress_duration,
    })
}

/// Validates an SMN topic URN of project `p`: `urn:smn:<region>:<p>:<name>`.
pub fn topic_urn(field: &str, urn: &str, p: &ProjectId) -> Result<(), DomainError> {
    let parts: Vec<&str> = urn.split(':').collect();
    let shape = parts.len() == 5
        && parts[0] == "urn"
        && parts[1] == "smn"
        && !parts[2].is_empty()
        && parts[2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && (1..=255).contains(&parts[4].len())
        && parts[4]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !shape {
        return Err(bad(
            field,
            format!("{urn:?} is not an SMN topic URN (urn:smn:<region>:<project_id>:<topic name>)"),
        ));
    }
    if parts[3] != p.as_str() {
        return Err(bad(
            field,
            format!("{urn:?} is not a topic of this project"),
        ));
    }
    Ok(())
}

fn actions(
    field: &str,
    v: Option<&[NotificationReq]>,
    p: &ProjectId,
) -> Result<Vec<Notification>, DomainError> {
    let v = v.unwrap_or(&[]);
    if v.len() > MAX_TOPICS {
        return Err(bad(
            field,
            format!("must hold at most {MAX_TOPICS} actions"),
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for (i, n) in v.iter().enumerate() {
        if n.kind != "notification" {
            return Err(bad(
                &format!("{field}[{i}].type"),
                format!("{:?} is not supported (only notification)", n.kind),
            ));
        }
        let list_field = format!("{field}[{i}].notificationList");
        if n.notification_list.len() > MAX_TOPICS {
            return Err(bad(
                &list_field,
                format!("must hold at most {MAX_TOPICS} topic URNs"),
            ));
        }
        for (j, urn) in n.notification_list.iter().enumerate() {
            topic_urn(&format!("{list_field}[{j}]"), urn, p)?;
        }
        out.push(Notification {
            kind: n.kind.clone(),
            notification_list: n.notification_list.clone(),
        });
    }
    Ok(out)
}

fn has_topics(list: &[Notification]) -> bool {
    list.iter().any(|n| !n.notification_list.is_empty())
}

fn check_actions_enabled(rule: &AlarmRule) -> Result<(), DomainError> {
    if rule.alarm_action_enabled
        && !has_topics(&rule.alarm_actions)
        && !has_topics(&rule.ok_actions)
    {
        return Err(bad(
            "alarm_actions",
            "alarm_action_enabled is true: alarm_actions or ok_actions must name a topic",
        ));
    }
    Ok(())
}

/// `HH:MM`.
fn clock_time(field: &str, v: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(v) = v else { return Ok(None) };
    let ok = v.len() == 5
        && v.as_bytes()[2] == b':'
        && v[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && v[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && v.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok {
        Ok(Some(v.to_string()))
    } else {
        Err(bad(field, format!("{v:?} is not a time HH:MM")))
    }
}

/// Validates a create body into a new rule of project `p` (state
/// `insufficient_data` until data arrives).
pub fn create(
    req: &CreateAlarm,
    id: AlarmId,
    p: &ProjectId,
    now_ms: i64,
) -> Result<AlarmRule, DomainError> {
    let rule = AlarmRule {
        alarm_id: id,
        alarm_name: alarm_name("alarm_name", &req.alarm_name)?,
        alarm_description: description("alarm_description", req.alarm_description.as_deref())?,
        metric: metric(&req.metric)?,
        condition: condition(&req.condition)?,
        alarm_enabled: req.alarm_enabled.unwrap_or(true),
        alarm_level: level("alarm_level", req.alarm_level)?,
        alarm_type: alarm_type("alarm_type", req.alarm_type.as_deref())?,
        alarm_action_enabled: req.alarm_action_enabled.unwrap_or(true),
        alarm_actions: actions("alarm_actions", req.alarm_actions.as_deref(), p)?,
        ok_actions: actions("ok_actions", req.ok_actions.as_deref(), p)?,
        insufficientdata_actions: actions(
            "insufficientdata_actions",
            req.insufficientdata_actions.as_deref(),
            p,
        )?,
        alarm_action_begin_time: clock_time(
            "alarm_action_begin_time",
            req.alarm_action_begin_time.as_deref(),
        )?,
        alarm_action_end_time: clock_time(
            "alarm_action_end_time",
            req.alarm_action_end_time.as_deref(),
        )?,
        enterprise_project_id: match req.enterprise_project_id.as_deref() {
            None => "0".into(),
            Some(e) if e.len() <= 36 => e.to_string(),
            Some(_) => {
                return Err(bad(
                    "enterprise_project_id",
                    "must be at most 36 characters",
                ));
            }
        },
        update_time: now_ms,
        alarm_state: AlarmState::InsufficientData,
    };
    check_actions_enabled(&rule)?;
    Ok(rule)
}

/// Applies an update body to `rule`; `true` with the rule when its
/// condition changed (its evaluation starts over).
pub fn update(
    rule: &AlarmRule,
    req: &UpdateAlarm,
    p: &ProjectId,
) -> Result<(AlarmRule, bool), DomainError> {
    let mut r = rule.clone();
    if let Some(n) = &req.alarm_name {
        r.alarm_name = alarm_name("alarm_name", n)?;
    }
    if let Some(d) = &req.alarm_description {
        r.alarm_description = description("alarm_description", Some(d))?;
    }
    let mut reset = false;
    if let Some(c) = &req.condition {
        let c = condition(c)?;
        reset = c != r.condition;
        r.condition = c;
    }
    if let Some(e) = req.alarm_action_enabled {
        r.alarm_action_enabled = e;
    }
    if req.alarm_level.is_some() {
        r.alarm_level = level("alarm_level", req.alarm_level)?;
    }
    if req.alarm_type.is_some() {
        r.alarm_type = alarm_type("alarm_type", req.alarm_type.as_deref())?;
    }
    if let Some(a) = &req.alarm_actions {
        r.alarm_actions = actions("alarm_actions", Some(a), p)?;
    }
    if let Some(a) = &req.ok_actions {
        r.ok_actions = actions("ok_actions", Some(a), p)?;
    }
    if let Some(a) = &req.insufficientdata_actions {
        r.insufficientdata_actions = actions("insufficientdata_actions", Some(a), p)?;
    }
    check_actions_enabled(&r)?;
    Ok((r, reset))
}

#[cfg(test)]
mod tests;
