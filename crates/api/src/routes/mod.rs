//! Handlers, one module per API family. Handlers are thin: extract,
//! call one store or domain function, render.

pub mod alarms;
pub mod ces;
pub mod connection_monitors;
pub mod customer_gateways;
pub mod dashboard;
pub mod health;
pub mod iam;
pub mod misc;
pub mod nodes;
pub mod overview;
pub mod probe_state;
pub mod smn;
pub mod vpn_connections;
pub mod vpn_gateways;

use crate::error::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// `{key: value, "request_id": id}` with `status`.
pub fn reply(status: StatusCode, key: &str, value: Value, request_id: &str) -> Response {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    m.insert("request_id".into(), Value::String(request_id.to_string()));
    (status, axum::Json(Value::Object(m))).into_response()
}

/// A list reply with optional pagination fields.
pub fn reply_list(
    key: &str,
    items: Vec<Value>,
    page: Option<(i64, Option<String>)>,
    request_id: &str,
) -> Response {
    let mut m = Map::new();
    let count = items.len();
    m.insert(key.to_string(), Value::Array(items));
    if let Some((total, next)) = page {
        let mut pi = Map::new();
        if let Some(n) = next {
            pi.insert("next_marker".into(), Value::String(n));
        }
        pi.insert("current_count".into(), Value::from(count));
        m.insert("page_info".into(), Value::Object(pi));
        m.insert("total_count".into(), Value::from(total));
    }
    m.insert("request_id".into(), Value::String(request_id.to_string()));
    (StatusCode::OK, axum::Json(Value::Object(m))).into_response()
}

/// Like [`reply_list`] without paging, for long lists: the items are
/// rendered and serialised on the blocking pool, so that a list of tens of
/// thousands does not hold an async worker that light requests need.
pub async fn reply_long_list<T: Send + 'static>(
    key: &'static str,
    items: Vec<T>,
    show: fn(&T) -> Value,
    request_id: &str,
) -> Result<Response, ApiError> {
    let rid = request_id.to_string();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut m = Map::new();
        m.insert(
            key.to_string(),
            Value::Array(items.iter().map(show).collect()),
        );
        m.insert("request_id".into(), Value::String(rid));
        serde_json::to_vec(&Value::Object(m))
    })
    .await
    .map_err(|e| ApiError::internal(format!("rendering a list: {e}")))?
    .map_err(|e| ApiError::internal(format!("rendering a list: {e}")))?;
    Ok((
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

/// A path id, parsed into its type (a UUID).
pub fn path_uuid<T: domain::ResourceId>(name: &str, v: &str) -> Result<T, ApiError> {
    T::parse(v).ok_or_else(|| ApiError::invalid(format!("{name} is not a valid UUID: {v:?}")))
}
