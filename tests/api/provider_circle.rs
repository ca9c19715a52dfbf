//! The Circle adapter against the simulator in `sim/circle.rs`: wire format,
//! outcomes, the faults that must not pay twice, the circuit breaker, and
//! one payment end to end through the gateway.

use std::time::{Duration, Instant};

use purser::money::Currency;
use purser::providers::circle::{Circle, CircleConfig, FeeLevel};
use purser::providers::{ForwardOutcome, ForwardRequest, HttpSettings, Provider};
use reqwest::StatusCode;
use rsa::RsaPrivateKey;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{provider_policy, spawn_with_providers};
use crate::sim::circle::*;

fn adapter(sim: &CircleSim, tweak: impl FnOnce(&mut CircleConfig)) -> (Circle, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config: CircleConfig = toml::from_str(&sim.section(&dir, None)).unwrap();
    tweak(&mut config);
    (Circle::new(&config).unwrap(), dir)
}

fn request(merchant: &str) -> ForwardRequest {
    let id = ulid::Ulid::new();
    ForwardRequest {
        reference: format!("fwd_{id}"),
        payment_id: format!("pay_{id}"),
        agent_id: "agt_1".into(),
        amount: Decimal::new(525, 2),
        currency: Currency::Usdc,
        merchant_id: merchant.into(),
        merchant_category: None,
        rail: "usdc".into(),
        description: None,
    }
}

