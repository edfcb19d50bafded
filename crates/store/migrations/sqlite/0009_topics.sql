-- SMN topics, the targets of alarm actions: one name per project, the wire
-- record in `body`.
CREATE TABLE smn_topics (project_id TEXT NOT NULL, name TEXT NOT NULL, created_us BIGINT NOT NULL,
                         body TEXT NOT NULL, PRIMARY KEY (project_id, name));

-- HTTP(S) subscriptions of a topic; one per (topic, protocol, endpoint).
CREATE TABLE smn_subscriptions (urn TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, topic TEXT NOT NULL,
                                created_us BIGINT NOT NULL, protocol TEXT NOT NULL, endpoint TEXT NOT NULL,
                                status BIGINT NOT NULL, body TEXT NOT NULL,
                                UNIQUE (project_id, topic, protocol, endpoint));
CREATE INDEX smn_subscriptions_project ON smn_subscriptions (project_id, created_us);
