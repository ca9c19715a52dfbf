//! Outbound webhooks end to end: a local receiver captures real deliveries,
//! which are verified by this crate and by the stock Python Standard
//! Webhooks library.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use purser::clock::Clock;
use purser::config::Config;
use purser::webhooks::signature::{verify, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
}

#[derive(Default)]
struct Inbox {
    received: Vec<Delivery>,
    /// Statuses to answer with, in order; 200 once used up.
    script: VecDeque<u16>,
}

/// A webhook receiver on a random local port.
pub(crate) struct Receiver {
    pub(crate) url: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    pub(crate) async fn start(script: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, script)
    }

    fn serve(listener: tokio::net::TcpListener, script: &[u16]) -> Receiver {
        let inbox =
            Arc::new(Mutex::new(Inbox { received: Vec::new(), script: script.iter().copied().collect() }));
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = Router::new().route("/hooks", post(receive)).with_state(inbox.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inbox }
    }

    pub(crate) fn received(&self) -> Vec<Delivery> {
        self.inbox.lock().unwrap().received.clone()
    }

    /// Waits until `n` deliveries arrived.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        for _ in 0..500 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.received());
    }
}

async fn receive(State(inbox): State<Arc<Mutex<Inbox>>>, headers: HeaderMap, body: String) -> AxumStatus {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut inbox = inbox.lock().unwrap();
    inbox.received.push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    AxumStatus::from_u16(inbox.script.pop_front().unwrap_or(200)).unwrap()
}

pub(crate) async fn register(app: &Client, url: &str, events: Value) -> (String, String) {
    let (status, e) =
        app.admin(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url, "events": events }))).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    (e["id"].as_str().unwrap().to_owned(), e["secret"].as_str().unwrap().to_owned())
}

fn verify_all(deliveries: &[Delivery], secret: &str, now: i64) {
    let secret = Secret::parse(secret).unwrap();
    for d in deliveries {
        verify(&secret, &d.id, &d.timestamp, &d.signature, d.body.as_bytes(), now)
            .unwrap_or_else(|e| panic!("{e}: {d:?}"));
    }
}

