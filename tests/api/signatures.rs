//! Agents authenticated by Ed25519 request signatures instead of bearer
//! keys: the recipe in docs/api.md ("Signed requests"), replays, the time
//! window, scopes, and rotating keys.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use purser::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) async fn register(
    app: &TestApp,
    agent: &Agent,
    key: &SigningKey,
    scopes: Option<&[&str]>,
) -> (StatusCode, Value) {
    let mut body = json!({ "public_key": base64(key.verifying_key().as_bytes()) });
    if let Some(scopes) = scopes {
        body["scopes"] = json!(scopes);
    }
    app.admin(Method::POST, &format!("/v1/agents/{}/signing-keys", agent.id), Some(body)).await
}

/// The signing recipe, as an agent implements it.
pub(crate) fn signed(
    app: &TestApp,
    agent: &Agent,
    key: &SigningKey,
    timestamp: i64,
    method: Method,
    path: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let message = format!("{method}\n{path}\n{timestamp}\n{}", hex::encode(Sha256::digest(body.as_bytes())));
    let signature = base64(&key.sign(message.as_bytes()).to_bytes());
    app.http
        .request(method, app.url(path))
        .header("Purser-Agent", &agent.id)
        .header("Purser-Timestamp", timestamp.to_string())
        .header("Purser-Signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    into_parts(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_signed_payment_is_accepted_once_and_only_inside_the_window() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let (status, registered) = register(&app, &agent, &key, None).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let now = app.clock.now().timestamp();
    let body = payment("12.00", "aws.amazon.com").to_string();

    let request = || {
        signed(&app, &agent, &key, now, Method::POST, "/v1/payments", &body).header("Idempotency-Key", "s1")
    };
    let (status, p) = send(request()).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["agent_id"], agent.id.as_str());
    // The very same request again: a replay (409: the signature is genuine,
    // so it is no failed authentication).
    let (status, e) = send(request()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("signature_replayed")),
        "{e}"
    );

    // Reads are signed too (the path includes the query).
    let (status, list) =
        send(signed(&app, &agent, &key, now + 1, Method::GET, "/v1/payments?limit=5", "")).await;
    assert_eq!((status, list["data"].as_array().unwrap().len()), (StatusCode::OK, 1));

    // Outside the 5-minute window, a changed body, another key: refused.
    let stale = signed(&app, &agent, &key, now - 301, Method::GET, "/v1/payments", "");
    assert_eq!(send(stale).await.0, StatusCode::UNAUTHORIZED);
    let tampered = signed(&app, &agent, &key, now + 2, Method::POST, "/v1/payments", &body)
        .header("Idempotency-Key", "s2")
        .body(payment("99.00", "aws.amazon.com").to_string());
    assert_eq!(send(tampered).await.0, StatusCode::UNAUTHORIZED);
    let stranger = SigningKey::from_bytes(&[9; 32]);
    assert_eq!(
        send(signed(&app, &agent, &stranger, now + 3, Method::GET, "/v1/payments", "")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The audit log names the signing key.
    let (_, audit) = app.admin(Method::GET, "/v1/audit?type=payment.approved", None).await;
    let actor = audit["data"][0]["actor"].as_str().unwrap();
    assert!(actor.ends_with(registered["id"].as_str().unwrap()), "{actor}");
}

#[tokio::test]
async fn signing_keys_carry_scopes_and_rotate_without_downtime() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let (old, new) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let (_, old_record) = register(&app, &agent, &old, None).await;
    let now = app.clock.now().timestamp();
    let get = |key: &SigningKey, t: i64| signed(&app, &agent, key, t, Method::GET, "/v1/payments", "");

    // Rotation: register the new key, both work, revoke the old.
    register(&app, &agent, &new, None).await;
    assert_eq!(send(get(&old, now)).await.0, StatusCode::OK);
    assert_eq!(send(get(&new, now)).await.0, StatusCode::OK);
    let path = format!("/v1/agents/{}/signing-keys/{}", agent.id, old_record["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(send(get(&old, now + 1)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(get(&new, now + 1)).await.0, StatusCode::OK);

    // A read-only key cannot pay; a key cannot be registered twice; the
    // public key must be one.
    let reader = SigningKey::from_bytes(&[3; 32]);
    register(&app, &agent, &reader, Some(&["payments:read"])).await;
    let body = payment("1.00", "aws.amazon.com").to_string();
    let pay = signed(&app, &agent, &reader, now, Method::POST, "/v1/payments", &body)
        .header("Idempotency-Key", "r");
    let (status, e) = send(pay).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    assert_eq!(register(&app, &agent, &reader, None).await.0, StatusCode::CONFLICT);
    let bad = json!({ "public_key": "bm90IGEga2V5" });
    let (status, _) =
        app.admin(Method::POST, &format!("/v1/agents/{}/signing-keys", agent.id), Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, listed) = app.admin(Method::GET, &format!("/v1/agents/{}/signing-keys", agent.id), None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn signed_requests_are_limited_per_signing_key_not_per_address() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_reads = 3).await;
    let (a, b) = (app.create_agent("test").await, app.create_agent("test").await);
    let (key_a, key_b) = (SigningKey::from_bytes(&[21; 32]), SigningKey::from_bytes(&[22; 32]));
    assert_eq!(register(&app, &a, &key_a, None).await.0, StatusCode::CREATED);
    assert_eq!(register(&app, &b, &key_b, None).await.0, StatusCode::CREATED);
    let now = app.clock.now().timestamp();
    let read = |agent, key, i| send(signed(&app, agent, key, now + i, Method::GET, "/v1/payments", ""));
    for i in 0..3 {
        assert_eq!(read(&a, &key_a, i).await.0, StatusCode::OK, "read {i}");
    }
    let (status, e) = read(&a, &key_a, 3).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    // Same address, another agent's key: a budget of its own. And the
    // address's own budget (for requests without a credential) is untouched.
    assert_eq!(read(&b, &key_b, 4).await.0, StatusCode::OK);
    let openapi = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(openapi.status(), StatusCode::OK);

    // A signing key with a budget of its own: five reads, above the default.
    let own = SigningKey::from_bytes(&[23; 32]);
    let as_array = json!({ "public_key": base64(own.verifying_key().as_bytes()), "rate_limit": [5] });
    let (status, e) =
        app.admin(Method::POST, &format!("/v1/agents/{}/signing-keys", b.id), Some(as_array)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let body = json!({
        "public_key": base64(own.verifying_key().as_bytes()),
        "rate_limit": { "reads_per_minute": 5 },
    });
    let (status, registered) =
        app.admin(Method::POST, &format!("/v1/agents/{}/signing-keys", b.id), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["rate_limit"], json!({ "reads_per_minute": 5, "writes_per_minute": null }));
    for i in 10..15 {
        assert_eq!(read(&b, &own, i).await.0, StatusCode::OK, "read {i}");
    }
    assert_eq!(read(&b, &own, 15).await.0, StatusCode::TOO_MANY_REQUESTS);
}

/// The recipe with a `Purser-Nonce`, signed as its own line before the
/// body's hash.
fn signed_with_nonce(
    app: &TestApp,
    agent: &Agent,
    key: &SigningKey,
    timestamp: i64,
    nonce: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    let message = format!("GET\n{path}\n{timestamp}\n{nonce}\n{}", hex::encode(Sha256::digest(b"")));
    let signature = base64(&key.sign(message.as_bytes()).to_bytes());
    app.http
        .get(app.url(path))
        .header("Purser-Agent", &agent.id)
        .header("Purser-Timestamp", timestamp.to_string())
        .header("Purser-Nonce", nonce)
        .header("Purser-Signature", signature)
}

/// Two identical requests in the same second are two signatures with a
/// nonce each; without one, the second is a replay, answered 409 and
/// charged to no one: the address is not braked and no alert fires.
#[tokio::test]
async fn a_nonce_lets_identical_requests_share_a_second_and_replays_brake_no_one() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.rate_limit_failed_auth = 3).await;
    let agent = app.create_agent("test").await;
    let key = SigningKey::from_bytes(&[11; 32]);
    assert_eq!(register(&app, &agent, &key, None).await.0, StatusCode::CREATED);
    let now = app.clock.now().timestamp();
    for nonce in ["n-1", "n-2", "n-3"] {
        let (status, e) = send(signed_with_nonce(&app, &agent, &key, now, nonce, "/v1/payments")).await;
        assert_eq!(status, StatusCode::OK, "{nonce}: {e}");
    }
    // A nonce is signed: another nonce under a signature breaks it.
    let message = format!("GET\n/v1/payments\n{now}\nn-4\n{}", hex::encode(Sha256::digest(b"")));
    let forged = app
        .http
        .get(app.url("/v1/payments"))
        .header("Purser-Agent", &agent.id)
        .header("Purser-Timestamp", now.to_string())
        .header("Purser-Nonce", "n-9")
        .header("Purser-Signature", base64(&key.sign(message.as_bytes()).to_bytes()));
    assert_eq!(send(forged).await.0, StatusCode::UNAUTHORIZED);
    // Replays, more than the failed-authentication budget: still 409, and
    // the address keeps working, anonymous requests included.
    for _ in 0..5 {
        let (status, _) = send(signed(&app, &agent, &key, now, Method::GET, "/v1/payments", "")).await;
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::CONFLICT);
        }
    }
    let anonymous = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK, "the replays braked the address");
}
