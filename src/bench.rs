//! `purser bench`: end-to-end load through the real HTTP API.
//!
//! Starts a gateway in-process on a fresh SQLite database (or targets a
//! running one with `--url` and `--key`), fires `--requests` payments from
//! `--concurrency` concurrent clients, and prints durable decisions per
//! second and latency percentiles. Every counted decision was committed
//! (synchronous=FULL) before its response was sent. With `--asa` the
//! requests are signed Lithic card authorizations to standing cards, each
//! one a policy decision with its reservation, as the card network sends
//! them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;

const BENCH_POLICY: &str = include_str!("../benches/policies/bench.toml");

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Payments to send.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Agents the clients are spread over (each client uses one agent).
    #[arg(long, default_value_t = 8)]
    pub agents: usize,
    /// Target a running gateway instead of an in-process one (needs --key).
    #[arg(long, requires = "key")]
    pub url: Option<String>,
    /// Agent API key for --url.
    #[arg(long, hide_env_values = true)]
    pub key: Option<String>,
    /// Send Lithic card authorizations (ASA) instead of payments
    /// (in-process gateway only).
    #[arg(long, conflicts_with_all = ["url", "database_url"])]
    pub asa: bool,
    /// Run the gateways on this PostgreSQL (in a fresh schema) as
    /// `--replicas` separate `purser serve` processes, instead of one
    /// in-process gateway on a fresh SQLite file.
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Gateway processes on `--database-url`; clients are spread over them.
    #[arg(long, default_value_t = 1, requires = "database_url")]
    pub replicas: usize,
}

/// What the clients send.
#[derive(Clone)]
enum Target {
    /// Payments, one agent key per client.
    Payments(Vec<String>),
    /// Card authorizations, one standing card per client, signed with the
    /// ASA secret.
    Asa(Vec<String>),
}

/// The ASA signing secret of the in-process gateway (a fixed bench value).
const BENCH_ASA_SECRET: &str = "whsec_YmVuY2gtYXNhLXNlY3JldC0wMTIzNDU2Nzg5";

