//! One failing write never fails the writes committed beside it. The
//! writer runs every waiting job in one transaction (group commit); each job
//! runs in a savepoint of its own, so a job that fails, even after it has
//! written, is undone alone and answered with its own error.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Payers, each sending this many payments one after the other.
const PAYERS: usize = 4;
const PAYMENTS_EACH: usize = 60;

/// A write that fails: who sends it, what, and the answer it must get.
struct Failing {
    token: String,
    method: Method,
    path: String,
    body: Option<Value>,
    idempotency_key: Option<&'static str>,
    expect: StatusCode,
}

impl Failing {
    fn new(token: &str, method: Method, path: impl Into<String>, body: Option<Value>, expect: u16) -> Self {
        Failing {
            token: token.to_owned(),
            method,
            path: path.into(),
            body,
            idempotency_key: None,
            expect: StatusCode::from_u16(expect).unwrap(),
        }
    }

    fn idempotency_key(self, key: &'static str) -> Self {
        Failing { idempotency_key: Some(key), ..self }
    }

    async fn send(&self, app: &TestApp) -> StatusCode {
        let mut req = app.http.request(self.method.clone(), app.url(&self.path)).bearer_auth(&self.token);
        if let Some(key) = self.idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        match &self.body {
            Some(body) => req = req.json(body),
            None if self.method == Method::POST => req = req.json(&json!({})),
            None => {}
        }
        req.send().await.unwrap().status()
    }
}

/// Every kind of admin, approver and agent write that fails with a client
/// error, including those that fail after writing (freezing an unknown
/// agent with `revoke_keys` updates before it finds nothing).
async fn failing_writes(app: &TestApp, other: &Agent) -> Vec<Failing> {
    let (_, approver) = app.create_approver("alice").await;
    // A decided approval: voting on it again is a conflict.
    let (_, pending) = app.pay(&other.key, "big", payment("90.00", "aws.amazon.com")).await;
    let approval = pending["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.vote(&approver, &approval, "deny", None).await.0, StatusCode::OK);
    let (status, _) = app.pay(&other.key, "reused", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED);
    let admin = ADMIN_TOKEN;
    let missing_agent = "agt_doesnotexist";
    let agent = &other.id;
    vec![
        Failing::new(
            admin,
            Method::POST,
            format!("/v1/agents/{missing_agent}/freeze"),
            Some(json!({ "reason": "typo", "revoke_keys": true })),
            404,
        ),
        Failing::new(admin, Method::POST, format!("/v1/agents/{missing_agent}/unfreeze"), None, 404),
        Failing::new(
            admin,
            Method::PATCH,
            format!("/v1/agents/{missing_agent}"),
            Some(json!({ "trust_level": "high" })),
            404,
        ),
        Failing::new(admin, Method::POST, format!("/v1/agents/{missing_agent}/keys"), None, 404),
        Failing::new(admin, Method::DELETE, format!("/v1/agents/{agent}/keys/key_doesnotexist"), None, 404),
        Failing::new(
            admin,
            Method::POST,
            format!("/v1/agents/{agent}/keys/key_doesnotexist/rotate"),
            Some(json!({ "grace_seconds": 60 })),
            404,
        ),
        Failing::new(
            admin,
            Method::DELETE,
            format!("/v1/agents/{agent}/signing-keys/sk_doesnotexist"),
            None,
            404,
        ),
        Failing::new(admin, Method::DELETE, format!("/v1/agents/{agent}/cards/card_doesnotexist"), None, 404),
        Failing::new(admin, Method::DELETE, "/v1/approvers/apr_doesnotexist", None, 404),
        Failing::new(admin, Method::POST, "/v1/webhook-endpoints/wh_doesnotexist/rotate-secret", None, 404),
        Failing::new(
            admin,
            Method::PATCH,
            "/v1/webhook-endpoints/wh_doesnotexist",
            Some(json!({ "events": ["payment.succeeded"] })),
            404,
        ),
        Failing::new(admin, Method::DELETE, "/v1/webhook-endpoints/wh_doesnotexist", None, 404),
        Failing::new(admin, Method::POST, "/v1/webhook-events/msg_doesnotexist/replay", None, 404),
        Failing::new(&approver, Method::POST, "/v1/approvals/apv_doesnotexist/approve", None, 404),
        Failing::new(&approver, Method::POST, format!("/v1/approvals/{approval}/approve"), None, 409),
        // The agent's own failing write: an idempotency key reused with a
        // different body.
        Failing::new(&other.key, Method::POST, "/v1/payments", Some(payment("2.00", "aws.amazon.com")), 409)
            .idempotency_key("reused"),
    ]
}

async fn runs_beside_failing_writes(app: TestApp) {
    let payers: Vec<Agent> = join_all((0..PAYERS).map(|_| app.create_agent("test"))).await;
    let other = app.create_agent("test").await;
    let failing = failing_writes(&app, &other).await;

    let stop = std::sync::atomic::AtomicBool::new(false);
    let pay = join_all(payers.iter().enumerate().map(|(n, payer)| {
        let app = &app;
        async move {
            let mut statuses = Vec::new();
            for i in 0..PAYMENTS_EACH {
                let (status, body) =
                    app.pay(&payer.key, &format!("p{n}-{i}"), payment("0.01", "aws.amazon.com")).await;
                statuses.push((status, body));
            }
            statuses
        }
    }));
    let fail = async {
        let mut sent = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let answers = join_all(failing.iter().map(|f| {
                let app = &app;
                async move { (f, f.send(app).await) }
            }))
            .await;
            for (f, status) in answers {
                assert_eq!(status, f.expect, "{} {}", f.method, f.path);
            }
            sent += failing.len();
        }
        sent
    };
    let (payments, sent) = tokio::join!(
        async {
            let done = pay.await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            done
        },
        fail
    );
    assert!(sent > failing.len() * 3, "the failing writes ran alongside the payments ({sent} sent)");
    let payments: Vec<(StatusCode, Value)> = payments.into_iter().flatten().collect();
    let refused: Vec<&(StatusCode, Value)> =
        payments.iter().filter(|(status, _)| *status != StatusCode::CREATED).collect();
    assert!(
        refused.is_empty(),
        "{} of {} payments failed, e.g. {:?}",
        refused.len(),
        payments.len(),
        refused.first()
    );
    assert!(payments.iter().all(|(_, p)| p["status"] == "approved" || p["status"] == "succeeded"));

    // Nothing of the failed writes was kept: no agent was frozen, no key
    // revoked (the payers' keys all still pay).
    for payer in &payers {
        let (status, _) = app.pay(&payer.key, "after", payment("0.01", "aws.amazon.com")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_commit_beside_failing_writes() {
    runs_beside_failing_writes(spawn_app().await).await;
}

/// The same on PostgreSQL, where a failed statement also leaves the whole
/// transaction aborted unless its savepoint is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_commit_beside_failing_writes_on_postgres() {
    if let Some(app) = spawn_app_on_postgres().await {
        runs_beside_failing_writes(app).await;
    }
}
