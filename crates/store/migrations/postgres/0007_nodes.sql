-- Node membership: one row per running `vpnmon serve` process. A node is
-- live while `expires_us` (on the database's clock) is in the future; it
-- renews every ~2 s, and only while the lease is still valid. Times are
-- microseconds since the epoch; `addresses` is a JSON array of the source
-- addresses the node can send from; `monitors` how many it probes.
CREATE TABLE nodes (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL,
                    started_us BIGINT NOT NULL, heartbeat_us BIGINT NOT NULL, expires_us BIGINT NOT NULL,
                    addresses TEXT NOT NULL DEFAULT '[]', monitors BIGINT NOT NULL DEFAULT 0);
CREATE INDEX nodes_expires ON nodes (expires_us);
