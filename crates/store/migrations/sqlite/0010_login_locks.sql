-- Login protection: a user's failed password logins in the current window
-- and the time a lock ends (both 0 when none), shared by every node.
CREATE TABLE login_locks (user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                          failures BIGINT NOT NULL, since_us BIGINT NOT NULL,
                          locked_until_us BIGINT NOT NULL);
