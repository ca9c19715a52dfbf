//! Rate limits, the failed-authentication brake and response headers.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn writes_past_the_per_key_budget_get_429_with_retry_after() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_writes = 5).await;
    let a = app.create_agent("test").await;
    let b = app.create_agent("test").await;
    // (The admin's four writes above count against the admin token's budget.)
    for i in 0..5 {
        let (status, _) = app.pay(&a.key, &format!("k{i}"), payment("1.00", "aws.amazon.com")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let resp = app
        .http
        .post(app.url("/v1/payments"))
        .bearer_auth(&a.key)
        .header("Idempotency-Key", "k5")
        .json(&payment("1.00", "aws.amazon.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (_, e) = into_parts(resp).await;
    assert_eq!(e["error"]["code"], "rate_limited");

    let (status, _) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(status, StatusCode::OK, "reads have their own budget");
    let (status, _) = app.pay(&b.key, "k0", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED, "another key has its own budget");
}

#[tokio::test]
async fn a_key_with_its_own_rate_limit_is_held_to_it_and_keeps_it_through_rotation() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| {
        c.rate_limit_reads = 3;
        c.rate_limit_writes = 50;
    })
    .await;
    let agent = app.create_agent("test").await;
    let own = json!({ "reads_per_minute": 5, "writes_per_minute": 2 });
    let path = format!("/v1/agents/{}/keys", agent.id);
    let (status, key) = app.admin(Method::POST, &path, Some(json!({ "rate_limit": own }))).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["rate_limit"], own);
    let secret = key["key"].as_str().unwrap();

    // Fewer writes than the gateway's 50, and more reads than its 3.
    exhaust(&app, secret, Method::POST, 2).await;
    exhaust(&app, secret, Method::GET, 5).await;
    // The agent's first key (no rate_limit of its own) has the defaults.
    exhaust(&app, &agent.key, Method::GET, 3).await;
    let (_, keys) = app.admin(Method::GET, &path, None).await;
    let default = keys["data"].as_array().unwrap().iter().find(|k| k["id"] != key["id"]).unwrap().clone();
    assert_eq!(default["rate_limit"], json!({ "reads_per_minute": null, "writes_per_minute": null }));

    // Rotation carries the limit over to the new key (with a fresh budget).
    let rotate = format!("{path}/{}/rotate", key["id"].as_str().unwrap());
    let (status, rotated) = app.admin(Method::POST, &rotate, Some(json!({ "grace_seconds": 0 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(rotated["rate_limit"], own);
    exhaust(&app, rotated["key"].as_str().unwrap(), Method::POST, 2).await;
}

/// `budget` requests with `key` pass, the next is refused `429 rate_limited`.
async fn exhaust(app: &TestApp, key: &str, method: Method, budget: usize) {
    for i in 0..=budget {
        let (status, body) = if method == Method::GET {
            app.get(key, "/v1/payments").await
        } else {
            // Idempotency keys are per agent, and keys may share an agent.
            app.pay(key, &format!("{}-{i}", &key[key.len() - 8..]), payment("1.00", "aws.amazon.com")).await
        };
        let passed = status.is_success();
        let refused = status == StatusCode::TOO_MANY_REQUESTS && body["error"]["code"] == "rate_limited";
        assert!(if i < budget { passed } else { refused }, "{method} {i} of {budget}: {status} {body}");
    }
}

#[tokio::test]
async fn a_key_rate_limit_must_be_a_positive_count_of_known_fields() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let path = format!("/v1/agents/{}/keys", agent.id);
    for bad in [
        json!({ "writes_per_minute": 0 }),
        json!({ "reads_per_minute": 1_000_001 }),
        json!({ "reads_per_minute": -1 }),
        json!({ "reads_per_minute": "10" }),
        json!({ "per_minute": 10 }),
        json!([5, 10]),
        json!(null),
    ] {
        let (status, e) = app.admin(Method::POST, &path, Some(json!({ "rate_limit": bad }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert_eq!(e["error"]["code"], "invalid_request", "{bad}");
    }
    let (_, keys) = app.admin(Method::GET, &path, None).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "nothing was created");
}

#[tokio::test]
async fn a_made_up_credential_does_not_escape_the_address_limit() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_reads = 3).await;
    // A fresh bogus token on each request, to a route that reads none.
    let get = |i: usize| app.http.get(app.url("/openapi.json")).bearer_auth(format!("junk-{i}")).send();
    for i in 0..3 {
        assert_eq!(get(i).await.unwrap().status(), StatusCode::OK, "request {i}");
    }
    assert_eq!(get(3).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn repeated_failed_authentication_is_braked_and_audited() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_failed_auth = 5).await;
    let a = app.create_agent("test").await;
    for i in 0..6 {
        let (status, _) = app.get(&format!("psr_agent_guess-{i}"), "/v1/payments").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The address is braked: another guess gets 429 (not 401), and so does
    // a request with no credential; a valid key and the admin token still
    // work from it (one bad client behind a NAT locks nobody else out).
    let (status, e) = app.get("psr_agent_guess-7", "/v1/payments").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    let anonymous = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::OK);
    assert_eq!(app.get(ADMIN_TOKEN, "/v1/agents").await.0, StatusCode::OK);
    // Probes are never limited.
    let probe = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK);

    // Each failure was audited (in the background), without the presented
    // credential. Read from the store: this address is braked for the API.
    let store = purser::store::Store::connect(&app.database_url).await.unwrap();
    let filter =
        purser::store::AuditFilter { kind: Some("auth.failed".into()), limit: 100, ..Default::default() };
    let mut records = Vec::new();
    for _ in 0..200 {
        records = store.audit_records(&filter).await.unwrap();
        if records.len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(records.len() >= 6, "{} failures audited", records.len());
    assert!(records.iter().all(|r| r.actor.starts_with("ip:127.0.0.1") && !r.data.contains("guess")));
}

/// A bearer header on a route that does not exist (or with a method it does
/// not take) buys nothing: such requests count against the address.
#[tokio::test]
async fn unknown_routes_and_methods_are_rate_limited_whatever_the_header() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_reads = 5).await;
    let a = app.create_agent("test").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.get(&a.key, "/v1/nope").await.0);
    }
    assert_eq!(statuses[..5], [StatusCode::NOT_FOUND; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 3], "{statuses:?}");
    // GET on a POST-only route: 405, and it counts too.
    let (status, _) = app.get(&a.key, &format!("/v1/agents/{}/freeze", a.id)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "405s count too");
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    for (method, path, token) in [
        (Method::GET, "/v1/payments", a.key.as_str()),
        (Method::GET, "/console", ""),
        (Method::GET, "/nope", ""),
    ] {
        let mut req = app.http.request(method, app.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
        assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="), "{path}");
    }
    let dev = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.dev = true).await;
    let resp = dev.http.get(dev.url("/healthz")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none(), "no HSTS over dev's plain http");
}

