//! What an alarm notification says: the `subject` and the JSON `message`
//! that subscribers of the rule's topics receive in SMN's envelope.
//!
//! Cloud Eye's own notification text comes from console templates that are
//! not documented field by field, so the message is vpnmon's own JSON
//! (version "1"), named after the fields of the v1 history record so that a
//! receiver can read both alike. It is documented in the README.

use super::eval::Notice;
use super::{AlarmRule, AlarmState};
use crate::MonitorId;
use serde_json::json;

/// `[Critical]` ... `[Informational]` for `alarm_level` 1-4.
pub fn level_name(level: i64) -> &'static str {
    match level {
        1 => "Critical",
        2 => "Major",
        3 => "Minor",
        _ => "Informational",
    }
}

/// The subject and message of notice `n` of `rule` (after the change: its
/// `alarm_state` is the new state), caused by `value` at `time_ms`.
pub fn message(
    rule: &AlarmRule,
    n: Notice,
    previous: AlarmState,
    value: Option<f64>,
    time_ms: i64,
    monitor_id: Option<&MonitorId>,
) -> (String, String) {
    let status = match n {
        Notice::Alarm => AlarmState::Alarm,
        Notice::Ok => AlarmState::Ok,
    };
    let c = &rule.condition;
    let subject = format!(
        "[{}] {} {}: {} {} {}{}",
        level_name(rule.alarm_level),
        rule.alarm_name,
        status.as_str(),
        rule.metric.metric.name(),
        c.comparison_operator.as_str(),
        c.value,
        c.unit
    );
    let msg = json!({
        "version": "1",
        "alarm_id": rule.alarm_id.to_string(),
        "alarm_name": rule.alarm_name,
        "alarm_description": rule.alarm_description,
        "alarm_status": status.as_str(),
        "previous_status": previous.as_str(),
        "alarm_level": rule.alarm_level,
        "namespace": super::NAMESPACE,
        "metric_name": rule.metric.metric.name(),
        "dimensions": [{
            "name": rule.metric.metric.dimension(),
            "value": rule.metric.connection.to_string(),
        }],
        "condition": {
            "comparison_operator": c.comparison_operator.as_str(),
            "value": c.value,
            "unit": c.unit,
            "count": c.count,
            "period": c.period,
            "filter": c.filter.name(),
            "suppress_duration": c.suppress_duration,
        },
        "current_value": value,
        "datapoints": value.map(|v| vec![json!({"time": time_ms, "value": v})]).unwrap_or_default(),
        "time": time_ms,
        "monitor_id": monitor_id.map(|m| m.to_string()),
    });
    (subject, msg.to_string())
}
