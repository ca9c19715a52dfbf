//! All settings of `purser serve`, from flags or `PURSER_*` environment
//! variables (flags win). One struct, passed by reference; no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Shortest admin token accepted outside `--dev`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PURSER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://FILE` (embedded, the default).
    #[arg(long, env = "PURSER_DATABASE_URL", default_value = "sqlite://purser.db")]
    pub database_url: String,

    /// Directory of policy files (`*.toml`).
    #[arg(long, env = "PURSER_POLICIES", default_value = "policies")]
    pub policies: PathBuf,

    /// The admin bearer token. Required outside `--dev`; at least 32
    /// characters. Never logged.
    #[arg(long, env = "PURSER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Development mode: sandbox provider, mints and prints a dev admin token
    /// and a demo agent key (unless PURSER_ADMIN_TOKEN is set).
    #[arg(long, env = "PURSER_DEV")]
    pub dev: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PURSER_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// How often pending approvals past their deadline are expired (their
    /// reservations released). Also done once at start.
    #[arg(long, env = "PURSER_APPROVAL_SWEEP", default_value = "1s", value_parser = humantime::parse_duration)]
    pub approval_sweep: std::time::Duration,

    /// Log format: `pretty` or `json`.
    #[arg(long, env = "PURSER_LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,
}

impl Config {
    /// Checks that need more than one field; run before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        match &self.admin_token {
            Some(t) if t.len() < MIN_ADMIN_TOKEN_LEN => Err(format!(
                "PURSER_ADMIN_TOKEN is too short ({} characters); use at least {MIN_ADMIN_TOKEN_LEN}, \
                 e.g. from `purser token`",
                t.len()
            )),
            None if !self.dev => {
                Err("no admin token configured: set PURSER_ADMIN_TOKEN (generate one with `purser token`), \
                 or run with --dev for a local sandbox"
                    .to_owned())
            }
            _ => Ok(()),
        }
    }

    /// Settings for tests and benchmarks: an in-memory-style database path,
    /// the shipped policies, dev mode off, an admin token.
    pub fn for_tests(database_url: String, policies: PathBuf, admin_token: String) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
            policies,
            admin_token: Some(admin_token),
            dev: false,
            max_body_bytes: 64 * 1024,
            approval_sweep: std::time::Duration::from_millis(20),
            log_format: "pretty".to_owned(),
        }
    }
}
