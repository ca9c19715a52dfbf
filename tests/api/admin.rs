use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn admin_creates_lists_and_updates_agents() {
    let app = spawn_app().await;
    let (status, agent) =
        app.admin(Method::POST, "/v1/agents", Some(json!({ "name": "buyer", "policy": "test" }))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(agent["id"].as_str().unwrap().starts_with("agt_"));
    assert_eq!(agent["trust_level"], "low", "new agents start at low");
    assert_eq!(agent["frozen"], false);
    assert!(agent["created_at"].is_string());
    let id = agent["id"].as_str().unwrap();

    let (_, list) = app.admin(Method::GET, "/v1/agents", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(json!({ "policy": "strict", "trust_level": "high" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((patched["policy"].as_str(), patched["trust_level"].as_str()), (Some("strict"), Some("high")));

    let (status, e) =
        app.admin(Method::POST, "/v1/agents", Some(json!({ "name": "x", "policy": "no-such-policy" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["code"], "unknown_policy");
    let (status, _) = app.admin(Method::GET, "/v1/agents/agt_missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_are_shown_once_and_listed_without_secrets() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    assert!(a.key.starts_with("psr_agent_"));
    assert!(a.key.len() >= "psr_agent_".len() + 43, "32 bytes of entropy");
    let (status, keys) = app.admin(Method::GET, &format!("/v1/agents/{}/keys", a.id), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = keys.to_string();
    assert!(!text.contains(&a.key), "the key is never listed");
    assert!(!text.contains(&purser::auth::hash(&a.key)), "nor its hash");
    assert!(a.key.starts_with(keys["data"][0]["prefix"].as_str().unwrap()));
}

#[tokio::test]
async fn credentials_are_checked_on_every_request() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;

    let (status, e) = into_parts(app.http.get(app.url("/v1/payments")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["code"], "unauthorized");
    let (status, _) = app.get("psr_agent_not-a-real-key", "/v1/payments").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("psr_admin_wrong-token-0123456789abcdefghij", "/v1/agents").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An agent key cannot call admin endpoints; the admin cannot pay.
    let (status, e) = app.get(&a.key, "/v1/agents").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["code"], "admin_only");
    let (status, _) = app.pay(ADMIN_TOKEN, "k", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked keys stop working at once.
    let (_, keys) = app.admin(Method::GET, &format!("/v1/agents/{}/keys", a.id), None).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app.admin(Method::DELETE, &format!("/v1/agents/{}/keys/{key_id}", a.id), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, e) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["error"]["message"].as_str().unwrap().contains("revoked"));
    let (status, _) = app.admin(Method::DELETE, &format!("/v1/agents/{}/keys/{key_id}", a.id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoking twice finds no live key");
}

#[tokio::test]
async fn keys_expire_and_carry_scopes_and_address_limits() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let keys_path = format!("/v1/agents/{}/keys", a.id);
    let mk = |body| app.admin(Method::POST, &keys_path, Some(body));

    let expires = (default_start() + Duration::hours(1)).to_rfc3339();
    let (_, short) = mk(json!({ "expires_at": expires })).await;
    let short = short["key"].as_str().unwrap().to_owned();
    let (_, read_only) = mk(json!({ "scopes": ["payments:read"] })).await;
    let read_only = read_only["key"].as_str().unwrap().to_owned();
    let (_, elsewhere) = mk(json!({ "allowed_cidrs": ["203.0.113.0/24"] })).await;
    let elsewhere = elsewhere["key"].as_str().unwrap().to_owned();
    let (_, local) = mk(json!({ "allowed_cidrs": ["127.0.0.0/8"] })).await;
    let local = local["key"].as_str().unwrap().to_owned();

    let (status, e) = app.pay(&read_only, "k", payment("1.00", "aws.amazon.com")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    // Who may pay is answered before anything about the body.
    let (status, _) = app.pay(&read_only, "k", json!({ "amount": 1 })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&read_only, "/v1/payments").await;
    assert_eq!(status, StatusCode::OK);

    let (status, e) = app.get(&elsewhere, "/v1/payments").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("ip_not_allowed")));
    let (status, _) = app.get(&local, "/v1/payments").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app.get(&short, "/v1/payments").await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(Duration::hours(1));
    let (status, e) = app.get(&short, "/v1/payments").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["error"]["message"].as_str().unwrap().contains("expired"));

    for bad in [
        json!({ "scopes": ["payments:everything"] }),
        json!({ "scopes": [] }),
        json!({ "allowed_cidrs": ["not-a-cidr"] }),
        json!({ "expires_at": "2020-01-01T00:00:00Z" }),
    ] {
        let (status, e) = mk(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {e}");
    }
}

#[tokio::test]
async fn health_and_readiness_and_openapi() {
    let app = spawn_app().await;
    let (status, h) = into_parts(app.http.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, r) = into_parts(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, r["status"].as_str()), (StatusCode::OK, Some("ready")));
    let spec = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    assert_eq!(spec.headers()["content-type"], "application/json");
    let committed = include_str!("../../openapi.json");
    assert_eq!(spec.text().await.unwrap(), committed, "served and committed descriptions differ");
    // Every route is registered through `routes!`, which documents it: a
    // plain `.route(...)` would serve a path the description lacks.
    for dir in ["src/api", "src/api/console"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains(".route(\""), "{} registers a route outside routes!", path.display());
        }
    }
}

/// A new agent's key usable only from 203.0.113.0/24.
async fn key_limited_to_test_net(app: &TestApp) -> String {
    let a = app.create_agent("test").await;
    let path = format!("/v1/agents/{}/keys", a.id);
    let (_, key) = app.admin(Method::POST, &path, Some(json!({ "allowed_cidrs": ["203.0.113.0/24"] }))).await;
    key["key"].as_str().unwrap().to_owned()
}

async fn read_with_forwarded_for(app: &TestApp, key: &str, xff: &str) -> StatusCode {
    let resp =
        app.http.get(app.url("/v1/payments")).bearer_auth(key).header("x-forwarded-for", xff).send().await;
    resp.unwrap().status()
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_declared_proxies() {
    // Without declared proxies the header changes nothing: the client is
    // the peer, 127.0.0.1, outside the key's network.
    let direct = spawn_app().await;
    let key = key_limited_to_test_net(&direct).await;
    assert_eq!(read_with_forwarded_for(&direct, &key, "203.0.113.9").await, StatusCode::FORBIDDEN);

    // Behind a declared proxy (the test client's 127.0.0.1) the address it
    // appended counts, and a forged entry to its left does not.
    let loopback: ipnet::IpNet = "127.0.0.0/8".parse().unwrap();
    let proxied =
        spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.trusted_proxies = vec![loopback]).await;
    let key = key_limited_to_test_net(&proxied).await;
    assert_eq!(read_with_forwarded_for(&proxied, &key, "203.0.113.9").await, StatusCode::OK);
    assert_eq!(
        read_with_forwarded_for(&proxied, &key, "203.0.113.9, 198.51.100.7").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(read_with_forwarded_for(&proxied, &key, "198.51.100.7").await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_rotated_key_keeps_working_for_its_grace_period_only() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, keys) = app.admin(Method::GET, &format!("/v1/agents/{}/keys", a.id), None).await;
    let old_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let rotate = format!("/v1/agents/{}/keys/{old_id}/rotate", a.id);

    let (status, rotated) = app.admin(Method::POST, &rotate, Some(json!({ "grace_seconds": 3600 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["scopes"], keys["data"][0]["scopes"], "same scopes");
    assert_eq!(rotated["previous"]["expires_at"], "2026-11-26T18:00:00.000Z");
    assert!(rotated["previous"].get("key").is_none() && rotated["previous"].get("key_hash").is_none());

    // During the grace period both keys work; after it only the new one.
    assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::OK);
    assert_eq!(app.get(&new_key, "/v1/payments").await.0, StatusCode::OK);
    app.clock.advance(Duration::seconds(3600));
    assert_eq!(app.get(&a.key, "/v1/payments").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&new_key, "/v1/payments").await.0, StatusCode::OK);

    // A zero grace revokes at once; a revoked key cannot be rotated; the
    // grace period is bounded.
    let new_id = rotated["id"].as_str().unwrap();
    let rotate_new = format!("/v1/agents/{}/keys/{new_id}/rotate", a.id);
    let (_, third) = app.admin(Method::POST, &rotate_new, Some(json!({ "grace_seconds": 0 }))).await;
    assert!(third["previous"]["revoked_at"].is_string(), "{third}");
    assert_eq!(app.get(&new_key, "/v1/payments").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(third["key"].as_str().unwrap(), "/v1/payments").await.0, StatusCode::OK);
    // Revoked, expired or already rotated: 409, never a key born dead.
    let (status, e) = app.admin(Method::POST, &rotate_new, None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("key_not_rotatable")),
        "{e}"
    );
    assert_eq!(app.admin(Method::POST, &rotate, None).await.0, StatusCode::CONFLICT, "expired");
    let third_id = third["id"].as_str().unwrap();
    let too_long = json!({ "grace_seconds": 2_592_001 });
    let path = format!("/v1/agents/{}/keys/{third_id}/rotate", a.id);
    assert_eq!(app.admin(Method::POST, &path, Some(too_long)).await.0, StatusCode::BAD_REQUEST);
    let (_, audit) = app.admin(Method::GET, "/v1/audit?type=key.rotated", None).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 2);
}

/// Rotating a key in its grace period again would give a key that dies when
/// the first grace period ends: the replaced key names its successor, and
/// only the successor can be rotated.
#[tokio::test]
async fn a_key_in_its_grace_period_cannot_be_rotated_again() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, keys) = app.admin(Method::GET, &format!("/v1/agents/{}/keys", a.id), None).await;
    let old_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let rotate = |id: &str| format!("/v1/agents/{}/keys/{id}/rotate", a.id);
    let (status, first) =
        app.admin(Method::POST, &rotate(&old_id), Some(json!({ "grace_seconds": 3600 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["previous"]["replaced_by"], first["id"]);
    assert_eq!(first["expires_at"], Value::Null, "the new key keeps the old one's (no) expiry");
    let (status, e) = app.admin(Method::POST, &rotate(&old_id), Some(json!({ "grace_seconds": 3600 }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains(first["id"].as_str().unwrap()), "{e}");
    // The successor rotates, and its successor outlives the first grace.
    let (status, second) = app.admin(Method::POST, &rotate(first["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    app.clock.advance(Duration::seconds(7200));
    assert_eq!(app.get(second["key"].as_str().unwrap(), "/v1/payments").await.0, StatusCode::OK);
}

/// An agent is low, medium or high: `custom` has no ladder row, and a policy
/// that leaves a limit to the ladder would then apply none.
#[tokio::test]
async fn an_agent_cannot_be_custom() {
    let app = spawn_app().await;
    let (status, e) = app
        .admin(
            Method::POST,
            "/v1/agents",
            Some(json!({ "name": "x", "policy": "test", "trust_level": "custom" })),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_trust_level"))
    );
    let a = app.create_agent("test").await;
    let patch = json!({ "trust_level": "custom" });
    let (status, _) = app.admin(Method::PATCH, &format!("/v1/agents/{}", a.id), Some(patch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A real credential used where it may not be (another network, a missing
/// scope, a revoked key) is refused, audited with the credential, the
/// client address and the reason, and counted.
#[tokio::test]
async fn refused_uses_of_real_credentials_are_audited_with_the_address() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let path = format!("/v1/agents/{}/keys", a.id);
    let body = json!({ "allowed_cidrs": ["10.9.0.0/16"], "scopes": ["payments:create"] });
    let (_, fenced) = app.admin(Method::POST, &path, Some(body)).await;
    let (status, e) = app.get(fenced["key"].as_str().unwrap(), "/v1/payments").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("ip_not_allowed")));
    let (status, _) = app.get(&a.key, "/v1/agents").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent on an admin route");

    let mut refused = Vec::new();
    for _ in 0..200 {
        let (_, page) = app.admin(Method::GET, "/v1/audit?type=auth.refused", None).await;
        refused = page["data"].as_array().unwrap().clone();
        if refused.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let data: Vec<Value> = refused
        .iter()
        .map(|r| serde_json::from_str(r["data"].as_str().unwrap_or("{}")).unwrap_or(r["data"].clone()))
        .collect();
    let reasons: Vec<&str> = data.iter().filter_map(|d| d["reason"].as_str()).collect();
    assert!(reasons.contains(&"ip_not_allowed") && reasons.contains(&"admin_only"), "{refused:?}");
    assert!(data.iter().all(|d| d["address"] == "127.0.0.1"), "{data:?}");
    assert!(data.iter().any(|d| d["credential"] == fenced["id"]), "{data:?}");
    let text = app.metrics().await;
    assert!(text.contains("purser_refused_credentials_total{reason=\"ip_not_allowed\"}"), "{text}");
}

/// With PURSER_MAX_KEY_LIFETIME a key never lives longer; every key shows
/// when it was last used.
#[tokio::test]
async fn keys_have_a_maximum_lifetime_and_show_their_last_use() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| {
        c.max_key_lifetime = Some(std::time::Duration::from_secs(90 * 86_400))
    })
    .await;
    let a = app.create_agent("test").await;
    let path = format!("/v1/agents/{}/keys", a.id);
    let (status, key) = app.admin(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["expires_at"], "2027-02-24T17:00:00.000Z", "90 days from 2026-11-26T17:00Z");
    assert_eq!(key["last_used_at"], Value::Null);
    let (status, e) =
        app.admin(Method::POST, &path, Some(json!({ "expires_at": "2027-06-01T00:00:00Z" }))).await;
    assert_eq!((status, e["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("/expires_at")), "{e}");

    assert_eq!(app.get(key["key"].as_str().unwrap(), "/v1/payments").await.0, StatusCode::OK);
    let mut used = Value::Null;
    for _ in 0..200 {
        let (_, keys) = app.admin(Method::GET, &path, None).await;
        let mine = keys["data"].as_array().unwrap().iter().find(|k| k["id"] == key["id"]).unwrap().clone();
        used = mine["last_used_at"].clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(used, "2026-11-26T17:00:00.000Z");
}
