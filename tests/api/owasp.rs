//! Attacks from the OWASP API Security Top 10 (2023), one section per class,
//! each asserted through the HTTP API only. Where another file already
//! covers an attack, a comment points to it instead of repeating it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Asserts the one JSON error shape, `{ "error": { "code", "message",
/// "param"?, "request_id"? } }` and nothing else, with `code`.
fn assert_error(body: &Value, code: &str, what: &str) {
    let error = body["error"].as_object().unwrap_or_else(|| panic!("{what}: not a JSON error: {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{what}: only `error` at the top: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    for k in error.keys() {
        assert!(
            ["code", "message", "param", "request_id"].contains(&k.as_str()),
            "{what}: extra field {k}: {body}"
        );
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_parts(req.send().await.unwrap()).await
}

/// A payment of `agent` waiting for approval (quorum policy, 50.00 > 10.00);
/// returns (payment id, approval id).
async fn pending(app: &TestApp, agent: &Agent, idem: &str) -> (String, String) {
    let (status, p) = app.pay(&agent.key, idem, payment("50.00", "aws.amazon.com")).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("pending_approval")), "{p}");
    (p["id"].as_str().unwrap().to_owned(), p["approval"]["id"].as_str().unwrap().to_owned())
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// API2:2023 Broken authentication.
//
// Already covered: no bearer, an unknown agent key, a wrong admin token and a
// revoked key (admin.rs `credentials_are_checked_on_every_request`); an
// expired key (admin.rs `keys_expire_and_carry_scopes_and_address_limits`);
// a revoked approver (approvals.rs); brute force braking (limits.rs
// `repeated_failed_authentication_is_braked_and_audited`).

#[tokio::test]
async fn api2_broken_authentication_malformed_and_confused_credentials_get_401() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let (_, approver) = app.create_approver("ann").await;
    let secret_of = |t: &str| t.split_once('_').unwrap().1.split_once('_').unwrap().1.to_owned();
    let long = format!("Bearer psr_agent_{}", "A".repeat(8000));
    let cases: Vec<String> = vec![
        "Bearer".into(),
        "Bearer ".into(),
        "Bearer    ".into(),
        format!("Basic {}", agent.key),
        format!("Token {}", agent.key),
        format!("Bearer\t{}", agent.key),
        format!("Bearer{}", agent.key),
        format!("Bearer {} extra", agent.key),
        format!("Bearer {}x", agent.key),
        format!("Bearer {}", &agent.key[..agent.key.len() - 1]),
        format!("Bearer {}", agent.key.to_uppercase()),
        format!("Bearer {ADMIN_TOKEN}x"),
        format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
        format!("Bearer {ADMIN_TOKEN}{ADMIN_TOKEN}"),
        "Bearer psr_admin_".into(),
        "Bearer psr_agent_".into(),
        "Bearer psr_appr_".into(),
        // An approver's secret presented under the agent prefix, and an
        // agent's under the approver and admin prefixes.
        format!("Bearer psr_agent_{}", secret_of(&approver)),
        format!("Bearer psr_appr_{}", secret_of(&agent.key)),
        format!("Bearer psr_admin_{}", secret_of(&agent.key)),
        // A key's hash is not a key.
        format!("Bearer {}", purser::auth::hash(&agent.key)),
        long,
    ];
    for auth in &cases {
        for path in ["/v1/payments", "/v1/agents", "/v1/approvals"] {
            let (status, e) = send(&app, Method::GET, path, Some(auth), None).await;
            let shown: String = auth.chars().take(60).collect();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{shown:?} on {path}: {e}");
            assert_error(&e, "unauthorized", &shown);
            let text = e.to_string();
            assert!(!text.contains(&secret_of(&agent.key)) && !text.contains(&ADMIN_TOKEN[10..]), "{e}");
        }
    }
    // Bytes that are not visible ASCII, and the key in the query string
    // instead of the header.
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_bytes(b"Bearer psr_agent_\xff\xfe").unwrap());
    let resp = app.http.get(app.url("/v1/payments")).headers(headers).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let (status, _) =
        send(&app, Method::GET, &format!("/v1/payments?api_key={}", agent.key), None, None).await;
    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST, "{status}");

    // The scheme name is case-insensitive (RFC 9110 11.1): not a bypass,
    // the same key still authenticates.
    for scheme in ["bearer", "BEARER"] {
        let (status, _) =
            send(&app, Method::GET, "/v1/payments", Some(&format!("{scheme} {}", agent.key)), None).await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn api2_broken_authentication_an_expired_key_is_refused_on_writes_too() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let expires = (default_start() + chrono::Duration::minutes(5)).to_rfc3339();
    let (_, key) = app
        .admin(Method::POST, &format!("/v1/agents/{}/keys", a.id), Some(json!({ "expires_at": expires })))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, e) = app.pay(&key, "late", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&e, "unauthorized", "expired");
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"], json!([]), "nothing was paid with the expired key");
}

