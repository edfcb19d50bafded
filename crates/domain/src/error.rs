//! The domain error: what went wrong, in terms a client can act on.
//! It knows nothing of HTTP; the API layer maps it to status codes and
//! Huawei error codes in exactly one place.

/// A failure of a domain operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    /// The request is invalid; the message names the field (`VPN.0001`).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An attribute that the API does not know (`VPN.0013`).
    #[error("Unsupported attribute: {0}")]
    UnsupportedAttribute(String),
    /// The resource does not exist in this project (`VPN.0004`).
    #[error("resource not found")]
    NotFound,
    /// The connection already has a monitor (`VPN.0381`).
    #[error("VPN connection {0} already has connection monitor")]
    MonitorExists(String),
    /// A quota configured by the operator is exhausted.
    #[error("invalid request: quota exceeded: {0}")]
    QuotaExceeded(String),
    /// An internal failure; the message is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        DomainError::Invalid(msg.into())
    }
}