/// Verifies every delivery with the stock `standardwebhooks` Python package,
/// an implementation independent of ours. CI installs it; elsewhere the
/// check is skipped with a message when the package is missing.
fn verify_with_python_library(deliveries: &[Delivery], secret: &str) {
    let probe = std::process::Command::new("python3").args(["-c", "import standardwebhooks"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("CI").is_none(), "CI must verify with the standardwebhooks package");
        eprintln!("skipped: pip install standardwebhooks to verify with the stock library");
        return;
    }
    let cases: Vec<Value> = deliveries
        .iter()
        .map(|d| json!({ "id": d.id, "timestamp": d.timestamp, "signature": d.signature, "body": d.body }))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();
    // The library checks the timestamp against the real clock; the gateway
    // under test runs on a manual clock, so the check is pinned to the
    // delivery's own timestamp.
    let script = r#"
import json, sys
from unittest import mock
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, path = sys.argv[1], sys.argv[2]
for case in json.load(open(path)):
    headers = {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"], "webhook-signature": case["signature"]}
    now = datetime.fromtimestamp(int(case["timestamp"]), tz=timezone.utc)
    with mock.patch("standardwebhooks.webhooks.datetime") as dt:
        dt.now.return_value = now
        dt.fromtimestamp = datetime.fromtimestamp
        dt.timezone = timezone
        Webhook(secret).verify(case["body"], headers)
print("verified", len(json.load(open(path))))
"#;
    let out = std::process::Command::new("python3").args(["-c", script, secret]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks rejected a delivery:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn deliveries_are_signed_standard_webhooks_that_the_stock_library_verifies() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[]).await;
    let (_, secret) = register(&app, &receiver.url, json!(["*"])).await;
    assert!(secret.starts_with("whsec_"));
    let agent = app.create_agent("test").await;
    let (_, p) = app.pay(&agent.key, "w1", payment("30.00", "aws.amazon.com")).await;
    app.pay(&agent.key, "w2", payment("500.00", "aws.amazon.com")).await;

    // approved, succeeded, denied
    let got = receiver.wait_for(3).await;
    let types: Vec<String> = got
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap()["type"].as_str().unwrap().into())
        .collect();
    for t in ["payment.approved", "payment.succeeded", "payment.denied"] {
        assert!(types.contains(&t.to_owned()), "{t} missing from {types:?}");
    }
    let approved = got.iter().find(|d| d.body.contains("\"payment.approved\"")).unwrap();
    let body: Value = serde_json::from_str(&approved.body).unwrap();
    assert_eq!(body["data"]["id"], p["id"]);
    assert_eq!(body["data"]["amount"], "30.00");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(approved.id.starts_with("msg_"));
    assert!(approved.signature.starts_with("v1,"));

    verify_all(&got, &secret, app.clock.now().timestamp());
    verify_with_python_library(&got, &secret);
    // Our verifier refuses the same delivery 6 minutes later (replay window).
    let late = app.clock.now().timestamp() + 360;
    let s = Secret::parse(&secret).unwrap();
    assert!(verify(
        &s,
        &approved.id,
        &approved.timestamp,
        &approved.signature,
        approved.body.as_bytes(),
        late
    )
    .is_err());
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_third_attempt_with_the_same_webhook_id() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[500, 503]).await;
    let (endpoint, secret) = register(&app, &receiver.url, json!(["payment.denied"])).await;
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;

    receiver.wait_for(1).await;
    // Retry schedule in tests: 5 s, then 300 s (each ±10%).
    app.clock.advance(chrono::Duration::seconds(6));
    receiver.wait_for(2).await;
    app.clock.advance(chrono::Duration::seconds(331));
    let got = receiver.wait_for(3).await;
    assert!(got.iter().all(|d| d.id == got[0].id), "one webhook-id across retries: {got:?}");
    verify_all(&got[2..], &secret, app.clock.now().timestamp());

    // The receiver has answered; the attempt is recorded just after.
    let mut codes = Vec::new();
    for _ in 0..200 {
        let (_, attempts) =
            app.admin(Method::GET, &format!("/v1/webhook-endpoints/{endpoint}/attempts"), None).await;
        codes =
            attempts["data"].as_array().unwrap().iter().map(|a| a["status_code"].as_i64().unwrap()).collect();
        if codes.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(codes, vec![200, 503, 500], "newest first");
    let metrics = app.metrics().await;
    let failures = format!("purser_webhook_delivery_failures_total{{endpoint=\"{endpoint}\"}} 2");
    assert!(metrics.contains(&failures), "{failures} missing from:\n{metrics}");
    let per_endpoint = format!("/v1/webhook-endpoints/{endpoint}/attempts");
    let per_event = format!("/v1/webhook-events/{}/attempts", got[0].id);
    let all = crate::pagination::walk(&app, ADMIN_TOKEN, &per_endpoint, 3, "id").await;
    assert_eq!(all.len(), 3);
    // Page by page, in the same order; the event's attempts are the same ones.
    assert_eq!(crate::pagination::walk(&app, ADMIN_TOKEN, &per_endpoint, 1, "id").await, all);
    assert_eq!(crate::pagination::walk(&app, ADMIN_TOKEN, &per_event, 2, "id").await, all);
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_schedule_is_disabled_and_the_operator_told() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let dead = Receiver::start(&[500, 500, 500]).await;
    let watcher = Receiver::start(&[]).await;
    let (dead_id, _) = register(&app, &dead.url, json!(["payment.denied"])).await;
    register(&app, &watcher.url, json!(["endpoint.disabled"])).await;
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;
    dead.wait_for(1).await;
    app.clock.advance(chrono::Duration::seconds(6));
    dead.wait_for(2).await;
    app.clock.advance(chrono::Duration::seconds(331));
    dead.wait_for(3).await;

    let told = watcher.wait_for(1).await;
    let body: Value = serde_json::from_str(&told[0].body).unwrap();
    assert_eq!(body["type"], "endpoint.disabled");
    assert_eq!(body["data"]["id"], dead_id.as_str());
    let (_, endpoint) = app.admin(Method::GET, &format!("/v1/webhook-endpoints/{dead_id}"), None).await;
    assert_eq!(endpoint["disabled"], true);
    assert!(endpoint["disabled_reason"].as_str().unwrap().contains("every delivery attempt failed"));
    // Nothing more goes to a disabled endpoint.
    app.pay(&agent.key, "w2", payment("500.00", "aws.amazon.com")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dead.received().len(), 3);
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_and_keep_their_webhook_id() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    // A receiver that is down: the port is free, nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let (endpoint, secret) = register(&app, &url, json!(["payment.denied"])).await;
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;
    // Wait for the first (refused) attempt to be recorded.
    let mut first = Value::Null;
    for _ in 0..300 {
        let (_, attempts) =
            app.admin(Method::GET, &format!("/v1/webhook-endpoints/{endpoint}/attempts"), None).await;
        if let Some(a) = attempts["data"].as_array().and_then(|a| a.first()) {
            first = a.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(first["status_code"].is_null(), "no response from a closed port: {first}");
    let event_id = first["event_id"].as_str().unwrap().to_owned();

    let later = default_start() + chrono::Duration::minutes(1);
    let app = restart(app, later, local_webhooks).await;
    let receiver = Receiver::serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap(), &[]);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].id, event_id, "the same webhook-id after the restart");
    verify_all(&got, &secret, app.clock.now().timestamp());
}

