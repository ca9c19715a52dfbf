//! purser: a payment policy gateway for AI agents.
//!
//! Data flows one way: `api` → `service` → `policy` (pure) + `store` (SQL)
//! → `providers`. `main.rs` is only the command line.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod ids;
pub mod model;
pub mod money;
pub mod policy;
pub mod providers;
pub mod service;
pub mod store;
pub mod tls;
pub mod webhooks;
