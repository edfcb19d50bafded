//! SMN (Simple Message Notification) topics, the targets of alarm actions:
//! the request shapes `huaweicloudsdksmn` v2 sends, their validation, and the
//! topic's show shape.
//!
//! Design choices:
//! - A topic is named per project; its URN is
//!   `urn:smn:<region>:<project_id>:<name>`, which is what alarm rules list
//!   in `notificationList`. Creating a topic whose name exists answers that
//!   topic (SMN is idempotent there), so the store keys topics by name.
//! - `topic_id` is 32 hex characters, times are `YYYY-MM-DDTHH:MM:SSZ`, as
//!   SMN shows them.

use crate::{DomainError, ProjectId};
use serde::{Deserialize, Serialize};

fn bad(field: &str, msg: impl std::fmt::Display) -> DomainError {
    DomainError::invalid(format!("{field}: {msg}"))
}

/// `POST /v2/{project_id}/notifications/topics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
}

/// `PUT /v2/{project_id}/notifications/topics/{topic_urn}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTopic {
    pub display_name: String,
}

/// A topic as SMN shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub topic_urn: String,
    pub name: String,
    pub display_name: String,
    pub push_policy: i64,
    pub enterprise_project_id: String,
    pub topic_id: String,
    pub create_time: String,
    pub update_time: String,
}

/// A topic name: 1-255 of `[A-Za-z0-9_-]`, starting with a letter or digit.
pub fn topic_name(v: &str) -> Result<(), DomainError> {
    let ok = (1..=255).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "name",
            format!(
                "{v:?} must be 1-255 letters, digits, '_' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// A display name: at most 192 bytes.
pub fn display_name(v: &str) -> Result<(), DomainError> {
    if v.len() > 192 {
        return Err(bad("display_name", "must be at most 192 bytes"));
    }
    Ok(())
}

/// The URN of topic `name` of project `p` in `region`.
pub fn topic_urn(region: &str, p: &ProjectId, name: &str) -> String {
    format!("urn:smn:{region}:{p}:{name}")
}

/// The topic name in a URN of project `p` (of any region); `None` when the
/// URN is not a topic URN of this project (which is then not found).
pub fn topic_name_of(urn: &str, p: &ProjectId) -> Option<String> {
    let parts: Vec<&str> = urn.split(':').collect();
    match parts.as_slice() {
        ["urn", "smn", region, project, name]
            if !region.is_empty() && *project == p.as_str() && topic_name(name).is_ok() =>
        {
            Some((*name).to_string())
        }
        _ => None,
    }
}

/// The project and topic name of a topic URN (any region).
pub fn topic_parts(urn: &str) -> Option<(ProjectId, String)> {
    let parts: Vec<&str> = urn.split(':').collect();
    match parts.as_slice() {
        ["urn", "smn", region, project, name] if !region.is_empty() && topic_name(name).is_ok() => {
            Some((ProjectId::parse(project)?, (*name).to_string()))
        }
        _ => None,
    }
}

/// SMN's time format.
pub fn wire_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Validates a create body into a new topic.
pub fn create(
    req: &CreateTopic,
    region: &str,
    p: &ProjectId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Topic, DomainError> {
    topic_name(&req.name)?;
    display_name(&req.display_name)?;
    let eps = req
        .enterprise_project_id
        .clone()
        .unwrap_or_else(|| "0".into());
    if eps.len() > 36 {
        return Err(bad(
            "enterprise_project_id",
            "must be at most 36 characters",
        ));
    }
    Ok(Topic {
        topic_urn: topic_urn(region, p, &req.name),
        name: req.name.clone(),
        display_name: req.display_name.clone(),
        push_policy: 0,
        enterprise_project_id: eps,
        topic_id: uuid::Uuid::new_v4().simple().to_string(),
        create_time: wire_time(now),
        update_time: wire_time(now),
    })
}

/// `POST .../topics/{topic_urn}/subscriptions` (one subscription; the
/// batch form `subscriptions` is not supported).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSubscription {
    pub protocol: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

/// Subscription `status`: waiting for its confirmation.
pub const UNCONFIRMED: i64 = 0;

/// A subscription as SMN shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topic_urn: String,
    pub protocol: String,
    pub subscription_urn: String,
    /// The project that owns it.
    pub owner: String,
    pub endpoint: String,
    pub remark: String,
    /// 0 unconfirmed, 1 confirmed, 2 no confirmation needed, 3 cancelled.
    pub status: i64,
}

/// Whether an address is private, loopback, link-local or otherwise not
/// public (what SMN refuses as an endpoint unless the operator allows it).
fn not_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v) => {
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64
                || v.octets()[0] == 198 && (v.octets()[1] & 0xfe) == 18
        }
        std::net::IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
                || v.to_ipv4_mapped().is_some_and(|m| not_public(m.into()))
        }
    }
}

