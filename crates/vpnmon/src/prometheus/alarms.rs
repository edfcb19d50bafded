//! `vpnmon_alarm_state`: the state of each alarm rule, for Prometheus
//! users who alert from Prometheus rather than through SMN.
//!
//! One series per enabled rule and state (`state` = `ok`, `alarm`,
//! `insufficient_data`; 1 for the rule's state, 0 for the others, the
//! enum-as-labels style of kube-state-metrics), labelled `project`,
//! `alarm`, `alarm_name`, `vpn_connection` and `metric`. The rules come from
//! the store (so every node shows every project's rules alike), read every
//! [`REFRESH_EVERY`] into a snapshot that the scrape encodes: a scrape never
//! waits for the store. At most `--metrics-max-monitors` rules have series;
//! the others are counted in `vpnmon_alarms_unexported`.

use domain::ProjectId;
use domain::alarm::{AlarmRule, AlarmState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the snapshot is read from the store.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlarmLabels {
    project: String,
    alarm: String,
    alarm_name: String,
    vpn_connection: String,
    metric: String,
    state: &'static str,
}

/// One rule as the scrape shows it.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    project: String,
    alarm: String,
    alarm_name: String,
    vpn_connection: String,
    metric: String,
    state: AlarmState,
}

#[derive(Debug, Default)]
struct Snapshot {
    rows: Vec<Row>,
    /// Rules without series.
    unexported: i64,
}

/// The rules' states, refreshed from the store, encoded at each scrape.
#[derive(Debug, Default, Clone)]
pub struct AlarmStates {
    snapshot: Arc<Mutex<Snapshot>>,
}

const STATES: [AlarmState; 3] = [
    AlarmState::Ok,
    AlarmState::Alarm,
    AlarmState::InsufficientData,
];

impl AlarmStates {
    /// Replaces the snapshot: `rules` (already limited) of `total`.
    pub fn set(&self, rules: &[(ProjectId, AlarmRule)], total: i64) {
        let rows = rules
            .iter()
            .map(|(p, r)| Row {
                project: p.as_str().to_string(),
                alarm: r.alarm_id.to_string(),
                alarm_name: r.alarm_name.clone(),
                vpn_connection: r.metric.connection.to_string(),
                metric: r.metric.metric.name().to_string(),
                state: r.alarm_state,
            })
            .collect::<Vec<_>>();
        let unexported = total.saturating_sub(rows.len() as i64).max(0);
        if let Ok(mut s) = self.snapshot.lock() {
            *s = Snapshot { rows, unexported };
        }
    }
}

impl Collector for AlarmStates {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (rows, unexported) = match self.snapshot.lock() {
            Ok(s) => (s.rows.clone(), s.unexported),
            Err(_) => (Vec::new(), 0),
        };
        let mut family = encoder.encode_descriptor(
            "vpnmon_alarm_state",
            "State of each enabled Cloud Eye alarm rule: 1 for its state (ok, alarm, insufficient_data), \
             0 for the others; refreshed from the store every 5 s.",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            for st in STATES {
                let labels = AlarmLabels {
                    project: r.project.clone(),
                    alarm: r.alarm.clone(),
                    alarm_name: r.alarm_name.clone(),
                    vpn_connection: r.vpn_connection.clone(),
                    metric: r.metric.clone(),
                    state: st.as_str(),
                };
                let m = family.encode_family(&labels)?;
                ConstGauge::new(i64::from(r.state == st)).encode(m)?;
            }
        }
        let m = encoder.encode_descriptor(
            "vpnmon_alarms_unexported",
            "Alarm rules without vpnmon_alarm_state series (over --metrics-max-monitors).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(unexported).encode(m)?;
        Ok(())
    }
}

/// Reads the rules' states from `store` into `states` every
/// [`REFRESH_EVERY`] until `stop`; a failed read keeps the last snapshot
/// and is logged.
pub async fn refresh(
    store: Arc<dyn store::AlarmStore>,
    states: AlarmStates,
    limit: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    loop {
        match store.alarm_states(limit).await {
            Ok((rules, total)) => states.set(&rules, total),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the alarm rules' states for /metrics")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn rule(state: AlarmState) -> AlarmRule {
        let body = serde_json::json!({"alarm_name": "vpn-loss",
            "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                       "dimensions": [{"name": "evpn_connection_id",
                                       "value": "0b6c3f3e-8c55-4f3a-9d0f-3f1f5a6b7c8d"}]},
            "condition": {"comparison_operator": ">=", "count": 2, "filter": "average",
                          "period": 1, "value": 50, "unit": "%"},
            "alarm_action_enabled": false});
        let req = serde_json::from_value(body).unwrap();
        let p = ProjectId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let mut r =
            domain::alarm::create(&req, domain::AlarmId::random(), &p, 1_700_000_000_000).unwrap();
        r.alarm_state = state;
        r
    }

    #[test]
    fn each_rule_has_one_series_per_state_and_the_rest_are_counted() {
        let states = AlarmStates::default();
        let mut reg = Registry::default();
        reg.register_collector(Box::new(states.clone()));
        let p = ProjectId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let r = rule(AlarmState::Alarm);
        states.set(&[(p, r.clone())], 3);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        let series: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("vpnmon_alarm"))
            .collect();
        let id = r.alarm_id.to_string();
        let labels = |st: &str| {
            format!(
                "{{project=\"0123456789abcdef0123456789abcdef\",alarm=\"{id}\",\
                 alarm_name=\"vpn-loss\",vpn_connection=\"0b6c3f3e-8c55-4f3a-9d0f-3f1f5a6b7c8d\",\
                 metric=\"link_packet_loss_rate\",state=\"{st}\"}}"
            )
        };
        assert_eq!(
            series,
            vec![
                format!("vpnmon_alarm_state{} 0", labels("ok")).as_str(),
                format!("vpnmon_alarm_state{} 1", labels("alarm")).as_str(),
                format!("vpnmon_alarm_state{} 0", labels("insufficient_data")).as_str(),
                "vpnmon_alarms_unexported 2",
            ]
        );
    }
}
