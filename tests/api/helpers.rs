//! `spawn_app()` and a small typed client.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use purser::app::App;
use purser::clock::{Clock, ManualClock};
use purser::config::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "psr_admin_test-token-0123456789abcdefghijklmnop";
/// The encryption key of gateways the tests start in production mode.
pub const PRODUCTION_ENCRYPTION_KEY: &str = "production-test-encryption-key-Vb93kLq0Zx7R";

/// A policy for most tests: no ladder, limits chosen so boundaries are easy
/// to hit, calendar windows in New York time.
pub const TEST_POLICY: &str = r#"
[policies.test]
trust_level = "custom"
currency = "USD"
currencies = ["USD", "USDC"]
rails = ["card", "usdc"]
per_tx_limit = "100.00"
daily_limit = "100.00"
weekly_limit = "300.00"
velocity = { max = 100000, per = "1m" }
timezone = "America/New_York"
approval_threshold = "80.00"
new_merchant_approval_ratio = "1"

[policies.quorum]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "100.00"
daily_limit = "100.00"
velocity = { max = 100000, per = "1m" }
approval_threshold = "10.00"
new_merchant_approval_ratio = "1"
approvals_required = 2
approval_timeout = "1h"

[policies.strict]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "50.00"
daily_limit = "100.00"
velocity = { max = 100000, per = "1m" }
allowed_scopes = ["compute"]

[[policies.strict.merchant_allowlist]]
merchant_id = "aws.amazon.com"
max_per_tx = "30.00"

[[policies.strict.merchant_allowlist]]
category = "cloud"
"#;

/// A policy `name` paying on `rail` through `provider`: 100.00 per payment
/// and per day, human approval above 80.00; USDC accepted on `usdc`.
pub fn provider_policy(name: &str, rail: &str, provider: &str) -> String {
    let currencies = if rail == "usdc" { r#"["USD", "USDC"]"# } else { r#"["USD"]"# };
    format!(
        r#"
[policies.{name}]
trust_level = "custom"
currency = "USD"
currencies = {currencies}
rails = ["{rail}"]
providers = {{ {rail} = "{provider}" }}
per_tx_limit = "100.00"
daily_limit = "100.00"
velocity = {{ max = 100000, per = "1m" }}
approval_threshold = "80.00"
new_merchant_approval_ratio = "1"
"#
    )
}

/// Spawns a gateway with `policies` and a providers file holding
/// `providers` (written to `dir`, which the caller keeps alive).
pub async fn spawn_with_providers(policies: &str, dir: &tempfile::TempDir, providers: &str) -> TestApp {
    let path = dir.path().join("providers.toml");
    std::fs::write(&path, providers).unwrap();
    spawn_app_tweaked(policies, default_start(), move |config| config.providers_file = Some(path)).await
}

/// A typed client of one gateway.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: String) -> Client {
        Client { base, http: reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap() }
    }
}

/// A `purser serve` process (the real binary); killed when dropped.
pub struct Process {
    pub client: Client,
    pub child: tokio::process::Child,
}

impl std::ops::Deref for Process {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Process {
    /// Starts `purser serve --dev` on a free loopback port with the test
    /// admin token and the policies in `policies` (the demo policy `--dev`
    /// needs is added); `setup` adds the rest (database, keys, output).
    /// Dev mode is for plain-http webhooks to the tests' receivers.
    pub fn spawn(policies: &std::path::Path, setup: impl FnOnce(&mut tokio::process::Command)) -> Process {
        std::fs::write(policies.join("demo.toml"), include_str!("../../policies/demo.toml")).unwrap();
        Process::serve(&["--dev"], policies, setup)
    }

    /// Starts `purser serve ARGS` like `spawn`, without `--dev` unless
    /// `args` has it.
    pub fn serve(
        args: &[&str],
        policies: &std::path::Path,
        setup: impl FnOnce(&mut tokio::process::Command),
    ) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_purser"));
        command
            .arg("serve")
            .args(args)
            .env("PURSER_LISTEN", format!("127.0.0.1:{port}"))
            .env("PURSER_POLICIES", policies)
            .env("PURSER_ADMIN_TOKEN", ADMIN_TOKEN)
            .kill_on_drop(true);
        setup(&mut command);
        let child = command.spawn().expect("the purser binary starts");
        Process { client: Client::new(format!("http://127.0.0.1:{port}")), child }
    }

