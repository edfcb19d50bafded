-- SMN delivery. Each HTTP(S) subscription has a confirmation token (the
-- subscribe_url and unsubscribe_url carry it). The outbox holds one row per
-- message and subscription until it is delivered or given up, each attempt
-- recorded; a row is leased by the node that sends it.
ALTER TABLE smn_subscriptions ADD COLUMN token TEXT NOT NULL DEFAULT '';

CREATE TABLE smn_deliveries (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL,
                             subscription_urn TEXT NOT NULL, endpoint TEXT NOT NULL,
                             topic_urn TEXT NOT NULL, kind TEXT NOT NULL, message_id TEXT NOT NULL,
                             subject TEXT, message TEXT NOT NULL, url_path TEXT NOT NULL,
                             created_us BIGINT NOT NULL, expires_us BIGINT NOT NULL,
                             state TEXT NOT NULL, attempts BIGINT NOT NULL, next_us BIGINT NOT NULL,
                             lease_until_us BIGINT NOT NULL, done_us BIGINT, last_status BIGINT,
                             last_error TEXT);
CREATE INDEX smn_deliveries_due ON smn_deliveries (state, next_us);
CREATE INDEX smn_deliveries_project ON smn_deliveries (project_id, created_us);

CREATE TABLE smn_delivery_attempts (delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL,
                                    at_us BIGINT NOT NULL, duration_us BIGINT NOT NULL,
                                    http_status BIGINT, error TEXT,
                                    PRIMARY KEY (delivery_id, attempt));