#[tokio::test]
async fn api2_broken_authentication_the_failed_auth_brake_ignores_forged_forwarded_for() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_failed_auth = 3).await;
    let a = app.create_agent("test").await;
    for (i, scheme) in ["Bearer", "Basic", "Token", "Bearer"].into_iter().enumerate() {
        let resp = app
            .http
            .get(app.url("/v1/payments"))
            .header(AUTHORIZATION, format!("{scheme} psr_agent_guess-{i}"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .header("x-real-ip", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    // Without declared proxies the forged addresses changed nothing: this
    // peer is braked, even with a valid key and yet another forged address.
    let resp = app
        .http
        .get(app.url("/v1/payments"))
        .bearer_auth(&a.key)
        .header("x-forwarded-for", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// API4:2023 Unrestricted resource consumption.
//
// Already covered: a body over the limit (413 `payload_too_large`) and
// 5000-deep nested JSON on payments (bad_input.rs
// `bad_payment_requests_get_stable_error_codes`); `limit=201` on the payment
// list (bad_input.rs `unknown_routes_methods_and_queries_answer_json`);
// write rate limits with Retry-After (limits.rs
// `writes_past_the_per_key_budget_get_429_with_retry_after`).

#[tokio::test]
async fn api4_resource_consumption_oversized_fields_are_refused() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let with = |field: &str, value: Value| {
        let mut b = payment("1.00", "aws.amazon.com");
        b[field] = value;
        b
    };
    let many_keys: serde_json::Map<String, Value> = (0..2000).map(|i| (format!("k{i}"), json!(i))).collect();
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    for (name, body) in [
        ("merchant 256", with("merchant_id", json!("m".repeat(256)))),
        ("merchant 10k", with("merchant_id", json!("m".repeat(10_000)))),
        ("category 65", with("merchant_category", json!("c".repeat(65)))),
        ("rail 10k", with("rail", json!("r".repeat(10_000)))),
        ("description 1001", with("description", json!("d".repeat(1001)))),
        ("metadata 9k", with("metadata", json!({ "blob": "x".repeat(9 * 1024) }))),
        ("metadata many keys", with("metadata", Value::Object(many_keys))),
        ("metadata deep", with("metadata", json!({ "deep": deep }))),
        ("amount 10k digits", with("amount", json!("9".repeat(10_000)))),
    ] {
        let (status, e) = app.pay(&a.key, name, body).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{name}: {status} {e}"
        );
        assert!(e["error"]["code"].is_string(), "{name}: {e}");
    }
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));

    // Admin endpoints are capped as well.
    let (status, e) = app
        .admin(Method::POST, "/v1/agents", Some(json!({ "name": "n".repeat(70 * 1024), "policy": "test" })))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_error(&e, "payload_too_large", "admin body");
    // Every paged list has a bounded page.
    for path in ["/v1/payments", "/v1/audit", "/v1/approvals"] {
        let (status, e) = app.admin(Method::GET, &format!("{path}?limit=100000"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {e}");
    }
}

#[tokio::test]
async fn api4_resource_consumption_reads_past_the_budget_get_429_with_retry_after() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_reads = 3).await;
    let a = app.create_agent("test").await;
    for _ in 0..3 {
        let (status, _) = app.get(&a.key, "/v1/payments").await;
        assert_eq!(status, StatusCode::OK);
    }
    let resp = app.http.get(app.url("/v1/payments")).bearer_auth(&a.key).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "security headers on a 429 too");
    let (_, e) = into_parts(resp).await;
    assert_error(&e, "rate_limited", "429");
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// API6:2023 Unrestricted access to sensitive business flows: splitting one
// large payment into many small ones.

const SPLIT_POLICY: &str = r#"
[policies.split]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "100.00"
daily_limit = "100.00"
velocity = { max = 100000, per = "1m" }

[policies.slow]
trust_level = "custom"
currency = "USD"
rails = ["card"]
per_tx_limit = "100.00"
daily_limit = "100.00"
velocity = { max = 3, per = "1m" }
"#;

#[tokio::test]
async fn api6_business_flow_splitting_into_small_payments_still_hits_the_daily_limit() {
    let app = spawn_app_with(SPLIT_POLICY, default_start()).await;
    let a = app.create_agent("split").await;
    let (_, big) = app.pay(&a.key, "big", payment("150.00", "aws.amazon.com")).await;
    assert_eq!(big["status"], "denied");
    for i in 0..20 {
        let (_, p) = app.pay(&a.key, &format!("s{i}"), payment("5.00", "aws.amazon.com")).await;
        assert_eq!(p["status"], "approved", "split {i}: {p}");
    }
    let (_, p) = app.pay(&a.key, "s20", payment("0.01", "aws.amazon.com")).await;
    assert_eq!(p["status"], "denied", "{p}");
    assert_eq!(reason_codes(&p), vec!["daily_limit"]);
}

#[tokio::test]
async fn api6_business_flow_splitting_across_merchants_still_hits_the_daily_limit() {
    let app = spawn_app_with(SPLIT_POLICY, default_start()).await;
    let a = app.create_agent("split").await;
    for i in 0..10 {
        let (_, p) = app.pay(&a.key, &format!("m{i}"), payment("10.00", &format!("shop{i}.example"))).await;
        assert_eq!(p["status"], "approved", "merchant {i}: {p}");
    }
    let (_, p) = app.pay(&a.key, "m10", payment("0.01", "shop-new.example")).await;
    assert_eq!(reason_codes(&p), vec!["daily_limit"], "{p}");
    // Nor across currencies' and rails' spellings of the same money.
    let mut lower = payment("0.01", "shop0.example");
    lower["currency"] = json!("usd");
    let (status, p) = app.pay(&a.key, "m11", lower).await;
    assert!(status == StatusCode::BAD_REQUEST || p["status"] == "denied", "{status} {p}");
}

#[tokio::test]
async fn api6_business_flow_many_tiny_payments_hit_the_velocity_limit() {
    let app = spawn_app_with(SPLIT_POLICY, default_start()).await;
    let a = app.create_agent("slow").await;
    for i in 0..3 {
        let (_, p) = app.pay(&a.key, &format!("v{i}"), payment("0.01", &format!("shop{i}.example"))).await;
        assert_eq!(p["status"], "approved", "{p}");
    }
    let (_, p) = app.pay(&a.key, "v3", payment("0.01", "shop3.example")).await;
    assert_eq!(reason_codes(&p), vec!["velocity_limit"], "{p}");
    // A second key of the same agent shares the agent's window.
    let (_, key2) = app.admin(Method::POST, &format!("/v1/agents/{}/keys", a.id), Some(json!({}))).await;
    let (_, p) = app.pay(key2["key"].as_str().unwrap(), "v4", payment("0.01", "shop4.example")).await;
    assert_eq!(reason_codes(&p), vec!["velocity_limit"], "another key, same agent: {p}");
    // The window moves on.
    app.clock.advance(chrono::Duration::minutes(1));
    let (_, p) = app.pay(&a.key, "v5", payment("0.01", "shop5.example")).await;
    assert_eq!(p["status"], "approved", "{p}");
}

// ---------------------------------------------------------------------------
// API7:2023 Server side request forgery.
//
// Already covered: http outside dev, 127.0.0.1, [::1], 169.254.169.254,
// 10.x, `localhost`, userinfo (webhooks.rs
// `webhook_targets_inside_the_network_are_refused`) and a name that turns
// internal after registration (webhooks.rs
// `every_delivery_resolves_again_so_a_target_that_turns_internal_is_refused`).
// Here: other spellings of internal addresses, and the PATCH route.

const INTERNAL_SPELLINGS: [&str; 17] = [
    "https://2130706433/hooks",
    "https://0x7f000001/hooks",
    "https://0177.0.0.1/hooks",
    "https://127.1/hooks",
    "https://0.0.0.0/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data",
    "https://[fe80::1]/hooks",
    "https://[fd00::1]/hooks",
    "https://[::]/hooks",
    "https://192.168.1.1/hooks",
    "https://172.16.0.1/hooks",
    "https://100.64.0.1/hooks",
    "https://LOCALHOST/hooks",
    "https://localhost./hooks",
    "https://example.com@127.0.0.1/hooks",
    "file:///etc/passwd",
];

#[tokio::test]
async fn api7_ssrf_other_spellings_of_internal_addresses_are_refused() {
    let app = spawn_app().await;
    for url in INTERNAL_SPELLINGS {
        let (status, e) = app
            .admin(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url, "events": ["*"] })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_error(&e, "invalid_webhook_url", url);
    }
    let (_, hooks) = app.admin(Method::GET, "/v1/webhook-endpoints", None).await;
    assert_eq!(hooks["data"], json!([]));
}

