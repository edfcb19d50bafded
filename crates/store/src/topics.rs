//! SMN topics (the targets of alarm actions) and their HTTP(S)
//! subscriptions, scoped by project. Topics are keyed by name: creating a
//! topic whose name exists returns the existing one, as SMN does, decided
//! by the primary key so that a race cannot make two; likewise one
//! subscription per topic, protocol and endpoint. Deleting a topic deletes
//! its subscriptions.

use crate::Result;
use async_trait::async_trait;
use domain::ProjectId;
use domain::smn::{Subscription, Topic};

/// SMN topics.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Stores `topic`, or returns the topic of that name; `true` when new.
    async fn create_topic(&self, p: &ProjectId, topic: &Topic) -> Result<(Topic, bool)>;
    /// A topic by name.
    async fn get_topic(&self, p: &ProjectId, name: &str) -> Result<Topic>;
    /// Topics newest first, `limit` from `offset`, optionally of one exact
    /// name; and how many match.
    async fn list_topics(
        &self,
        p: &ProjectId,
        name: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Topic>, i64)>;
    /// Sets a topic's display name.
    async fn update_topic(&self, p: &ProjectId, name: &str, display_name: &str) -> Result<Topic>;
    /// Deletes a topic and its subscriptions.
    async fn delete_topic(&self, p: &ProjectId, name: &str) -> Result<()>;
    /// Adds a subscription to topic `topic` (which must exist), or returns
    /// the one with its protocol and endpoint; `true` when new.
    async fn add_subscription(
        &self,
        p: &ProjectId,
        topic: &str,
        sub: &Subscription,
    ) -> Result<(Subscription, bool)>;
    /// Subscriptions oldest first, of one topic or all, `limit` from
    /// `offset`; and how many match.
    async fn list_subscriptions(
        &self,
        p: &ProjectId,
        topic: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Subscription>, i64)>;
    /// Cancels (deletes) a subscription by URN.
    async fn cancel_subscription(&self, p: &ProjectId, urn: &str) -> Result<()>;
}
