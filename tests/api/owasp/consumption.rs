//! API4 (unrestricted resource consumption) and API6 (sensitive
//! business flows).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;
use crate::helpers::*;

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