fn failure_code(outcome: &ForwardOutcome) -> &str {
    match outcome {
        ForwardOutcome::Failed { code, .. } => code,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A transfer body as a correct client sends it, with `ciphertext`.
fn hand_made_body(ciphertext: &str) -> Value {
    json!({
        "idempotencyKey": "0b8e1a52-3f0c-4d7e-9a61-5c2f8d9e0a1b",
        "entitySecretCiphertext": ciphertext,
        "walletId": WALLET_ID,
        "tokenId": TOKEN_ID,
        "destinationAddress": SHOP_ADDRESS,
        "amounts": ["1.000000"],
        "feeLevel": "MEDIUM",
        "refId": "fwd_hand_made",
    })
}

async fn post_transfer(sim: &CircleSim, bearer: &str, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/w3s/developer/transactions/transfer", sim.base_url()))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn simulator_refuses_foreign_reused_and_unauthenticated_requests() {
    let sim = CircleSim::start(1).await;
    let secret = hex::decode(ENTITY_SECRET).unwrap();

    // Encrypted with a key that is not Circle's (1024 bits keeps the test
    // fast and still fits OAEP-SHA256 around 32 bytes).
    let other = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    let foreign = encrypt_for(&other.to_public_key(), &secret);
    let (status, body) = post_transfer(&sim, API_KEY, &hand_made_body(&foreign)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 156016);

    let good = encrypt_for(&private_key().to_public_key(), &secret);
    let (status, body) = post_transfer(&sim, "TEST_API_KEY:sim0001:wrong", &hand_made_body(&good)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, body) = post_transfer(&sim, API_KEY, &hand_made_body(&good)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["state"], "INITIATED");
    let (status, body) = post_transfer(&sim, API_KEY, &hand_made_body(&good)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 156013);
    assert_eq!(sim.transfers(), 1);
}

#[tokio::test]
async fn completed_transfer_succeeds_with_circles_id_and_the_documented_body() {
    let sim = CircleSim::start(2).await;
    let (circle, _dir) = adapter(&sim, |_| {});
    let req = request(SHOP);
    let outcome = circle.forward(&req).await;

    let txns = sim.transactions();
    assert_eq!(txns.len(), 1);
    let txn = &txns[0];
    assert_eq!(outcome, ForwardOutcome::Succeeded { transaction_id: txn.id.clone() });
    assert_eq!(txn.ref_id, req.reference);
    assert_eq!(txn.destination, SHOP_ADDRESS);
    assert_eq!(txn.amounts, ["5.250000"]);
    assert_eq!((txn.wallet_id.as_str(), txn.token_id.as_str()), (WALLET_ID, TOKEN_ID));
    assert_eq!(txn.fee_level, "MEDIUM");
    let groups: Vec<usize> = txn.idempotency_key.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{}", txn.idempotency_key);

    // Forwarding the same payment again (a re-forward after a crash) finds
    // the same transaction under the same key and a fresh ciphertext.
    assert_eq!(circle.forward(&req).await, outcome);
    assert_eq!(sim.transfers(), 1);

    // USD is paid at par in USDC.
    let mut usd = request(SHOP);
    usd.currency = Currency::Usd;
    assert!(matches!(circle.forward(&usd).await, ForwardOutcome::Succeeded { .. }));
    assert_eq!(sim.transfers(), 2);
}

#[tokio::test]
async fn failed_transfer_fails_with_circles_reason() {
    let sim = CircleSim::start(1).await;
    let (circle, _dir) = adapter(&sim, |_| {});
    let outcome = circle.forward(&request(BROKE)).await;
    let ForwardOutcome::Failed { code, message } = outcome else { panic!("{outcome:?}") };
    assert_eq!(code, "provider_failed");
    assert!(message.contains("FAILED") && message.contains("INSUFFICIENT_NATIVE_TOKEN"), "{message}");
}

#[tokio::test]
async fn unpayable_requests_send_nothing() {
    let sim = CircleSim::start(1).await;
    let (circle, _dir) = adapter(&sim, |_| {});
    assert_eq!(failure_code(&circle.forward(&request("unknown.example")).await), "merchant_not_payable");
    let mut eur = request(SHOP);
    eur.currency = Currency::Eur;
    assert_eq!(failure_code(&circle.forward(&eur).await), "currency_not_supported");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn config_has_defaults_and_refuses_typos_literals_and_bad_secrets() {
    let sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let text = sim.section(&dir, None);
    let without = |key: &str| -> String {
        text.lines().filter(|l| !l.starts_with(key)).map(|l| format!("{l}\n")).collect()
    };
    let config: CircleConfig = toml::from_str(&without("base_url")).unwrap();
    assert_eq!(config.base_url, "https://api.circle.com");
    assert_eq!(config.fee_level, FeeLevel::Medium);

    let high: CircleConfig = toml::from_str(&format!("{text}fee_level = \"HIGH\"\n")).unwrap();
    assert_eq!(high.fee_level, FeeLevel::High);
    assert!(toml::from_str::<CircleConfig>(&format!("{text}wallet = \"x\"\n")).is_err());
    let literal = format!("{}entity_secret = \"{ENTITY_SECRET}\"\n", without("entity_secret"));
    assert!(toml::from_str::<CircleConfig>(&literal).is_err(), "a literal secret is refused");

    // A malformed entity secret is refused without quoting it.
    std::fs::write(dir.path().join("circle_entity_secret"), "not-hex-0123456789").unwrap();
    let bad: CircleConfig = toml::from_str(&text).unwrap();
    let err = Circle::new(&bad).err().expect("refused").to_string();
    assert!(err.contains("entity_secret") && !err.contains("0123456789"), "{err}");
}

#[tokio::test]
async fn refused_authentication_leaves_the_payment_processing() {
    // A 401 comes before Circle looks at the idempotency key, so it cannot
    // prove that an earlier forward did not create the transfer.
    let sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let text = sim.section(&dir, None);
    std::fs::write(dir.path().join("circle_api_key"), "TEST_API_KEY:sim0001:rotated").unwrap();
    let circle = Circle::new(&toml::from_str(&text).unwrap()).unwrap();
    assert_eq!(circle.forward(&request(SHOP)).await, ForwardOutcome::Processing { transaction_id: None });
    assert_eq!(sim.transfers(), 0);
}

#[tokio::test]
async fn pending_transfer_completes_through_status() {
    let sim = CircleSim::start(6).await;
    let (circle, _dir) = adapter(&sim, |c| c.poll.attempts = 2);
    let req = request(SHOP);
    let ForwardOutcome::Processing { transaction_id: Some(id) } = circle.forward(&req).await else {
        panic!("a transaction still INITIATED must be processing, with its id");
    };
    assert_eq!(
        circle.status(&req, Some(&id)).await,
        ForwardOutcome::Processing { transaction_id: Some(id.clone()) }
    );
    assert_eq!(circle.status(&req, Some(&id)).await, ForwardOutcome::Succeeded { transaction_id: id });
    assert_eq!(sim.transfers(), 1);
}

#[tokio::test]
async fn accepted_then_stalled_transfer_is_processing_and_found_once_by_status() {
    let sim = CircleSim::start(1).await;
    sim.set_faults(Faults { stall: Some(Duration::from_secs(2)), ..Faults::default() });
    let (circle, _dir) = adapter(&sim, |c| {
        c.http = HttpSettings { timeout: Duration::from_millis(300), attempts: 2, ..HttpSettings::default() }
    });
    let req = request(SHOP);
    assert_eq!(circle.forward(&req).await, ForwardOutcome::Processing { transaction_id: None });
    // Both attempts reached Circle under one key: one transfer.
    assert_eq!(sim.transfers(), 1);

    sim.set_faults(Faults::default());
    let id = sim.transactions()[0].id.clone();
    assert_eq!(circle.status(&req, None).await, ForwardOutcome::Succeeded { transaction_id: id });
    assert_eq!(sim.transfers(), 1);
}

#[tokio::test]
async fn server_error_is_retried_once_with_a_fresh_ciphertext() {
    let sim = CircleSim::start(1).await;
    sim.set_faults(Faults { fail_once: true, ..Faults::default() });
    let (circle, _dir) = adapter(&sim, |_| {});
    let outcome = circle.forward(&request(SHOP)).await;
    assert!(matches!(outcome, ForwardOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(sim.transfers(), 1);
    let ciphertexts = sim.ciphertexts();
    assert_eq!(ciphertexts.len(), 2);
    assert_ne!(ciphertexts[0], ciphertexts[1]);
}

#[tokio::test]
async fn garbage_answer_fails_cleanly_and_creates_nothing() {
    let sim = CircleSim::start(1).await;
    sim.set_faults(Faults { garbage: true, ..Faults::default() });
    let (circle, _dir) = adapter(&sim, |_| {});
    assert_eq!(failure_code(&circle.forward(&request(SHOP)).await), "provider_bad_response");
    assert_eq!(sim.transfers(), 0);
}

#[tokio::test]
async fn circuit_opens_when_circle_is_down_and_recovers_after_the_cooldown() {
    let mut sim = CircleSim::start(1).await;
    // Down before the adapter ever connected: no pooled connection lingers.
    sim.shut_down().await;
    let cooldown = Duration::from_millis(800);
    let (circle, _dir) = adapter(&sim, |c| {
        c.http =
            HttpSettings { attempts: 1, breaker_failures: 3, breaker_cooldown: cooldown, ..c.http.clone() }
    });
    for _ in 0..3 {
        let outcome = circle.forward(&request(SHOP)).await;
        assert_eq!(failure_code(&outcome), "provider_unavailable");
    }

    // Circle is back, but the open circuit does not even try it.
    sim.resume().await;
    let started = Instant::now();
    let outcome = circle.forward(&request(SHOP)).await;
    assert!(started.elapsed() < Duration::from_millis(400), "took {:?}", started.elapsed());
    let ForwardOutcome::Failed { code, message } = outcome else { panic!("{outcome:?}") };
    assert_eq!(code, "provider_unavailable");
    assert!(message.contains("circuit open"), "{message}");
    assert_eq!(sim.requests(), 0);

    tokio::time::sleep(cooldown).await;
    let outcome = circle.forward(&request(SHOP)).await;
    assert!(matches!(outcome, ForwardOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(sim.transfers(), 1);
}

#[tokio::test]
async fn usdc_payment_reaches_succeeded_through_the_gateway() {
    let sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let public_key = dir.path().join("circle_entity_public_key.pem");
    std::fs::write(&public_key, public_key_pem()).unwrap();
    let providers = format!("[circle]\n{}", sim.section(&dir, Some(&public_key)));
    let app = spawn_with_providers(&provider_policy("onchain", "usdc", "circle"), &dir, &providers).await;
    let agent = app.create_agent("onchain").await;
    let body = json!({ "amount": "12.50", "currency": "USDC", "merchant_id": SHOP,
                       "merchant_category": "cloud", "rail": "usdc" });
    let (status, p) = app.pay(&agent.key, "k1", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["provider"]["name"], "circle");
    let done = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "succeeded").await;

    let txns = sim.transactions();
    assert_eq!(txns.len(), 1);
    assert_eq!(done["provider"]["transaction_id"], txns[0].id.as_str());
    assert_eq!(txns[0].amounts, ["12.500000"]);
    assert_eq!(txns[0].destination, SHOP_ADDRESS);
}
