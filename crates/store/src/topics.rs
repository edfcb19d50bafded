//! SMN topics (the targets of alarm actions), scoped by project and keyed
//! by name: creating a topic whose name exists returns the existing one, as
//! SMN does, decided by the primary key so that a race cannot make two.

use crate::Result;
use async_trait::async_trait;
use domain::ProjectId;
use domain::smn::Topic;

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
    /// Deletes a topic.
    async fn delete_topic(&self, p: &ProjectId, name: &str) -> Result<()>;
}
