//! No secret ever reaches the log: a real `purser serve` process at debug
//! verbosity goes through every flow that handles one, and its log lines
//! are searched for each secret and each key hash.

use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::helpers::*;

const ENCRYPTION_KEY: &str = "logs-test-encryption-key-Qz81vR5mKx2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_key_hash_is_ever_logged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.toml"), TEST_POLICY).unwrap();
    let mut app = Process::spawn(dir.path(), |command| {
        command
            .env("PURSER_DATABASE_URL", format!("sqlite://{}", dir.path().join("purser.db").display()))
            .env("PURSER_ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("PURSER_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    });
    // Drained as it is written: a full pipe would stall the server.
    let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut text = String::new();
            pipe.unwrap().read_to_string(&mut text).await.unwrap();
            text
        })
    };
    let out = drain(app.child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(app.child.stderr.take().map(|p| Box::new(p) as _));
    app.until_ready().await;

    // Every flow that handles a secret.
    let agent = app.create_agent("test").await;
    app.pay(&agent.key, "k1", payment("5.00", "aws.amazon.com")).await;
    app.pay(&agent.key, "k2", payment("95.00", "aws.amazon.com")).await;
    let (_, approver) = app.create_approver("alice").await;
    let (_, approvals) = app.get(&approver, "/v1/approvals?status=pending").await;
    let approval = approvals["data"][0]["id"].as_str().unwrap().to_owned();
    app.vote(&approver, &approval, "deny", Some("no")).await;
    let (_, keys) = app.admin(Method::GET, &format!("/v1/agents/{}/keys", agent.id), None).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap();
    let (_, rotated) =
        app.admin(Method::POST, &format!("/v1/agents/{}/keys/{key_id}/rotate", agent.id), None).await;
    let hook = json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] });
    let (_, endpoint) = app.admin(Method::POST, "/v1/webhook-endpoints", Some(hook)).await;
    let wrong = "psr_agent_thisIsAWrongButPlausibleKey0123456789";
    app.get(wrong, "/v1/payments").await;
    let console = app.http.post(app.url("/console/login")).form(&[("token", approver.as_str())]).send().await;
    assert!(console.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.child.start_kill().unwrap();
    let (out, err) = (out.await.unwrap(), err.await.unwrap());
    // Log lines only: the dev banner on stdout shows its demo credentials
    // once, by design, and is not a log line.
    let logs: Vec<&str> = out.lines().chain(err.lines()).filter(|l| l.starts_with('{')).collect();
    assert!(logs.len() > 20, "debug logging was on: {} lines", logs.len());
    let hash = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let secrets = [
        ("admin token", ADMIN_TOKEN.to_owned()),
        ("admin token hash", hash(ADMIN_TOKEN)),
        ("agent key", agent.key.clone()),
        ("agent key hash", hash(&agent.key)),
        ("rotated key", rotated["key"].as_str().unwrap().to_owned()),
        ("approver token", approver.clone()),
        ("approver token hash", hash(&approver)),
        ("webhook secret", endpoint["secret"].as_str().unwrap().to_owned()),
        ("presented wrong key", wrong.to_owned()),
        ("encryption key", ENCRYPTION_KEY.to_owned()),
    ];
    // One access-log line per request (status and latency, at info).
    assert!(
        logs.iter().any(|l| l.contains("finished processing request") && l.contains("\"status\":200")),
        "no access-log line"
    );
    for (what, secret) in secrets {
        if let Some(line) = logs.iter().find(|l| l.contains(&secret)) {
            panic!("the {what} appears in the log: {line}");
        }
    }
}
