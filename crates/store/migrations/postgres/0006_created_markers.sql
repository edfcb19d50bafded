-- The last `created_us` handed out per project and resource table. A create
-- advances its row with one atomic upsert inside its transaction, so two
-- creates on different nodes (PostgreSQL runs them in parallel) can never
-- take the same marker: the second waits for the row lock of the first and
-- then sees its value. Seeded from the rows already stored.
CREATE TABLE created_markers (project_id TEXT NOT NULL, tbl TEXT NOT NULL, last_us BIGINT NOT NULL,
                              PRIMARY KEY (project_id, tbl));
INSERT INTO created_markers (project_id, tbl, last_us)
    SELECT project_id, 'vpn_gateways', MAX(created_us) FROM vpn_gateways GROUP BY project_id;
INSERT INTO created_markers (project_id, tbl, last_us)
    SELECT project_id, 'customer_gateways', MAX(created_us) FROM customer_gateways GROUP BY project_id;
INSERT INTO created_markers (project_id, tbl, last_us)
    SELECT project_id, 'vpn_connections', MAX(created_us) FROM vpn_connections GROUP BY project_id;
INSERT INTO created_markers (project_id, tbl, last_us)
    SELECT project_id, 'connection_monitors', MAX(created_us) FROM connection_monitors GROUP BY project_id;