/// Whether messages may be sent to `ip`: a public address, or one inside
/// `allow` (`--notify-allow`).
pub fn address_allowed(ip: std::net::IpAddr, allow: &[ipnet::IpNet]) -> bool {
    !not_public(ip) || allow.iter().any(|n| n.contains(&ip))
}

/// Why `endpoint` (an HTTP(S) URL) may not be sent to under `allow`: its
/// host is an address literal (or `localhost`) that is private or loopback
/// and outside `allow`. Names are checked where they are resolved.
pub fn endpoint_refused(endpoint: &str, allow: &[ipnet::IpNet]) -> Option<String> {
    let rest = endpoint.split_once("://")?.1;
    let host = url_host(rest)?;
    let ips: Vec<std::net::IpAddr> = if host.eq_ignore_ascii_case("localhost") {
        vec![
            std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
        ]
    } else {
        host.parse::<std::net::IpAddr>().into_iter().collect()
    };
    ips.into_iter().find(|ip| !address_allowed(*ip, allow)).map(|_| {
        format!("{host} is a private or loopback address; the operator must allow it (--notify-allow)")
    })
}

/// The host of an `http(s)://host[:port][/path]` URL: an address (IPv6 in
/// brackets) or a name; `None` when there is none or it holds user info.
fn url_host(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return (after.is_empty() || after.starts_with(':')).then_some(host);
    }
    let host = authority.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// Validates an HTTP(S) subscription: the protocol (`http` or `https`) and
/// an endpoint URL of that scheme whose host is public or in `allow`
/// (`--notify-allow`). `localhost` counts as loopback; other names are not
/// resolved here.
pub fn subscription(req: &AddSubscription, allow: &[ipnet::IpNet]) -> Result<(), DomainError> {
    if req.protocol != "http" && req.protocol != "https" {
        return Err(bad(
            "protocol",
            format!("{:?} is not supported (http, https)", req.protocol),
        ));
    }
    let scheme = format!("{}://", req.protocol);
    let ep = req.endpoint.as_str();
    ep.get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(&scheme))
        .and_then(|_| url_host(&ep[scheme.len()..]))
        .ok_or_else(|| {
            bad(
                "endpoint",
                format!(
                    "{ep:?} is not an {} URL ({scheme}host[:port]/path)",
                    req.protocol
                ),
            )
        })?;
    if ep.len() > 2048 {
        return Err(bad("endpoint", "must be at most 2048 characters"));
    }
    if let Some(why) = endpoint_refused(ep, allow) {
        return Err(bad("endpoint", why));
    }
    if req.remark.as_deref().is_some_and(|r| r.len() > 128) {
        return Err(bad("remark", "must be at most 128 bytes"));
    }
    Ok(())
}

/// A new unconfirmed subscription of topic `topic_urn` for project `p`.
pub fn new_subscription(req: &AddSubscription, topic_urn: &str, p: &ProjectId) -> Subscription {
    Subscription {
        topic_urn: topic_urn.to_string(),
        protocol: req.protocol.clone(),
        subscription_urn: format!("{topic_urn}:{}", uuid::Uuid::new_v4().simple()),
        owner: p.to_string(),
        endpoint: req.endpoint.clone(),
        remark: req.remark.clone().unwrap_or_default(),
        status: UNCONFIRMED,
    }
}

/// The topic name and subscription id of a subscription URN of project
/// `p`; `None` when it is not one.
pub fn subscription_of(urn: &str, p: &ProjectId) -> Option<(String, String)> {
    let (topic, id) = urn.rsplit_once(':')?;
    let name = topic_name_of(topic, p)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (name, id.to_string()))
}

/// Subscription `status`: confirmed (messages are delivered to it).
pub const CONFIRMED: i64 = 1;

/// `X-SMN-MESSAGE-TYPE` of the message that asks an endpoint to confirm.
pub const CONFIRMATION: &str = "SubscriptionConfirmation";
/// `X-SMN-MESSAGE-TYPE` of a published message.
pub const NOTIFICATION: &str = "Notification";

