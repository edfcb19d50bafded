//! `GET /vpnmon/nodes`: the live nodes of the installation (those whose
//! lease has not run out on the database's clock), for the bootstrap admin
//! only ([`crate::authn::authenticate_admin`]). vpnmon's own path.

use super::reply_list;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

fn wire_us(us: i64) -> String {
    domain::time::wire_ms(domain::time::from_micros(us))
}

/// The live nodes as `GET /vpnmon/nodes` and `vpnmon admin node list -o
/// json` show them; `runs_jobs` marks the one that leads the run-once jobs.
pub fn node_views(live: &[store::NodeRecord]) -> Vec<Value> {
    let leader = store::job_leader(live);
    live.iter()
        .map(|n| {
            let mut v = node_view(n);
            v["runs_jobs"] = Value::Bool(Some(n.id) == leader);
            v
        })
        .collect()
}

/// One node as `GET /vpnmon/nodes` and `vpnmon admin node list -o json` show it.
fn node_view(n: &store::NodeRecord) -> Value {
    json!({
        "name": n.name,
        "id": n.id,
        "host": n.host,
        "started_at": wire_us(n.started_us),
        "heartbeat_at": wire_us(n.heartbeat_us),
        "expires_at": wire_us(n.expires_us),
        "addresses": n.addresses,
        "monitors": n.monitors,
    })
}

/// `GET` the live nodes.
pub async fn list(State(s): State<AppState>, ReqId(rid): ReqId) -> Result<Response, ApiError> {
    let nodes = s.store.live_nodes().await?;
    Ok(reply_list("nodes", node_views(&nodes), None, &rid))
}
