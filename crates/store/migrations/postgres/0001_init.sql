-- vpnmon schema, PostgreSQL flavour (same tables as the SQLite one). Resources keep their wire record as JSON
-- in `body`, with the columns that queries filter, join or sort on beside it.
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);

CREATE TABLE domains (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE, created_us BIGINT NOT NULL);
CREATE TABLE projects (id TEXT PRIMARY KEY NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
                       name TEXT NOT NULL UNIQUE, created_us BIGINT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
                    name TEXT NOT NULL, password_hash TEXT NOT NULL, created_us BIGINT NOT NULL,
                    UNIQUE (domain_id, name));
CREATE TABLE role_assignments (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                               project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                               PRIMARY KEY (user_id, project_id));
CREATE TABLE tokens (digest TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL,
                     issued_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0);
CREATE INDEX tokens_expiry ON tokens (expires_us);
CREATE TABLE credentials (access TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                          sealed_secret TEXT NOT NULL, enabled BIGINT NOT NULL DEFAULT 1,
                          description TEXT NOT NULL DEFAULT '', created_us BIGINT NOT NULL);

CREATE TABLE eips (id TEXT PRIMARY KEY NOT NULL, address TEXT NOT NULL UNIQUE, seq BIGINT NOT NULL,
                   project_id TEXT, vgw_id TEXT, bound_us BIGINT);
CREATE INDEX eips_free ON eips (vgw_id, seq);

CREATE TABLE vpn_gateways (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, created_us BIGINT NOT NULL,
                           eps TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX vpn_gateways_project ON vpn_gateways (project_id, created_us);
CREATE TABLE customer_gateways (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, created_us BIGINT NOT NULL,
                                body TEXT NOT NULL);
CREATE INDEX customer_gateways_project ON customer_gateways (project_id, created_us);
CREATE TABLE vpn_connections (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, created_us BIGINT NOT NULL,
                              vgw_id TEXT NOT NULL REFERENCES vpn_gateways(id),
                              cgw_id TEXT NOT NULL REFERENCES customer_gateways(id),
                              vgw_ip TEXT NOT NULL, eps TEXT NOT NULL, tunnel_net BIGINT, body TEXT NOT NULL);
CREATE INDEX vpn_connections_project ON vpn_connections (project_id, created_us);
CREATE INDEX vpn_connections_vgw ON vpn_connections (vgw_id);
CREATE INDEX vpn_connections_cgw ON vpn_connections (cgw_id);
CREATE TABLE connection_monitors (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, created_us BIGINT NOT NULL,
                                  vpn_connection_id TEXT NOT NULL UNIQUE REFERENCES vpn_connections(id) ON DELETE CASCADE,
                                  status TEXT NOT NULL, body TEXT NOT NULL,
                                  link_up BIGINT, link_changed_us BIGINT, probe_note TEXT);
CREATE INDEX connection_monitors_project ON connection_monitors (project_id, created_us);

-- One row per monitor and probe window (raw datapoints, CES period=1).
CREATE TABLE monitor_points (monitor_id TEXT NOT NULL, project_id TEXT NOT NULL, window_start_ms BIGINT NOT NULL,
                             sent BIGINT NOT NULL, received BIGINT NOT NULL, loss_pct DOUBLE PRECISION NOT NULL,
                             rtt_min_ms DOUBLE PRECISION, rtt_avg_ms DOUBLE PRECISION, rtt_max_ms DOUBLE PRECISION, jitter_ms DOUBLE PRECISION,
                             PRIMARY KEY (monitor_id, window_start_ms));
CREATE INDEX monitor_points_time ON monitor_points (window_start_ms);
