//! Identifiers. Project ids are 32 lowercase hex characters like IAM's;
//! resource ids are UUIDs (v4, as the real service's look random).

use std::fmt;

/// An IAM project id: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(String);

impl ProjectId {
    /// Parses a project id; `None` when it is not 32 hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(ProjectId(s.to_ascii_lowercase()))
        } else {
            None
        }
    }

    /// A new random project id.
    pub fn generate() -> Self {
        ProjectId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new random resource id (UUID v4, hyphenated).
pub fn new_resource_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new IAM-style id for users and domains (32 hex characters).
pub fn new_iam_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Parses a resource id given in a path or body; `None` when it is not a UUID.
/// The canonical (lowercase, hyphenated) form is returned.
pub fn parse_resource_id(s: &str) -> Option<String> {
    if s.len() != 36 {
        return None;
    }
    uuid::Uuid::parse_str(s).ok().map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_id_must_be_32_hex() {
        assert!(ProjectId::parse("0123456789abcdef0123456789abcdef").is_some());
        assert!(ProjectId::parse("0123456789abcdef0123456789abcde").is_none());
        assert!(ProjectId::parse("0123456789abcdef0123456789abcdeg").is_none());
        assert!(ProjectId::parse("{project_id}").is_none());
    }

    #[test]
    fn resource_id_is_hyphenated_uuid() {
        assert_eq!(
            parse_resource_id("CAE286F2-0000-4000-8000-E22416CA1220").as_deref(),
            Some("cae286f2-0000-4000-8000-e22416ca1220")
        );
        assert!(parse_resource_id("cae286f200004000800e22416ca1220").is_none());
        assert!(parse_resource_id("not-a-uuid").is_none());
    }
}