/// How long a confirmation is retried (its `subscribe_url` is valid 48 h).
pub const CONFIRMATION_TTL_S: i64 = 48 * 3600;
/// How long an alarm notification is retried.
pub const ALARM_TTL_S: i64 = 24 * 3600;
/// `publish`'s default and largest `time_to_live`.
pub const PUBLISH_TTL_S: i64 = 3600;
/// The largest `time_to_live`.
pub const MAX_TTL_S: i64 = 86_400;
/// Attempts per delivery before it is given up (with the backoff below,
/// about 3.6 hours of retrying).
pub const MAX_ATTEMPTS: i64 = 30;

/// The wait before attempt `n + 1` after `n` failed attempts (n >= 1):
/// 1 s doubling to at most 10 minutes.
pub fn retry_delay_s(failed: i64) -> i64 {
    let exp = (failed - 1).clamp(0, 20) as u32;
    (1_i64 << exp).min(600)
}

/// A message to deliver to every confirmed subscription of a topic (or,
/// for a confirmation, to one new subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// [`CONFIRMATION`] or [`NOTIFICATION`].
    pub kind: &'static str,
    pub topic_urn: String,
    /// 32 hex characters, the same for every subscription.
    pub message_id: String,
    /// Notifications only; never empty.
    pub subject: Option<String>,
    /// The text for `http` subscriptions (and for every subscription
    /// unless `https_message` is set).
    pub message: String,
    /// The text for `https` subscriptions when it differs
    /// (`message_structure` with its own `http` or `https` member).
    pub https_message: Option<String>,
    /// First-send time (µs); `timestamp` on the wire.
    pub created_us: i64,
    /// Given up after this (µs).
    pub expires_us: i64,
    /// Path and query of `subscribe_url` (confirmations; the node that
    /// sends it puts its `--public-url` in front).
    pub url_path: Option<String>,
}

/// A new message id.
pub fn message_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new confirmation token (64 hex characters).
pub fn confirmation_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Path and query of the `subscribe_url` of a confirmation: the SDK's
/// `subscribe_topic` route, so that a plain GET of the URL and the SDK
/// call both confirm.
pub fn subscribe_path(topic_urn: &str, endpoint: &str, token: &str) -> String {
    format!(
        "/v2/notifications/subscriptions/subscribe?topic_urn={}&endpoint={}&token={}",
        query_value(topic_urn),
        query_value(endpoint),
        query_value(token)
    )
}

/// Path and query of the `unsubscribe_url` of a notification to
/// subscription `urn` (with its token, so that knowing a URN is not
/// enough to cancel it).
pub fn unsubscribe_path(urn: &str, token: &str) -> String {
    format!(
        "/v2/notifications/subscriptions/unsubscribe?subscription_urn={}&token={}",
        query_value(urn),
        query_value(token)
    )
}

/// The invitation text of a confirmation.
pub fn confirmation_text(topic_urn: &str) -> String {
    format!(
        "You are invited to subscribe to topic: {topic_urn}. To confirm this subscription, please visit the subscribe_url included in this message. The subscribe_url is valid only within 48 hours."
    )
}

/// A confirmation for a new subscription of `topic_urn`.
pub fn confirmation(topic_urn: &str, endpoint: &str, token: &str, now_us: i64) -> OutMessage {
    OutMessage {
        kind: CONFIRMATION,
        topic_urn: topic_urn.to_string(),
        message_id: message_id(),
        subject: None,
        message: confirmation_text(topic_urn),
        https_message: None,
        created_us: now_us,
        expires_us: now_us + CONFIRMATION_TTL_S * 1_000_000,
        url_path: Some(subscribe_path(topic_urn, endpoint, token)),
    }
}

/// One message to one subscription, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The outbox row.
    pub id: String,
    pub project_id: String,
    pub subscription_urn: String,
    pub endpoint: String,
    pub topic_urn: String,
    pub kind: String,
    pub message_id: String,
    pub subject: Option<String>,
    pub message: String,
    /// `subscribe_url` (confirmations) or `unsubscribe_url`
    /// (notifications), without the node's public base URL.
    pub url_path: String,
    pub created_us: i64,
    pub expires_us: i64,
    /// Attempts made so far.
    pub attempts: i64,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub at_us: i64,
    pub duration_us: i64,
    /// The endpoint's HTTP status, when it answered.
    pub http_status: Option<i64>,
    /// Why it failed (none when delivered).
    pub error: Option<String>,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Try again at this time (µs).
    Retry(i64),
    /// Given up (attempts or time to live exhausted).
    Failed,
}

