//! Cloud Eye alarm rules (`vpnmon alarm ...`, `/V1.0/{project_id}/alarms`)
//! and SMN topics and subscriptions (`vpnmon topic ...`,
//! `/v2/{project_id}/notifications/...`), with table or JSON output.
//!
//! Create bodies are the domain's request structs (`CreateAlarm`,
//! `CreateTopic`, `AddSubscription`), as for the VPN resources; `-o json`
//! prints the server's objects unchanged.

use crate::OutputFormat;
use crate::resources::print_object;
use crate::session::{Api, Session};
use crate::table::Table;
use anyhow::{Result, anyhow, bail};
use domain::alarm::{ConditionReq, CreateAlarm, DimensionReq, MetricReq, NotificationReq};
use domain::metric::{NAMESPACE, VpnMetric};
use domain::smn::{AddSubscription, CreateTopic};
use reqwest::Method;
use serde_json::{Value, json};

/// What `vpnmon alarm create` was given.
#[derive(Debug, Clone)]
pub struct AlarmCreate {
    pub connection: String,
    pub metric: String,
    pub comparison: String,
    pub value: f64,
    pub unit: Option<String>,
    pub period: i64,
    pub filter: String,
    pub count: i64,
    pub suppress: i64,
    pub level: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Topic URNs or names, for both the alarm and the ok actions.
    pub topics: Vec<String>,
    pub disabled: bool,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(Value::String(_)) => "-".into(),
        Some(x) => x.to_string(),
    }
}

/// `link_packet_loss_rate average >= 50% x2 per 1s`.
fn condition_cell(a: &Value) -> String {
    let c = &a["condition"];
    let value = c["value"]
        .as_f64()
        .map_or_else(|| "?".into(), |v| v.to_string());
    format!(
        "{} {} {}{} x{} per {}s",
        c["filter"].as_str().unwrap_or("?"),
        c["comparison_operator"].as_str().unwrap_or("?"),
        value,
        c["unit"].as_str().unwrap_or(""),
        c["count"],
        c["period"],
    )
}

fn connection_of(a: &Value) -> String {
    a.pointer("/metric/dimensions/0/value")
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}

/// The URN of a topic given by URN or by name.
pub async fn topic_urn(s: &mut Session, arg: &str) -> Result<String> {
    if arg.starts_with("urn:smn:") {
        return Ok(arg.to_string());
    }
    let topics = list_topics(s).await?;
    topics
        .iter()
        .find(|t| t["name"] == arg)
        .and_then(|t| t["topic_urn"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no topic with URN or name {arg:?}"))
}

/// `vpnmon alarm create`.
pub async fn alarm_create(s: &mut Session, a: AlarmCreate, out: OutputFormat) -> Result<()> {
    let metric = VpnMetric::parse(&a.metric).ok_or_else(|| {
        anyhow!(
            "{:?} is not a metric of {NAMESPACE} (link_average_latency, link_max_latency, \
             link_packet_loss_rate, or the public_* names)",
            a.metric
        )
    })?;
    let unit = a.unit.unwrap_or_else(|| metric.unit().to_string());
    let mut urns = Vec::new();
    for t in &a.topics {
        urns.push(topic_urn(s, t).await?);
    }
    let actions = (!urns.is_empty()).then(|| {
        vec![NotificationReq {
            kind: "notification".into(),
            notification_list: urns.clone(),
        }]
    });
    let short: String = a.connection.chars().take(8).collect();
    let body = CreateAlarm {
        alarm_name: a
            .name
            .unwrap_or_else(|| format!("vpn-{}-{short}", metric.name())),
        alarm_description: a.description,
        metric: MetricReq {
            namespace: NAMESPACE.into(),
            metric_name: metric.name().into(),
            dimensions: Some(vec![DimensionReq {
                name: metric.dimension().into(),
                value: a.connection.clone(),
            }]),
            resource_group_id: None,
        },
        condition: ConditionReq {
            comparison_operator: a.comparison,
            count: a.count,
            filter: a.filter,
            period: a.period,
            value: a.value,
            unit: Some(unit),
            suppress_duration: Some(a.suppress),
        },
        alarm_enabled: a.disabled.then_some(false),
        alarm_action_enabled: Some(actions.is_some()),
        alarm_level: Some(a.level),
        alarm_type: None,
        alarm_actions: actions.clone(),
        ok_actions: actions,
        insufficientdata_actions: None,
        enterprise_project_id: None,
        alarm_action_begin_time: None,
        alarm_action_end_time: None,
    };
    let body = serde_json::to_value(&body)?;
    let created = s
        .call(Method::POST, Api::Ces, "alarms", &[], Some(&body))
        .await?
        .ok_or_else(|| anyhow!("the server answered the create without a body"))?;
    let id = created["alarm_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no alarm_id"))?
        .to_string();
    let shown = alarm_get(s, &id).await?;
    print_object(&shown, out);
    Ok(())
}

async fn alarm_get(s: &mut Session, id: &str) -> Result<Value> {
    let mut body = s
        .call(Method::GET, Api::Ces, &format!("alarms/{id}"), &[], None)
        .await?
        .ok_or_else(|| anyhow!("the server answered without a body"))?;
    match body.pointer_mut("/metric_alarms/0").map(Value::take) {
        Some(v) if v.is_object() => Ok(v),
        _ => bail!("the server's answer has no metric_alarms[0]"),
    }
}

/// `vpnmon alarm show ID`.
pub async fn alarm_show(s: &mut Session, id: &str, out: OutputFormat) -> Result<()> {
    let v = alarm_get(s, id).await?;
    print_object(&v, out);
    Ok(())
}

/// Every rule of the project, following `meta_data.marker`.
async fn list_alarms(s: &mut Session) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut q = vec![("limit", "100".to_string()), ("order", "asc".to_string())];
        if let Some(m) = &start {
            q.push(("start", m.clone()));
        }
        let body = s
            .call(Method::GET, Api::Ces, "alarms", &q, None)
            .await?
            .ok_or_else(|| anyhow!("the server's list answer is empty"))?;
        let page = body["metric_alarms"]
            .as_array()
            .ok_or_else(|| anyhow!("the server's answer has no metric_alarms array"))?;
        items.extend(page.iter().cloned());
        let next = body
            .pointer("/meta_data/marker")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        match next {
            Some(m) if !page.is_empty() && start.as_deref() != Some(m.as_str()) => start = Some(m),
            _ => return Ok(items),
        }
    }
}

