//! API8 (security misconfiguration), API9 (improper inventory
//! management) and API10 (unsafe consumption of APIs).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::helpers::*;

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
    let spec: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
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
    let body = json!({ "amount": "5.00", "currency": "USDC", "merchant_id": SHOP, "merchant_category": "retail", "rail": "usdc" });
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
