//! A throwaway PostgreSQL database per test, on the server that
//! `VPNMON_TEST_DATABASE_URL` names (a role with CREATEDB; .ci/pg-setup.sh).

use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const PG_ENV: &str = "VPNMON_TEST_DATABASE_URL";

/// A fresh database on the test server: (its name, its URL). Drop it with
/// [`drop_db`].
pub async fn fresh_db(admin_url: &str) -> (String, String) {
    let name = format!("vpnmon_t_{}", uuid::Uuid::new_v4().simple());
    let mut c = PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.ok();
    let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let cut = base.rfind('/').unwrap();
    let mut url = format!("{}/{name}", &base[..cut]);
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    (name, url)
}

pub async fn drop_db(admin_url: &str, name: &str) {
    let mut c = PgConnection::connect(admin_url).await.unwrap();
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut c)
    .await;
    c.close().await.ok();
}