#[tokio::test]
async fn webhook_targets_inside_the_network_are_refused() {
    let app = spawn_app().await; // production rules: https only, no private targets
    for url in [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/hooks",
        "https://localhost/hooks",
        "https://user:pw@example.com/hooks",
        "not a url",
    ] {
        let (status, e) = app
            .admin(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url, "events": ["*"] })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_eq!(e["error"]["code"], "invalid_webhook_url", "{url}: {e}");
    }
    let (status, _) = app
        .admin(
            Method::POST,
            "/v1/webhook-endpoints",
            Some(json!({ "url": "https://93.184.216.34/h", "events": ["payment.nope"] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_delivery_resolves_again_so_a_target_that_turns_internal_is_refused() {
    // An https URL whose name resolves to loopback, registered while that
    // was allowed (dev mode); after a restart in production mode the
    // resolver must refuse it at delivery time.
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[]).await;
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}/hooks");
    let (endpoint, _) = register(&app, &url, json!(["payment.denied"])).await;
    let app = restart(app, default_start(), |_| {}).await;
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;
    let mut error = String::new();
    for _ in 0..300 {
        let (_, attempts) =
            app.admin(Method::GET, &format!("/v1/webhook-endpoints/{endpoint}/attempts"), None).await;
        if let Some(a) = attempts["data"].as_array().and_then(|a| a.first()) {
            error = a["error"].as_str().unwrap_or_default().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(error.contains("forbidden"), "refused by the resolver: {error}");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_grace_period() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[]).await;
    let (endpoint, old) = register(&app, &receiver.url, json!(["payment.denied"])).await;
    let (status, rotated) = app
        .admin(
            Method::POST,
            &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            Some(json!({ "grace_seconds": 3600 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].signature.split(' ').count(), 2, "two signatures: {}", got[0].signature);
    verify_all(&got, &old, app.clock.now().timestamp());
    verify_all(&got, &new, app.clock.now().timestamp());
    verify_with_python_library(&got, &old);
    verify_with_python_library(&got, &new);

    app.clock.advance(chrono::Duration::seconds(3601));
    app.pay(&agent.key, "w2", payment("500.00", "aws.amazon.com")).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].signature.split(' ').count(), 1, "after the grace period only the new secret signs");
    verify_all(&got[1..], &new, app.clock.now().timestamp());
    let s = Secret::parse(&old).unwrap();
    assert!(verify(
        &s,
        &got[1].id,
        &got[1].timestamp,
        &got[1].signature,
        got[1].body.as_bytes(),
        app.clock.now().timestamp()
    )
    .is_err());
}

#[tokio::test]
async fn an_operator_can_replay_an_event_with_its_original_webhook_id() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[]).await;
    let (endpoint, _) = register(&app, &receiver.url, json!(["payment.denied"])).await;
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "w1", payment("500.00", "aws.amazon.com")).await;
    let first = receiver.wait_for(1).await[0].clone();
    let (status, r) = app
        .admin(
            Method::POST,
            &format!("/v1/webhook-events/{}/replay", first.id),
            Some(json!({ "endpoint_id": endpoint })),
        )
        .await;
    assert_eq!((status, r["queued"].as_i64()), (StatusCode::ACCEPTED, Some(1)));
    let again = receiver.wait_for(2).await[1].clone();
    assert_eq!((again.id, again.body), (first.id, first.body));
    let (status, _) = app.admin(Method::POST, "/v1/webhook-events/msg_nope/replay", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crossing_80_percent_of_a_limit_warns_once_exactly_at_the_mark() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let receiver = Receiver::start(&[]).await;
    register(&app, &receiver.url, json!(["spend.threshold_warning"])).await;
    let agent = app.create_agent("test").await;
    // Daily limit 100.00: 79.99 stays one cent below the mark, the next cent
    // reaches it, and later payments do not warn again.
    for (i, amount) in ["79.99", "0.01", "1.00"].into_iter().enumerate() {
        let (_, p) = app.pay(&agent.key, &format!("t{i}"), payment(amount, "aws.amazon.com")).await;
        assert_eq!(p["status"], "approved", "{p}");
    }
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "spend.threshold_warning");
    assert_eq!(body["data"]["window"], "daily");
    assert_eq!(body["data"]["spent"], "80.00");
    assert_eq!(body["data"]["limit"], "100.00");
    assert_eq!(body["data"]["agent_id"], agent.id.as_str());
}

