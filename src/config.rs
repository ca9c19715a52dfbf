//! All settings of `purser serve`, from flags, `PURSER_*` environment
//! variables or a TOML file (`--config`), in that order of precedence. One
//! struct, passed by reference; no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Shortest admin token accepted outside `--dev`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;
/// Bounds of `PURSER_PROVIDER_DEADLINE`: a provider call needs some time,
/// and a forward claim (twice the deadline) should lapse within the hour.
const MIN_PROVIDER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_PROVIDER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// TOML file of settings: each key is a setting below in snake_case
    /// (`listen`, `rate_limit_writes`, ...). Flags and environment
    /// variables override it.
    #[arg(long = "config", env = "PURSER_CONFIG")]
    pub config_file: Option<PathBuf>,

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

    /// Key that encrypts webhook signing secrets at rest: standard base64 of
    /// 32 bytes, or any string of at least 32 characters. Required outside
    /// `--dev` (dev mode keeps a generated key beside the database).
    #[arg(long, env = "PURSER_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// Reads the admin token from this file instead (a mounted secret, e.g.
    /// `/run/secrets/purser-admin-token`); surrounding whitespace is ignored.
    #[arg(long, env = "PURSER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Reads the encryption key from this file instead.
    #[arg(long, env = "PURSER_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,

    /// Earlier encryption keys, comma-separated: secrets sealed with them
    /// are still read (new ones are sealed with PURSER_ENCRYPTION_KEY)
    /// while `purser secrets rotate` re-seals them. Empty once a rotation
    /// is done.
    #[arg(long, env = "PURSER_ENCRYPTION_OLD_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub encryption_old_keys: Vec<String>,

    /// Reads the earlier encryption keys from this file instead, one per
    /// line.
    #[arg(long, env = "PURSER_ENCRYPTION_OLD_KEYS_FILE")]
    pub encryption_old_keys_file: Option<PathBuf>,

    /// A bearer token that reads `GET /metrics` and nothing else, for a
    /// Prometheus scraper (which should not hold the admin token). At least
    /// 32 characters, e.g. from `purser token`. Never logged.
    #[arg(long, env = "PURSER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Reads the metrics token from this file instead.
    #[arg(long, env = "PURSER_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,

    /// PEM certificate chain: serve HTTPS in the binary instead of plain
    /// HTTP (with `--tls-key`). Re-read on SIGHUP, for renewed certificates.
    #[arg(long, env = "PURSER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "PURSER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Oldest TLS version accepted with `--tls-cert`: `1.3` (the default)
    /// or `1.2` for clients that cannot do 1.3.
    #[arg(long, env = "PURSER_TLS_MIN_VERSION", value_enum, default_value = "1.3")]
    pub tls_min_version: crate::tls::MinVersion,

    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated
    /// CIDRs). Requests from other addresses are judged by their own address,
    /// whatever header they send.
    #[arg(long, env = "PURSER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Networks the configured admin token (the bootstrap credential) is
    /// accepted from (comma-separated CIDRs); anywhere when empty. Named
    /// administrators carry their own `allowed_cidrs`.
    #[arg(long, env = "PURSER_ADMIN_ALLOWED_CIDRS", value_delimiter = ',')]
    pub admin_allowed_cidrs: Vec<ipnet::IpNet>,

    /// Browser origins allowed to call the API cross-origin (CORS), e.g.
    /// `https://dashboard.example.com`; comma-separated. None by default.
    #[arg(long, env = "PURSER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<axum::http::HeaderValue>,

    /// Networks webhook deliveries may reach although they are loopback,
    /// private or link-local (comma-separated CIDRs, e.g. 10.0.5.0/24).
    #[arg(long, env = "PURSER_WEBHOOK_ALLOWED_NETS", value_delimiter = ',')]
    pub webhook_allowed_nets: Vec<ipnet::IpNet>,

    /// Waits between webhook delivery attempts (the first attempt is
    /// immediate); after the last one a delivery has failed.
    #[arg(long, env = "PURSER_WEBHOOK_RETRY_SCHEDULE", value_delimiter = ',',
          value_parser = humantime::parse_duration, default_value = "5s,5m,30m,2h,5h,10h,10h")]
    pub webhook_retry_schedule: Vec<std::time::Duration>,

    /// How often the webhook dispatcher looks for work.
    #[arg(long, env = "PURSER_WEBHOOK_POLL", value_parser = humantime::parse_duration, default_value = "200ms")]
    pub webhook_poll: std::time::Duration,

    /// Timeout of one webhook delivery (connect, send, response).
    #[arg(long, env = "PURSER_WEBHOOK_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub webhook_timeout: std::time::Duration,

    /// Development mode: sandbox provider, mints and prints a dev admin token
    /// and a demo agent key (unless PURSER_ADMIN_TOKEN is set).
    #[arg(long, env = "PURSER_DEV")]
    pub dev: bool,

    /// Longest a request may take before it is answered `503
    /// request_timeout` (slow clients and stuck dependencies cannot hold
    /// connections forever).
    #[arg(long, env = "PURSER_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PURSER_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// How often pending approvals past their deadline are expired (their
    /// reservations released). Also done once at start.
    #[arg(long, env = "PURSER_APPROVAL_SWEEP", default_value = "1s", value_parser = humantime::parse_duration)]
    pub approval_sweep: std::time::Duration,

    /// How long finished webhook deliveries (delivered, or failed for
    /// good) and their events are kept, e.g. `30d`; `0` keeps them
    /// forever. Pending deliveries are kept whatever their age.
    #[arg(long, env = "PURSER_WEBHOOK_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub webhook_retention: std::time::Duration,

    /// How often data past its retention (webhooks, expired console
    /// sessions and seen signatures) is deleted. Also done once at start;
    /// `0` never deletes anything.
    #[arg(long, env = "PURSER_RETENTION_SWEEP", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention_sweep: std::time::Duration,

    /// How often the audit chain's head is sent as the signed
    /// `audit.checkpoint` webhook (when the log grew since the last one);
    /// `0` never sends it.
    #[arg(long, env = "PURSER_AUDIT_CHECKPOINT", default_value = "1h", value_parser = humantime::parse_duration)]
    pub audit_checkpoint: std::time::Duration,

    /// Reads (GET) per minute per credential, or per client address for
    /// requests without one. `0` disables (for benchmarks).
    #[arg(long, env = "PURSER_RATE_LIMIT_READS", default_value_t = 600)]
    pub rate_limit_reads: u32,

    /// Writes (POST, PATCH, DELETE) per minute per credential, or per client
    /// address for requests without one. `0` disables (for benchmarks).
    #[arg(long, env = "PURSER_RATE_LIMIT_WRITES", default_value_t = 60)]
    pub rate_limit_writes: u32,

    /// Failed authentications per minute per client address; past it the
    /// address is refused (429) until the budget refills. `0` disables.
    #[arg(long, env = "PURSER_RATE_LIMIT_FAILED_AUTH", default_value_t = 20)]
    pub rate_limit_failed_auth: u32,

    /// Longest an agent API key may live (e.g. `90d`): keys created without
    /// `expires_at` expire after it, and a later `expires_at` is refused.
    /// Unset: keys live until revoked or their own `expires_at`.
    #[arg(long, env = "PURSER_MAX_KEY_LIFETIME", value_parser = humantime::parse_duration)]
    pub max_key_lifetime: Option<std::time::Duration>,

    /// Providers file (TOML) configuring the real providers (Turnkey,
    /// Circle, Lithic); without it only the built-in sandbox exists.
    #[arg(long, env = "PURSER_PROVIDERS_FILE")]
    pub providers_file: Option<PathBuf>,

    /// How often `processing` payments (the provider's answer is not known
    /// yet) are looked up at their provider.
    #[arg(long, env = "PURSER_RECONCILE_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub reconcile_interval: std::time::Duration,

    /// Longest one provider call (a forward or a status look, retries
    /// included) may take; past it the payment is left `processing` for the
    /// next look. A forward's claim lasts twice this plus 5 s, which is how
    /// long another replica waits before it takes over a dead replica's
    /// approved payments.
    #[arg(long, env = "PURSER_PROVIDER_DEADLINE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub provider_deadline: std::time::Duration,

    /// Denied payments of one agent within a clock minute that raise the
    /// `policy.violation_spike` signal (webhook, audit record, metric);
    /// `0` disables.
    #[arg(long, env = "PURSER_ALERT_DENIALS_PER_MINUTE", default_value_t = 20)]
    pub alert_denials_per_minute: u32,

    /// Failed authentications from one client address within a clock
    /// minute that raise `auth.failure_spike`; `0` disables.
    #[arg(long, env = "PURSER_ALERT_FAILED_AUTH_PER_MINUTE", default_value_t = 10)]
    pub alert_failed_auth_per_minute: u32,

    /// Failed authentications across the gateway (all addresses) within a
    /// clock minute that raise `auth.failure_spike`; `0` disables.
    #[arg(long, env = "PURSER_ALERT_FAILED_AUTH_TOTAL_PER_MINUTE", default_value_t = 100)]
    pub alert_failed_auth_total_per_minute: u32,

    /// Authenticated requests of one agent within a clock minute that raise
    /// `agent.volume_spike`; `0` disables.
    #[arg(long, env = "PURSER_ALERT_AGENT_REQUESTS_PER_MINUTE", default_value_t = 300)]
    pub alert_agent_requests_per_minute: u32,

    /// Log format: `pretty` or `json`.
    #[arg(long, env = "PURSER_LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,
}