/// `vpnmon alarm list`.
pub async fn alarm_list(s: &mut Session, out: OutputFormat) -> Result<()> {
    let items = list_alarms(s).await?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&Value::Array(items))),
        OutputFormat::Table => {
            let mut t = Table::new([
                "ID",
                "NAME",
                "STATE",
                "ENABLED",
                "LEVEL",
                "METRIC",
                "CONDITION",
                "CONNECTION",
            ]);
            for a in &items {
                t.row([
                    text(a, "alarm_id"),
                    text(a, "alarm_name"),
                    text(a, "alarm_state"),
                    text(a, "alarm_enabled"),
                    text(a, "alarm_level"),
                    a.pointer("/metric/metric_name")
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                        .to_string(),
                    condition_cell(a),
                    connection_of(a),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

/// `vpnmon alarm delete ID`.
pub async fn alarm_delete(s: &mut Session, id: &str, out: OutputFormat) -> Result<()> {
    s.call(Method::DELETE, Api::Ces, &format!("alarms/{id}"), &[], None)
        .await?;
    if out == OutputFormat::Table {
        println!("deleted alarm rule {id}");
    }
    Ok(())
}

/// `vpnmon alarm enable|disable ID`.
pub async fn alarm_enable(s: &mut Session, id: &str, on: bool, out: OutputFormat) -> Result<()> {
    let body = json!({ "alarm_enabled": on });
    s.call(
        Method::PUT,
        Api::Ces,
        &format!("alarms/{id}/action"),
        &[],
        Some(&body),
    )
    .await?;
    let v = alarm_get(s, id).await?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&v)),
        OutputFormat::Table => println!(
            "alarm rule {id} {} (state {})",
            if on { "enabled" } else { "disabled" },
            text(&v, "alarm_state")
        ),
    }
    Ok(())
}

/// `vpnmon alarm history [ID]`: state changes, newest first.
pub async fn alarm_history(
    s: &mut Session,
    id: Option<&str>,
    limit: u32,
    out: OutputFormat,
) -> Result<()> {
    let mut q = vec![("limit", limit.to_string())];
    if let Some(id) = id {
        q.push(("alarm_id", id.to_string()));
    }
    let body = s
        .call(Method::GET, Api::Ces, "alarm-histories", &q, None)
        .await?
        .ok_or_else(|| anyhow!("the server's answer is empty"))?;
    let items = body["alarm_histories"]
        .as_array()
        .ok_or_else(|| anyhow!("the server's answer has no alarm_histories array"))?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&Value::Array(items.clone()))),
        OutputFormat::Table => {
            let mut t = Table::new(["TIME", "ALARM", "NAME", "STATUS", "VALUE"]);
            for h in items {
                let time = h["trigger_time"]
                    .as_i64()
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(
                        || "-".into(),
                        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    );
                let value = h
                    .pointer("/datapoints/0/value")
                    .and_then(Value::as_f64)
                    .map_or_else(|| "-".into(), |v| format!("{v:.3}"));
                t.row([
                    time,
                    text(h, "alarm_id"),
                    text(h, "alarm_name"),
                    text(h, "alarm_status"),
                    value,
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

/// Every topic of the project, in pages of 100.
async fn list_topics(s: &mut Session) -> Result<Vec<Value>> {
    paged(s, "notifications/topics", "topics").await
}

/// Every item of an SMN list, following `offset`.
async fn paged(s: &mut Session, rel: &str, key: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    loop {
        let q = [
            ("offset", items.len().to_string()),
            ("limit", "100".to_string()),
        ];
        let body = s
            .call(Method::GET, Api::Smn, rel, &q, None)
            .await?
            .ok_or_else(|| anyhow!("the server's list answer is empty"))?;
        let page = body[key]
            .as_array()
            .ok_or_else(|| anyhow!("the server's answer has no {key} array"))?;
        let n = page.len();
        items.extend(page.iter().cloned());
        if n < 100 {
            return Ok(items);
        }
    }
}

/// `vpnmon topic create NAME`.
pub async fn topic_create(
    s: &mut Session,
    name: &str,
    display_name: Option<String>,
    out: OutputFormat,
) -> Result<()> {
    let body = CreateTopic {
        name: name.to_string(),
        display_name: display_name.unwrap_or_else(|| name.to_string()),
        enterprise_project_id: None,
    };
    let body = serde_json::to_value(&body)?;
    let r = s
        .call(
            Method::POST,
            Api::Smn,
            "notifications/topics",
            &[],
            Some(&body),
        )
        .await?
        .ok_or_else(|| anyhow!("the server answered the create without a body"))?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&r)),
        OutputFormat::Table => println!("{}", text(&r, "topic_urn")),
    }
    Ok(())
}

/// `vpnmon topic list`.
pub async fn topic_list(s: &mut Session, out: OutputFormat) -> Result<()> {
    let items = list_topics(s).await?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&Value::Array(items))),
        OutputFormat::Table => {
            let mut t = Table::new(["TOPIC_URN", "NAME", "DISPLAY_NAME"]);
            for v in &items {
                t.row([
                    text(v, "topic_urn"),
                    text(v, "name"),
                    text(v, "display_name"),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

/// `vpnmon topic subscribe TOPIC ENDPOINT`: the protocol is the URL's
/// scheme; the subscription starts unconfirmed until the endpoint visits
/// the `subscribe_url` it is sent.
pub async fn topic_subscribe(
    s: &mut Session,
    topic: &str,
    endpoint: &str,
    remark: Option<String>,
    out: OutputFormat,
) -> Result<()> {
    let urn = topic_urn(s, topic).await?;
    let protocol = match endpoint.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => "http",
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => "https",
        _ => bail!("{endpoint:?} is not an http:// or https:// URL"),
    };
    let body = AddSubscription {
        protocol: protocol.into(),
        endpoint: endpoint.to_string(),
        remark,
    };
    let body = serde_json::to_value(&body)?;
    let r = s
        .call(
            Method::POST,
            Api::Smn,
            &format!("notifications/topics/{}/subscriptions", enc(&urn)),
            &[],
            Some(&body),
        )
        .await?
        .ok_or_else(|| anyhow!("the server answered without a body"))?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&r)),
        OutputFormat::Table => println!(
            "{} (unconfirmed: the endpoint is sent a SubscriptionConfirmation; a GET of its \
             subscribe_url confirms)",
            text(&r, "subscription_urn")
        ),
    }
    Ok(())
}

