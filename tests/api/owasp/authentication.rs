//! API2: broken authentication.

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::*;

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
    // peer is braked, whatever address it claims next (a valid key still
    // works from it: the brake stops guesses, not credentials).
    let resp = app
        .http
        .get(app.url("/v1/payments"))
        .bearer_auth("psr_agent_guess-5")
        .header("x-forwarded-for", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::OK);
}
