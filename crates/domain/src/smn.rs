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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    pub display_name: String,
    #[serde(default)]
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
        && v
            .bytes()
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
    let eps = req.enterprise_project_id.clone().unwrap_or_else(|| "0".into());
    if eps.len() > 36 {
        return Err(bad("enterprise_project_id", "must be at most 36 characters"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> ProjectId {
        ProjectId::parse("0123456789abcdef0123456789abcdef").expect("project id")
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
}