/// SMN's subscription `status`.
fn status_cell(v: &Value) -> String {
    match v["status"].as_i64() {
        Some(0) => "unconfirmed".into(),
        Some(1) => "confirmed".into(),
        Some(2) => "cancelled".into(),
        Some(3) => "deleted".into(),
        Some(n) => n.to_string(),
        None => "-".into(),
    }
}

/// `vpnmon topic subscriptions [TOPIC]`.
pub async fn topic_subscriptions(
    s: &mut Session,
    topic: Option<&str>,
    out: OutputFormat,
) -> Result<()> {
    let rel = match topic {
        Some(t) => {
            let urn = topic_urn(s, t).await?;
            format!("notifications/topics/{}/subscriptions", enc(&urn))
        }
        None => "notifications/subscriptions".to_string(),
    };
    let items = paged(s, &rel, "subscriptions").await?;
    match out {
        OutputFormat::Json => println!("{}", pretty(&Value::Array(items))),
        OutputFormat::Table => {
            let mut t = Table::new([
                "SUBSCRIPTION_URN",
                "PROTOCOL",
                "ENDPOINT",
                "STATUS",
                "REMARK",
            ]);
            for v in &items {
                t.row([
                    text(v, "subscription_urn"),
                    text(v, "protocol"),
                    text(v, "endpoint"),
                    status_cell(v),
                    text(v, "remark"),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

/// A URN in a path, percent-encoded as the SDKs send it.
fn enc(urn: &str) -> String {
    urn.replace(':', "%3A")
}
