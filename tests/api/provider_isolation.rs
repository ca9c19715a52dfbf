//! One hung provider delays only its own payments: every (provider, rail)
//! lane forwards on its own. Three simulated providers, Circle hanging on
//! every transfer; Turnkey and Lithic payments approved behind a queue of
//! hung Circle ones still reach their providers within 100 ms.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_with_providers, Agent, TestApp};
use crate::sim::circle::{CircleSim, Faults, SHOP};
use crate::sim::lithic::{LithicSim, API_KEY};
use crate::sim::turnkey::Sim as TurnkeySim;

const POLICY: &str = r#"
[policies.three]
trust_level = "custom"
currency = "USD"
currencies = ["USD", "USDC"]
rails = ["card", "usdc", "onchain"]
providers = { card = "lithic", usdc = "circle", onchain = "turnkey" }
per_tx_limit = "100.00"
daily_limit = "1000.00"
velocity = { max = 100000, per = "1m" }
"#;

async fn pay(app: &TestApp, agent: &Agent, key: &str, currency: &str, rail: &str) -> String {
    let body = json!({ "amount": "1.00", "currency": currency, "merchant_id": SHOP,
                       "merchant_category": "cloud", "rail": rail });
    let (status, p) = app.pay(&agent.key, key, body).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("approved")), "{p}");
    p["id"].as_str().unwrap().to_owned()
}

/// Time from `approved` until `requests` (a simulator's count of requests
/// received) moves past `before`.
async fn reached(approved: Instant, before: u32, requests: impl Fn() -> u32) -> Duration {
    while requests() <= before {
        assert!(approved.elapsed() < Duration::from_secs(5), "the provider was never called");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    approved.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_provider_delays_only_its_own_payments() {
    let (circle, lithic, turnkey) =
        (CircleSim::start(1).await, LithicSim::start().await, TurnkeySim::start().await);
    let dir = tempfile::tempdir().unwrap();
    circle.set_faults(Faults { stall: Some(Duration::from_secs(30)), ..Faults::default() });
    let providers = format!(
        "[circle]\n{}\n[lithic]\n{}\n{}",
        circle.section(&dir, None).replace("timeout = \"2s\"", "timeout = \"20s\""),
        lithic.section(&dir, API_KEY, ""),
        crate::provider_turnkey::section(&turnkey, dir.path(), "turnkey.", "", "timeout = \"2s\""),
    );
    let app = spawn_with_providers(POLICY, &dir, &providers).await;
    let agent = app.create_agent("three").await;

    // A queue of Circle payments, each hanging at the provider.
    for i in 0..5 {
        pay(&app, &agent, &format!("c{i}"), "USDC", "usdc").await;
    }
    let started = Instant::now();
    while circle.requests() < 5 {
        assert!(started.elapsed() < Duration::from_secs(5), "Circle was never called");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    for round in 0..3 {
        let before = turnkey.requests.load(Ordering::SeqCst);
        let id = pay(&app, &agent, &format!("t{round}"), "USDC", "onchain").await;
        let took = reached(Instant::now(), before, || turnkey.requests.load(Ordering::SeqCst)).await;
        println!("Turnkey called {took:?} after approval, 5 Circle payments hung");
        assert!(took < Duration::from_millis(100), "Turnkey was called {took:?} after approval");
        app.wait_for(&agent.key, &id, "succeeded").await;

        let before = lithic.requests();
        let id = pay(&app, &agent, &format!("l{round}"), "USD", "card").await;
        let took = reached(Instant::now(), before, || lithic.requests()).await;
        println!("Lithic called {took:?} after approval, 5 Circle payments hung");
        assert!(took < Duration::from_millis(100), "Lithic was called {took:?} after approval");
        app.wait_for(&agent.key, &id, "succeeded").await;
    }
    // The hung ones are still waiting on Circle, nothing else.
    let (_, list) = app.get(&agent.key, "/v1/payments?status=approved").await;
    let waiting: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|p| p["rail"].as_str().unwrap()).collect();
    assert_eq!(waiting, ["usdc"; 5]);
}
