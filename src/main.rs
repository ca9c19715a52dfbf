//! The `purser` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use purser::app::App;
use purser::clock::SystemClock;
use purser::config::Config;
use purser::policy::PolicySet;
use purser::service::dev;

#[derive(Parser)]
#[command(name = "purser", version, about = "Payment policy gateway for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP gateway.
    Serve(Box<Config>),
    /// Work with policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Tools for webhook receivers.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with the secrets stored encrypted (webhook signing secrets).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Write a consistent copy of a running gateway's SQLite database to a
    /// new file, then verify the copy's audit chain. With PostgreSQL, runs
    /// `pg_dump --format=custom` (see docs/operations.md for base backups
    /// and point-in-time recovery).
    Backup {
        #[arg(long, env = "PURSER_DATABASE_URL", default_value = "sqlite://purser.db")]
        database_url: String,
        /// The file to write; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Print a new random admin token (for PURSER_ADMIN_TOKEN).
    Token,
    /// Print the OpenAPI description of the HTTP API (what `/openapi.json`
    /// serves and `openapi.json` in the repository holds).
    Openapi,
    /// Load-test the payment path end to end and print decisions/s and latency.
    Bench(purser::bench::BenchArgs),
    /// Measure how fast the webhook dispatcher drains a backlog.
    BenchWebhooks(purser::bench::WebhookBenchArgs),
    /// Measure the store's own commit rate (the ceiling for `bench`).
    BenchStore(purser::bench::StoreBenchArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate every policy file in DIR (default: policies). Errors fail;
    /// warnings (a rule that can never apply) are printed and pass, unless
    /// --deny-warnings.
    Check {
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// Exit non-zero on warnings too (for CI on policy pull requests).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run the table-driven cases in DIR/tests against the policies in DIR.
    Test {
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Verify one delivery: the body on stdin, the three headers as flags.
    /// Says `valid`, or why not, and exits non-zero when invalid.
    Verify {
        /// The endpoint's signing secret, `whsec_...`.
        #[arg(long, env = "PURSER_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The `webhook-id` header.
        #[arg(long)]
        id: String,
        /// The `webhook-timestamp` header.
        #[arg(long)]
        timestamp: String,
        /// The `webhook-signature` header (one or more space-separated `v1,...`).
        #[arg(long)]
        signature: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; report the first changed, removed or reordered
    /// record. Refuses a database that does not exist.
    Verify {
        #[arg(long, env = "PURSER_DATABASE_URL", default_value = "sqlite://purser.db")]
        database_url: String,
        /// A head recorded earlier (`purser audit head`, the
        /// `audit.checkpoint` webhook): the chain must reach it, which shows
        /// records removed from its end.
        #[arg(long, value_name = "SEQ:SHA256")]
        expect_head: Option<purser::service::audit::Head>,
    },
    /// Print the chain's head, `<seq>:<sha256>`, to keep outside the
    /// database for `verify --expect-head`.
    Head {
        #[arg(long, env = "PURSER_DATABASE_URL", default_value = "sqlite://purser.db")]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-seal every stored secret under a new encryption key, in one
    /// transaction. Run it while the gateways already have the new key as
    /// PURSER_ENCRYPTION_KEY and the old one in PURSER_ENCRYPTION_OLD_KEYS;
    /// then remove the old key. Safe to run again.
    Rotate {
        #[arg(long, env = "PURSER_DATABASE_URL", default_value = "sqlite://purser.db")]
        database_url: String,
        /// File holding the key the secrets are sealed with now.
        #[arg(long)]
        from_key_file: PathBuf,
        /// File holding the new key (e.g. from `openssl rand -base64 32`).
        #[arg(long)]
        to_key_file: PathBuf,
    },
}

fn main() -> ExitCode {
    unset_empty_settings();
    let cli = match with_config_file(Cli::parse()) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Policy { command: PolicyCommand::Check { dir, deny_warnings } } => {
            policy_check(&dir, deny_warnings)
        }
        Command::Policy { command: PolicyCommand::Test { dir } } => policy_test(&dir),
        Command::Bench(args) => bench(args),
        Command::BenchWebhooks(args) => bench_webhooks(args),
        Command::BenchStore(args) => bench_store(args),
        Command::Webhook { command: WebhookCommand::Verify { secret, id, timestamp, signature } } => {
            webhook_verify(&secret, &id, &timestamp, &signature)
        }
        Command::Audit { command: AuditCommand::Verify { database_url, expect_head } } => {
            audit_verify(&database_url, expect_head.as_ref())
        }
        Command::Audit { command: AuditCommand::Head { database_url } } => audit_head(&database_url),
        Command::Secrets { command: SecretsCommand::Rotate { database_url, from_key_file, to_key_file } } => {
            secrets_rotate(&database_url, &from_key_file, &to_key_file)
        }
        Command::Backup { database_url, to } => backup(&database_url, &to),
        Command::Token => {
            println!("{}", purser::auth::generate(purser::auth::ADMIN_TOKEN_PREFIX));
            Ok(())
        }
        Command::Openapi => {
            print!("{}", purser::api::openapi_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An empty `PURSER_*` variable counts as unset, as deployment templates
/// write one (`PURSER_TRUSTED_PROXIES=${PROXIES:-}`) to mean "none": it then
/// takes its default (or the config file's value) instead of failing to
/// parse as a list of one empty CIDR. Runs before any thread is started.
fn unset_empty_settings() {
    let empty: Vec<_> = std::env::vars_os()
        .filter(|(name, value)| value.is_empty() && name.to_str().is_some_and(|n| n.starts_with("PURSER_")))
        .map(|(name, _)| name)
        .collect();
    for name in empty {
        std::env::remove_var(name);
    }
}

/// `serve --config FILE`: the file's settings become the `PURSER_*`
/// variables not already set, and the command line is read again, so flags
/// beat variables beat the file. Runs before any thread is started, so
/// changing the environment is safe.
fn with_config_file(cli: Cli) -> Result<Cli, String> {
    let Command::Serve(config) = &cli.command else { return Ok(cli) };
    let Some(path) = &config.config_file else { return Ok(cli) };
    for (name, value) in Config::env_from_file(path)? {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(Cli::parse())
}

fn policy_check(dir: &std::path::Path, deny_warnings: bool) -> anyhow::Result<()> {
    let set = PolicySet::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    for name in set.names() {
        let p = set.get(name).expect("listed policy exists");
        println!("ok  {name}  {}  ({})", p.version, p.source);
    }
    for warning in set.warnings() {
        eprintln!("warning: {warning}");
    }
    let n = set.len();
    let warnings = match set.warnings().len() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        w => format!(", {w} warnings"),
    };
    println!("{n} {} valid in {}{warnings}", if n == 1 { "policy" } else { "policies" }, dir.display());
    if deny_warnings && !set.warnings().is_empty() {
        anyhow::bail!("warnings are denied (--deny-warnings)");
    }
    Ok(())
}

#[tokio::main]
async fn audit_verify(
    database_url: &str,
    expect: Option<&purser::service::audit::Head>,
) -> anyhow::Result<()> {
    let store = purser::store::Store::open_existing(database_url).await?;
    store.seal_audit().await?;
    let verified = purser::service::audit::verify(&store, expect).await?;
    let head = verified.head.map_or("empty".to_owned(), |h| format!("head {h}"));
    println!("audit chain intact: {} records, {head}", verified.checked);
    Ok(())
}

#[tokio::main]
async fn audit_head(database_url: &str) -> anyhow::Result<()> {
    let store = purser::store::Store::open_existing(database_url).await?;
    store.seal_audit().await?;
    let head =
        purser::service::audit::head(&store).await?.ok_or(anyhow::anyhow!("the audit log is empty"))?;
    println!("{head}");
    Ok(())
}

#[tokio::main]
async fn secrets_rotate(
    database_url: &str,
    from: &std::path::Path,
    to: &std::path::Path,
) -> anyhow::Result<()> {
    use purser::webhooks::secretbox::SecretBox;
    let key = |path: &std::path::Path| -> anyhow::Result<SecretBox> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        SecretBox::from_key(&text).with_context(|| format!("the key in {}", path.display()))
    };
    let (from, to) = (key(from)?, key(to)?);
    let store = purser::store::Store::open_existing(database_url).await?;
    let done = purser::service::secrets::rotate(&store, &from, &to).await?;
    println!("re-sealed {} secret(s) under the new key; {} already under it", done.resealed, done.already);
    if done.changed > 0 {
        anyhow::bail!(
            "{} secret(s) changed meanwhile (an endpoint's secret was rotated): run again",
            done.changed
        );
    }
    Ok(())
}

#[tokio::main]
async fn backup(database_url: &str, to: &std::path::Path) -> anyhow::Result<()> {
    if to.exists() {
        anyhow::bail!("{} exists; a backup never overwrites a file", to.display());
    }
    if purser::store::Backend::of(database_url)? == purser::store::Backend::Postgres {
        let status = std::process::Command::new("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(to)
            .arg(database_url)
            .status()
            .context("running pg_dump (install the PostgreSQL client tools)")?;
        anyhow::ensure!(status.success(), "pg_dump failed ({status})");
        println!("backup written: {} (pg_dump custom format; restore with pg_restore)", to.display());
        return Ok(());
    }
    let target = to.to_str().context("the backup path is not UTF-8")?;
    let store = purser::store::Store::open_existing(database_url).await?;
    store.backup_sqlite(target).await?;
    store.close().await;
    // The copy is only a backup if it can be restored: open it and walk
    // its audit chain.
    let copy = purser::store::Store::open_existing(&format!("sqlite://{target}")).await?;
    let verified = purser::service::audit::verify(&copy, None).await?;
    let head = verified.head.map_or("empty".to_owned(), |h| format!("head {h}"));
    println!("backup written: {} ({} audit records intact, {head})", to.display(), verified.checked);
    Ok(())
}

#[tokio::main]
async fn bench_store(args: purser::bench::StoreBenchArgs) -> anyhow::Result<()> {
    purser::bench::run_store(args).await
}

#[tokio::main]
async fn bench_webhooks(args: purser::bench::WebhookBenchArgs) -> anyhow::Result<()> {
    purser::bench::run_webhooks(args).await
}

#[tokio::main]
async fn bench(args: purser::bench::BenchArgs) -> anyhow::Result<()> {
    purser::bench::run(args).await?.print();
    Ok(())
}

fn webhook_verify(secret: &str, id: &str, timestamp: &str, signature: &str) -> anyhow::Result<()> {
    use purser::webhooks::signature::{verify, Secret};
    let secret = Secret::parse(secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)?;
    let now = chrono::Utc::now().timestamp();
    verify(&secret, id, timestamp, signature, &body, now).map_err(|e| anyhow::anyhow!("invalid: {e}"))?;
    println!("valid");
    Ok(())
}

fn policy_test(dir: &std::path::Path) -> anyhow::Result<()> {
    let set = PolicySet::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = purser::policy::run_cases(&set, &dir.join("tests")).map_err(|e| anyhow::anyhow!("{e}"))?;
    for failure in &report.failures {
        println!("FAIL {failure}");
    }
    println!("{} passed, {} failed", report.passed, report.failures.len());
    anyhow::ensure!(report.ok(), "{} policy cases failed", report.failures.len());
    Ok(())
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(&config.log_format);
    let dev_mode = config.dev;
    let listen = config.listen;
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    if dev_mode {
        let creds = dev::bootstrap(&app.state.svc, app.state.has_config_admin_token()).await?;
        if creds.agent.is_none() {
            tracing::warn!(
                policy = dev::DEMO_POLICY,
                "no policy named {:?} in the policies directory: skipped the demo agent",
                dev::DEMO_POLICY
            );
        }
        let store = match app.state.svc.store.backend() {
            purser::store::Backend::Sqlite => "embedded SQLite",
            purser::store::Backend::Postgres => "PostgreSQL",
        };
        // Where the admin token is, when it was configured rather than minted.
        let admin_token = match &app.state.config.admin_token_file {
            Some(file) => format!("$(cat {})", file.display()),
            None => "$PURSER_ADMIN_TOKEN".to_owned(),
        };
        let admin = creds.admin_token.clone().unwrap_or(admin_token);
        print_dev_banner(addr, app.tls.is_some(), store, &creds, &admin, &app.state.config.policies);
    }
    tracing::info!(%addr, policies = app.state.svc.policies.current().len(), "purser listening");
    let plain_and_exposed = !addr.ip().is_loopback() && app.tls.is_none() && !dev_mode;
    if plain_and_exposed && app.state.config.trusted_proxies.is_empty() {
        // Bearer credentials would cross the network in the clear.
        tracing::warn!(
            %addr,
            "listening on a non-loopback address over plain HTTP with no declared proxy: set \
             PURSER_TLS_CERT and PURSER_TLS_KEY, or terminate TLS in a proxy and set PURSER_TRUSTED_PROXIES to it"
        );
    }
    spawn_reload_on_sighup(app.state.clone(), app.tls.clone());
    app.serve(listener, shutdown_signal()).await
}

fn print_dev_banner(
    addr: std::net::SocketAddr,
    tls: bool,
    store: &str,
    creds: &dev::DevCredentials,
    admin: &str,
    policies: &std::path::Path,
) {
    let base = format!("{}://{addr}", if tls { "https" } else { "http" });
    println!(
        r#"
purser is running in dev mode ({store}, sandbox provider).

  API          {base}
  OpenAPI      {base}/openapi.json
  Admin token  {admin}
  Console      {base}/console  (approver token {approver})"#,
        approver = creds.approver_token,
    );
    match &creds.agent {
        Some((agent, key)) => println!(
            r#"  Demo agent   {id} (policy "{policy}")
  Agent key    {key}

These credentials are minted at every dev start and shown only now.
Try a payment:

  curl -s {base}/v1/payments \
    -H 'Authorization: Bearer {key}' \
    -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $(date +%s%N)" \
    -d '{{"amount":"42.50","currency":"USD","merchant_id":"aws.amazon.com","merchant_category":"cloud","rail":"card","description":"GPU hours"}}'

Then list it:  curl -s {base}/v1/payments -H 'Authorization: Bearer {key}'
Admin view:    curl -s {base}/v1/agents -H "Authorization: Bearer {admin}"
Above 100.00 the demo policy asks a person: pay "150.00" and approve it in
the console.
"#,
            id = agent.id,
            policy = agent.policy,
        ),
        None => println!(
            r#"  Demo agent   skipped: no policy named "{demo}" in {dir}

These credentials are minted at every dev start and shown only now.
Create an agent under one of your policies:

  curl -s {base}/v1/agents -H "Authorization: Bearer {admin}" \
    -H 'Content-Type: application/json' -d '{{"name":"my-agent","policy":"<policy name>"}}'
"#,
            demo = dev::DEMO_POLICY,
            dir = policies.display(),
        ),
    }
}

/// SIGHUP re-reads the policy directory and the TLS certificate; a bad edit
/// keeps the last good one.
fn spawn_reload_on_sighup(state: Arc<purser::api::AppState>, tls: Option<purser::tls::Tls>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match state.svc.policies.reload(&state.config.policies) {
                Ok(n) => tracing::info!(policies = n, "policies reloaded"),
                Err(e) => {
                    tracing::error!(errors = %e, "policy reload failed; keeping the last good policies")
                }
            }
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => tracing::error!(
                        error = %format!("{e:#}"),
                        "TLS reload failed; keeping the last good certificate"
                    ),
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
