//! vpnmon's domain: the Huawei Cloud VPN v5 resources a connection monitor
//! needs, their validation and their rules, with no HTTP and no SQL.
//!
//! Design choices:
//! - Request bodies are parsed into typed structs with `deny_unknown_fields`
//!   so that a misspelt field is an error that names it, and then validated
//!   into records ("parse, don't validate").
//! - Records serialize to the *show* shape of the wire format; the create and
//!   update shapes are projections of it (see [`views`]), because the SDK's
//!   create/update models are subsets of its show models.
//! - Every rule that is not about storage (defaults, the derivation of a
//!   monitor's `source_ip`/`destination_ip`, tunnel-address assignment) lives
//!   here; the store calls these functions inside its transactions.

#![forbid(unsafe_code)]

pub mod alarm;
pub mod connection;
pub mod customer_gateway;
pub mod eip;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod metric;
pub mod monitor;
pub mod ownership;
pub mod retention;
pub mod smn;
pub mod time;
pub mod validate;
pub mod views;

pub use error::DomainError;
pub use ids::{
    AlarmId, ConnectionId, CustomerGatewayId, DomainId, GatewayId, MonitorId, NodeId, ProjectId,
    ResourceId, UserId,
};
