//! The one place where failures become the Huawei error body
//! `{"error_code", "error_msg", "request_id"}`.
//!
//! Handlers return [`ApiError`]; its response carries the code and message
//! as an extension with an empty body, and the request-context middleware
//! renders the body, because only it knows the request id. The same
//! middleware turns axum's own 404/405 into Huawei bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;

/// An error as the client will see it, plus an optional internal detail
/// that goes to the log only.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Huawei error code, e.g. `VPN.0004`.
    pub code: &'static str,
    /// Client-visible message.
    pub msg: String,
    /// Log-only detail (never sent).
    pub internal: Option<String>,
}

/// The code and message of an error response, for the middleware to render.
#[derive(Debug, Clone)]
pub struct HwError {
    pub code: &'static str,
    pub msg: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
            internal: None,
        }
    }
    /// 400 `VPN.0001 invalid request: ...`.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "VPN.0001",
            format!("invalid request: {msg}"),
        )
    }
    /// 404 `VPN.0004 resource not found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "VPN.0004", "resource not found")
    }
    /// 401 `APIGW.0301` with the reason.
    pub fn unauthenticated(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "APIGW.0301",
            format!("Incorrect IAM authentication information: {reason}"),
        )
    }
    /// 403 `VPN.0003`.
    pub fn forbidden(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "VPN.0003",
            format!("Authentication failed: {reason}"),
        )
    }
    /// 500 `VPN.0002`; the detail is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "VPN.0002",
            msg: "server error: internal error, see the server log with this request id".into(),
            internal: Some(detail.into()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => ApiError::invalid(m),
            DomainError::UnsupportedAttribute(a) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "VPN.0013",
                format!("Unsupported attribute: {a}"),
            ),
            DomainError::NotFound => ApiError::not_found(),
            DomainError::MonitorExists(c) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "VPN.0381",
                format!("VPN connection {c} already has connection monitor"),
            ),
            DomainError::QuotaExceeded(m) => ApiError::invalid(format!("quota exceeded: {m}")),
            DomainError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            tracing::error!(code = self.code, detail = %detail, "request failed");
        }
        let mut r = self.status.into_response();
        r.extensions_mut().insert(HwError {
            code: self.code,
            msg: self.msg,
        });
        r
    }
}
