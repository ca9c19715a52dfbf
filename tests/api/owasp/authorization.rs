//! API1 (object level), API3 (object property level) and API5 (function
//! level): broken authorization.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;
use crate::helpers::*;

// API1:2023 Broken object level authorization.
//
// Already covered: an agent reading another's payment by id gets 404 (not
// 403) and lists only its own (payments.rs
// `agents_never_see_each_others_payments`); agents and admins cannot approve
// (approvals.rs `agents_and_admins_cannot_approve`).

#[tokio::test]
async fn api1_bola_another_agents_payment_is_indistinguishable_from_a_missing_one() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let b = app.create_agent("test").await;
    let (_, p) = app.pay(&a.key, "a1", payment("1.00", "aws.amazon.com")).await;
    let id = p["id"].as_str().unwrap();

    let (s1, theirs) = app.get(&b.key, &format!("/v1/payments/{id}")).await;
    let (s2, missing) = app.get(&b.key, "/v1/payments/pay_01JZZZZZZZZZZZZZZZZZZZZZZZ").await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_error(&theirs, "not_found", "theirs");
    assert_eq!(
        theirs["error"]["message"], missing["error"]["message"],
        "same answer: existence not revealed"
    );
    // Neither the list, any status filter, nor a page size shows it.
    for q in ["", "?status=approved", "?status=succeeded", "?limit=200"] {
        let (status, list) = app.get(&b.key, &format!("/v1/payments{q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert!(!list.to_string().contains(id), "{q}: {list}");
    }
}

#[tokio::test]
async fn api1_bola_idempotency_keys_are_per_agent_and_never_replay_another_agents_payment() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let b = app.create_agent("test").await;
    let (status, pa) = app.pay(&a.key, "shared-key", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED);
    // The same key and body from B: B's own new payment, not A's replayed.
    let (status, pb) = app.pay(&b.key, "shared-key", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{pb}");
    assert_ne!(pb["id"], pa["id"]);
    // The same key with another body from a third agent: no 409 that would
    // reveal A used that key.
    let c = app.create_agent("test").await;
    let (status, pc) = app.pay(&c.key, "shared-key", payment("2.00", "gcp.example")).await;
    assert_eq!(status, StatusCode::CREATED, "{pc}");
}

#[tokio::test]
async fn api1_bola_agents_cannot_read_or_deny_approvals_even_of_their_own_payments() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (payment_id, approval_id) = pending(&app, &agent, "p1").await;
    let (status, e) = app.get(&agent.key, &format!("/v1/approvals/{approval_id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&e, "approver_only", "read approval");
    let (status, e) = app.vote(&agent.key, &approval_id, "deny", Some("no")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&e, "approver_only", "deny");
    let (_, p) = app.get(&agent.key, &format!("/v1/payments/{payment_id}")).await;
    assert_eq!(p["status"], "pending_approval", "nothing changed");
}

#[tokio::test]
async fn api1_bola_approvers_cannot_read_or_alter_agents() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let (_, approver) = app.create_approver("mallory").await;
    let bearer = format!("Bearer {approver}");
    let id = &agent.id;
    for (method, path, body) in [
        (Method::GET, format!("/v1/agents/{id}"), None),
        (Method::PATCH, format!("/v1/agents/{id}"), Some(json!({ "trust_level": "high" }))),
        (Method::POST, format!("/v1/agents/{id}/freeze"), Some(json!({ "reason": "x" }))),
        (Method::POST, format!("/v1/agents/{id}/unfreeze"), None),
        (Method::GET, format!("/v1/agents/{id}/keys"), None),
        (Method::POST, format!("/v1/agents/{id}/keys"), Some(json!({}))),
    ] {
        let (status, e) = send(&app, method.clone(), &path, Some(&bearer), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {e}");
        assert_error(&e, "admin_only", &path);
    }
    let (_, after) = app.admin(Method::GET, &format!("/v1/agents/{id}"), None).await;
    assert_eq!((after["trust_level"].as_str(), after["frozen"].as_bool()), (Some("low"), Some(false)));
    let (_, keys) = app.admin(Method::GET, &format!("/v1/agents/{id}/keys"), None).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "no key was added");
}

// API3:2023 Broken object property level authorization.
//
// Already covered: one unknown field (`status`) on a payment (bad_input.rs),
// keys and approver tokens never listed (admin.rs, approvals.rs).

#[tokio::test]
async fn api3_mass_assignment_on_payments_is_rejected_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let b = app.create_agent("test").await;
    // 90.00 needs approval here (threshold 80.00); none of these may skip it.
    let extras = [
        ("status", json!("succeeded")),
        ("approved", json!(true)),
        ("agent_id", json!(b.id)),
        ("decision", json!({ "outcome": "approve", "reasons": [] })),
        ("provider", json!({ "name": "sandbox", "reference": "x" })),
        ("id", json!("pay_chosen")),
        ("approval", json!(null)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("policy", json!("strict")),
    ];
    for (i, (field, value)) in extras.iter().enumerate() {
        let mut body = payment("90.00", "aws.amazon.com");
        body[*field] = value.clone();
        let (status, e) = app.pay(&a.key, &format!("m{i}"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {e}");
        assert_error(&e, "invalid_request", field);
        let resp = app
            .http
            .post(app.url("/v1/payments/evaluate"))
            .bearer_auth(&a.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, e) = into_parts(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "evaluate {field}: {e}");
    }
    for key in [&a.key, &b.key] {
        let (_, list) = app.get(key, "/v1/payments").await;
        assert_eq!(list["data"], json!([]), "no payment was created");
    }
    // The same body without the extras is held for approval as usual.
    let (_, p) = app.pay(&a.key, "clean", payment("90.00", "aws.amazon.com")).await;
    assert_eq!(p["status"], "pending_approval");
}

#[tokio::test]
async fn api3_mass_assignment_on_agents_is_rejected() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let path = format!("/v1/agents/{}", a.id);
    let (_, before) = app.admin(Method::GET, &path, None).await;
    for extra in [
        json!({ "frozen": true }),
        json!({ "id": "agt_mine" }),
        json!({ "created_at": "2020-01-01T00:00:00Z" }),
        json!({ "trust_level": "high", "frozen": true }),
        json!({ "policy": "strict", "id": "agt_mine" }),
        json!({ "key_hash": "00" }),
    ] {
        let (status, e) = app.admin(Method::PATCH, &path, Some(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {e}");
        assert_error(&e, "invalid_request", &extra.to_string());
    }
    let (_, after) = app.admin(Method::GET, &path, None).await;
    assert_eq!(before, after, "nothing changed");
    // Creation does not take them either.
    let (status, _) = app
        .admin(Method::POST, "/v1/agents", Some(json!({ "name": "x", "policy": "test", "frozen": true })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .admin(Method::POST, &format!("{path}/keys"), Some(json!({ "key": "psr_agent_chosen-by-attacker" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a key cannot be chosen by the caller");
}

/// Every object key anywhere in `v`.
fn keys_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys_of(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys_of(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn api3_excessive_data_exposure_no_response_carries_hashes_or_secrets() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let a = app.create_agent("quorum").await;
    let b = app.create_agent("test").await;
    let (_, approver) = app.create_approver("ann").await;
    let (status, wh) = app
        .admin(
            Method::POST,
            "/v1/webhook-endpoints",
            Some(json!({ "url": "http://127.0.0.1:9/hooks", "events": ["*"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wh}");
    let secret = wh["secret"].as_str().expect("shown once at creation").to_owned();
    let wh_id = wh["id"].as_str().unwrap().to_owned();
    let (_, approval) = pending(&app, &a, "a-secret-idempotency-key").await;
    app.pay(&b.key, "b1", payment("1.00", "aws.amazon.com")).await;
    let (_, p) = app.pay(&a.key, "a-2", payment("1.00", "aws.amazon.com")).await;
    let pid = p["id"].as_str().unwrap().to_owned();

    let mut answers = Vec::new();
    for path in [
        "/v1/agents".to_owned(),
        format!("/v1/agents/{}", a.id),
        format!("/v1/agents/{}/keys", a.id),
        "/v1/approvers".into(),
        "/v1/approvals".into(),
        format!("/v1/approvals/{}", approval),
        "/v1/webhook-endpoints".into(),
        format!("/v1/webhook-endpoints/{wh_id}"),
        "/v1/audit".into(),
        "/v1/payments".into(),
        format!("/v1/payments/{pid}"),
    ] {
        let (status, v) = app.admin(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        answers.push((path, v));
    }
    for path in ["/v1/approvals".to_owned(), format!("/v1/approvals/{}", approval)] {
        let (_, v) = app.get(&approver, &path).await;
        answers.push((format!("approver {path}"), v));
    }
    for path in ["/v1/payments".to_owned(), format!("/v1/payments/{pid}")] {
        let (_, v) = app.get(&a.key, &path).await;
        answers.push((format!("agent {path}"), v));
    }
    let (_, v) = app.get(&b.key, "/v1/payments").await;
    assert!(!v.to_string().contains("a-secret-idempotency-key"), "B sees nothing of A's: {v}");
    answers.push(("agent b /v1/payments".into(), v));

    for (path, v) in &answers {
        let mut keys = Vec::new();
        keys_of(v, &mut keys);
        for bad in
            ["key_hash", "token_hash", "secret", "secret_hash", "request_hash", "secrets", "previous_secret"]
        {
            assert!(!keys.iter().any(|k| k == bad), "{path} exposes {bad}: {v}");
        }
        let text = v.to_string();
        for (what, s) in [
            ("agent key", a.key.as_str()),
            ("agent key hash", &purser::auth::hash(&a.key)),
            ("approver token", approver.as_str()),
            ("approver token hash", &purser::auth::hash(&approver)),
            ("webhook secret", secret.as_str()),
            ("admin token", ADMIN_TOKEN),
        ] {
            assert!(!text.contains(s), "{path} exposes the {what}");
        }
    }
}

// API5:2023 Broken function level authorization.
//
// Already covered: an agent on GET /v1/agents and the admin paying
// (admin.rs); agents and the admin voting, agents reading the approval
// queue, approvers paying (approvals.rs `agents_and_admins_cannot_approve`).

#[tokio::test]
async fn api5_function_level_authorization_every_admin_endpoint_refuses_agents_and_approvers() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let (approver_id, approver) = app.create_approver("ann").await;
    let id = &agent.id;
    let admin_calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/v1/agents".into(), Some(json!({ "name": "x", "policy": "test" }))),
        (Method::GET, "/v1/agents".into(), None),
        (Method::GET, format!("/v1/agents/{id}"), None),
        (Method::PATCH, format!("/v1/agents/{id}"), Some(json!({ "trust_level": "high" }))),
        (Method::POST, format!("/v1/agents/{id}/freeze"), Some(json!({}))),
        (Method::POST, format!("/v1/agents/{id}/unfreeze"), None),
        (Method::POST, format!("/v1/agents/{id}/keys"), Some(json!({}))),
        (Method::GET, format!("/v1/agents/{id}/keys"), None),
        (Method::DELETE, format!("/v1/agents/{id}/keys/key_x"), None),
        (Method::POST, format!("/v1/agents/{id}/keys/key_x/rotate"), Some(json!({ "grace_seconds": 0 }))),
        (Method::POST, format!("/v1/agents/{id}/cards"), Some(json!({ "card_token": "c" }))),
        (Method::GET, format!("/v1/agents/{id}/cards"), None),
        (Method::DELETE, format!("/v1/agents/{id}/cards/c"), None),
        (Method::POST, "/v1/approvers".into(), Some(json!({ "name": "eve" }))),
        (Method::GET, "/v1/approvers".into(), None),
        (Method::DELETE, format!("/v1/approvers/{approver_id}"), None),
        (
            Method::POST,
            "/v1/webhook-endpoints".into(),
            Some(json!({ "url": "https://93.184.216.34/h", "events": ["*"] })),
        ),
        (Method::GET, "/v1/webhook-endpoints".into(), None),
        (Method::GET, "/v1/webhook-endpoints/wh_x".into(), None),
        (Method::PATCH, "/v1/webhook-endpoints/wh_x".into(), Some(json!({ "disabled": true }))),
        (Method::DELETE, "/v1/webhook-endpoints/wh_x".into(), None),
        (Method::POST, "/v1/webhook-endpoints/wh_x/rotate-secret".into(), Some(json!({}))),
        (Method::GET, "/v1/webhook-endpoints/wh_x/attempts".into(), None),
        (Method::GET, "/v1/webhook-events/evt_x/attempts".into(), None),
        (Method::POST, "/v1/webhook-events/evt_x/replay".into(), None),
        (Method::GET, "/v1/audit".into(), None),
        (Method::GET, "/v1/audit?format=csv".into(), None),
    ];
    for token in [agent.key.as_str(), approver.as_str()] {
        let bearer = format!("Bearer {token}");
        for (method, path, body) in &admin_calls {
            let (status, e) = send(&app, method.clone(), path, Some(&bearer), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with {}: {e}", &token[..9]);
            assert_error(&e, "admin_only", path);
        }
    }
    // Nothing was changed by any of them.
    let (_, agents) = app.admin(Method::GET, "/v1/agents", None).await;
    assert_eq!(agents["data"].as_array().unwrap().len(), 1);
    let (_, approvers) = app.admin(Method::GET, "/v1/approvers", None).await;
    assert_eq!(approvers["data"].as_array().unwrap().len(), 1);
    let (status, _) = app.get(&approver, "/v1/approvals").await;
    assert_eq!(status, StatusCode::OK, "the approver was not revoked");
    let (_, hooks) = app.admin(Method::GET, "/v1/webhook-endpoints", None).await;
    assert_eq!(hooks["data"], json!([]));
}

#[tokio::test]
async fn api5_function_level_authorization_agents_stay_out_of_approvals_and_approvers_out_of_payments() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, approval_id) = pending(&app, &agent, "p").await;
    let (_, approver) = app.create_approver("ann").await;
    for path in ["/v1/approvals", "/v1/approvals?status=pending", &format!("/v1/approvals/{approval_id}")] {
        let (status, e) = app.get(&agent.key, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {e}");
    }
    let (status, e) = app.get(&approver, "/v1/payments").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_error(&e, "agent_only", "approver reads payments");
    let resp = app
        .http
        .post(app.url("/v1/payments/evaluate"))
        .bearer_auth(&approver)
        .json(&payment("1.00", "aws.amazon.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
