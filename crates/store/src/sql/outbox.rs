//! The SQL of SMN delivery: confirmation, the outbox and its attempts.

use super::{SqlStore, get, internal, json, parse};
use crate::Result;
use crate::topics::{DeliveryView, OutboxCounts, OutboxStore};
use async_trait::async_trait;
use domain::smn::{self, Attempt, Delivery, OutMessage, Outcome, Subscription};
use domain::{DomainError, ProjectId};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// Row states.
pub(crate) const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";
const CANCELLED: &str = "cancelled";

/// Puts `msg` into the outbox for subscription `urn` at `endpoint`.
pub(crate) async fn enqueue_one(
    c: &mut AnyConnection,
    p: &ProjectId,
    urn: &str,
    endpoint: &str,
    url_path: &str,
    msg: &OutMessage,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO smn_deliveries (id, project_id, subscription_urn, endpoint, topic_urn, kind, \
         message_id, subject, message, url_path, created_us, expires_us, state, attempts, next_us, \
         lease_until_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, 0)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(p.as_str().to_string())
    .bind(urn.to_string())
    .bind(endpoint.to_string())
    .bind(msg.topic_urn.clone())
    .bind(msg.kind.to_string())
    .bind(msg.message_id.clone())
    .bind(msg.subject.clone())
    .bind(msg.message.clone())
    .bind(url_path.to_string())
    .bind(msg.created_us)
    .bind(msg.expires_us)
    .bind(PENDING)
    .bind(msg.created_us)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Puts notification `msg` into the outbox for every confirmed
/// subscription of topic `topic` of project `p`; how many.
pub(crate) async fn enqueue_topic(
    c: &mut AnyConnection,
    p: &ProjectId,
    topic: &str,
    msg: &OutMessage,
) -> Result<i64> {
    let rows = sqlx::query(
        "SELECT urn, protocol, endpoint, token FROM smn_subscriptions WHERE project_id = $1 \
         AND topic = $2 AND status = $3 ORDER BY created_us, urn",
    )
    .bind(p.as_str().to_string())
    .bind(topic.to_string())
    .bind(smn::CONFIRMED)
    .fetch_all(&mut *c)
    .await
    .map_err(internal)?;
    for r in &rows {
        let urn: String = get(r, "urn")?;
        let endpoint: String = get(r, "endpoint")?;
        let token: String = get(r, "token")?;
        let protocol: String = get(r, "protocol")?;
        let path = smn::unsubscribe_path(&urn, &token);
        match &msg.https_message {
            Some(text) if protocol == "https" => {
                let https = OutMessage {
                    message: text.clone(),
                    ..msg.clone()
                };
                enqueue_one(c, p, &urn, &endpoint, &path, &https).await?;
            }
            _ => enqueue_one(c, p, &urn, &endpoint, &path, msg).await?,
        }
    }
    Ok(rows.len() as i64)
}

/// Cancels what waits for subscription `urn`.
pub(crate) async fn cancel_pending(c: &mut AnyConnection, urn: &str, now_us: i64) -> Result<()> {
    sqlx::query(
        "UPDATE smn_deliveries SET state = $1, done_us = $2, last_error = $3 \
         WHERE subscription_urn = $4 AND state = $5",
    )
    .bind(CANCELLED)
    .bind(now_us)
    .bind("the subscription was deleted".to_string())
    .bind(urn.to_string())
    .bind(PENDING)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

fn delivery(r: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: get(r, "id")?,
        project_id: get(r, "project_id")?,
        subscription_urn: get(r, "subscription_urn")?,
        endpoint: get(r, "endpoint")?,
        topic_urn: get(r, "topic_urn")?,
        kind: get(r, "kind")?,
        message_id: get(r, "message_id")?,
        subject: get(r, "subject")?,
        message: get(r, "message")?,
        url_path: get(r, "url_path")?,
        created_us: get(r, "created_us")?,
        expires_us: get(r, "expires_us")?,
        attempts: get(r, "attempts")?,
    })
}

const COLUMNS: &str = "id, project_id, subscription_urn, endpoint, topic_urn, kind, message_id, \
                       subject, message, url_path, created_us, expires_us, attempts";