/// What follows failed attempt number `attempts` (1-based) at `now_us` of
/// a delivery that expires at `expires_us`.
pub fn after_failure(attempts: i64, now_us: i64, expires_us: i64) -> Outcome {
    let next = now_us + retry_delay_s(attempts) * 1_000_000;
    if attempts >= MAX_ATTEMPTS || next > expires_us {
        Outcome::Failed
    } else {
        Outcome::Retry(next)
    }
}

/// `POST .../topics/{topic_urn}/publish`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub message_structure: Option<String>,
    #[serde(default)]
    pub message_template_name: Option<String>,
    #[serde(default)]
    pub tags: Option<serde_json::Value>,
    #[serde(default)]
    pub time_to_live: Option<String>,
    #[serde(default)]
    pub message_attributes: Option<serde_json::Value>,
    #[serde(default)]
    pub locale: Option<String>,
}

/// What a publish body says: the text for `http` and for `https`
/// subscriptions, the subject, the time to live (s).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub http: String,
    pub https: String,
    pub subject: Option<String>,
    pub ttl_s: i64,
}

/// Reads a publish body: `message`, or `message_structure` (which wins
/// when both are given, as SMN documents), whose `http` and `https` members
/// are the texts for those protocols and `default` the text for a protocol
/// without its own. Templates and attributes are refused by name.
pub fn published(req: &Publish) -> Result<Published, DomainError> {
    if req.message_template_name.is_some() || req.tags.is_some() {
        return Err(bad(
            "message_template_name",
            "message templates are not supported by vpnmon (use message)",
        ));
    }
    if req.message_attributes.is_some() {
        return Err(bad(
            "message_attributes",
            "is not supported by vpnmon (there are no filter policies)",
        ));
    }
    if req.subject.as_ref().is_some_and(|s| s.len() > 512) {
        return Err(bad("subject", "must be at most 512 bytes"));
    }
    let ttl = match &req.time_to_live {
        None => PUBLISH_TTL_S,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_TTL_S).contains(n))
            .ok_or_else(|| {
                bad(
                    "time_to_live",
                    format!("{t:?} is not a number of seconds between 1 and {MAX_TTL_S}"),
                )
            })?,
    };
    let (http, https) = match (&req.message, &req.message_structure) {
        (_, Some(ms)) => {
            let v: serde_json::Value = serde_json::from_str(ms)
                .map_err(|_| bad("message_structure", "must be a JSON object in a string"))?;
            let pick = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let default = pick("default").ok_or_else(|| {
                bad(
                    "message_structure",
                    "must have a \"default\" member that is a string",
                )
            })?;
            (
                pick("http").unwrap_or_else(|| default.clone()),
                pick("https").unwrap_or(default),
            )
        }
        (Some(m), None) => (m.clone(), m.clone()),
        (None, None) => return Err(bad("message", "is required (or message_structure)")),
    };
    for text in [&http, &https] {
        if text.is_empty() {
            return Err(bad("message", "must not be empty"));
        }
        if text.len() > 256 * 1024 {
            return Err(bad("message", "must be at most 256 KB"));
        }
    }
    if req.locale.as_deref().is_some_and(|l| l.len() > 16) {
        return Err(bad("locale", "must be at most 16 characters"));
    }
    let subject = req.subject.clone().filter(|s| !s.is_empty());
    Ok(Published {
        http,
        https,
        subject,
        ttl_s: ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> ProjectId {
        ProjectId::parse("0123456789abcdef0123456789abcdef").expect("project id")
    }

    fn publish(v: serde_json::Value) -> Result<Published, DomainError> {
        published(&serde_json::from_value::<Publish>(v).expect("a publish body"))
    }

    #[test]
    fn message_structure_gives_each_protocol_its_member_or_the_default() {
        let texts = |v| publish(v).map(|p| (p.http, p.https)).expect("valid");
        assert_eq!(
            texts(
                serde_json::json!({"message_structure": "{\"default\": \"d\", \"https\": \"s\"}"})
            ),
            ("d".into(), "s".into())
        );
        assert_eq!(
            texts(
                serde_json::json!({"message_structure": "{\"default\": \"d\", \"http\": \"h\"}"})
            ),
            ("h".into(), "d".into())
        );
        assert_eq!(
            texts(serde_json::json!({"message_structure": "{\"default\": \"d\", \"sms\": \"x\"}"})),
            ("d".into(), "d".into())
        );
        // Both given: message_structure wins, as SMN documents.
        assert_eq!(
            texts(serde_json::json!({"message": "plain",
                "message_structure": "{\"default\": \"structured\"}"})),
            ("structured".into(), "structured".into())
        );
        assert_eq!(
            texts(serde_json::json!({"message": "plain"})),
            ("plain".into(), "plain".into())
        );
        assert!(publish(serde_json::json!({"message_structure": "{\"http\": \"h\"}"})).is_err());
        assert!(publish(serde_json::json!({"subject": "s"})).is_err());
        assert_eq!(
            publish(serde_json::json!({"message": "m", "time_to_live": "60"})).map(|p| p.ttl_s),
            Ok(60)
        );
    }

    #[test]
    fn a_topic_has_its_urn_id_and_times() {
        let now = chrono::DateTime::from_timestamp(1_720_604_624, 0).expect("time");
        let t = create(
            &CreateTopic {
                name: "ops".into(),
                display_name: "Ops".into(),
                enterprise_project_id: None,
            },
            "local-1",
            &p(),
            now,
        )
        .expect("valid");
        assert_eq!(
            t.topic_urn,
            "urn:smn:local-1:0123456789abcdef0123456789abcdef:ops"
        );
        assert_eq!(t.topic_id.len(), 32);
        assert_eq!(t.create_time, "2024-07-10T09:43:44Z");
        assert_eq!(t.enterprise_project_id, "0");
        assert_eq!(topic_name_of(&t.topic_urn, &p()), Some("ops".into()));
    }

    #[test]
    fn names_and_urns_are_checked() {
        for bad in ["", "-x", "a b", "é", &"a".repeat(256)] {
            assert!(topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(topic_name("a_b-1").is_ok());
        assert!(display_name(&"x".repeat(193)).is_err());
        let other = ProjectId::parse("ffffffffffffffffffffffffffffffff").expect("project id");
        let urn = topic_urn("r", &p(), "ops");
        assert_eq!(topic_name_of(&urn, &other), None);
        assert_eq!(topic_name_of("urn:smn:r:x", &p()), None);
        assert_eq!(topic_name_of("ops", &p()), None);
    }

    fn sub(protocol: &str, endpoint: &str) -> AddSubscription {
        AddSubscription {
            protocol: protocol.into(),
            endpoint: endpoint.into(),
            remark: None,
        }
    }

    #[test]
    fn http_endpoints_need_their_scheme_and_a_public_or_allowed_host() {
        let none: Vec<ipnet::IpNet> = Vec::new();
        let lo: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().expect("cidr")];
        assert!(subscription(&sub("http", "http://203.0.113.7:8080/hook"), &none).is_ok());
        assert!(subscription(&sub("https", "https://alerts.example.com/x"), &none).is_ok());
        for (p, e, field) in [
            ("email", "a@b.c", "protocol: "),
            ("http", "https://203.0.113.7/", "endpoint: "),
            ("http", "http://", "endpoint: "),
            ("http", "http://u@203.0.113.7/", "endpoint: "),
            (
                "http",
                "http://127.0.0.1:9/hook",
                "endpoint: 127.0.0.1 is a private",
            ),
            (
                "http",
                "http://localhost/hook",
                "endpoint: localhost is a private",
            ),
            (
                "http",
                "http://10.1.2.3/",
                "endpoint: 10.1.2.3 is a private",
            ),
            ("http", "http://[::1]:80/", "endpoint: ::1 is a private"),
            (
                "http",
                "http://169.254.1.1/",
                "endpoint: 169.254.1.1 is a private",
            ),
        ] {
            match subscription(&sub(p, e), &none) {
                Err(DomainError::Invalid(m)) => assert!(m.starts_with(field), "{e}: {m}"),
                other => panic!("{e}: {other:?}"),
            }
        }
        assert!(subscription(&sub("http", "http://127.0.0.1:9/hook"), &lo).is_ok());
        assert!(subscription(&sub("http", "http://10.1.2.3/"), &lo).is_err());
        // localhost is both loopbacks: ::1 is not in 127.0.0.0/8.
        assert!(subscription(&sub("http", "http://localhost/"), &lo).is_err());
    }

    #[test]
    fn subscription_urns_are_the_topics_and_32_hex() {
        let t = topic_urn("local-1", &p(), "ops");
        let s = new_subscription(&sub("http", "http://203.0.113.7/"), &t, &p());
        assert_eq!(s.status, UNCONFIRMED);
        assert!(s.subscription_urn.starts_with(&format!("{t}:")));
        let (name, id) = subscription_of(&s.subscription_urn, &p()).expect("parses");
        assert_eq!(name, "ops");
        assert_eq!(id.len(), 32);
        assert_eq!(subscription_of(&t, &p()), None);
    }
}