pub struct Report {
    pub requests: usize,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    pub errors: usize,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        // Index arithmetic on a sorted sample, not on money.
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(idx).copied().unwrap_or_default()
    }

    pub fn print(&self) {
        let rate = self.latencies.len() as f64 / self.elapsed.as_secs_f64();
        println!(
            "{} requests, {} concurrent clients, {:.2}s: {:.0} durable decisions/s; \
             latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            self.requests,
            self.concurrency,
            self.elapsed.as_secs_f64(),
            rate,
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let agents = args.agents.max(1);
    // The gateways started here run until the report is made.
    let (bases, target, _local, _replicas) = match (&args.url, &args.key, &args.database_url) {
        (Some(url), Some(key), _) => {
            (vec![url.trim_end_matches('/').to_owned()], Target::Payments(vec![key.clone()]), None, None)
        }
        (_, _, Some(database_url)) => {
            let replicas = Replicas::start(database_url, args.replicas.max(1)).await?;
            let target = create_agents(&http, &replicas.bases[0], &replicas.admin, agents, false).await?;
            (replicas.bases.clone(), target, None, Some(replicas))
        }
        _ => {
            let (target, local) = start_local(&http, agents, args.asa).await?;
            (vec![local.base.clone()], target, Some(local), None)
        }
    };
    let clients = match &target {
        Target::Payments(keys) | Target::Asa(keys) => keys.len(),
    };
    // Idempotency keys unique to this run, so a gateway can be benched twice.
    let run_id = crate::ids::new("bench");
    // Warm up connections and caches; not measured.
    for i in 0..clients {
        send(&http, &bases[i % bases.len()], &target, i, &format!("{run_id}-warmup-{i}")).await?;
    }

    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..args.concurrency {
        let base = bases[c % bases.len()].clone();
        let (http, next, target) = (http.clone(), next.clone(), target.clone());
        let total = args.requests;
        let run_id = run_id.clone();
        clients.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                match send(&http, &base, &target, c, &format!("{run_id}-{i}")).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut errors = 0;
    while let Some(done) = clients.join_next().await {
        let (l, e) = done?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Report { requests: args.requests, concurrency: args.concurrency, elapsed, latencies, errors })
}

/// One request of client `client`; `id` is unique per request. Succeeds
/// only if the request created a payment (or got an approval): neither
/// replays nor refusals can inflate the count.
async fn send(
    http: &reqwest::Client,
    base: &str,
    target: &Target,
    client: usize,
    id: &str,
) -> anyhow::Result<()> {
    match target {
        Target::Payments(keys) => {
            let resp = http
                .post(format!("{base}/v1/payments"))
                .bearer_auth(&keys[client % keys.len()])
                .header("Idempotency-Key", id)
                .json(&json!({ "amount": "0.01", "currency": "USD", "merchant_id": "bench.example",
                               "merchant_category": "cloud", "rail": "card" }))
                .send()
                .await?;
            if resp.status() != reqwest::StatusCode::CREATED {
                bail!("unexpected status {}", resp.status());
            }
        }
        Target::Asa(cards) => {
            let body = serde_json::to_vec(&json!({
                "token": id,
                "card": { "token": cards[client % cards.len()] },
                "amounts": { "cardholder": { "amount": 1, "currency": "USD" } },
                "merchant": { "acceptor_id": "bench.example", "descriptor": "BENCH", "mcc": "4816" },
            }))?;
            let headers = crate::providers::lithic::asa::signed_headers(BENCH_ASA_SECRET.as_bytes(), &body);
            let resp = http
                .post(format!("{base}/v1/providers/lithic/asa"))
                .headers(headers)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await?;
            let answer: serde_json::Value = resp.json().await?;
            if answer["result"] != "APPROVED" {
                bail!("unexpected answer {answer}");
            }
        }
    }
    Ok(())
}

/// An in-process gateway on a fresh temporary database with the bench
/// policy, its workers at their production pace unless `tweak` says other.
struct Local {
    base: String,
    admin: String,
    svc: Arc<crate::service::Services>,
    _dir: tempfile::TempDir,
}

async fn start_gateway(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Local> {
    let dir = tempfile::tempdir()?;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("bench.toml"), BENCH_POLICY)?;
    let admin = crate::auth::generate(crate::auth::ADMIN_TOKEN_PREFIX);
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut config = Config::for_tests(db, policies, admin.clone());
    config.approval_sweep = Duration::from_secs(1);
    config.webhook_poll = Duration::from_millis(200);
    tweak(&mut config);
    let app = App::build(config, Arc::new(SystemClock) as Arc<dyn Clock>).await?;
    let svc = app.state.svc.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    Ok(Local { base, admin, svc, _dir: dir })
}

/// Starts a gateway and creates `agents` agents; returns what the clients
/// send with: the agents' keys, or (`asa`) a standing card of each.
async fn start_local(http: &reqwest::Client, agents: usize, asa: bool) -> anyhow::Result<(Target, Local)> {
    let files = tempfile::tempdir()?;
    let providers = files.path().join("providers.toml");
    if asa {
        // Only the ASA secret is used; card issuing is never called.
        std::fs::write(files.path().join("api_key"), "unused")?;
        std::fs::write(files.path().join("asa_secret"), BENCH_ASA_SECRET)?;
        let dir = files.path().display().to_string();
        std::fs::write(
            &providers,
            format!(
                "[lithic]\nbase_url = \"http://127.0.0.1:9\"\napi_key = {{ file = {:?} }}\n\
                 asa_secret = {{ file = {:?} }}\n",
                format!("{dir}/api_key"),
                format!("{dir}/asa_secret"),
            ),
        )?;
    }
    let local = start_gateway(|c| c.providers_file = asa.then_some(providers)).await?;
    let target = create_agents(http, &local.base, &local.admin, agents, asa).await?;
    Ok((target, local))
}

/// Creates `agents` agents on the bench policy; returns what the clients
/// send with: the agents' keys, or (`asa`) a standing card of each.
async fn create_agents(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    agents: usize,
    asa: bool,
) -> anyhow::Result<Target> {
    let mut keys = Vec::new();
    for i in 0..agents {
        let agent: serde_json::Value = http
            .post(format!("{base}/v1/agents"))
            .bearer_auth(admin)
            .json(&json!({ "name": format!("bench-{i}"), "policy": "bench" }))
            .send()
            .await?
            .json()
            .await?;
        let id = agent["id"].as_str().context("agent id")?;
        let key: serde_json::Value = http
            .post(format!("{base}/v1/agents/{id}/keys"))
            .bearer_auth(admin)
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        if asa {
            let card = format!("card_bench_{i}");
            http.post(format!("{base}/v1/agents/{id}/cards"))
                .bearer_auth(admin)
                .json(&json!({ "card_token": card }))
                .send()
                .await?
                .error_for_status()?;
            keys.push(card);
        } else {
            keys.push(key["key"].as_str().context("agent key")?.to_owned());
        }
    }
    Ok(if asa { Target::Asa(keys) } else { Target::Payments(keys) })
}

/// Gateway processes (`purser serve`, this binary) on one PostgreSQL, in
/// a schema of their own; killed when dropped.
struct Replicas {
    bases: Vec<String>,
    admin: String,
    _children: Vec<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl Replicas {
    async fn start(database_url: &str, replicas: usize) -> anyhow::Result<Replicas> {
        let database_url = crate::store::create_schema(database_url, "bench").await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("bench.toml"), BENCH_POLICY)?;
        let admin = crate::auth::generate(crate::auth::ADMIN_TOKEN_PREFIX);
        let (mut bases, mut children) = (Vec::new(), Vec::new());
        for _ in 0..replicas {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = tokio::process::Command::new(std::env::current_exe()?)
                .arg("serve")
                .env("PURSER_LISTEN", format!("127.0.0.1:{port}"))
                .env("PURSER_DATABASE_URL", &database_url)
                .env("PURSER_POLICIES", dir.path())
                .env("PURSER_ADMIN_TOKEN", &admin)
                .env("PURSER_ENCRYPTION_KEY", crate::auth::generate(""))
                .env("PURSER_RATE_LIMIT_READS", "0")
                .env("PURSER_RATE_LIMIT_WRITES", "0")
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let base = format!("http://127.0.0.1:{port}");
            wait_ready(&base).await?;
            bases.push(base);
            children.push(child);
        }
        Ok(Replicas { bases, admin, _children: children, _dir: dir })
    }
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the gateway at {base} never became ready")
}

#[derive(Debug, Clone, Args)]
pub struct WebhookBenchArgs {
    /// Events in the backlog to drain.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
}

/// Webhook dispatcher throughput: puts `events` events in the outbox at once
/// (one transaction) for one endpoint on a local receiver, and measures the
/// time until the receiver has every one of them: fan-out, signing, sending
/// and recording each attempt included.
pub async fn run_webhooks(args: WebhookBenchArgs) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let receiver = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hooks = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    // Dev mode: the receiver is plain http on loopback, allowed for this run only.
    let local = start_gateway(|c| {
        c.dev = true;
        c.webhook_poll = Duration::from_millis(10);
    })
    .await?;
    let (base, admin, svc) = (&local.base, &local.admin, &local.svc);
    let created = reqwest::Client::new()
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(admin)
        .json(&json!({ "url": hooks, "events": ["*"] }))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == reqwest::StatusCode::CREATED,
        "registering the endpoint: {}",
        created.status()
    );

    let n = args.events;
    let started = Instant::now();
    let now = svc.clock.now();
    svc.store
        .write(move |tx| {
            Box::pin(async move {
                for i in 0..n {
                    tx.emit("payment.approved", &json!({ "bench": i }), now);
                }
                Ok::<_, crate::store::StoreError>(())
            })
        })
        .await?;
    let queued = started.elapsed();
    while received.load(Ordering::Relaxed) < n {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "backlog not drained in 300 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = started.elapsed();
    println!(
        "{n} webhook events (queued in {:.2}s) delivered to a local receiver in {:.2}s: {:.0} events/s",
        queued.as_secs_f64(),
        drained.as_secs_f64(),
        n as f64 / drained.as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct StoreBenchArgs {
    /// The store: `sqlite://FILE` (a fresh file is made beside it) or
    /// `postgres://...` (a fresh schema is made in it).
    #[arg(long)]
    pub database_url: String,
    /// Commits to make.
    #[arg(long, default_value_t = 5_000)]
    pub commits: usize,
    /// Concurrent committers (one connection each).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// The store's own commit rate, the ceiling the gateway is measured
/// against: each committer inserts one row and commits, with the same
/// durability settings as the gateway (SQLite `synchronous=FULL` in WAL
/// mode; PostgreSQL's defaults).
pub async fn run_store(args: StoreBenchArgs) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let (url, _dir) = match crate::store::Backend::of(&args.database_url)? {
        crate::store::Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            (format!("sqlite://{}?mode=rwc", dir.path().join("commits.db").display()), Some(dir))
        }
        crate::store::Backend::Postgres => {
            (crate::store::create_schema(&args.database_url, "bench").await?, None)
        }
    };
    let setup = "CREATE TABLE commits (id TEXT PRIMARY KEY, at TEXT NOT NULL)";
    sqlx::AnyConnection::connect(&url).await?.execute(setup).await?;
    let sqlite = url.starts_with("sqlite:");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut committers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (url, next, total) = (url.clone(), next.clone(), args.commits);
        committers.spawn(async move {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            if sqlite {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 60000",
                )
                .await?;
            }
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let mut tx =
                    if sqlite { conn.begin_with("BEGIN IMMEDIATE").await? } else { conn.begin().await? };
                sqlx::query("INSERT INTO commits (id, at) VALUES ($1, $2)")
                    .bind(crate::ids::new("c"))
                    .bind(crate::clock::format_ts(chrono::Utc::now()))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = committers.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    println!(
        "{} commits, {} concurrent committers, {:.2}s: {:.0} commits/s",
        args.commits,
        args.concurrency,
        elapsed.as_secs_f64(),
        args.commits as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