/// A value copied from an example rather than generated: a placeholder
/// word, or too few distinct characters to be random.
fn is_placeholder(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    let words = ["change-me", "changeme", "change_me", "placeholder", "replace-me", "your-token", "example"];
    let distinct: std::collections::HashSet<char> = secret.chars().collect();
    words.iter().any(|w| lower.contains(w)) || distinct.len() < 8
}

impl Config {
    /// The settings in a `--config` file, as the `PURSER_*` variables they
    /// stand for (so precedence is clap's own: a variable already set, or a
    /// flag, wins). Unknown keys and values that are tables are errors.
    pub fn env_from_file(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        env_from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Fills `admin_token` and `encryption_key` from their `*_FILE`
    /// settings, so secrets can come from a secret manager's mounted file
    /// rather than the environment (which child processes and crash dumps
    /// see). Giving both a value and a file is an error.
    pub fn read_secret_files(&mut self) -> Result<(), String> {
        for (name, value, file) in [
            ("PURSER_ADMIN_TOKEN", &mut self.admin_token, self.admin_token_file.as_ref()),
            ("PURSER_ENCRYPTION_KEY", &mut self.encryption_key, self.encryption_key_file.as_ref()),
            ("PURSER_METRICS_TOKEN", &mut self.metrics_token, self.metrics_token_file.as_ref()),
        ] {
            let Some(file) = file else { continue };
            if value.is_some() {
                return Err(format!("set {name} or {name}_FILE, not both"));
            }
            *value = Some(read_secret_file(name, file)?.trim().to_owned());
        }
        if let Some(file) = &self.encryption_old_keys_file {
            if !self.encryption_old_keys.is_empty() {
                return Err(
                    "set PURSER_ENCRYPTION_OLD_KEYS or PURSER_ENCRYPTION_OLD_KEYS_FILE, not both".into()
                );
            }
            let text = read_secret_file("PURSER_ENCRYPTION_OLD_KEYS", file)?;
            self.encryption_old_keys =
                text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        }
        Ok(())
    }

    /// Checks that need more than one field; run before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("PURSER_ADMIN_TOKEN", &self.admin_token),
            ("PURSER_ENCRYPTION_KEY", &self.encryption_key),
            ("PURSER_METRICS_TOKEN", &self.metrics_token),
        ] {
            if value.as_deref().is_some_and(is_placeholder) {
                return Err(format!(
                    "{name} looks like a placeholder, not a secret: generate one with `purser token`"
                ));
            }
        }
        if let Some(t) = &self.metrics_token {
            if t.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(format!(
                    "PURSER_METRICS_TOKEN is too short ({} characters); use at least {MIN_ADMIN_TOKEN_LEN}, \
                     e.g. from `purser token`",
                    t.len()
                ));
            }
            if self.admin_token.as_ref() == Some(t) {
                return Err("PURSER_METRICS_TOKEN must differ from PURSER_ADMIN_TOKEN: the scraper would \
                     hold the admin credential"
                    .to_owned());
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("set both PURSER_TLS_CERT and PURSER_TLS_KEY, or neither".to_owned());
        }
        if !(MIN_PROVIDER_DEADLINE..=MAX_PROVIDER_DEADLINE).contains(&self.provider_deadline) {
            return Err(format!(
                "PURSER_PROVIDER_DEADLINE must be between {} and {}",
                humantime::format_duration(MIN_PROVIDER_DEADLINE),
                humantime::format_duration(MAX_PROVIDER_DEADLINE)
            ));
        }
        if self.dev && !self.listen.ip().is_loopback() {
            return Err(format!(
                "--dev serves demo credentials over plain http: it only listens on loopback, not {}",
                self.listen
            ));
        }
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
            _ if self.encryption_key.is_none() && !self.dev => Err(
                "no encryption key configured: set PURSER_ENCRYPTION_KEY (at least 32 characters, e.g. from \
                 `purser token`); it protects webhook secrets at rest"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// Settings for tests and benchmarks: an in-memory-style database path,
    /// the shipped policies, dev mode off, an admin token.
    pub fn for_tests(database_url: String, policies: PathBuf, admin_token: String) -> Self {
        Config {
            config_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
            policies,
            admin_token: Some(admin_token),
            admin_token_file: None,
            encryption_key_file: None,
            encryption_old_keys: Vec::new(),
            encryption_old_keys_file: None,
            metrics_token: None,
            metrics_token_file: None,
            dev: false,
            max_body_bytes: 64 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            approval_sweep: std::time::Duration::from_millis(20),
            webhook_retention: std::time::Duration::from_secs(30 * 86_400),
            retention_sweep: std::time::Duration::from_secs(3600),
            audit_checkpoint: std::time::Duration::from_secs(3600),
            encryption_key: Some("test-encryption-key-0123456789abcdef".to_owned()),
            webhook_allowed_nets: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_min_version: crate::tls::MinVersion::Tls13,
            trusted_proxies: Vec::new(),
            admin_allowed_cidrs: Vec::new(),
            cors_origins: Vec::new(),
            webhook_retry_schedule: vec![
                std::time::Duration::from_secs(5),
                std::time::Duration::from_secs(300),
            ],
            webhook_poll: std::time::Duration::from_millis(20),
            webhook_timeout: std::time::Duration::from_secs(5),
            // Off: tests and benchmarks fire many requests with one key; the
            // limits have tests of their own.
            rate_limit_reads: 0,
            rate_limit_writes: 0,
            rate_limit_failed_auth: 0,
            max_key_lifetime: None,
            providers_file: None,
            reconcile_interval: std::time::Duration::from_millis(50),
            provider_deadline: std::time::Duration::from_secs(60),
            alert_denials_per_minute: 0,
            alert_failed_auth_per_minute: 0,
            alert_failed_auth_total_per_minute: 0,
            alert_agent_requests_per_minute: 0,
            log_format: "pretty".to_owned(),
        }
    }
}

fn env_from_toml(text: &str) -> Result<Vec<(String, String)>, String> {
    // The error is told by line, never quoting it: the file may hold secrets.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        format!("not valid TOML at line {line}: {}", e.message())
    })?;
    let command = <Config as Args>::augment_args(clap::Command::new("purser"));
    let mut vars = Vec::with_capacity(table.len());
    for (key, value) in &table {
        let env = command
            .get_arguments()
            .filter(|arg| arg.get_id() != "config_file")
            .find(|arg| arg.get_id() == key.as_str())
            .and_then(|arg| arg.get_env())
            .ok_or_else(|| {
                format!("unknown setting `{key}` (settings are the `purser serve` flags in snake_case)")
            })?;
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_) => Ok(v.to_string()),
            _ => Err(format!("`{key}` must be a string, number, boolean or a list of them")),
        };
        let value = match value {
            // Lists are the comma-separated settings (CIDRs, origins, ...).
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?.join(","),
            other => scalar(other)?,
        };
        vars.push((env.to_string_lossy().into_owned(), value));
    }
    Ok(vars)
}

