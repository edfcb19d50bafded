//! IAM records: domains, projects, users, tokens and AK/SK credentials.

use domain::{DomainId, ProjectId, UserId};

/// A domain (account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: DomainId,
    pub name: String,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub domain_id: DomainId,
    pub name: String,
}

/// A user; `password_hash` is an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub domain_id: DomainId,
    pub name: String,
    pub password_hash: String,
}

/// A user's failed password logins (in the window that began at
/// `since_us`) and the end of its lock (0: not locked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginLock {
    pub failures: u32,
    pub since_us: i64,
    pub locked_until_us: i64,
}

/// An issued token, kept only by the digest of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: String,
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub issued_us: i64,
    pub expires_us: i64,
    pub revoked: bool,
}

/// An AK/SK credential; the SK is sealed with the store's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    pub access: String,
    pub user_id: UserId,
    pub sealed_secret: String,
    pub enabled: bool,
    pub description: String,
    pub created_us: i64,
}
