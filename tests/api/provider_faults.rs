//! What a payment goes through when its provider misbehaves, seen through
//! the gateway's API (Circle's simulator stands in for any provider): an
//! answer lost after the provider accepted, an unreadable answer, and a
//! provider that is down.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{default_start, provider_policy, restart, spawn_with_providers, Agent, TestApp};
use crate::sim::circle::{CircleSim, Faults, SHOP};

/// Circle's section for `sim` with short timeouts and a breaker that opens
/// after two failures and stays open for `cooldown`.
fn providers(sim: &CircleSim, dir: &tempfile::TempDir, cooldown: &str) -> String {
    let section = sim.section(dir, None).replace(
        "http = { timeout = \"2s\" }",
        &format!("http = {{ timeout = \"300ms\", attempts = 2, breaker_failures = 2, breaker_cooldown = \"{cooldown}\" }}"),
    );
    format!("[circle]\n{section}")
}

fn policy() -> String {
    provider_policy("onchain", "usdc", "circle")
}

async fn gateway(sim: &CircleSim, dir: &tempfile::TempDir) -> TestApp {
    spawn_with_providers(&policy(), dir, &providers(sim, dir, "300ms")).await
}

async fn pay(app: &TestApp, agent: &Agent, key: &str, amount: &str) -> Value {
    let body = json!({ "amount": amount, "currency": "USDC", "merchant_id": SHOP, "merchant_category": "retail", "rail": "usdc" });
    let (status, p) = app.pay(&agent.key, key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p
}

#[tokio::test]
async fn a_lost_answer_keeps_the_payment_processing_until_reconciled_even_across_a_restart() {
    let sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&sim, &dir).await;
    let agent = app.create_agent("onchain").await;

    // The provider creates the transfer, then answers too late, twice.
    sim.set_faults(Faults { stall: Some(Duration::from_secs(2)), ..Faults::default() });
    let p = pay(&app, &agent, "k1", "60.00").await;
    let id = p["id"].as_str().unwrap();
    let processing = app.wait_for(&agent.key, id, "processing").await;
    assert_eq!(sim.transfers(), 1, "a retry under the same idempotency key created a second transfer");
    assert_eq!(processing["failure"], Value::Null);

    // The money may have moved, so the amount stays reserved.
    let over = pay(&app, &agent, "k2", "50.00").await;
    assert_eq!(over["status"], "denied");
    assert_eq!(crate::helpers::reason_codes(&over), ["daily_limit"]);

    // A new gateway on the same database, a minute later, settles it once
    // the provider answers.
    let later = default_start() + chrono::Duration::minutes(1);
    let path = dir.path().join("providers.toml");
    let app = restart(app, later, move |c| c.providers_file = Some(path)).await;
    sim.set_faults(Faults::default());
    let done = app.wait_for(&agent.key, id, "succeeded").await;
    assert_eq!(sim.transfers(), 1);
    assert_eq!(done["provider"]["transaction_id"], sim.transactions()[0].id.as_str());
}

#[tokio::test]
async fn an_unreadable_answer_fails_cleanly_and_releases_the_reservation() {
    let sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&sim, &dir).await;
    let agent = app.create_agent("onchain").await;

    sim.set_faults(Faults { garbage: true, ..Faults::default() });
    let p = pay(&app, &agent, "k1", "60.00").await;
    let failed = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["failure"]["code"], "provider_bad_response");
    assert_eq!(sim.transfers(), 0);

    sim.set_faults(Faults::default());
    let again = pay(&app, &agent, "k2", "60.00").await;
    assert_eq!(again["status"], "approved", "the failed payment's 60.00 was not released");
    app.wait_for(&agent.key, again["id"].as_str().unwrap(), "succeeded").await;
}

#[tokio::test]
async fn a_dead_provider_trips_the_circuit_and_recovers() {
    let mut sim = CircleSim::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    // A cooldown long enough that a loaded machine cannot outlast it
    // between tripping the breaker and the next forward.
    let app = spawn_with_providers(&policy(), &dir, &providers(&sim, &dir, "3s")).await;
    let agent = app.create_agent("onchain").await;
    sim.shut_down().await;

    // Refused connections: nothing was sent, so the payment fails and its
    // amount is released.
    for key in ["k1", "k2"] {
        let p = pay(&app, &agent, key, "10.00").await;
        let failed = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "failed").await;
        assert_eq!(failed["failure"]["code"], "provider_unavailable");
    }
    // Open: the next forward fails without trying, even though the
    // provider is back.
    sim.resume().await;
    let p = pay(&app, &agent, "k3", "10.00").await;
    let failed = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "failed").await;
    assert!(failed["failure"]["message"].as_str().unwrap().contains("circuit open"), "{failed}");
    assert_eq!(sim.requests(), 0);

    // After the cooldown a trial call goes through and closes the circuit.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let p = pay(&app, &agent, "k4", "80.00").await;
    assert_eq!(p["status"], "approved", "failed payments still hold their reservations");
    app.wait_for(&agent.key, p["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(sim.transfers(), 1);
}
