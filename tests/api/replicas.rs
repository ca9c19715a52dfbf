//! Two real `purser serve` processes on one PostgreSQL database
//! (`PURSER_TEST_DATABASE_URL`, a schema per test): limits, idempotency
//! keys, forwarding, the audit chain and webhooks hold across them, also
//! when one of them is killed mid-load.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::concurrency::{amounts, replay_in_commit_order};
use crate::helpers::*;
use crate::webhooks::{register, Receiver};

const POLICY: &str = r#"
[policies.shared]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "100.00"
daily_limit = "100.00"
velocity = { max = 100000, per = "1m" }
"#;

/// Policies and credentials both replicas share.
struct Cluster {
    database_url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `None` (the test is skipped) without `PURSER_TEST_DATABASE_URL`
    /// outside CI.
    async fn new() -> Option<Cluster> {
        postgres_url()?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shared.toml"), POLICY).unwrap();
        Some(Cluster { database_url: fresh_postgres().await, dir })
    }

    async fn replica(&self) -> Process {
        let replica = Process::spawn(self.dir.path(), |command| {
            command
                .env("PURSER_DATABASE_URL", &self.database_url)
                .env("PURSER_ENCRYPTION_KEY", "replica-test-encryption-key-0123456789")
                .env("PURSER_RATE_LIMIT_READS", "0")
                .env("PURSER_RATE_LIMIT_WRITES", "0")
                .env("PURSER_WEBHOOK_POLL", "50ms")
                .env("PURSER_WEBHOOK_TIMEOUT", "2s")
                // A dead replica's forward claims lapse after 2 x 2 s + 5 s.
                .env("PURSER_PROVIDER_DEADLINE", "2s")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
        });
        replica.until_ready().await;
        replica
    }
}