    /// `purser serve` in production mode, over HTTPS when given `tls` (the
    /// certificate and key files).
    pub fn production(
        dir: &std::path::Path,
        tls: Option<(&std::path::Path, &std::path::Path)>,
        setup: impl FnOnce(&mut tokio::process::Command),
    ) -> Process {
        let policies = dir.join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("test.toml"), TEST_POLICY).unwrap();
        let mut process = Process::serve(&[], &policies, |command| {
            command
                .env("PURSER_DATABASE_URL", format!("sqlite://{}", dir.join("db/purser.db").display()))
                .env("PURSER_ENCRYPTION_KEY", PRODUCTION_ENCRYPTION_KEY)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            if let Some((cert, key)) = tls {
                command.env("PURSER_TLS_CERT", cert).env("PURSER_TLS_KEY", key);
            }
            setup(command);
        });
        if tls.is_some() {
            process.client.base = process.client.base.replacen("http://", "https://", 1);
        }
        process
    }

    /// Runs `purser serve` in production mode (the test admin token and
    /// encryption key, a database in `dir`) with `setup`'s settings, expects
    /// it to refuse to start, and returns what it printed on stderr.
    pub async fn refused(dir: &std::path::Path, setup: impl FnOnce(&mut tokio::process::Command)) -> String {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_purser"));
        command
            .arg("serve")
            .env("PURSER_LISTEN", "127.0.0.1:0")
            .env("PURSER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PURSER_ENCRYPTION_KEY", PRODUCTION_ENCRYPTION_KEY)
            .env("PURSER_DATABASE_URL", format!("sqlite://{}", dir.join("db/purser.db").display()))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        setup(&mut command);
        // A gateway that starts anyway would serve forever: give up on it.
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
            .await
            .expect("serve started anyway")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "serve started anyway: {stderr}");
        stderr
    }

    /// Waits until `/readyz` answers (store open, policies loaded).
    pub async fn until_ready(&self) {
        for _ in 0..300 {
            if self.http.get(self.url("/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{} never became ready", self.base);
    }
}

/// A gateway running in the test process.
pub struct TestApp {
    client: Client,
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    /// Stops the gateway (server and workers) when sent or dropped.
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// A settings change applied before the gateway starts.
pub trait Tweak: FnOnce(&mut Config) {}
impl<F: FnOnce(&mut Config)> Tweak for F {}

/// Webhook tests deliver to receivers on this machine: dev mode allows
/// plain http and loopback targets, which production refuses.
pub fn local_webhooks(config: &mut Config) {
    config.dev = true;
}

/// Thursday 2026-11-26 12:00 in New York.
pub fn default_start() -> DateTime<Utc> {
    "2026-11-26T17:00:00Z".parse().unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TEST_POLICY, default_start()).await
}

pub async fn spawn_app_with(policies: &str, start: DateTime<Utc>) -> TestApp {
    spawn_app_tweaked(policies, start, |_| {}).await
}

/// A directory for one gateway, with `policies` in `policies/test.toml`.
fn test_dir(policies: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("test.toml"), policies).unwrap();
    dir
}

pub async fn spawn_app_tweaked(policies: &str, start: DateTime<Utc>, tweak: impl Tweak) -> TestApp {
    let dir = test_dir(policies);
    let db = match std::env::var("PURSER_TEST_BACKEND").as_deref() {
        Ok("postgres") => fresh_postgres().await,
        _ => format!("sqlite://{}", dir.path().join("purser.db").display()),
    };
    spawn_app_in(dir, db, start, tweak).await
}

/// The PostgreSQL for tests, `PURSER_TEST_DATABASE_URL`. Without it the
/// tests that need it are skipped (`None`), except under CI, where it must
/// be set.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PURSER_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI must set PURSER_TEST_DATABASE_URL: the PostgreSQL tests may not be skipped there")
        }
        Err(_) => {
            eprintln!("PURSER_TEST_DATABASE_URL is not set: skipping a PostgreSQL test");
            None
        }
    }
}

/// A database URL on `PURSER_TEST_DATABASE_URL` with a schema of its own,
/// so every test starts empty and tests run in parallel.
pub async fn fresh_postgres() -> String {
    let base = postgres_url().expect("PURSER_TEST_BACKEND=postgres needs PURSER_TEST_DATABASE_URL");
    purser::store::create_schema(&base, "t").await.expect("test PostgreSQL reachable")
}

/// A gateway with the test policies on a fresh PostgreSQL schema, whatever
/// `PURSER_TEST_BACKEND` says; `None` where PostgreSQL tests are skipped.
pub async fn spawn_app_on_postgres() -> Option<TestApp> {
    postgres_url()?;
    Some(
        spawn_app_in(test_dir(TEST_POLICY), fresh_postgres().await, default_start(), |_: &mut Config| {})
            .await,
    )
}

