//! Human approvals through the API: quorum, denial, expiry, races, restarts.

use chrono::Duration;
use futures_util::future::join;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// A pending payment for `agent`; returns (payment id, approval id).
async fn pending(app: &TestApp, agent: &Agent, idem: &str, amount: &str) -> (String, String) {
    let (status, p) = app.pay(&agent.key, idem, payment(amount, "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["status"], "pending_approval", "{p}");
    (p["id"].as_str().unwrap().to_owned(), p["approval"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_quorum_of_two_distinct_approvers_approves_and_the_payment_is_forwarded() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, alice) = app.create_approver("alice").await;
    let (_, bob) = app.create_approver("bob").await;
    assert!(alice.starts_with("psr_appr_"));
    let (payment_id, approval_id) = pending(&app, &agent, "p1", "50.00").await;

    let (status, listed) = app.get(&alice, "/v1/approvals?status=pending").await;
    assert_eq!(status, StatusCode::OK);
    let item = &listed["data"][0];
    assert_eq!(item["id"], approval_id.as_str());
    assert_eq!(item["payment"]["amount"], "50.00");
    assert_eq!(item["agent"]["id"], agent.id.as_str());
    assert_eq!(item["payment"]["decision"]["reasons"][0]["code"], "approval_required");
    assert_eq!(item["agent_spend_today"]["spent"], "50.00", "the pending amount is reserved");
    assert_eq!(item["agent_spend_today"]["limit"], "100.00");

    let (status, a) = app.vote(&alice, &approval_id, "approve", Some("looks fine")).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "pending", "one of two approvals");
    // The same approver again counts once.
    let (status, a) = app.vote(&alice, &approval_id, "approve", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["status"], "pending");
    assert_eq!(a["votes"].as_array().unwrap().len(), 1);
    assert_eq!(a["votes"][0]["comment"], "looks fine");

    let (status, a) = app.vote(&bob, &approval_id, "approve", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["status"], "approved");
    let done = app.wait_for(&agent.key, &payment_id, "succeeded").await;
    assert_eq!(done["provider"]["name"], "sandbox");
    assert_eq!(done["approval"]["status"], "approved");

    let (status, e) = app.vote(&bob, &approval_id, "deny", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("approval_not_pending")));
}

#[tokio::test]
async fn agents_and_admins_cannot_approve() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, approval_id) = pending(&app, &agent, "p1", "50.00").await;
    let (status, e) = app.vote(&agent.key, &approval_id, "approve", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("approver_only")));
    let (status, _) = app.vote(ADMIN_TOKEN, &approval_id, "approve", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&agent.key, "/v1/approvals").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents do not read the approval queue");
    // Approvers cannot pay, nor manage anything.
    let (_, approver) = app.create_approver("carol").await;
    let (status, _) = app.pay(&approver, "x", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&approver, "/v1/agents").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_deny_rejects_and_releases_the_reservation() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, alice) = app.create_approver("alice").await;
    let (payment_id, approval_id) = pending(&app, &agent, "p1", "95.00").await;
    let (_, blocked) = app.pay(&agent.key, "p2", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&blocked), vec!["daily_limit"], "95.00 is held while pending");

    let (status, a) = app.vote(&alice, &approval_id, "deny", Some("not this month")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["status"], "rejected");
    let (_, p) = app.get(&agent.key, &format!("/v1/payments/{payment_id}")).await;
    assert_eq!(p["status"], "rejected");
    let (_, after) = app.pay(&agent.key, "p3", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(after["status"], "approved", "95.00 released: 10.00 (at the threshold) fits again");
}

#[tokio::test]
async fn an_approval_past_its_deadline_expires_and_releases_the_daily_limit() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, alice) = app.create_approver("alice").await;
    let (payment_id, approval_id) = pending(&app, &agent, "p1", "95.00").await;
    app.clock.advance(Duration::minutes(59));
    let (_, still) = app.pay(&agent.key, "p2", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&still), vec!["daily_limit"], "not yet expired");

    app.clock.advance(Duration::minutes(1));
    let expired = app.wait_for(&agent.key, &payment_id, "expired").await;
    assert_eq!(expired["approval"]["status"], "expired");
    let (_, freed) = app.pay(&agent.key, "p3", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(freed["status"], "approved", "the expired amount no longer counts");

    let (status, e) = app.vote(&alice, &approval_id, "approve", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "approval_not_pending");
    let (_, audit) = app.admin(Method::GET, "/v1/audit?type=approval.expired", None).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_and_deny_at_once_resolve_to_exactly_one_outcome() {
    const QUORUM_ONE: &str = r#"
[policies.one]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "100.00"
daily_limit = "10000.00"
velocity = { max = 100000, per = "1m" }
approval_threshold = "10.00"
new_merchant_approval_ratio = "1"
"#;
    let app = spawn_app_with(QUORUM_ONE, default_start()).await;
    let agent = app.create_agent("one").await;
    let (_, alice) = app.create_approver("alice").await;
    let (_, bob) = app.create_approver("bob").await;
    for i in 0..20 {
        let (payment_id, approval_id) = pending(&app, &agent, &format!("race-{i}"), "20.00").await;
        let ((s_ok, _), (s_no, _)) =
            join(app.vote(&alice, &approval_id, "approve", None), app.vote(&bob, &approval_id, "deny", None))
                .await;
        let winners = [s_ok, s_no].iter().filter(|s| **s == StatusCode::OK).count();
        let losers = [s_ok, s_no].iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((winners, losers), (1, 1), "race {i}: {s_ok} / {s_no}");
        let expected = if s_ok == StatusCode::OK { "succeeded" } else { "rejected" };
        app.wait_for(&agent.key, &payment_id, expected).await;
    }
    // Every approval was closed once: one approve or reject record each.
    let (_, audit) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let closed = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "approval.approved" || r["type"] == "approval.rejected")
        .count();
    assert_eq!(closed, 20);
}

#[tokio::test]
async fn deadlines_that_passed_while_the_gateway_was_down_expire_at_start() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (payment_id, _) = pending(&app, &agent, "p1", "50.00").await;
    let later = default_start() + Duration::hours(2);
    let app = restart(app, later, |_| {}).await;
    app.wait_for(&agent.key, &payment_id, "expired").await;
}

#[tokio::test]
async fn approvers_are_managed_by_the_admin_and_revocation_is_immediate() {
    let app = spawn_app().await;
    let (id, token) = app.create_approver("dave").await;
    let (status, list) = app.admin(Method::GET, "/v1/approvers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&token), "tokens are never listed");
    assert_eq!(list["data"][0]["name"], "dave");
    let (status, _) = app.get(&token, "/v1/approvals").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.admin(Method::DELETE, &format!("/v1/approvers/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&token, "/v1/approvals").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.admin(Method::POST, "/v1/approvers", Some(json!({ "name": "" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
