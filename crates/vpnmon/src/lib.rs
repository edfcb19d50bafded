//! vpnmon: a self-hosted Huawei Cloud VPN v5 connection monitor.
//!
//! This crate is the binary's library: configuration, wiring of the store,
//! API and probe engine, `serve`, and the admin CLI. `main.rs` only parses
//! arguments and calls in here, so tests build the same [`app::Application`].

pub mod admin;
pub mod app;
pub mod config;
pub mod delivery;
pub mod doctor;
pub mod health;
pub mod membership;
pub mod probing;
pub mod prometheus;
pub mod secrets;
pub mod telemetry;