/// A payment of 0.10; `None` if it got no `201` (its replica is dead).
async fn send(replica: &Client, key: &str, idempotency_key: String) -> Option<Value> {
    let response = replica
        .http
        .post(replica.url("/v1/payments"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(&payment("0.10", "aws.amazon.com"))
        .send()
        .await
        .ok()?;
    (response.status() == StatusCode::CREATED).then_some(())?;
    response.json().await.ok()
}

fn by_id(results: &[(StatusCode, Value)]) -> HashMap<String, &Value> {
    results.iter().map(|(_, p)| (p["id"].as_str().unwrap().to_owned(), p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_payments_split_over_two_replicas_match_a_sequential_model() {
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    let agent = a.create_agent("shared").await;
    let amounts = amounts(500);
    let results = join_all(amounts.iter().enumerate().map(|(i, amount)| {
        let (replica, key) = (if i % 2 == 0 { &a } else { &b }, &agent.key);
        async move { replica.pay(key, &format!("r{i}"), payment(amount, "aws.amazon.com")).await }
    }))
    .await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::CREATED), "every request decided");
    let by_id = by_id(&results);
    assert_eq!(by_id.len(), 500);

    let limit = Decimal::new(10000, 2);
    let (spent, checked) = replay_in_commit_order(&b, &agent.id, &by_id, limit).await;
    assert_eq!(checked, 500);
    let approved: Decimal = results
        .iter()
        .filter(|(_, p)| p["status"] == "approved")
        .map(|(_, p)| p["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(approved, spent);
    assert!(approved <= limit && approved > limit - Decimal::new(3000, 2), "{approved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_raced_to_both_replicas_makes_one_payment() {
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    let agent = a.create_agent("shared").await;
    for i in 0..20 {
        let key = format!("same-{i}");
        let body = payment("1.00", "aws.amazon.com");
        let (first, second) =
            tokio::join!(a.pay(&agent.key, &key, body.clone()), b.pay(&agent.key, &key, body));
        assert_eq!(first.1["id"], second.1["id"], "round {i}: two payments for one key");
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "round {i}: one creates, one replays");
    }
    let (_, list) = b.get(&agent.key, "/v1/payments?limit=100").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_replica_mid_load_loses_no_payment_audit_record_or_webhook() {
    let Some(cluster) = Cluster::new().await else { return };
    let (mut a, b) = (cluster.replica().await, cluster.replica().await);
    let receiver = Receiver::start(&[]).await;
    register(&a, &receiver.url, json!(["payment.approved", "payment.succeeded"])).await;
    let agent = a.create_agent("shared").await;

    // 30 waves of 10 concurrent payments over both replicas; replica A is
    // killed (SIGKILL) while wave 10 is in flight.
    let mut results = Vec::new();
    for wave in 0..30 {
        let requests = join_all((0..10).map(|j| {
            let i = wave * 10 + j;
            let replica = if i % 2 == 0 { &a.client } else { &b.client };
            send(replica, &agent.key, format!("k{i}"))
        }));
        if wave == 10 {
            let kill = async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                a.child.start_kill().unwrap();
            };
            let (answers, ()) = tokio::join!(requests, kill);
            results.extend(answers);
        } else {
            results.extend(requests.await);
        }
    }
    let lost = results.iter().filter(|r| r.is_none()).count();
    assert!(lost > 0, "the replica died while requests were still coming");
    let acknowledged: Vec<Value> =
        results.into_iter().flatten().filter(|p| p["status"] == "approved").collect();
    assert!(acknowledged.len() >= 100, "{} acknowledged", acknowledged.len());

    // Every payment a client was told is approved gets forwarded (the
    // survivor's sweep takes over the dead replica's once their claims
    // lapse) ...
    for p in &acknowledged {
        b.wait_for_within(&agent.key, p["id"].as_str().unwrap(), "succeeded", Duration::from_secs(20)).await;
    }
    // ... has its decision in an intact audit chain ...
    let (_, audit) = b.admin(Method::GET, &format!("/v1/audit?agent={}&limit=1000", agent.id), None).await;
    let decided: HashSet<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "payment.approved")
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert!(acknowledged.iter().all(|p| decided.contains(p["id"].as_str().unwrap())));
    let store = purser::store::Store::connect(&cluster.database_url).await.unwrap();
    purser::service::audit::verify(&store, None).await.expect("audit chain intact");

    // ... and both its webhooks delivered (leases of the dead replica's
    // claims expire; the survivor sends them).
    let expected: HashSet<(String, String)> = acknowledged
        .iter()
        .flat_map(|p| {
            let id = p["id"].as_str().unwrap().to_owned();
            [("payment.approved".to_owned(), id.clone()), ("payment.succeeded".to_owned(), id)]
        })
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..600 {
        seen = receiver
            .received()
            .iter()
            .map(|d| {
                let event: Value = serde_json::from_str(&d.body).unwrap();
                (event["type"].as_str().unwrap().to_owned(), event["data"]["id"].as_str().unwrap().to_owned())
            })
            .collect();
        if expected.is_subset(&seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "{} webhooks never arrived, e.g. {:?}", missing.len(), missing.first());
}

/// A key allowed 10 writes a minute gets 10 of 30 through two replicas
/// (not 20): its budget lives in the database both share. Reads of a key
/// with its own read budget hold the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keys_rate_limit_holds_across_replicas() {
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.replica().await, cluster.replica().await);
    let agent = a.create_agent("shared").await;
    let path = format!("/v1/agents/{}/keys", agent.id);
    let limited = json!({ "rate_limit": { "writes_per_minute": 10, "reads_per_minute": 20 } });
    let (status, key) = a.admin(Method::POST, &path, Some(limited)).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap();

    let writes = join_all((0..30).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        async move { replica.pay(key, &format!("w{i}"), payment("0.10", "aws.amazon.com")).await.0 }
    }))
    .await;
    let created = writes.iter().filter(|s| **s == StatusCode::CREATED).count();
    let limited = writes.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((created, limited), (10, 20), "{writes:?}");

    let reads = join_all((0..60).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        async move { replica.get(key, "/v1/payments?limit=1").await.0 }
    }))
    .await;
    // Never more than the budget; a lease a replica took and did not get to
    // spend makes it a little less.
    let served = reads.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((10..=20).contains(&served), "at most the 20 reads of the budget: {reads:?}");
}
