//! The SQL of domains, projects, users, tokens, credentials and `meta`.

use super::{Q, SqlStore, get, get_with, internal, is_unique_violation};
use crate::identity::{CredentialRecord, Domain, LoginLock, Project, TokenRecord, User};
use crate::{IdentityStore, Result};
use async_trait::async_trait;
use domain::error::Kind;
use domain::{DomainError, DomainId, ProjectId, UserId};
use sqlx::any::AnyRow;

#[async_trait]
impl IdentityStore for SqlStore {
    async fn has_users(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.read)
            .await
            .map_err(internal)?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    async fn create_domain(&self, name: &str) -> Result<Domain> {
        let d = Domain {
            id: DomainId::generate(),
            name: name.to_string(),
        };
        sqlx::query("INSERT INTO domains (id, name, created_us) VALUES ($1, $2, $3)")
            .bind(d.id.to_string())
            .bind(d.name.clone())
            .bind(self.now_us())
            .execute(&self.write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::already_exists(Kind::Domain, name)
                } else {
                    internal(e)
                }
            })?;
        Ok(d)
    }

    async fn find_domain(&self, name: &str) -> Result<Option<Domain>> {
        let row = sqlx::query("SELECT id, name FROM domains WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| {
            Ok(Domain {
                id: get_with(&r, "id", DomainId::parse)?,
                name: get(&r, "name")?,
            })
        })
        .transpose()
    }

    async fn get_domain(&self, id: &DomainId) -> Result<Option<Domain>> {
        let row = sqlx::query("SELECT id, name FROM domains WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| {
            Ok(Domain {
                id: get_with(&r, "id", DomainId::parse)?,
                name: get(&r, "name")?,
            })
        })
        .transpose()
    }

    async fn create_project(&self, domain_id: &DomainId, name: &str) -> Result<Project> {
        let p = Project {
            id: ProjectId::generate(),
            domain_id: domain_id.clone(),
            name: name.to_string(),
        };
        // Projects list in creation order: a project created in the same
        // microsecond as the last (or under a clock that stands still) comes
        // after it all the same.
        sqlx::query(
            "INSERT INTO projects (id, domain_id, name, created_us) SELECT $1, $2, $3, \
             CASE WHEN COALESCE(MAX(created_us), 0) >= $4 THEN MAX(created_us) + 1 ELSE $4 END FROM projects",
        )
        .bind(p.id.to_string())
        .bind(p.domain_id.to_string())
        .bind(p.name.clone())
        .bind(self.now_us())
        .execute(&self.write)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                DomainError::already_exists(Kind::Project, name)
            } else {
                internal(e)
            }
        })?;
        Ok(p)
    }

    async fn find_project(&self, name: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, domain_id, name FROM projects WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| project_from_row(&r)).transpose()
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, domain_id, name FROM projects WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| project_from_row(&r)).transpose()
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, domain_id, name FROM projects ORDER BY created_us")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn create_user(
        &self,
        domain_id: &DomainId,
        name: &str,
        password_hash: &str,
    ) -> Result<User> {
        let u = User {
            id: UserId::generate(),
            domain_id: domain_id.clone(),
            name: name.to_string(),
            password_hash: password_hash.to_string(),
        };
        sqlx::query("INSERT INTO users (id, domain_id, name, password_hash, created_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(u.id.to_string())
            .bind(u.domain_id.to_string())
            .bind(u.name.clone())
            .bind(u.password_hash.clone())
            .bind(self.now_us())
            .execute(&self.write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::already_exists(Kind::User, name)
                } else {
                    internal(e)
                }
            })?;
        Ok(u)
    }

    async fn find_user(&self, domain_id: &DomainId, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE domain_id = $1 AND name = $2")
            .bind(domain_id.to_string())
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    async fn find_user_any_domain(&self, name: &str) -> Result<Option<User>> {
        let rows =
            sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE name = $1")
                .bind(name.to_string())
                .fetch_all(&self.read)
                .await
                .map_err(internal)?;
        if rows.len() > 1 {
            return Err(DomainError::ambiguous_user(name));
        }
        rows.first().map(user_from_row).transpose()
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    async fn grant(&self, user_id: &UserId, project_id: &ProjectId) -> Result<()> {
        let r = sqlx::query("INSERT INTO role_assignments (user_id, project_id) VALUES ($1, $2)")
            .bind(user_id.to_string())
            .bind(project_id.to_string())
            .execute(&self.write)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(internal(e)),
        }
    }

    async fn user_projects(&self, user_id: &UserId) -> Result<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT p.id, p.domain_id, p.name FROM projects p JOIN role_assignments r ON r.project_id = p.id \
             WHERE r.user_id = $1 ORDER BY p.created_us",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (digest, user_id, project_id, issued_us, expires_us, revoked) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.digest.clone())
        .bind(t.user_id.to_string())
        .bind(t.project_id.to_string())
        .bind(t.issued_us)
        .bind(t.expires_us)
        .bind(i64::from(t.revoked))
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT digest, user_id, project_id, issued_us, expires_us, revoked FROM tokens WHERE digest = $1",
        )
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        row.map(|r| {
            Ok(TokenRecord {
                digest: get(&r, "digest")?,
                user_id: get_with(&r, "user_id", UserId::parse)?,
                project_id: get_with(&r, "project_id", ProjectId::parse)?,
                issued_us: get(&r, "issued_us")?,
                expires_us: get(&r, "expires_us")?,
                revoked: get::<i64>(&r, "revoked")? != 0,
            })
        })
        .transpose()
    }

    async fn get_login_lock(&self, user_id: &UserId) -> Result<Option<LoginLock>> {
        let row = sqlx::query(
            "SELECT failures, since_us, locked_until_us FROM login_locks WHERE user_id = $1",
        )
        .bind(user_id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        row.map(|r| {
            let failures: i64 = get(&r, "failures")?;
            Ok(LoginLock {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                since_us: get(&r, "since_us")?,
                locked_until_us: get(&r, "locked_until_us")?,
            })
        })
        .transpose()
    }

    async fn put_login_lock(&self, user_id: &UserId, lock: &LoginLock) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_locks (user_id, failures, since_us, locked_until_us) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             failures = excluded.failures, since_us = excluded.since_us, \
             locked_until_us = excluded.locked_until_us",
        )
        .bind(user_id.to_string())
        .bind(i64::from(lock.failures))
        .bind(lock.since_us)
        .bind(lock.locked_until_us)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn clear_login_lock(&self, user_id: &UserId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM login_locks WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_token(&self, digest: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE tokens SET revoked = 1 WHERE digest = $1")
            .bind(digest.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO credentials (access, user_id, sealed_secret, enabled, description, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.access.clone())
        .bind(c.user_id.to_string())
        .bind(c.sealed_secret.clone())
        .bind(i64::from(c.enabled))
        .bind(c.description.clone())
        .bind(c.created_us)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn get_credential(&self, access: &str) -> Result<Option<CredentialRecord>> {
        let row = sqlx::query(
            "SELECT access, user_id, sealed_secret, enabled, description, created_us FROM credentials WHERE access = $1",
        )
        .bind(access.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        row.map(|r| credential_from_row(&r)).transpose()
    }

    async fn list_credentials(&self, user_id: Option<&UserId>) -> Result<Vec<CredentialRecord>> {
        let mut q = Q::new(
            "SELECT access, user_id, sealed_secret, enabled, description, created_us FROM credentials",
        );
        if let Some(u) = user_id {
            let a = q.s(u.as_str());
            q.push(" WHERE user_id = ").push(&a);
        }
        q.push(" ORDER BY created_us");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn set_credential_enabled(&self, access: &str, enabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE credentials SET enabled = $1 WHERE access = $2")
            .bind(i64::from(enabled))
            .bind(access.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_credential(&self, access: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM credentials WHERE access = $1")
            .bind(access.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        // Insert-if-absent, then read: two processes starting at once on one
        // PostgreSQL both find the key missing, and a plain INSERT would fail
        // the second. `ON CONFLICT DO NOTHING` waits for the first to commit
        // and leaves its value, which the SELECT (a new snapshot) then reads.
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key.to_string())
            .bind(value.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key.to_string())
            .fetch_one(&self.write)
            .await
            .map_err(internal)?;
        get::<String>(&row, "value")
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key.to_string())
            .fetch_optional(&self.write)
            .await
            .map_err(internal)?;
        row.map(|r| get::<String>(&r, "value")).transpose()
    }

    async fn meta_delete(&self, key: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }
}

fn project_from_row(r: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: get_with(r, "id", ProjectId::parse)?,
        domain_id: get_with(r, "domain_id", DomainId::parse)?,
        name: get(r, "name")?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: get_with(r, "id", UserId::parse)?,
        domain_id: get_with(r, "domain_id", DomainId::parse)?,
        name: get(r, "name")?,
        password_hash: get(r, "password_hash")?,
    })
}

fn credential_from_row(r: &AnyRow) -> Result<CredentialRecord> {
    Ok(CredentialRecord {
        access: get(r, "access")?,
        user_id: get_with(r, "user_id", UserId::parse)?,
        sealed_secret: get(r, "sealed_secret")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        description: get(r, "description")?,
        created_us: get(r, "created_us")?,
    })
}
