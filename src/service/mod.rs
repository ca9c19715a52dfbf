//! Business operations: what the API and the CLI call. They combine the pure
//! policy engine with the store; they know nothing about HTTP.

pub mod agents;
pub mod alerts;
pub mod allowance;
pub mod approvals;
pub mod audit;
pub mod cards;
pub mod dev;
pub mod kill_switch;
pub mod payments;
pub mod signing;
pub mod webhooks;
