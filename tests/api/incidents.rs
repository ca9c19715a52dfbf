//! Incident response: freezing an agent (its pending approvals cancelled,
//! optionally its keys revoked) and the gateway-wide kill switch.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn freezing_cancels_pending_approvals_and_can_revoke_every_key() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, approver) = app.create_approver("alice").await;
    let (_, pending) = app.pay(&a.key, "p1", payment("90.00", "aws.amazon.com")).await;
    assert_eq!(pending["status"], "pending_approval");
    let approval = pending["approval"]["id"].as_str().unwrap();

    let freeze = format!("/v1/agents/{}/freeze", a.id);
    let (status, _) = app.admin(Method::POST, &freeze, Some(json!({ "reason": "leaked key" }))).await;
    assert_eq!(status, StatusCode::OK);
    // Nobody can let the frozen agent's payment through any more.
    let (status, e) = app.vote(&approver, approval, "approve", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("approval_not_pending")));
    let payment_id = pending["id"].as_str().unwrap();
    let (_, p) = app.get(&a.key, &format!("/v1/payments/{payment_id}")).await;
    assert_eq!(p["status"], "rejected");
    let (_, audit) = app.admin(Method::GET, "/v1/audit?type=approval.cancelled", None).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1);

    // Unfrozen, the whole daily limit is there again: the 90.00 was released.
    app.admin(Method::POST, &format!("/v1/agents/{}/unfreeze", a.id), None).await;
    let (_, p) = app.pay(&a.key, "p2", payment("100.00", "aws.amazon.com")).await;
    assert_eq!(p["status"], "pending_approval", "{p}");

    // Freezing with revoke_keys: the key stops working at once.
    app.admin(Method::POST, &freeze, Some(json!({ "reason": "compromised", "revoke_keys": true }))).await;
    assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_kill_switch_halts_every_payment_until_released() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, approver) = app.create_approver("alice").await;
    let (_, pending) = app.pay(&a.key, "p1", payment("90.00", "aws.amazon.com")).await;
    let approval = pending["approval"]["id"].as_str().unwrap();

    let (status, _) = app.post_as(&a.key, "/v1/kill-switch", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins only");
    let (status, k) =
        app.admin(Method::POST, "/v1/kill-switch", Some(json!({ "reason": "incident 42" }))).await;
    assert_eq!((status, k["engaged"].as_bool()), (StatusCode::OK, Some(true)), "{k}");

    let (_, denied) = app.pay(&a.key, "p2", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(denied["status"], "denied");
    assert_eq!(reason_codes(&denied)[0], "kill_switch");
    let (status, e) = app.vote(&approver, approval, "approve", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("kill_switch_engaged")));

    let (_, k) = app.admin(Method::DELETE, "/v1/kill-switch", None).await;
    assert_eq!(k["engaged"], false);
    let (status, _) = app.vote(&approver, approval, "approve", None).await;
    assert_eq!(status, StatusCode::OK);
    app.wait_for(&a.key, pending["id"].as_str().unwrap(), "succeeded").await;
    let (_, audit) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let kinds: Vec<&str> =
        audit["data"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"kill_switch.engaged") && kinds.contains(&"kill_switch.released"), "{kinds:?}");
}

#[tokio::test]
async fn an_agent_denied_again_and_again_raises_a_violation_spike_once() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.alert_denials_per_minute = 3).await;
    let a = app.create_agent("test").await;
    for i in 0..5 {
        let (_, p) = app.pay(&a.key, &format!("d{i}"), payment("500.00", "aws.amazon.com")).await;
        assert_eq!(p["status"], "denied");
    }
    let (_, audit) = app.admin(Method::GET, "/v1/audit?type=policy.violation_spike", None).await;
    let spikes = audit["data"].as_array().unwrap();
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0]["agent_id"], a.id.as_str());
}

/// Audit records of `kind`, polled until `n` exist: these signals are
/// recorded in the background after the response.
async fn audited(app: &TestApp, kind: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let (_, audit) = app.admin(Method::GET, &format!("/v1/audit?type={kind}"), None).await;
        let mut records = audit["data"].as_array().unwrap().clone();
        if records.len() >= n {
            // A record's `data` is the JSON text that was hashed.
            for r in &mut records {
                r["data"] = serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
            }
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} {kind} records");
}

#[tokio::test]
async fn failed_authentications_raise_a_failure_spike_per_address_and_gateway_wide() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c: &mut purser::config::Config| {
        c.alert_failed_auth_per_minute = 3;
        c.alert_failed_auth_total_per_minute = 4;
    })
    .await;
    for _ in 0..5 {
        let (status, _) = app.get("psr_agent_not-a-real-key-000000000000000000", "/v1/payments").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let spikes = audited(&app, "auth.failure_spike", 2).await;
    // Give a wrongly repeated signal time to show up before counting.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let spikes_after = audited(&app, "auth.failure_spike", 2).await;
    assert_eq!(spikes_after.len(), 2, "once per subject and minute: {spikes_after:?}");
    let scopes: Vec<&str> = spikes.iter().map(|r| r["data"]["scope"].as_str().unwrap()).collect();
    assert!(scopes.contains(&"address") && scopes.contains(&"gateway"), "{spikes:?}");
    let address = spikes.iter().find(|r| r["data"]["scope"] == "address").unwrap();
    assert_eq!(address["data"]["address"], "127.0.0.1");
    assert!(!address.to_string().contains("not-a-real-key"), "the presented credential is never recorded");
}

#[tokio::test]
async fn an_agent_sending_unusually_many_requests_raises_a_volume_spike_once() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c: &mut purser::config::Config| {
        c.alert_agent_requests_per_minute = 4
    })
    .await;
    let (a, b) = (app.create_agent("test").await, app.create_agent("test").await);
    for _ in 0..6 {
        assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(app.get(&b.key, "/v1/payments").await.0, StatusCode::OK);
    }
    audited(&app, "agent.volume_spike", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let spikes = audited(&app, "agent.volume_spike", 1).await;
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    assert_eq!(spikes[0]["agent_id"], a.id.as_str());
    assert_eq!(spikes[0]["data"]["requests"], 4);
}
