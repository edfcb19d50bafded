//! The SQL of the EIP pool and the VPN v5 resources.

use super::buckets;
use super::{
    Backend, Q, SqlStore, clone_args, get, internal, is_unique_violation, json, next_created_us,
    page_limit, parse, push_in, render_created,
};
use crate::resources::{ConnectionFilter, Listed, Page, PoolEntry};
use crate::{ResourceStore, Result};
use async_trait::async_trait;
use domain::connection::{self, CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CustomerGateway, UpdateCgw};
use domain::eip::{Eip, EipRequest, bind_error};
use domain::error::Kind;
use domain::gateway::{GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::{self, ConnectionMonitor};
use domain::{ConnectionId, CustomerGatewayId, DomainError, GatewayId, MonitorId, ProjectId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// Inserts a customer gateway's row (the API and the bulk path share it).
pub(crate) async fn insert_cgw_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    cgw: &CustomerGateway,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customer_gateways (id, project_id, created_us, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(cgw.id.to_string())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(json(cgw)?)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Inserts a connection's row with its filter and tunnel columns.
pub(crate) async fn insert_connection_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    conn: &VpnConnection,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO vpn_connections (id, project_id, created_us, vgw_id, cgw_id, vgw_ip, eps, tunnel_net, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(conn.id.to_string())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(conn.vgw_id.to_string())
    .bind(conn.cgw_id.to_string())
    .bind(conn.vgw_ip.clone())
    .bind(conn.enterprise_project_id.clone())
    .bind(connection::tunnel_network(conn).map(i64::from))
    .bind(json(conn)?)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Inserts a monitor's row; a second monitor for the connection is
/// [`DomainError::MonitorExists`] (the unique index decides under concurrency).
pub(crate) async fn insert_monitor_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    m: &ConnectionMonitor,
) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO connection_monitors (id, project_id, created_us, vpn_connection_id, status, body) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(m.id.to_string())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(m.vpn_connection_id.to_string())
    .bind(m.status.clone())
    .bind(json(m)?)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(DomainError::MonitorExists(m.vpn_connection_id));
        }
        Err(e) => return Err(internal(e)),
    }
    // The rules' evaluation cache learns of every new monitor: a rule of
    // its connection may exist, or be committing concurrently (on
    // PostgreSQL the version row's lock orders the two).
    super::alarms::touch_version(c).await
}

pub(crate) async fn load_gateway(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &GatewayId,
) -> Result<VpnGateway> {
    let row = sqlx::query(
        "SELECT g.body, (SELECT COUNT(*) FROM vpn_connections c WHERE c.vgw_id = g.id) AS used \
         FROM vpn_gateways g WHERE g.project_id = $1 AND g.id = $2",
    )
    .bind(p.as_str().to_string())
    .bind(id.to_string())
    .fetch_optional(&mut *c)
    .await
    .map_err(internal)?
    .ok_or(DomainError::NotFound)?;
    gateway_from_row(&row)
}

fn gateway_from_row(row: &AnyRow) -> Result<VpnGateway> {
    let mut g: VpnGateway = parse(&get::<String>(row, "body")?)?;
    g.used_connection_number = get::<i64>(row, "used")?;
    g.used_connection_group = g.used_connection_number.min(1);
    Ok(g)
}

async fn load_cgw(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &CustomerGatewayId,
) -> Result<CustomerGateway> {
    let row = sqlx::query("SELECT body FROM customer_gateways WHERE project_id = $1 AND id = $2")
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
    parse(&get::<String>(&row, "body")?)
}

const CONN_SELECT: &str = "SELECT c.body, c.created_us, m.id AS monitor_id FROM vpn_connections c \
     LEFT JOIN connection_monitors m ON m.vpn_connection_id = c.id ";

fn connection_from_row(row: &AnyRow) -> Result<VpnConnection> {
    let mut conn: VpnConnection = parse(&get::<String>(row, "body")?)?;
    conn.connection_monitor_id = get::<Option<String>>(row, "monitor_id")?
        .map(|s| {
            MonitorId::parse(&s)
                .ok_or_else(|| DomainError::Internal(format!("stored monitor id {s:?}")))
        })
        .transpose()?;
    Ok(conn)
}