/// One endpoint that takes seconds to answer holds only its own
/// deliveries: another endpoint gets event after event meanwhile.
#[tokio::test]
async fn a_slow_endpoint_does_not_hold_the_others() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| {
        local_webhooks(c);
        c.webhook_timeout = Duration::from_secs(10);
    })
    .await;
    // Answers after 3 s, each time.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hooks", slow.local_addr().unwrap());
    let hang = Router::new().route(
        "/hooks",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            AxumStatus::OK
        }),
    );
    tokio::spawn(async move { axum::serve(slow, hang).await });
    register(&app, &slow_url, json!(["payment.approved"])).await;
    let fast = Receiver::start(&[]).await;
    register(&app, &fast.url, json!(["payment.approved"])).await;

    let a = app.create_agent("test").await;
    let started = std::time::Instant::now();
    for i in 0..3 {
        app.pay(&a.key, &format!("k{i}"), payment("1.00", "aws.amazon.com")).await;
        fast.wait_for(i + 1).await;
    }
    // All three reached the fast endpoint while the slow one was still on
    // its first (a round that waited for every send would take 3 s each).
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "the fast endpoint waited for the slow one: {took:?}");
}

/// The chain's head leaves the database as a signed `audit.checkpoint`
/// every period in which the log grew, and never while it stands still.
#[tokio::test]
async fn the_audit_head_is_sent_as_a_signed_checkpoint_when_the_log_grows() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c: &mut Config| {
        local_webhooks(c);
        c.audit_checkpoint = Duration::from_millis(150);
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let (_, secret) = register(&app, &receiver.url, json!(["audit.checkpoint"])).await;
    let first = receiver.wait_for(1).await;
    let body: Value = serde_json::from_str(&first[0].body).unwrap();
    assert_eq!(body["type"], "audit.checkpoint");
    let seq = body["data"]["seq"].as_i64().unwrap();
    let (_, page) = app.admin(Method::GET, &format!("/v1/audit?after={}&limit=1", seq - 1), None).await;
    let record = &page["data"][0];
    assert_eq!(body["data"]["hash"], record["hash"]);
    assert_eq!(body["data"]["head"], format!("{seq}:{}", record["hash"].as_str().unwrap()));
    assert_eq!(page["next_cursor"], Value::Null, "the checkpoint names the newest record");

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 1, "an idle log sends no more checkpoints");
    app.create_agent("test").await;
    let both = receiver.wait_for(2).await;
    let later: Value = serde_json::from_str(&both[1].body).unwrap();
    assert!(later["data"]["seq"].as_i64().unwrap() > seq, "{later}");
    verify_all(&both, &secret, app.clock.now().timestamp());
    verify_with_python_library(&both, &secret);
}

