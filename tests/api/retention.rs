//! Retention: finished webhook deliveries and their events are deleted once
//! older than `PURSER_WEBHOOK_RETENTION`, expired console sessions and seen
//! signatures once expired; pending deliveries, payments and the audit log
//! stay. Time is moved on the gateway's clock.

use std::time::Duration;

use chrono::Duration as Days;
use purser::clock::Clock;
use purser::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::webhooks::{register, Receiver};

/// Local webhooks, a sweep every 20 ms, and webhooks kept for `retention`.
fn sweeping(retention: Duration) -> impl Tweak {
    move |config: &mut Config| {
        local_webhooks(config);
        config.retention_sweep = Duration::from_millis(20);
        config.webhook_retention = retention;
    }
}

const MONTH: Duration = Duration::from_secs(30 * 86_400);

/// A denied payment (one `payment.denied` event); waits until `receiver`
/// has it and its attempt is recorded, and returns the event id.
async fn denied_event(app: &TestApp, agent: &Agent, receiver: &Receiver, key: &str) -> String {
    let before = receiver.received().len();
    let (status, p) = app.pay(&agent.key, key, payment("500.00", "aws.amazon.com")).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("denied")), "{p}");
    for _ in 0..300 {
        if let Some(event) = receiver.received().get(before) {
            if attempts(app, &event.id).await.1["data"].as_array().is_some_and(|a| !a.is_empty()) {
                return event.id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the event of payment {key} was never delivered and recorded");
}

async fn attempts(app: &TestApp, event: &str) -> (StatusCode, Value) {
    app.admin(Method::GET, &format!("/v1/webhook-events/{event}/attempts"), None).await
}

/// Waits until the event is gone (`404`), sweeps running meanwhile.
async fn until_deleted(app: &TestApp, event: &str) {
    for _ in 0..300 {
        if attempts(app, event).await.0 == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("event {event} was never deleted");
}

#[tokio::test]
async fn finished_webhook_deliveries_are_deleted_after_the_retention_and_nothing_else() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), sweeping(MONTH)).await;
    let agent = app.create_agent("test").await;
    let receiver = Receiver::start(&[]).await;
    let (endpoint, _) = register(&app, &receiver.url, json!(["payment.denied"])).await;
    // An endpoint that is down, then disabled: its delivery stays pending.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (down, _) =
        register(&app, &format!("http://127.0.0.1:{port}/hooks"), json!(["payment.denied"])).await;

    // Day 0: both endpoints get the first event (one delivered, one not);
    // the second goes to the live endpoint only.
    let both = denied_event(&app, &agent, &receiver, "r1").await;
    let mut tried = 0;
    for _ in 0..300 {
        tried = attempts(&app, &both).await.1["data"].as_array().unwrap().len();
        if tried == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tried, 2, "both endpoints were tried");
    let (status, _) = app
        .admin(Method::PATCH, &format!("/v1/webhook-endpoints/{down}"), Some(json!({ "disabled": true })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let delivered = denied_event(&app, &agent, &receiver, "r2").await;
    // Day 29: a third event, still inside the retention two days later.
    app.clock.advance(Days::days(29));
    let recent = denied_event(&app, &agent, &receiver, "r3").await;
    let (_, audit_before) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;

    app.clock.advance(Days::days(2));
    until_deleted(&app, &delivered).await;

    // The first event stays for its pending delivery, whose attempt is all
    // that is left of it; the recent one is untouched.
    let (status, left) = attempts(&app, &both).await;
    assert_eq!(status, StatusCode::OK);
    let left = left["data"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["endpoint_id"], down.as_str());
    assert_eq!(attempts(&app, &recent).await.1["data"].as_array().unwrap().len(), 1);
    let (_, on_endpoint) =
        app.admin(Method::GET, &format!("/v1/webhook-endpoints/{endpoint}/attempts"), None).await;
    let events: Vec<&str> =
        on_endpoint["data"].as_array().unwrap().iter().map(|a| a["event_id"].as_str().unwrap()).collect();
    assert_eq!(events, [recent.as_str()]);
    // A deleted event can no longer be replayed.
    let (status, _) = app.admin(Method::POST, &format!("/v1/webhook-events/{delivered}/replay"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Payments and the audit log are never touched.
    let (_, payments) = app.get(&agent.key, "/v1/payments").await;
    assert_eq!(payments["data"].as_array().unwrap().len(), 3);
    let (_, audit_after) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    assert_eq!(audit_after, audit_before);
    assert!(app.metrics().await.contains("purser_retention_deleted_total{kind=\"webhook_events\"}"));
}

#[tokio::test]
async fn webhook_retention_0_keeps_finished_deliveries_forever() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), sweeping(Duration::ZERO)).await;
    let agent = app.create_agent("test").await;
    let receiver = Receiver::start(&[]).await;
    register(&app, &receiver.url, json!(["payment.denied"])).await;
    let old = denied_event(&app, &agent, &receiver, "k1").await;
    app.clock.advance(Days::days(3650));
    denied_event(&app, &agent, &receiver, "k2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(attempts(&app, &old).await.1["data"].as_array().unwrap().len(), 1);
}

/// Rows in `table`, read straight from the gateway's database: what the
/// sweep deletes here is not visible through the API.
async fn rows(app: &TestApp, table: &str) -> i64 {
    let raw = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&raw).await.unwrap();
    raw.close().await;
    n
}

#[tokio::test]
async fn expired_console_sessions_and_seen_signatures_are_deleted() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), sweeping(MONTH)).await;
    let (_, approver) = app.create_approver("Alice").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = || async {
        let ok =
            http.post(app.url("/console/login")).form(&[("token", approver.as_str())]).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        ok.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    sign_in().await;
    let agent = app.create_agent("test").await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    crate::signatures::register(&app, &agent, &key, None).await;
    let now = app.clock.now().timestamp();
    let read = crate::signatures::signed(&app, &agent, &key, now, Method::GET, "/v1/payments", "");
    assert_eq!(read.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!((rows(&app, "console_sessions").await, rows(&app, "seen_signatures").await), (1, 1));

    // Sessions last 8 hours, signatures are remembered for 10 minutes.
    app.clock.advance(Days::hours(9));
    let session = sign_in().await;
    for _ in 0..300 {
        if (rows(&app, "console_sessions").await, rows(&app, "seen_signatures").await) == (1, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((rows(&app, "console_sessions").await, rows(&app, "seen_signatures").await), (1, 0));
    // The one left is the live one.
    let home = http.get(app.url("/console")).header("cookie", &session).send().await.unwrap();
    assert!(home.text().await.unwrap().contains("Signed in as <strong>Alice</strong>"));
}
