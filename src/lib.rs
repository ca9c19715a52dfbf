//! purser: a payment policy gateway for AI agents.
//!
//! Dependencies point one way, down this list; a module uses only those
//! below it (`tests/layering.rs` holds the code to it):
//!
//! - `app`, `bench`: wiring a gateway together and driving one;
//! - `api`: HTTP (JSON routes and the approvers' console); reads may go to
//!   the store, every change goes through `service`;
//! - `service`: the operations, each one transaction with its audit record;
//! - `providers`, `webhooks`: talking to payment providers and receivers;
//! - `error`, `store`: the operations' error, and SQL;
//! - `audit`, `model`, `policy`: records, domain types, and the policy
//!   engine (pure: no I/O, no clock);
//! - `config`, `tls`, `auth`, `clock`, `money`, `ids`: leaves.
//!
//! `main.rs` is only the command line.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
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