async fn load_connection(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &ConnectionId,
) -> Result<VpnConnection> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{CONN_SELECT} WHERE c.project_id = $1 AND c.id = $2"
    )))
    .bind(p.as_str().to_string())
    .bind(id.to_string())
    .fetch_optional(&mut *c)
    .await
    .map_err(internal)?
    .ok_or(DomainError::NotFound)?;
    connection_from_row(&row)
}

pub(crate) async fn used_tunnels(
    c: &mut AnyConnection,
    vgw_id: &GatewayId,
) -> Result<HashSet<u32>> {
    let rows = sqlx::query(
        "SELECT tunnel_net FROM vpn_connections WHERE vgw_id = $1 AND tunnel_net IS NOT NULL",
    )
    .bind(vgw_id.to_string())
    .fetch_all(&mut *c)
    .await
    .map_err(internal)?;
    rows.iter()
        .map(|r| get::<i64>(r, "tunnel_net").map(|v| v as u32))
        .collect()
}

pub(crate) fn monitor_from_row(row: &AnyRow) -> Result<ConnectionMonitor> {
    let mut m: ConnectionMonitor = parse(&get::<String>(row, "body")?)?;
    m.status = get::<String>(row, "status")?;
    Ok(m)
}

/// Binds an EIP of the pool to gateway `vgw_id` of project `p`.
async fn bind_eip(
    c: &mut AnyConnection,
    backend: Backend,
    p: &ProjectId,
    vgw_id: &GatewayId,
    field: &str,
    req: &EipRequest,
    now: i64,
) -> Result<Eip> {
    if let Some(id) = &req.id {
        let row = sqlx::query(
            "UPDATE eips SET project_id = $1, vgw_id = $2, bound_us = $3 \
             WHERE id = $4 AND vgw_id IS NULL AND (project_id IS NULL OR project_id = $1) RETURNING address",
        )
        .bind(p.as_str().to_string())
        .bind(vgw_id.to_string())
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?;
        return match row {
            Some(r) => Ok(Eip::bound(id, &get::<String>(&r, "address")?, req)),
            None => {
                let exists = sqlx::query("SELECT vgw_id, project_id FROM eips WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(internal)?;
                match exists {
                    Some(r)
                        if get::<Option<String>>(&r, "project_id")?.as_deref()
                            == Some(p.as_str()) =>
                    {
                        Err(bind_error::already_bound(field, id))
                    }
                    _ => Err(bind_error::not_in_pool(field, id)),
                }
            }
        };
    }
    // Allocate the first free entry. PostgreSQL runs creates in parallel:
    // without SKIP LOCKED every concurrent create would pick the same entry,
    // wait for the transaction binding it and then find it taken, and after
    // a few rounds of that report a pool with free entries as exhausted.
    // Skipping entries another transaction is binding never waits. SQLite
    // has one writer (and no such clause). The guarded UPDATE still loses if
    // an entry was bound after the statement's snapshot, so retry a little.
    let skip_locked = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let allocate = format!(
        "UPDATE eips SET project_id = $1, vgw_id = $2, bound_us = $3 \
         WHERE id = (SELECT id FROM eips WHERE vgw_id IS NULL AND (project_id IS NULL OR project_id = $1) \
                     ORDER BY seq LIMIT 1{skip_locked}) AND vgw_id IS NULL RETURNING id, address"
    );
    for _ in 0..5 {
        let row = sqlx::query(AssertSqlSafe(allocate.clone()))
            .bind(p.as_str().to_string())
            .bind(vgw_id.to_string())
            .bind(now)
            .fetch_optional(&mut *c)
            .await
            .map_err(internal)?;
        if let Some(r) = row {
            return Ok(Eip::bound(
                &get::<String>(&r, "id")?,
                &get::<String>(&r, "address")?,
                req,
            ));
        }
        let free = sqlx::query("SELECT COUNT(*) AS n FROM eips WHERE vgw_id IS NULL AND (project_id IS NULL OR project_id = $1)")
            .bind(p.as_str().to_string())
            .fetch_one(&mut *c)
            .await
            .map_err(internal)?;
        if get::<i64>(&free, "n")? == 0 {
            break;
        }
    }
    Err(bind_error::exhausted(field))
}

async fn release_eip(c: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("UPDATE eips SET vgw_id = NULL, project_id = NULL, bound_us = NULL WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await
        .map_err(internal)?;
    Ok(())
}

impl SqlStore {
    /// One page of `table`'s rows matching `where_` (a `WHERE ...` clause),
    /// in creation order after the page's marker, at most `max`, with the
    /// total over all pages; `columns` must include `created_us`.
    async fn created_page<T>(
        &self,
        table: &str,
        columns: &str,
        where_: Q,
        page: &Page,
        max: i64,
        item: impl Fn(&AnyRow) -> Result<T>,
    ) -> Result<Listed<T>> {
        let count = Q {
            sql: format!("SELECT COUNT(*) AS n FROM {table}{}", where_.sql),
            args: clone_args(&where_.args),
        };
        let total: i64 = get(
            &count
                .build()
                .fetch_one(&self.read)
                .await
                .map_err(internal)?,
            "n",
        )?;
        let mut q = Q {
            sql: format!("SELECT {columns} FROM {table}{}", where_.sql),
            args: where_.args,
        };
        if let Some(m) = page.marker_us {
            let a = q.i(m);
            q.push(" AND created_us > ").push(&a);
        }
        let lim = q.i(page_limit(page, max));
        q.push(" ORDER BY created_us, id LIMIT ").push(&lim);
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            items.push(item(r)?);
            last = Some(get::<i64>(r, "created_us")?);
        }
        Ok(Listed {
            items,
            total,
            next_marker: last.map(render_created),
        })
    }
}

#[async_trait]
impl ResourceStore for SqlStore {
    async fn add_pool(&self, entries: &[(String, String)]) -> Result<usize> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM eips")
            .fetch_one(&mut *tx)
            .await
            .map_err(internal)?;
        let mut seq: i64 = get(&row, "m")?;
        let mut added = 0;
        for (id, addr) in entries {
            seq += 1;
            let r = sqlx::query(
                "INSERT INTO eips (id, address, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(addr.clone())
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
            added += r.rows_affected() as usize;
        }
        tx.commit().await.map_err(internal)?;
        Ok(added)
    }

    async fn list_pool(&self) -> Result<Vec<PoolEntry>> {
        let rows = sqlx::query("SELECT id, address, project_id, vgw_id FROM eips ORDER BY seq")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter()
            .map(|r| {
                Ok(PoolEntry {
                    id: get(r, "id")?,
                    address: get(r, "address")?,
                    project_id: get(r, "project_id")?,
                    vgw_id: get(r, "vgw_id")?,
                })
            })
            .collect()
    }

    async fn create_gateway(&self, p: &ProjectId, plan: GatewayPlan) -> Result<VpnGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut g = plan.gateway;
        let now = self.now_us();
        let created = next_created_us(&mut tx, "vpn_gateways", p, now).await?;
        let ms = render_created(created);
        g.created_at.clone_from(&ms);
        g.updated_at = ms;
        for (i, req) in plan.eips.iter().enumerate() {
            let field = if i == 0 {
                "vpn_gateway.eip1"
            } else {
                "vpn_gateway.eip2"
            };
            let eip = bind_eip(&mut tx, self.backend, p, &g.id, field, req, now).await?;
            if i == 0 {
                g.eip1 = Some(eip);
            } else {
                g.eip2 = Some(eip);
            }
        }
        sqlx::query("INSERT INTO vpn_gateways (id, project_id, created_us, eps, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(g.id.to_string())
            .bind(p.as_str().to_string())
            .bind(created)
            .bind(g.enterprise_project_id.clone())
            .bind(json(&g)?)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(g)
    }

    async fn get_gateway(&self, p: &ProjectId, id: &GatewayId) -> Result<VpnGateway> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_gateway(&mut c, p, id).await
    }

    async fn list_gateways(
        &self,
        p: &ProjectId,
        id: Option<&GatewayId>,
        eps: &[String],
    ) -> Result<Vec<VpnGateway>> {
        let mut q = Q::new(
            "SELECT g.body, (SELECT COUNT(*) FROM vpn_connections c WHERE c.vgw_id = g.id) AS used \
             FROM vpn_gateways g WHERE g.project_id = ",
        );
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(id) = id {
            let a = q.s(&id.to_string());
            q.push(" AND g.id = ").push(&a);
        }
        push_in(&mut q, "g.eps", eps);
        q.push(" ORDER BY g.created_us, g.id");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(gateway_from_row).collect()
    }

    async fn update_gateway(
        &self,
        p: &ProjectId,
        id: &GatewayId,
        req: &UpdateVgw,
    ) -> Result<VpnGateway> {
        let now = self.now_us();
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut g = load_gateway(&mut tx, p, id).await?;
        g.apply_update(req, &self.now_wire())?;
        for (slot, want) in g.eip_rebinds(req)? {
            if let Some(old) = g.eip(slot).cloned() {
                let used = sqlx::query(
                    "SELECT id FROM vpn_connections WHERE vgw_id = $1 AND vgw_ip = $2 LIMIT 1",
                )
                .bind(g.id.to_string())
                .bind(old.id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
                if let Some(r) = used {
                    return Err(VpnGateway::eip_in_use(
                        slot,
                        &old.id,
                        &get::<String>(&r, "id")?,
                    ));
                }
                release_eip(&mut tx, &old.id).await?;
            }
            let req = EipRequest {
                id: Some(want),
                ..Default::default()
            };
            let field = format!("vpn_gateway.eip_id_{slot}");
            let eip = bind_eip(&mut tx, self.backend, p, &g.id, &field, &req, now).await?;
            g.set_eip(slot, eip);
        }
        sqlx::query("UPDATE vpn_gateways SET body = $1 WHERE project_id = $2 AND id = $3")
            .bind(json(&g)?)
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(g)
    }

    async fn delete_gateway(&self, p: &ProjectId, id: &GatewayId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_gateway(&mut tx, p, id).await?;
        let used = sqlx::query(
            "SELECT id FROM vpn_connections WHERE vgw_id = $1 ORDER BY created_us LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(r) = used {
            return Err(DomainError::in_use(
                Kind::VpnGateway,
                id,
                &get::<String>(&r, "id")?,
            ));
        }
        sqlx::query("DELETE FROM vpn_gateways WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        sqlx::query(
            "UPDATE eips SET vgw_id = NULL, project_id = NULL, bound_us = NULL WHERE vgw_id = $1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    async fn create_cgw(&self, p: &ProjectId, cgw: &CustomerGateway) -> Result<CustomerGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut cgw = cgw.clone();
        let created = next_created_us(&mut tx, "customer_gateways", p, self.now_us()).await?;
        let ms = render_created(created);
        cgw.created_at.clone_from(&ms);
        cgw.updated_at = ms;
        insert_cgw_row(&mut tx, p, created, &cgw).await?;
        tx.commit().await.map_err(internal)?;
        Ok(cgw)
    }

    async fn get_cgw(&self, p: &ProjectId, id: &CustomerGatewayId) -> Result<CustomerGateway> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_cgw(&mut c, p, id).await
    }

    async fn list_cgws(
        &self,
        p: &ProjectId,
        id: Option<&CustomerGatewayId>,
        page: Page,
    ) -> Result<Listed<CustomerGateway>> {
        let mut where_ = Q::new(" WHERE project_id = ");
        let a = where_.s(p.as_str());
        where_.push(&a);
        if let Some(id) = id {
            let a = where_.s(&id.to_string());
            where_.push(" AND id = ").push(&a);
        }
        self.created_page(
            "customer_gateways",
            "body, created_us",
            where_,
            &page,
            200,
            |r| parse::<CustomerGateway>(&get::<String>(r, "body")?),
        )
        .await
    }

    async fn update_cgw(
        &self,
        p: &ProjectId,
        id: &CustomerGatewayId,
        req: &UpdateCgw,
    ) -> Result<CustomerGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut cgw = load_cgw(&mut tx, p, id).await?;
        cgw.apply_update(req, &self.now_wire())?;
        sqlx::query("UPDATE customer_gateways SET body = $1 WHERE project_id = $2 AND id = $3")
            .bind(json(&cgw)?)
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(cgw)
    }

    async fn delete_cgw(&self, p: &ProjectId, id: &CustomerGatewayId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_cgw(&mut tx, p, id).await?;
        let used = sqlx::query(
            "SELECT id FROM vpn_connections WHERE cgw_id = $1 ORDER BY created_us LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(r) = used {
            return Err(DomainError::in_use(
                Kind::CustomerGateway,
                id,
                &get::<String>(&r, "id")?,
            ));
        }
        sqlx::query("DELETE FROM customer_gateways WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    async fn create_connection(
        &self,
        p: &ProjectId,
        req: CreateConnection,
        id: ConnectionId,
    ) -> Result<VpnConnection> {
        let (vgw_id, cgw_id) = connection::create_refs(&req)?;
        let mut tx = self.write.begin().await.map_err(internal)?;
        let gw = load_gateway(&mut tx, p, &vgw_id).await?;
        let cgw = load_cgw(&mut tx, p, &cgw_id).await?;
        let used = used_tunnels(&mut tx, &vgw_id).await?;
        let created = next_created_us(&mut tx, "vpn_connections", p, self.now_us()).await?;
        let ms = render_created(created);
        let conn = connection::create(req, id, &ms, &gw, &cgw, &used)?;
        insert_connection_row(&mut tx, p, created, &conn).await?;
        tx.commit().await.map_err(internal)?;
        Ok(conn)
    }

    async fn get_connection(&self, p: &ProjectId, id: &ConnectionId) -> Result<VpnConnection> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_connection(&mut c, p, id).await
    }

    async fn list_connections(
        &self,
        p: &ProjectId,
        f: &ConnectionFilter,
        page: Page,
    ) -> Result<Listed<VpnConnection>> {
        let mut where_ = Q::new(" WHERE c.project_id = ");
        let a = where_.s(p.as_str());
        where_.push(&a);
        for (col, v) in [
            ("c.id", &f.vpn_id.map(|v| v.to_string())),
            ("c.vgw_id", &f.vgw_id.map(|v| v.to_string())),
            ("c.vgw_ip", &f.vgw_ip),
            ("c.vgw_ip", &f.eip_id),
        ] {
            if let Some(v) = v {
                let a = where_.s(v);
                where_.push(&format!(" AND {col} = {a}"));
            }
        }
        push_in(&mut where_, "c.eps", &f.eps);
        let count = Q {
            sql: format!("SELECT COUNT(*) AS n FROM vpn_connections c{}", where_.sql),
            args: clone_args(&where_.args),
        };
        let total: i64 = get(
            &count
                .build()
                .fetch_one(&self.read)
                .await
                .map_err(internal)?,
            "n",
        )?;
        let mut q = Q {
            sql: format!("{CONN_SELECT}{}", where_.sql),
            args: where_.args,
        };
        if let Some(m) = page.marker_us {
            let a = q.i(m);
            q.push(" AND c.created_us > ").push(&a);
        }
        let lim = q.i(page_limit(&page, 2000));
        q.push(" ORDER BY c.created_us, c.id LIMIT ").push(&lim);
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            items.push(connection_from_row(r)?);
            last = Some(get::<i64>(r, "created_us")?);
        }
        Ok(Listed {
            items,
            total,
            next_marker: last.map(render_created),
        })
    }

    async fn update_connection(
        &self,
        p: &ProjectId,
        id: &ConnectionId,
        req: &UpdateConnection,
    ) -> Result<VpnConnection> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut conn = load_connection(&mut tx, p, id).await?;
        if let Some(cgw_id) = VpnConnection::update_cgw_ref(req)? {
            load_cgw(&mut tx, p, &cgw_id).await?;
            conn.check_cgw_change(&cgw_id)?;
        }
        let used = used_tunnels(&mut tx, &conn.vgw_id).await?;
        let gw = load_gateway(&mut tx, p, &conn.vgw_id).await?;
        conn.apply_update(req, &self.now_wire(), &used, &gw.local_subnets)?;
        let mut stored = conn.clone();
        stored.connection_monitor_id = None;
        sqlx::query(
            "UPDATE vpn_connections SET body = $1, cgw_id = $2, tunnel_net = $3 WHERE project_id = $4 AND id = $5",
        )
        .bind(json(&stored)?)
        .bind(conn.cgw_id.to_string())
        .bind(connection::tunnel_network(&conn).map(i64::from))
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(conn)
    }

    async fn delete_connection(&self, p: &ProjectId, id: &ConnectionId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_connection(&mut tx, p, id).await?;
        buckets::delete_monitor_rows(
            &mut tx,
            "SELECT id FROM connection_monitors WHERE project_id = $3 AND vpn_connection_id = $4",
            &[p.as_str().to_string(), id.to_string()],
        )
        .await?;
        sqlx::query(
            "DELETE FROM connection_monitors WHERE project_id = $1 AND vpn_connection_id = $2",
        )
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("DELETE FROM vpn_connections WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.deletions.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn create_monitor(
        &self,
        p: &ProjectId,
        vpn_connection_id: &ConnectionId,
        id: MonitorId,
    ) -> Result<ConnectionMonitor> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let conn = load_connection(&mut tx, p, vpn_connection_id).await?;
        if conn.connection_monitor_id.is_some() {
            return Err(DomainError::MonitorExists(conn.id));
        }
        let gw = load_gateway(&mut tx, p, &conn.vgw_id).await?;
        let cgw = load_cgw(&mut tx, p, &conn.cgw_id).await?;
        let m = monitor::derive(id, &conn, &gw, &cgw)?;
        let created = next_created_us(&mut tx, "connection_monitors", p, self.now_us()).await?;
        insert_monitor_row(&mut tx, p, created, &m).await?;
        tx.commit().await.map_err(internal)?;
        Ok(m)
    }

    async fn get_monitor(&self, p: &ProjectId, id: &MonitorId) -> Result<ConnectionMonitor> {
        let row = sqlx::query(
            "SELECT body, status FROM connection_monitors WHERE project_id = $1 AND id = $2",
        )
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
        monitor_from_row(&row)
    }

    async fn list_monitors(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&ConnectionId>,
    ) -> Result<Vec<ConnectionMonitor>> {
        let mut q = Q::new("SELECT body, status FROM connection_monitors WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(c) = vpn_connection_id {
            let a = q.s(&c.to_string());
            q.push(" AND vpn_connection_id = ").push(&a);
        }
        q.push(" ORDER BY created_us, id");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(monitor_from_row).collect()
    }

    async fn list_monitors_page(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&ConnectionId>,
        page: Page,
    ) -> Result<Listed<ConnectionMonitor>> {
        let mut where_ = Q::new(" WHERE project_id = ");
        let a = where_.s(p.as_str());
        where_.push(&a);
        if let Some(c) = vpn_connection_id {
            let a = where_.s(&c.to_string());
            where_.push(" AND vpn_connection_id = ").push(&a);
        }
        self.created_page(
            "connection_monitors",
            "body, status, created_us",
            where_,
            &page,
            2000,
            monitor_from_row,
        )
        .await
    }

    async fn delete_monitor(&self, p: &ProjectId, id: &MonitorId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM connection_monitors WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        buckets::delete_monitor_rows(&mut tx, "$3", &[id.to_string()]).await?;
        tx.commit().await.map_err(internal)?;
        self.deletions.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}