#[tokio::test]
async fn every_response_and_error_carries_a_request_id_of_our_own() {
    let app = spawn_app().await;
    let resp =
        app.http.get(app.url("/v1/payments")).header("x-request-id", "forged-id").send().await.unwrap();
    let header = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(header.starts_with("req_") && header.len() == 30, "{header}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["request_id"], header.as_str(), "the error names the request");
    let other = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), header, "one id per request");
}

#[tokio::test]
async fn only_configured_origins_may_call_from_a_browser() {
    let preflight = |app: &TestApp, origin: &str| {
        app.http
            .request(Method::OPTIONS, app.url("/v1/payments"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,idempotency-key")
            .send()
    };
    let allowed = |resp: &reqwest::Response| resp.headers().get("access-control-allow-origin").cloned();

    let closed = spawn_app().await;
    assert_eq!(allowed(&preflight(&closed, "https://dash.example.com").await.unwrap()), None);

    let dash = "https://dash.example.com".parse().unwrap();
    let open = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.cors_origins = vec![dash]).await;
    let resp = preflight(&open, "https://dash.example.com").await.unwrap();
    assert_eq!(allowed(&resp).unwrap(), "https://dash.example.com");
    let methods = resp.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    // A browser may send signed requests too.
    let headers = resp.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for name in ["authorization", "idempotency-key", "purser-agent", "purser-timestamp", "purser-signature"] {
        assert!(headers.contains(name), "{name} not in {headers}");
    }
    assert_eq!(allowed(&preflight(&open, "https://evil.example").await.unwrap()), None);
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Long enough that setting up (two admin requests) never hits it on a
    // loaded 2-core CI machine, where 200 ms once did.
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| {
        c.request_timeout = std::time::Duration::from_secs(2)
    })
    .await;
    let a = app.create_agent("test").await;
    // A client that announces a body and never sends it.
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: slow\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        a.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_string(&mut answer)).await;
    assert!(read.is_ok(), "the server answered instead of waiting for the body");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

const METRICS_TOKEN: &str = "metrics-only-Zq8v3LkP0wXy7TnR4cBm9dHs2FgJ";

/// A Prometheus scraper holds the metrics token, which reads `/metrics`
/// and nothing else; agents and approvers cannot read it.
#[tokio::test]
async fn metrics_count_decisions_for_the_metrics_token_and_admins_only() {
    let app =
        spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.metrics_token = Some(METRICS_TOKEN.to_owned()))
            .await;
    let a = app.create_agent("test").await;
    let (_, approver_token) = app.create_approver("ops").await;
    assert_eq!(app.get(&approver_token, "/metrics").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("metrics-only-but-not-the-token-0123456789", "/metrics").await.0,
        StatusCode::UNAUTHORIZED
    );
    // The metrics token is not an admin credential, nor any other.
    for path in ["/v1/agents", "/v1/payments", "/v1/approvals", "/v1/audit"] {
        assert_eq!(app.get(METRICS_TOKEN, path).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _) =
        app.post_as(METRICS_TOKEN, "/v1/agents", json!({ "name": "x", "policy": "test" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = app.http.get(app.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("purser_webhook_backlog"));
    app.pay(&a.key, "m1", payment("1.00", "aws.amazon.com")).await;
    app.pay(&a.key, "m2", payment("500.00", "aws.amazon.com")).await;
    assert_eq!(app.get(&a.key, "/metrics").await.0, StatusCode::FORBIDDEN);
    let text = app.metrics().await;
    // Every routed response is counted by route template and status.
    assert!(
        text.lines().any(|l| l.starts_with("purser_http_requests_total{")
            && l.contains("route=\"/v1/payments\"")
            && l.contains("status=\"201\"")),
        "no HTTP count for the payments route:\n{text}"
    );
    // Other tests in this process count too: only presence is certain.
    for needle in [
        "purser_decisions_total{outcome=\"approved\",reason=\"none\"}",
        "purser_decisions_total{outcome=\"denied\",reason=\"per_tx_limit\"}",
        "purser_decision_seconds_bucket",
        "purser_webhook_backlog",
        "purser_payments_processing",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