/// The encryption key rotates with webhooks flowing: gateways that have the
/// new key and the old one for reading sign as before; `purser secrets
/// rotate` re-seals every stored secret (the rotated-out one too); then the
/// new key alone suffices. A wrong old key changes nothing.
// Several threads: the test blocks one on the CLI while the gateway in
// this process must keep driving its own database connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encryption_key_rotates_without_losing_a_signing_secret() {
    const OLD: &str = "old-encryption-key-0123456789-abcdefghij";
    const NEW: &str = "new-encryption-key-0123456789-abcdefghij";
    let with_keys = |current: &'static str, old: &'static [&'static str]| {
        move |c: &mut Config| {
            local_webhooks(c);
            c.encryption_key = Some(current.to_owned());
            c.encryption_old_keys = old.iter().map(|k| k.to_string()).collect();
        }
    };
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), with_keys(OLD, &[])).await;
    let receiver = Receiver::start(&[]).await;
    let (endpoint, _) = register(&app, &receiver.url, json!(["payment.denied"])).await;
    let path = format!("/v1/webhook-endpoints/{endpoint}/rotate-secret");
    let (_, rotated) = app.admin(Method::POST, &path, Some(json!({ "grace_seconds": 3600 }))).await;
    let secret = rotated["secret"].as_str().unwrap().to_owned();
    let agent = app.create_agent("test").await;

    let app = restart(app, default_start(), with_keys(NEW, &[OLD])).await;
    app.pay(&agent.key, "r1", payment("500.00", "aws.amazon.com")).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].signature.split(' ').count(), 2, "both secrets still sign: {}", got[0].signature);
    verify_all(&got, &secret, app.clock.now().timestamp());

    let dir = tempfile::tempdir().unwrap();
    let key_file = |name: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (old, new) = (key_file("old", OLD), key_file("new", NEW));
    let wrong = key_file("wrong", "wrong-encryption-key-0123456789-abcdefgh");
    let rotate = |from: &str, to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_purser"))
            .args(["secrets", "rotate", "--database-url", &app.database_url, "--from-key-file", from])
            .args(["--to-key-file", to])
            .output()
            .unwrap()
    };
    let out = rotate(&wrong, &new);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&endpoint), "names the endpoint");
    let out = rotate(&old, &new);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("re-sealed 2 secret(s) under the new key; 0 already"), "{said}");
    let again = rotate(&old, &new);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("re-sealed 0 secret(s) under the new key; 2 already")
    );

    let app = restart(app, default_start(), with_keys(NEW, &[])).await;
    app.pay(&agent.key, "r2", payment("500.00", "aws.amazon.com")).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].signature.split(' ').count(), 2, "{}", got[1].signature);
    verify_all(&got, &secret, app.clock.now().timestamp());
    verify_with_python_library(&got, &secret);
}
