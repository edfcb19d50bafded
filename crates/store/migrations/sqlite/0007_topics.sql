-- SMN topics, the targets of alarm actions: one name per project, the wire
-- record in `body`.
CREATE TABLE smn_topics (project_id TEXT NOT NULL, name TEXT NOT NULL, created_us BIGINT NOT NULL,
                         body TEXT NOT NULL, PRIMARY KEY (project_id, name));