async fn set_status(c: &mut AnyConnection, urn: &str, body: &str, status: i64) -> Result<()> {
    sqlx::query("UPDATE smn_subscriptions SET status = $1, body = $2 WHERE urn = $3")
        .bind(status)
        .bind(body.to_string())
        .bind(urn.to_string())
        .execute(&mut *c)
        .await
        .map_err(internal)?;
    Ok(())
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn confirm_subscription(
        &self,
        topic_urn: &str,
        endpoint: &str,
        token: &str,
    ) -> Result<Subscription> {
        let Some((p, topic)) = smn::topic_parts(topic_urn) else {
            return Err(DomainError::NotFound);
        };
        if token.is_empty() {
            return Err(DomainError::NotFound);
        }
        let mut tx = self.write.begin().await.map_err(internal)?;
        let row = sqlx::query(
            "SELECT urn, body FROM smn_subscriptions WHERE project_id = $1 AND topic = $2 \
             AND endpoint = $3 AND token = $4",
        )
        .bind(p.as_str().to_string())
        .bind(topic)
        .bind(endpoint.to_string())
        .bind(token.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
        let urn: String = get(&row, "urn")?;
        let mut sub: Subscription = parse(&get::<String>(&row, "body")?)?;
        if sub.status != smn::CONFIRMED {
            sub.status = smn::CONFIRMED;
            set_status(&mut tx, &urn, &json(&sub)?, smn::CONFIRMED).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(sub)
    }

    async fn unsubscribe(&self, urn: &str, token: &str) -> Result<()> {
        if token.is_empty() {
            return Err(DomainError::NotFound);
        }
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM smn_subscriptions WHERE urn = $1 AND token = $2")
            .bind(urn.to_string())
            .bind(token.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        cancel_pending(&mut tx, urn, self.now_us()).await?;
        tx.commit().await.map_err(internal)
    }

    async fn publish(&self, p: &ProjectId, topic: &str, msg: &OutMessage) -> Result<i64> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let exists =
            sqlx::query("SELECT 1 AS x FROM smn_topics WHERE project_id = $1 AND name = $2")
                .bind(p.as_str().to_string())
                .bind(topic.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
        if exists.is_none() {
            return Err(DomainError::NotFound);
        }
        let n = enqueue_topic(&mut tx, p, topic, msg).await?;
        tx.commit().await.map_err(internal)?;
        Ok(n)
    }

    async fn claim_deliveries(
        &self,
        now_us: i64,
        lease_us: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        // The poll's common case is an empty outbox: one read on the reader
        // pool says so without taking the single SQLite writer each second.
        let due = sqlx::query(
            "SELECT 1 AS x FROM smn_deliveries WHERE state = $1 AND next_us <= $2 \
             AND lease_until_us <= $2 LIMIT 1",
        )
        .bind(PENDING)
        .bind(now_us)
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        // The conditions are repeated outside the sub-select: on PostgreSQL
        // a row that another node claimed meanwhile is re-checked against
        // them after its lock is released, and skipped.
        let sql = format!(
            "UPDATE smn_deliveries SET lease_until_us = $1 WHERE id IN (SELECT id FROM \
             smn_deliveries WHERE state = $2 AND next_us <= $3 AND lease_until_us <= $3 \
             ORDER BY next_us LIMIT $4) AND state = $2 AND lease_until_us <= $3 RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_us + lease_us)
            .bind(PENDING)
            .bind(now_us)
            .bind(limit)
            .fetch_all(&self.write)
            .await
            .map_err(internal)?;
        rows.iter().map(delivery).collect()
    }

    async fn finish_attempt(&self, d: &Delivery, a: &Attempt, outcome: Outcome) -> Result<()> {
        let n = d.attempts + 1;
        let mut tx = self.write.begin().await.map_err(internal)?;
        sqlx::query(
            "INSERT INTO smn_delivery_attempts (delivery_id, attempt, at_us, duration_us, \
             http_status, error) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(d.id.clone())
        .bind(n)
        .bind(a.at_us)
        .bind(a.duration_us)
        .bind(a.http_status)
        .bind(a.error.clone())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        let (state, next, done) = match outcome {
            Outcome::Delivered => (DELIVERED, a.at_us, Some(a.at_us + a.duration_us)),
            Outcome::Retry(next) => (PENDING, next, None),
            Outcome::Failed => (FAILED, a.at_us, Some(a.at_us + a.duration_us)),
        };
        sqlx::query(
            "UPDATE smn_deliveries SET state = $1, attempts = $2, next_us = $3, lease_until_us = 0, \
             done_us = $4, last_status = $5, last_error = $6 WHERE id = $7 AND state = $8",
        )
        .bind(state)
        .bind(n)
        .bind(next)
        .bind(done)
        .bind(a.http_status)
        .bind(a.error.clone())
        .bind(d.id.clone())
        .bind(PENDING)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn defer_delivery(&self, id: &str, next_us: i64) -> Result<()> {
        sqlx::query(
            "UPDATE smn_deliveries SET next_us = $1, lease_until_us = 0 WHERE id = $2 AND state = $3",
        )
        .bind(next_us)
        .bind(id.to_string())
        .bind(PENDING)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn release_delivery_leases(&self) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE smn_deliveries SET lease_until_us = 0 WHERE state = $1 AND lease_until_us > 0",
        )
        .bind(PENDING)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(r.rows_affected())
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM smn_deliveries WHERE state IN ($1, $2) GROUP BY state",
        )
        .bind(PENDING)
        .bind(FAILED)
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        let mut out = OutboxCounts::default();
        for r in &rows {
            let state: String = get(r, "state")?;
            let n: i64 = get(r, "n")?;
            if state == PENDING {
                out.pending = n;
            } else {
                out.failed = n;
            }
        }
        Ok(out)
    }

    async fn prune_deliveries(&self, before_us: i64) -> Result<u64> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        sqlx::query(
            "DELETE FROM smn_delivery_attempts WHERE delivery_id IN (SELECT id FROM smn_deliveries \
             WHERE state <> $1 AND done_us < $2)",
        )
        .bind(PENDING)
        .bind(before_us)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        let r = sqlx::query("DELETE FROM smn_deliveries WHERE state <> $1 AND done_us < $2")
            .bind(PENDING)
            .bind(before_us)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(r.rows_affected())
    }

    async fn list_deliveries(
        &self,
        p: &ProjectId,
        message_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryView>> {
        let mut sql = format!("SELECT {VIEW_COLUMNS} FROM smn_deliveries WHERE project_id = $1");
        if message_id.is_some() {
            sql.push_str(" AND message_id = $3");
        }
        sql.push_str(" ORDER BY created_us DESC, id LIMIT $2");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.as_str().to_string())
            .bind(limit);
        if let Some(m) = message_id {
            q = q.bind(m.to_string());
        }
        let rows = q.fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(view).collect()
    }

    async fn get_delivery(&self, p: &ProjectId, id: &str) -> Result<(DeliveryView, Vec<Attempt>)> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VIEW_COLUMNS} FROM smn_deliveries WHERE project_id = $1 AND id = $2"
        )))
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
        let rows = sqlx::query(
            "SELECT at_us, duration_us, http_status, error FROM smn_delivery_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id.to_string())
        .fetch_all(&mut *c)
        .await
        .map_err(internal)?;
        let attempts = rows
            .iter()
            .map(|r| {
                Ok(Attempt {
                    at_us: get(r, "at_us")?,
                    duration_us: get(r, "duration_us")?,
                    http_status: get(r, "http_status")?,
                    error: get(r, "error")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((view(&row)?, attempts))
    }
}

const VIEW_COLUMNS: &str = "id, message_id, kind, topic_urn, subscription_urn, endpoint, subject, \
                            state, attempts, last_status, last_error, created_us, next_us, done_us";

fn view(r: &AnyRow) -> Result<DeliveryView> {
    Ok(DeliveryView {
        id: get(r, "id")?,
        message_id: get(r, "message_id")?,
        kind: get(r, "kind")?,
        topic_urn: get(r, "topic_urn")?,
        subscription_urn: get(r, "subscription_urn")?,
        endpoint: get(r, "endpoint")?,
        subject: get(r, "subject")?,
        state: get(r, "state")?,
        attempts: get(r, "attempts")?,
        last_status: get(r, "last_status")?,
        last_error: get(r, "last_error")?,
        created_us: get(r, "created_us")?,
        next_us: get(r, "next_us")?,
        done_us: get(r, "done_us")?,
    })
}
