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
    MonitorExists(crate::ids::ConnectionId),
    /// A quota configured by the operator is exhausted.
    #[error("invalid request: quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The request body is larger than the limit (bytes).
    #[error("request body too large: at most {0} bytes")]
    BodyTooLarge(usize),
    /// The request body did not arrive whole (the body-read timeout, or
    /// the client went away).
    #[error("request body incomplete")]
    BodyIncomplete,
    /// An internal failure; the message is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A kind of record, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Domain,
    Project,
    User,
    VpnGateway,
    CustomerGateway,
    VpnConnection,
}

impl Kind {
    /// The name messages use.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Domain => "domain",
            Kind::Project => "project",
            Kind::User => "user",
            Kind::VpnGateway => "vpn gateway",
            Kind::CustomerGateway => "customer gateway",
            Kind::VpnConnection => "vpn connection",
        }
    }
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        DomainError::Invalid(msg.into())
    }

    /// A record with this unique name exists already (the store's unique
    /// index said so).
    pub fn already_exists(kind: Kind, name: &str) -> Self {
        DomainError::Invalid(format!("{} {name:?} already exists", kind.label()))
    }

    /// A record cannot be deleted or changed while a connection uses it.
    pub fn in_use(kind: Kind, id: &dyn std::fmt::Display, connection_id: &str) -> Self {
        DomainError::Invalid(format!(
            "{} {id} is used by vpn connection {connection_id}",
            kind.label()
        ))
    }

    /// A user name given without its domain matches users of several domains.
    pub fn ambiguous_user(name: &str) -> Self {
        DomainError::Invalid(format!("user name {name:?} exists in several domains"))
    }

    /// A storage failure; the text is for the log only.
    pub fn internal(detail: impl Into<String>) -> Self {
        DomainError::Internal(detail.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_record() {
        assert_eq!(
            DomainError::already_exists(Kind::Domain, "acme"),
            DomainError::Invalid(r#"domain "acme" already exists"#.into())
        );
        assert_eq!(
            DomainError::in_use(Kind::CustomerGateway, &"c1", "k1"),
            DomainError::Invalid("customer gateway c1 is used by vpn connection k1".into())
        );
        assert_eq!(
            DomainError::ambiguous_user("alice"),
            DomainError::Invalid(r#"user name "alice" exists in several domains"#.into())
        );
    }
}
