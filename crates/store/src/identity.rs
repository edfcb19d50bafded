//! IAM records: domains, projects, users, tokens and AK/SK credentials.

/// A domain (account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: String,
    pub name: String,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub domain_id: String,
    pub name: String,
}

/// A user; `password_hash` is an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub password_hash: String,
}

/// An issued token, kept only by the digest of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: String,
    pub user_id: String,
    pub project_id: String,
    pub issued_us: i64,
    pub expires_us: i64,
    pub revoked: bool,
}

/// An AK/SK credential; the SK is sealed with the store's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    pub access: String,
    pub user_id: String,
    pub sealed_secret: String,
    pub enabled: bool,
    pub description: String,
    pub created_us: i64,
}