fn read_secret_file(name: &str, file: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("reading {name}_FILE {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::for_tests(
            "sqlite://x".into(),
            "policies".into(),
            "psr_admin_Zq8v3LkP0wXy7TnR4cBm9dHs2FgJ".into(),
        )
    }

    #[test]
    fn a_metrics_token_is_long_random_and_not_the_admin_token() {
        let with = |t: &str| Config { metrics_token: Some(t.to_owned()), ..config() }.validate();
        assert!(with("metrics-Zq8v3LkP0wXy7TnR4cBm9dHs2FgJ-0123").is_ok());
        assert!(with("short-Zq8v3LkP").unwrap_err().contains("PURSER_METRICS_TOKEN is too short"));
        assert!(with("change-me-change-me-change-me-change-me").unwrap_err().contains("placeholder"));
        let admin = config().admin_token.unwrap();
        assert!(with(&admin).unwrap_err().contains("must differ from PURSER_ADMIN_TOKEN"));
    }

    #[test]
    fn production_refuses_missing_or_short_secrets_and_exposed_dev_mode() {
        assert!(config().validate().is_ok());
        let short = Config { admin_token: Some("short-token1".into()), ..config() };
        assert!(short.validate().unwrap_err().contains("too short"));
        let missing = Config { admin_token: None, ..config() };
        assert!(missing.validate().unwrap_err().contains("no admin token"));
        let no_key = Config { encryption_key: None, ..config() };
        assert!(no_key.validate().unwrap_err().contains("encryption key"));
        for placeholder in ["CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME", "a".repeat(40).as_str()] {
            let copied = Config { encryption_key: Some(placeholder.into()), ..config() };
            assert!(copied.validate().unwrap_err().contains("placeholder"), "{placeholder}");
        }
        let exposed = Config { dev: true, listen: "0.0.0.0:8080".parse().unwrap(), ..config() };
        assert!(exposed.validate().unwrap_err().contains("loopback"));
        let half_tls = Config { tls_cert: Some("cert.pem".into()), ..config() };
        assert!(half_tls.validate().unwrap_err().contains("PURSER_TLS_KEY"));
        let local_dev = Config { dev: true, admin_token: None, encryption_key: None, ..config() };
        assert!(local_dev.validate().is_ok());
        for (deadline, ok) in [(0, false), (1, true), (1800, true), (1801, false), (u64::MAX, false)] {
            let c = Config { provider_deadline: std::time::Duration::from_secs(deadline), ..config() };
            assert_eq!(c.validate().is_ok(), ok, "PURSER_PROVIDER_DEADLINE {deadline}s");
        }
    }

    #[test]
    fn secrets_can_come_from_files_but_not_from_both_places() {
        let dir = tempfile::tempdir().unwrap();
        let (token, key) = (dir.path().join("token"), dir.path().join("key"));
        std::fs::write(&token, "psr_admin_Zq8v3LkP0wXy7TnR4cBm9dHs2FgJ-from-file\n").unwrap();
        std::fs::write(&key, "  an-encryption-key-from-a-mounted-secret-0123\n").unwrap();
        let mut c = Config {
            admin_token: None,
            encryption_key: None,
            admin_token_file: Some(token.clone()),
            encryption_key_file: Some(key),
            ..config()
        };
        c.read_secret_files().unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("psr_admin_Zq8v3LkP0wXy7TnR4cBm9dHs2FgJ-from-file"));
        assert_eq!(c.encryption_key.as_deref(), Some("an-encryption-key-from-a-mounted-secret-0123"));
        assert!(c.validate().is_ok());

        let mut both = Config { admin_token_file: Some(token), ..config() };
        assert!(both.read_secret_files().unwrap_err().contains("not both"));
        let mut missing =
            Config { admin_token: None, admin_token_file: Some(dir.path().join("nope")), ..config() };
        assert!(missing.read_secret_files().unwrap_err().contains("PURSER_ADMIN_TOKEN_FILE"));
    }

    #[test]
    fn a_config_file_names_settings_as_snake_case_flags() {
        let vars = env_from_toml(
            r#"
            listen = "0.0.0.0:8443"
            rate_limit_writes = 10
            dev = false
            trusted_proxies = ["10.0.0.0/8", "192.168.1.1/32"]
            webhook_retry_schedule = ["5s", "1m"]
            "#,
        )
        .unwrap();
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("PURSER_LISTEN"), Some("0.0.0.0:8443"));
        assert_eq!(get("PURSER_RATE_LIMIT_WRITES"), Some("10"));
        assert_eq!(get("PURSER_DEV"), Some("false"));
        assert_eq!(get("PURSER_TRUSTED_PROXIES"), Some("10.0.0.0/8,192.168.1.1/32"));
        assert_eq!(get("PURSER_WEBHOOK_RETRY_SCHEDULE"), Some("5s,1m"));

        for (bad, says) in [
            ("rate-limit-writes = 1", "unknown setting `rate-limit-writes`"),
            ("config = \"other.toml\"", "unknown setting `config`"),
            ("config_file = \"other.toml\"", "unknown setting `config_file`"),
            ("[listen]\nport = 1", "must be a string"),
            ("\nadmin_token = psr_admin_unquoted", "not valid TOML at line 2"),
        ] {
            let err = env_from_toml(bad).unwrap_err();
            assert!(err.contains(says) && !err.contains("psr_admin"), "{bad}: {err}");
        }
    }
}
