//! Black-box API tests: the real server on 127.0.0.1:0 with a fresh store
//! per test, driven over HTTP.

mod alarms;
mod auth;
mod ces;
mod delivery;
mod errors;
mod flow;
mod health;
mod helpers;
mod http_limits;
mod multinode;
mod nodes;
mod persistence;
#[path = "../support/pg.rs"]
mod pg_support;
mod prometheus;
mod seam;
mod secrets;
#[path = "../support/smn.rs"]
mod smn_support;
mod sweep;
mod topics;
