//! End-to-end tests: each spawns the real server on a random port with its
//! own database and policies, and talks HTTP to it like an agent, an admin
//! or an attacker would.

mod admin;
mod admins;
mod allowance;
mod approvals;
mod bad_input;
mod cards;
mod cli;
mod concurrency;
mod config_file;
mod console;
mod helpers;
mod incidents;
mod isolation;
mod limits;
mod owasp;
mod pagination;
mod payments;
mod provider_circle;
mod provider_faults;
mod provider_isolation;
mod provider_lithic;
mod provider_turnkey;
mod replicas;
mod retention;
mod secrets_in_logs;
mod signatures;
mod sim;
mod tls;
mod webhooks;
