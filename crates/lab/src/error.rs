use std::path::PathBuf;

/// Everything that can go wrong building, changing or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process may not create network namespaces (no root, no
    /// `CAP_SYS_ADMIN`). Tests print the reason and skip.
    #[error("not permitted to build a lab: {0}")]
    NotPermitted(String),
    /// A program the lab needs is not installed.
    #[error("`{tool}` not found: install the {package} package")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("invalid lab name {0:?}: use 1-15 characters from a-z, 0-9 and '-'")]
    InvalidName(String),
    #[error("invalid target group {cidr}: {reason}")]
    InvalidTargets { cidr: String, reason: String },
    #[error("invalid impairment: {0}")]
    InvalidImpairment(String),
    /// A network namespace of that name exists already.
    #[error("network namespace {name} exists already{}", if *.ours {
        " (a vpnmon lab: `vpnmon lab down` removes it)"
    } else {
        " and is not a vpnmon lab"
    })]
    AlreadyExists { name: String, ours: bool },
    #[error("no lab named {0} (no state file and no network namespace)")]
    NotFound(String),
    /// The namespace exists but vpnmon did not create it: never touched.
    #[error("network namespace {0} was not created by vpnmon lab; leaving it alone")]
    NotALab(String),
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("responder: {0}")]
    Responder(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab state file {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected nft output: {0}")]
    NftOutput(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
