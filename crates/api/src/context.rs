//! Request context: a request id for every request, echoed in
//! `X-Request-Id` on every response and in every JSON body, and the
//! rendering of error bodies.

use crate::error::{Code, HwError};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;

/// The id of the current request.
#[derive(Debug, Clone)]
pub struct ReqId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ReqId {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ReqId>()
            .cloned()
            .unwrap_or_else(|| ReqId(new_request_id())))
    }
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Middleware: assigns the request id, renders error bodies, sets headers.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = new_request_id();
    req.extensions_mut().insert(ReqId(id.clone()));
    let method = req.method().clone();
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    // Never echo a long path into the log or a message.
    let path: String = req.uri().path().chars().take(256).collect();
    let mut resp = if uri_len > crate::server::MAX_URI_BYTES {
        crate::error::ApiError::new(
            Code::GatewayUriTooLong,
            format!(
                "Request URI too large: at most {} bytes",
                crate::server::MAX_URI_BYTES
            ),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    let status = resp.status();
    let err = resp
        .extensions_mut()
        .remove::<HwError>()
        .or_else(|| match status {
            StatusCode::NOT_FOUND if is_empty(&resp) => Some(HwError {
                code: Code::GatewayNoSuchApi.as_str(),
                keys: Code::GatewayNoSuchApi.body_keys(),
                keystone: false,
                msg: "The API does not exist or has not been published in the environment".into(),
            }),
            StatusCode::METHOD_NOT_ALLOWED => Some(HwError {
                code: Code::GatewayMethodNotAllowed.as_str(),
                keys: Code::GatewayMethodNotAllowed.body_keys(),
                keystone: false,
                msg: format!("The method {method} is not allowed on {path}"),
            }),
            _ => None,
        });
    if let Some(e) = err {
        let body = if e.keystone {
            // IAM's token API: Keystone's body; the id is in the header.
            serde_json::json!({"error": {
                "code": status.as_u16(),
                "message": e.msg,
                "title": status.canonical_reason().unwrap_or("Error"),
            }})
        } else {
            let mut body = serde_json::Map::new();
            body.insert(e.keys.0.into(), e.code.into());
            body.insert(e.keys.1.into(), e.msg.clone().into());
            body.insert("request_id".into(), id.clone().into());
            serde_json::Value::Object(body)
        };
        let (mut parts, _) = resp.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(body.to_string()));
        tracing::info!(%method, %path, status = status.as_u16(), code = e.code, request_id = %id, "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), request_id = %id, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn is_empty(resp: &Response) -> bool {
    use http_body::Body as _;
    resp.body().size_hint().exact() == Some(0)
}
