//! The SQL of SMN topics.

use super::{Q, SqlStore, get, internal, is_unique_violation, json, outbox, parse};
use crate::Result;
use crate::topics::TopicStore;
use async_trait::async_trait;
use domain::smn::{self, Subscription, Topic};
use domain::{DomainError, ProjectId};
use sqlx::AnyConnection;

async fn load(c: &mut AnyConnection, p: &ProjectId, name: &str) -> Result<Option<Topic>> {
    let row = sqlx::query("SELECT body FROM smn_topics WHERE project_id = $1 AND name = $2")
        .bind(p.as_str().to_string())
        .bind(name.to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?;
    row.map(|r| parse(&get::<String>(&r, "body")?)).transpose()
}

#[async_trait]
impl TopicStore for SqlStore {
    async fn create_topic(&self, p: &ProjectId, topic: &Topic) -> Result<(Topic, bool)> {
        let mut c = self.write.acquire().await.map_err(internal)?;
        if let Some(t) = load(&mut c, p, &topic.name).await? {
            return Ok((t, false));
        }
        let r = sqlx::query(
            "INSERT INTO smn_topics (project_id, name, created_us, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(p.as_str().to_string())
        .bind(topic.name.clone())
        .bind(self.now_us())
        .bind(json(topic)?)
        .execute(&mut *c)
        .await;
        match r {
            Ok(_) => Ok((topic.clone(), true)),
            // Created meanwhile: that one is the topic.
            Err(e) if is_unique_violation(&e) => load(&mut c, p, &topic.name)
                .await?
                .map(|t| (t, false))
                .ok_or_else(|| DomainError::internal("topic vanished after a unique violation")),
            Err(e) => Err(internal(e)),
        }
    }

    async fn get_topic(&self, p: &ProjectId, name: &str) -> Result<Topic> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load(&mut c, p, name).await?.ok_or(DomainError::NotFound)
    }

    async fn list_topics(
        &self,
        p: &ProjectId,
        name: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Topic>, i64)> {
        let mut q = Q::new(" FROM smn_topics WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(n) = name {
            let a = q.s(n);
            q.push(&format!(" AND name = {a}"));
        }
        self.body_page(q, "created_us DESC, name DESC", offset, limit)
            .await
    }

    async fn update_topic(&self, p: &ProjectId, name: &str, display_name: &str) -> Result<Topic> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut t = load(&mut tx, p, name).await?.ok_or(DomainError::NotFound)?;
        t.display_name = display_name.to_string();
        t.update_time = domain::smn::wire_time(domain::time::from_micros(self.now_us()));
        sqlx::query("UPDATE smn_topics SET body = $1 WHERE project_id = $2 AND name = $3")
            .bind(json(&t)?)
            .bind(p.as_str().to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(t)
    }

    async fn delete_topic(&self, p: &ProjectId, name: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM smn_topics WHERE project_id = $1 AND name = $2")
            .bind(p.as_str().to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        let subs =
            sqlx::query("SELECT urn FROM smn_subscriptions WHERE project_id = $1 AND topic = $2")
                .bind(p.as_str().to_string())
                .bind(name.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(internal)?;
        sqlx::query("DELETE FROM smn_subscriptions WHERE project_id = $1 AND topic = $2")
            .bind(p.as_str().to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        let now = self.now_us();
        for r in &subs {
            let urn: String = get(r, "urn")?;
            outbox::cancel_pending(&mut tx, &urn, now).await?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn add_subscription(
        &self,
        p: &ProjectId,
        topic: &str,
        sub: &Subscription,
        token: &str,
    ) -> Result<(Subscription, bool)> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        if load(&mut tx, p, topic).await?.is_none() {
            return Err(DomainError::NotFound);
        }
        let existing = sqlx::query(
            "SELECT body FROM smn_subscriptions WHERE project_id = $1 AND topic = $2 \
             AND protocol = $3 AND endpoint = $4",
        )
        .bind(p.as_str().to_string())
        .bind(topic.to_string())
        .bind(sub.protocol.clone())
        .bind(sub.endpoint.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(r) = existing {
            return Ok((parse(&get::<String>(&r, "body")?)?, false));
        }
        sqlx::query(
            "INSERT INTO smn_subscriptions (urn, project_id, topic, created_us, protocol, endpoint, \
             status, body, token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(sub.subscription_urn.clone())
        .bind(p.as_str().to_string())
        .bind(topic.to_string())
        .bind(self.now_us())
        .bind(sub.protocol.clone())
        .bind(sub.endpoint.clone())
        .bind(sub.status)
        .bind(json(sub)?)
        .bind(token.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        let now = self.now_us();
        let msg = smn::confirmation(&sub.topic_urn, &sub.endpoint, token, now);
        let path = msg.url_path.clone().unwrap_or_default();
        outbox::enqueue_one(
            &mut tx,
            p,
            &sub.subscription_urn,
            &sub.endpoint,
            &path,
            &msg,
        )
        .await?;
        tx.commit().await.map_err(internal)?;
        Ok((sub.clone(), true))
    }

    async fn list_subscriptions(
        &self,
        p: &ProjectId,
        topic: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Subscription>, i64)> {
        let mut q = Q::new(" FROM smn_subscriptions WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(t) = topic {
            let a = q.s(t);
            q.push(&format!(" AND topic = {a}"));
        }
        self.body_page(q, "created_us, urn", offset, limit).await
    }

    async fn cancel_subscription(&self, p: &ProjectId, urn: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM smn_subscriptions WHERE project_id = $1 AND urn = $2")
            .bind(p.as_str().to_string())
            .bind(urn.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        outbox::cancel_pending(&mut tx, urn, self.now_us()).await?;
        tx.commit().await.map_err(internal)
    }
}