/// Stops `app` (its server and workers, as a crash would between two
/// statements: nothing in flight is committed) and starts a new gateway on
/// its database and policies, with its own clock.
pub async fn restart(app: TestApp, start: DateTime<Utc>, tweak: impl Tweak) -> TestApp {
    let TestApp { stop, served, _dir, database_url, .. } = app;
    let _ = stop.send(());
    let _ = served.await;
    spawn_app_in(_dir, database_url, start, tweak).await
}

async fn spawn_app_in(
    dir: tempfile::TempDir,
    db: String,
    start: DateTime<Utc>,
    tweak: impl Tweak,
) -> TestApp {
    let policy_dir = dir.path().join("policies");
    let mut config = Config::for_tests(db.clone(), policy_dir, ADMIN_TOKEN.to_owned());
    tweak(&mut config);
    let clock = Arc::new(ManualClock::new(start));
    let app = App::build(config, clock.clone() as Arc<dyn Clock>).await.expect("app builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        client: Client::new(format!("http://{addr}")),
        clock,
        database_url: db,
        stop,
        served,
        _dir: dir,
    }
}

impl std::ops::Deref for TestApp {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

pub struct Agent {
    pub id: String,
    pub key: String,
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(ADMIN_TOKEN, method, path, body).await
    }

    /// A request with `token` as the bearer credential.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_parts(req.send().await.unwrap()).await
    }

    pub async fn create_agent(&self, policy: &str) -> Agent {
        let (status, agent) = self
            .admin(reqwest::Method::POST, "/v1/agents", Some(json!({ "name": "tester", "policy": policy })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        let id = agent["id"].as_str().unwrap().to_owned();
        let (status, key) =
            self.admin(reqwest::Method::POST, &format!("/v1/agents/{id}/keys"), Some(json!({}))).await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        Agent { id, key: key["key"].as_str().unwrap().to_owned() }
    }

    pub async fn pay(&self, key: &str, idempotency_key: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url("/v1/payments"))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        into_parts(resp).await
    }

    /// `/metrics` as the admin reads it: the Prometheus text.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        into_parts(self.http.get(self.url(path)).bearer_auth(key).send().await.unwrap()).await
    }

    /// A POST with `token` as the bearer credential.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        into_parts(self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
    }

    /// Waits until the forwarder has moved `payment_id` past `approved`.
    pub async fn settled(&self, key: &str, payment_id: &str) -> Value {
        for _ in 0..200 {
            let (_, p) = self.get(key, &format!("/v1/payments/{payment_id}")).await;
            if p["status"] != "approved" {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("payment {payment_id} was never forwarded");
    }
}

impl Client {
    /// Creates an approver; returns (id, token).
    pub async fn create_approver(&self, name: &str) -> (String, String) {
        let (status, a) =
            self.admin(reqwest::Method::POST, "/v1/approvers", Some(json!({ "name": name }))).await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        (a["id"].as_str().unwrap().to_owned(), a["token"].as_str().unwrap().to_owned())
    }

    /// `verdict` is "approve" or "deny".
    pub async fn vote(
        &self,
        token: &str,
        approval_id: &str,
        verdict: &str,
        comment: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req =
            self.http.post(self.url(&format!("/v1/approvals/{approval_id}/{verdict}"))).bearer_auth(token);
        if let Some(c) = comment {
            req = req.json(&json!({ "comment": c }));
        }
        into_parts(req.send().await.unwrap()).await
    }

    /// Waits (briefly) until `payment_id` has `status`; returns the payment.
    pub async fn wait_for(&self, key: &str, payment_id: &str, status: &str) -> Value {
        self.wait_for_within(key, payment_id, status, std::time::Duration::from_secs(3)).await
    }

    /// Waits up to `limit` until `payment_id` has `status`; returns the payment.
    pub async fn wait_for_within(
        &self,
        key: &str,
        payment_id: &str,
        status: &str,
        limit: std::time::Duration,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..limit.as_millis() / 10 {
            let (_, p) = self.get(key, &format!("/v1/payments/{payment_id}")).await;
            if p["status"] == status {
                return p;
            }
            last = p;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("payment {payment_id} never reached {status}: {last}");
    }
}

pub async fn into_parts(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub fn payment(amount: &str, merchant: &str) -> Value {
    json!({ "amount": amount, "currency": "USD", "merchant_id": merchant, "merchant_category": "cloud", "rail": "card" })
}

pub fn reason_codes(p: &Value) -> Vec<String> {
    p["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}