#[tokio::test]
async fn api7_ssrf_an_endpoint_cannot_be_moved_inside_the_network() {
    let app = spawn_app().await;
    let (status, wh) = app
        .admin(
            Method::POST,
            "/v1/webhook-endpoints",
            Some(json!({ "url": "https://93.184.216.34/hooks", "events": ["*"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wh}");
    let path = format!("/v1/webhook-endpoints/{}", wh["id"].as_str().unwrap());
    for url in ["http://93.184.216.34/hooks", "https://169.254.169.254/latest", "https://localhost/h"]
        .into_iter()
        .chain(INTERNAL_SPELLINGS)
    {
        let (status, e) = app.admin(Method::PATCH, &path, Some(json!({ "url": url }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_error(&e, "invalid_webhook_url", url);
    }
    let (_, after) = app.admin(Method::GET, &path, None).await;
    assert_eq!(after["url"], "https://93.184.216.34/hooks");
}

// ---------------------------------------------------------------------------
// API8:2023 Security misconfiguration.
//
// Already covered: security headers and HSTS (absent in dev) on a 200, the
// console and a 404 (limits.rs `every_response_carries_security_headers`);
// CORS closed by default (limits.rs); request ids (limits.rs).

#[tokio::test]
async fn api8_misconfiguration_errors_carry_the_security_headers_and_leak_nothing() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let big = serde_json::to_vec(&json!({ "description": "x".repeat(70 * 1024) })).unwrap();
    let requests = vec![
        ("401", app.http.get(app.url("/v1/payments")), StatusCode::UNAUTHORIZED, "unauthorized"),
        ("403", app.http.get(app.url("/v1/agents")).bearer_auth(&a.key), StatusCode::FORBIDDEN, "admin_only"),
        ("404", app.http.get(app.url("/v1/nothing-here")), StatusCode::NOT_FOUND, "not_found"),
        ("405", app.http.put(app.url("/v1/payments")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (
            "413",
            app.http
                .post(app.url("/v1/payments"))
                .bearer_auth(&a.key)
                .header("idempotency-key", "big")
                .header("content-type", "application/json")
                .body(big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "415",
            app.http
                .post(app.url("/v1/payments"))
                .bearer_auth(&a.key)
                .header("idempotency-key", "xml")
                .header("content-type", "application/xml")
                .body("<payment/>"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "400",
            app.http
                .post(app.url("/v1/payments"))
                .bearer_auth(&a.key)
                .header("idempotency-key", "bad")
                .header("content-type", "application/json")
                .body("{\"amount\": \u{0}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (name, req, status, code) in requests {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{name}");
        let h = resp.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(h["x-frame-options"], "DENY", "{name}");
        assert_eq!(h["cache-control"], "no-store", "{name}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{name}");
        assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="), "{name}");
        assert!(h["content-type"].to_str().unwrap().starts_with("application/json"), "{name}");
        assert!(h.get("server").is_none(), "{name}: {:?}", h.get("server"));
        assert!(h.get("x-powered-by").is_none(), "{name}");
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: not JSON: {text}"));
        assert_error(&body, code, name);
        for leak in ["panicked", "backtrace", "src/", ".rs:", "sqlx", "axum", "serde", "tokio", "SELECT"] {
            assert!(!text.contains(leak), "{name}: leaks {leak:?}: {text}");
        }
    }
    // The spec is served as JSON to anyone (it holds no secrets).
    let resp = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let spec: Value = resp.json().await.unwrap();
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    assert!(!spec.to_string().contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn api8_misconfiguration_trace_and_options_do_not_echo_requests() {
    let app = spawn_app().await;
    for method in [Method::TRACE, Method::from_bytes(b"TRACK").unwrap(), Method::OPTIONS] {
        let resp = app
            .http
            .request(method.clone(), app.url("/v1/payments"))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        if method != Method::OPTIONS {
            assert!(status.is_client_error(), "{method}: {status}");
        }
        assert!(!text.contains(ADMIN_TOKEN), "{method} echoes the request: {text}");
    }
}

#[tokio::test]
async fn api8_misconfiguration_garbage_ids_never_cause_server_errors() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, approver) = app.create_approver("ann").await;
    let long = "p".repeat(8000);
    for id in [
        "%00",
        "%27%20OR%201%3D1--",
        "..%2F..%2Fetc%2Fpasswd",
        "%E2%80%AE",
        "pay_%0d%0aSet-Cookie:%20x=1",
        long.as_str(),
        "0",
        "-1",
        "null",
    ] {
        let calls: Vec<(Method, String, &str)> = vec![
            (Method::GET, format!("/v1/payments/{id}"), a.key.as_str()),
            (Method::GET, format!("/v1/agents/{id}"), ADMIN_TOKEN),
            (Method::PATCH, format!("/v1/agents/{id}"), ADMIN_TOKEN),
            (Method::POST, format!("/v1/agents/{id}/freeze"), ADMIN_TOKEN),
            (Method::GET, format!("/v1/agents/{id}/keys"), ADMIN_TOKEN),
            (Method::DELETE, format!("/v1/agents/{}/keys/{id}", a.id), ADMIN_TOKEN),
            (Method::POST, format!("/v1/agents/{}/keys/{id}/rotate", a.id), ADMIN_TOKEN),
            (Method::DELETE, format!("/v1/approvers/{id}"), ADMIN_TOKEN),
            (Method::GET, format!("/v1/approvals/{id}"), approver.as_str()),
            (Method::POST, format!("/v1/approvals/{id}/approve"), approver.as_str()),
            (Method::GET, format!("/v1/webhook-endpoints/{id}"), ADMIN_TOKEN),
            (Method::POST, format!("/v1/webhook-events/{id}/replay"), ADMIN_TOKEN),
        ];
        for (method, path, token) in calls {
            let mut req = app.http.request(method.clone(), app.url(&path)).bearer_auth(token);
            if method == Method::PATCH {
                req = req.json(&json!({ "trust_level": "high" }));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            assert!(resp.headers().get("set-cookie").is_none(), "{path}");
            let (_, e) = into_parts(resp).await;
            let shown: String = path.chars().take(80).collect();
            assert!(status.is_client_error(), "{method} {shown}: {status} {e}");
            assert!(e["error"]["code"].is_string(), "{method} {shown}: {e}");
        }
    }
}

#[tokio::test]
async fn api8_misconfiguration_non_utf8_path_ids_answer_json() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    for (path, token) in [
        ("/v1/payments/%FF%FE", a.key.as_str()),
        ("/v1/agents/%FF%FE", ADMIN_TOKEN),
        ("/v1/webhook-endpoints/%C3%28", ADMIN_TOKEN),
    ] {
        let resp = app.http.get(app.url(path)).bearer_auth(token).send().await.unwrap();
        let status = resp.status();
        let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let (_, e) = into_parts(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {e}");
        assert!(content_type.is_some_and(|c| c.starts_with("application/json")), "{path}: {e}");
        assert!(e["error"]["code"].is_string(), "{path}: {e}");
    }
}

// ---------------------------------------------------------------------------
// API9:2023 Improper inventory management.
//
// Already covered: every registered route is in /openapi.json (admin.rs
// `health_and_readiness_and_openapi`).

#[tokio::test]
async fn api9_inventory_undocumented_versions_and_paths_are_json_404s() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, p) = app.pay(&a.key, "x", payment("1.00", "aws.amazon.com")).await;
    let id = p["id"].as_str().unwrap();
    for path in [
        "/v2/payments".to_owned(),
        "/v0/payments".into(),
        "/v1beta/payments".into(),
        "/api/v1/payments".into(),
        format!("/v1/payments/{id}/refund"),
        "/v1/payments/x/y".into(),
        "/v1/internal".into(),
        "/v1/debug".into(),
        "/debug/vars".into(),
        "/admin".into(),
        "/.env".into(),
        "/.git/config".into(),
        "/swagger-ui".into(),
    ] {
        for token in [a.key.as_str(), ADMIN_TOKEN] {
            let (status, e) = app.get(token, &path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {e}");
            assert_error(&e, "not_found", &path);
        }
    }
}

#[tokio::test]
async fn api9_inventory_every_documented_operation_is_served() {
    let app = spawn_app().await;
    let (_, route_missing) = app.get(ADMIN_TOKEN, "/v1/certainly-not-a-route").await;
    let route_missing = route_missing["error"]["message"].clone();
    let spec: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if path == "/v1/providers/lithic/asa" {
            // Mounted only with an ASA secret (cards.rs
            // `the_authorization_endpoint_does_not_exist_without_an_asa_secret`).
            continue;
        }
        let concrete =
            path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in ops.as_object().unwrap().keys().filter(|m| *m != "parameters") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app
                .http
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let (_, body) = into_parts(resp).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} documented but not routed");
            assert!(
                !(status == StatusCode::NOT_FOUND && body["error"]["message"] == route_missing),
                "{method} {path} documented but not routed: {body}"
            );
        }
    }
}

// The documented key rotation (docs/api.md) is served and tested in admin.rs
// `a_rotated_key_keeps_working_for_its_grace_period_only`.

// ---------------------------------------------------------------------------
// API10:2023 Unsafe consumption of APIs.
//
// Already covered: a provider answering garbage fails the payment cleanly
// (provider_faults.rs `an_unreadable_answer_fails_cleanly_and_releases_the_reservation`,
// provider_circle.rs `garbage_answer_fails_cleanly_and_creates_nothing`), a
// lost answer and a dead provider (provider_faults.rs), a refused key not
// shown (provider_lithic.rs `a_refused_api_key_fails_without_showing_the_key`).
// Here: a redirect from the provider is not followed.

#[tokio::test]
async fn api10_unsafe_consumption_a_providers_redirect_is_not_followed() {
    use crate::sim::circle::{CircleSim, SHOP};
    let sim = CircleSim::start(1).await;
    // A "provider" that redirects every request to the real simulator: were
    // redirects followed, the transfer would be made there.
    let hits = Arc::new(AtomicUsize::new(0));
    let target = sim.base_url();
    let counted = hits.clone();
    let redirector = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counted = counted.clone();
        let target = target.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, format!("{target}{}", uri.path()))],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let section = sim.section(&dir, None).replace(&sim.base_url(), &redirect_base);
    let section =
        section.replace("http = { timeout = \"2s\" }", "http = { timeout = \"500ms\", attempts = 1 }");
    let app = spawn_with_providers(
        &provider_policy("onchain", "usdc", "circle"),
        &dir,
        &format!("[circle]\n{section}"),
    )
    .await;
    let agent = app.create_agent("onchain").await;
    let body = json!({ "amount": "5.00", "currency": "USDC", "merchant_id": SHOP, "rail": "usdc" });
    let (status, p) = app.pay(&agent.key, "r1", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let settled = app.settled(&agent.key, &id).await;
    // Give a follow-up (poll, retry) time to happen, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hits.load(Ordering::SeqCst) >= 1, "the gateway called the provider");
    assert_eq!(sim.transfers(), 0, "the redirect was followed to another server");
    let (_, now) = app.get(&agent.key, &format!("/v1/payments/{id}")).await;
    assert_ne!(now["status"], "succeeded", "a redirect is not a success: {settled} {now}");
}
