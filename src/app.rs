//! Wiring: the shared state every handler and worker uses, and serving it.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::AppState;
use crate::auth;
use crate::clock::Clock;
use crate::config::Config;
use crate::policy::PolicySet;
use crate::providers::{Forwarder, ProviderSettings, Providers};
use crate::service::alerts::{Alerts, Thresholds};
use crate::service::retention::Retention;
use crate::service::{Policies, Services};
use crate::store::Store;
use crate::tls::Tls;
use crate::webhooks::secretbox::SecretBox;
use crate::webhooks::ssrf::TargetPolicy;
use crate::webhooks::{DeliverySettings, Dispatcher};

/// A running gateway: its state and the background workers it owns.
pub struct App {
    pub state: Arc<AppState>,
    /// The certificate when purser serves HTTPS itself (`--tls-cert`).
    pub tls: Option<Tls>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Loads policies, opens the store (applying migrations) and starts the
    /// workers. Fails on anything that would make decisions unsafe.
    pub async fn build(mut config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        config.read_secret_files().map_err(anyhow::Error::msg)?;
        config.validate().map_err(anyhow::Error::msg)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(cert, key, config.tls_min_version)?),
            _ => None,
        };
        // Counters start being recorded now, not at the first scrape.
        crate::api::metrics_handle();
        let policies = PolicySet::load_dir(&config.policies)
            .with_context(|| format!("loading policies from {}", config.policies.display()))?;
        let store = Store::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact_url(&config.database_url)))?;
        let provider_settings = ProviderSettings::load(config.providers_file.as_deref())?;
        let providers = Providers::new(&provider_settings)?;
        let asa_secret = provider_settings.lithic_asa_secret();
        let (forwarder, mut workers) = Forwarder::start(
            store.clone(),
            providers.clone(),
            clock.clone(),
            config.reconcile_interval,
            config.provider_deadline,
        );
        let secrets = match config.encryption_key.take() {
            Some(key) => SecretBox::from_key(&key).context("PURSER_ENCRYPTION_KEY")?,
            None => dev_secret_box(&config.database_url)?,
        }
        .with_old_keys(&std::mem::take(&mut config.encryption_old_keys))
        .context("PURSER_ENCRYPTION_OLD_KEYS")?;
        // Plain http and loopback targets only in dev mode (a local receiver
        // during development), and wherever the operator allows a network.
        let mut allowed_nets = config.webhook_allowed_nets.clone();
        if config.dev {
            allowed_nets
                .extend(["127.0.0.0/8", "::1/128"].map(|n| n.parse::<ipnet::IpNet>().expect("valid CIDR")));
        }
        let webhook_targets = TargetPolicy { allow_http: config.dev, allowed_nets };
        let alerts = Alerts::new(Thresholds {
            denials: config.alert_denials_per_minute,
            failed_auth: config.alert_failed_auth_per_minute,
            failed_auth_total: config.alert_failed_auth_total_per_minute,
            agent_requests: config.alert_agent_requests_per_minute,
        });
        let dispatcher = Dispatcher {
            store: store.clone(),
            clock: clock.clone(),
            secrets: secrets.clone(),
            targets: webhook_targets.clone(),
            settings: DeliverySettings {
                poll: config.webhook_poll,
                timeout: config.webhook_timeout,
                retry_schedule: config.webhook_retry_schedule.clone(),
            },
        };
        let svc = Arc::new(Services {
            store,
            policies: Policies::new(policies),
            clock,
            forwarder,
            secrets,
            webhook_targets,
            alerts,
        });
        let expiring = svc.clone();
        workers.push(tokio::spawn(periodically(config.approval_sweep, move || {
            expire_approvals(expiring.clone())
        })));
        if !config.retention_sweep.is_zero() {
            let retention = Retention { webhooks: Some(config.webhook_retention).filter(|d| !d.is_zero()) };
            let (store, clock) = (svc.store.clone(), svc.clock.clone());
            workers.push(tokio::spawn(periodically(config.retention_sweep, move || {
                delete_expired(store.clone(), clock.now(), retention)
            })));
        }
        if svc.store.backend() == crate::store::Backend::Postgres {
            // Decisions leave their audit records waiting; chain them
            // within moments even when nothing else writes.
            let store = svc.store.clone();
            workers.push(tokio::spawn(periodically(AUDIT_SEAL, move || seal_audit(store.clone()))));
        }
        if !config.audit_checkpoint.is_zero() {
            workers.push(tokio::spawn(send_checkpoints(svc.clone(), config.audit_checkpoint)));
        }
        workers.push(dispatcher.start()?);
        let state = Arc::new(AppState::new(svc, config, asa_secret));
        Ok(App { state, tls, workers })
    }

    /// Serves the API on `listener` until `shutdown` resolves, then stops
    /// the workers and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = crate::api::router(self.state.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        match &self.tls {
            None => axum::serve(listener, service).with_graceful_shutdown(shutdown).await?,
            Some(tls) => {
                let handle = axum_server::Handle::<std::net::SocketAddr>::new();
                let stop = handle.clone();
                // Like axum::serve's: stop accepting, let open requests finish.
                tokio::spawn(async move {
                    shutdown.await;
                    stop.graceful_shutdown(None);
                });
                axum_server::Server::from_listener(listener)
                    .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(tls.config.clone()))
                    .handle(handle)
                    .serve(service)
                    .await?
            }
        }
        for w in &self.workers {
            w.abort();
        }
        self.state.svc.store.close().await;
        Ok(())
    }
}

/// Dev mode without PURSER_ENCRYPTION_KEY: a random key kept in a file
/// beside the SQLite database (mode 0600), so endpoints registered in dev
/// still work after a restart. Never used outside `--dev`.
fn dev_secret_box(database_url: &str) -> anyhow::Result<SecretBox> {
    let Some(db) = database_url.strip_prefix("sqlite://") else {
        // Replicas must all seal and open with the same key, so it cannot
        // be one replica's file.
        anyhow::bail!(
            "with PostgreSQL, set PURSER_ENCRYPTION_KEY (the same on every replica), also in --dev"
        );
    };
    let db = db.split('?').next().unwrap_or("purser.db");
    let path = std::path::PathBuf::from(format!("{db}.key"));
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(_) => {
            let key = auth::generate("");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(&path)?, key.as_bytes())
                .with_context(|| format!("writing dev encryption key {}", path.display()))?;
            key
        }
    };
    SecretBox::from_key(key.trim()).context("dev encryption key")
}

/// Runs `round` now and then every `period`; a round that overruns delays
/// the next one.
async fn periodically<F: std::future::Future<Output = ()>>(
    period: std::time::Duration,
    round: impl Fn() -> F,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        round().await;
    }
}

/// How often a PostgreSQL replica chains the audit records decisions left
/// waiting (reads of the log chain them first anyway).
const AUDIT_SEAL: std::time::Duration = std::time::Duration::from_millis(250);

async fn seal_audit(store: Store) {
    if let Err(e) = store.seal_audit().await {
        tracing::warn!(error = %e, "could not chain the waiting audit records");
    }
}

/// Sends the audit head every `period`, the first one `period` after start
/// (a restart loop must not flood the endpoints), skipping rounds in which
/// the log did not grow.
async fn send_checkpoints(svc: Arc<Services>, period: std::time::Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tick.tick().await;
        match crate::service::audit::checkpoint(&svc, last).await {
            Ok(Some(head)) => {
                tracing::info!(%head, "sent the audit checkpoint");
                last = Some(head.seq);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not send the audit checkpoint"),
        }
    }
}

/// Expires overdue approvals (at start: deadlines that passed while the
/// gateway was down).
async fn expire_approvals(svc: Arc<Services>) {
    match crate::service::approvals::expire_overdue(&svc).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "expired overdue approvals"),
        Err(e) => tracing::warn!(error = %e, "could not expire overdue approvals"),
    }
}

/// Deletes what is past its retention at `now` (see `service::retention`).
async fn delete_expired(store: Store, now: chrono::DateTime<chrono::Utc>, retention: Retention) {
    match crate::service::retention::sweep(&store, now, retention).await {
        Ok(deleted) if deleted.total() == 0 => {}
        Ok(deleted) => tracing::info!(%deleted, "deleted data past its retention"),
        Err(e) => tracing::warn!(error = %e, "could not delete data past its retention"),
    }
}

/// A database URL safe to print: any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_in_database_urls() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("sqlite://purser.db"), "sqlite://purser.db");
    }
}
