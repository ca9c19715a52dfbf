//! The Lithic adapter against the simulator: the card it issues, exactly one
//! card per payment through timeouts, 500s and throttling, and `card`
//! payments through the whole gateway, including the race in which a
//! payment recorded `failed` used to get a card from a second forward.

use std::time::Duration;

use purser::money::Currency;
use purser::providers::lithic::{asa, Lithic, LithicConfig};
use purser::providers::{ForwardOutcome, ForwardRequest, Provider};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

use crate::helpers::{provider_policy, spawn_with_providers, TestApp};
use crate::sim::lithic::{asa_authorization, Faults, LithicSim, API_KEY, ASA_SECRET, PAN};

fn adapter_with(sim: &LithicSim, api_key: &str, extra: &str) -> Lithic {
    let dir = tempfile::tempdir().unwrap();
    let config: LithicConfig = toml::from_str(&sim.section(&dir, api_key, extra)).unwrap();
    Lithic::new(&config).unwrap()
}

fn adapter(sim: &LithicSim) -> Lithic {
    adapter_with(sim, API_KEY, "")
}

fn request(amount: &str, currency: Currency) -> ForwardRequest {
    ForwardRequest {
        reference: purser::ids::new("fwd"),
        payment_id: purser::ids::new("pay"),
        agent_id: "agt_1".into(),
        amount: amount.parse::<Decimal>().unwrap(),
        currency,
        merchant_id: "aws.amazon.com".into(),
        merchant_category: Some("cloud".into()),
        rail: "card".into(),
        description: Some("GPU hours".into()),
    }
}

fn token(outcome: &ForwardOutcome) -> &str {
    match outcome {
        ForwardOutcome::Succeeded { transaction_id } => transaction_id,
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test]
async fn issues_a_single_use_card_for_exactly_the_amount() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let req = request("42.50", Currency::Usd);

    let issued = lithic.forward(&req).await;
    let cards = sim.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(token(&issued), cards[0].token);
    assert_eq!(
        sim.create_bodies(),
        [json!({
            "type": "SINGLE_USE",
            "spend_limit": 4250,
            "spend_limit_duration": "TRANSACTION",
            "memo": format!("{} {}", req.payment_id, req.reference),
            "state": "OPEN",
        })]
    );
    // Looked up by memo before the create.
    assert_eq!(sim.memo_filters(), [Some(req.reference.clone())]);
    assert!(!format!("{issued:?}").contains(PAN));

    // Forwarding again (a re-forward after a crash) finds the same card.
    assert_eq!(lithic.forward(&req).await, issued);
    assert_eq!(lithic.status(&req, None).await, issued);
    assert_eq!(lithic.status(&req, Some(token(&issued))).await, issued);
    assert_eq!(sim.cards().len(), 1);
    assert_eq!(sim.create_bodies().len(), 1);

    // Another payment gets its own card.
    let other = request("0.99", Currency::Usd);
    assert_ne!(token(&lithic.forward(&other).await), token(&issued));
    assert_eq!(sim.cards().iter().map(|c| c.spend_limit).collect::<Vec<_>>(), [4250, 99]);
}

#[tokio::test]
async fn the_lookup_finds_the_card_by_memo_among_many() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let first = request("1.00", Currency::Usd);
    let issued = lithic.forward(&first).await;
    // 100 newer cards would push the first one onto a second page of an
    // unfiltered listing (newest first).
    for _ in 0..100 {
        token(&lithic.forward(&request("2.00", Currency::Usd)).await);
    }
    let listings = sim.memo_filters().len();
    assert_eq!(lithic.forward(&first).await, issued);
    assert_eq!(sim.memo_filters().len(), listings + 1, "one filtered page, not a scan");
    assert_eq!(sim.cards().len(), 101);
}

#[tokio::test]
async fn merchant_locked_cards_are_limited_for_their_lifetime() {
    let sim = LithicSim::start().await;
    let lithic = adapter_with(&sim, API_KEY, "card_type = \"MERCHANT_LOCKED\"");
    let req = request("10.00", Currency::Usd);
    token(&lithic.forward(&req).await);
    let card = &sim.cards()[0];
    assert_eq!((card.card_type.as_str(), card.spend_limit_duration.as_str()), ("MERCHANT_LOCKED", "FOREVER"));
    let memo = format!("{} {}", req.payment_id, req.reference);
    assert_eq!((card.spend_limit, card.memo.as_str(), card.state.as_str()), (1000, memo.as_str(), "OPEN"));
}

#[tokio::test]
async fn only_usd_is_issued_and_nothing_else_is_sent() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    for currency in [Currency::Eur, Currency::Usdc] {
        let outcome = lithic.forward(&request("5.00", currency)).await;
        assert!(
            matches!(&outcome, ForwardOutcome::Failed { code, .. } if code == "currency_not_supported"),
            "{outcome:?}"
        );
    }
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn a_refused_api_key_fails_without_showing_the_key() {
    let sim = LithicSim::start().await;
    let lithic = adapter_with(&sim, "wrong-key-do-not-print", "");
    let outcome = lithic.forward(&request("5.00", Currency::Usd)).await;
    let ForwardOutcome::Failed { code, message } = outcome else { panic!("{outcome:?}") };
    assert_eq!(code, "provider_rejected");
    assert!(message.contains("401") && !message.contains("wrong-key"), "{message}");
    assert!(sim.cards().is_empty());
}

#[tokio::test]
async fn a_card_created_behind_a_timeout_is_found_not_issued_twice() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let req = request("25.00", Currency::Usd);
    sim.set_faults(Faults { stall: Some(Duration::from_secs(2)), ..Faults::default() });

    assert_eq!(lithic.forward(&req).await, ForwardOutcome::Processing { transaction_id: None });
    assert_eq!(sim.create_bodies().len(), 1, "a create that may have worked is never resent");
    sim.set_faults(Faults::default());

    let found = lithic.status(&req, None).await;
    let cards = sim.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(token(&found), cards[0].token);
    assert_eq!(sim.create_bodies().len(), 1);
}

#[tokio::test]
async fn a_500_is_retried_after_a_lookup_and_issues_one_card() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let req = request("7.25", Currency::Usd);
    sim.set_faults(Faults { fail_once: true, ..Faults::default() });

    let issued = lithic.forward(&req).await;
    let cards = sim.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(token(&issued), cards[0].token);
    assert_eq!(cards[0].spend_limit, 725);
    assert_eq!(sim.create_bodies().len(), 2);
    assert_eq!(sim.memo_filters().len(), 2, "looked up again before the second create");
    let keys = sim.idempotency_keys();
    assert!(keys[0].is_some() && keys[0] == keys[1], "one Idempotency-Key per payment: {keys:?}");
    assert_eq!(lithic.status(&req, None).await, issued);
    assert_eq!(sim.cards().len(), 1);
}

#[tokio::test]
async fn a_throttled_create_waits_for_retry_after_and_issues_one_card() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let req = request("3.00", Currency::Usd);
    sim.set_faults(Faults { throttle: 1, ..Faults::default() });

    let started = std::time::Instant::now();
    let issued = lithic.forward(&req).await;
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After: 1 was honoured");
    assert_eq!(token(&issued), sim.cards()[0].token);
    assert_eq!((sim.cards().len(), sim.create_bodies().len()), (1, 2));
}

#[tokio::test]
async fn throttled_to_the_end_fails_and_issues_nothing() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    sim.set_faults(Faults { throttle: 100, ..Faults::default() });
    let outcome = lithic.forward(&request("3.00", Currency::Usd)).await;
    let ForwardOutcome::Failed { code, message } = outcome else { panic!("{outcome:?}") };
    assert_eq!(code, "provider_rate_limited");
    assert!(message.contains("429"), "{message}");
    assert_eq!(sim.create_bodies().len(), 3, "within the attempt budget");
    assert!(sim.cards().is_empty());
}

#[tokio::test]
async fn an_unknown_card_token_stays_processing() {
    let sim = LithicSim::start().await;
    let lithic = adapter(&sim);
    let req = request("1.00", Currency::Usd);
    assert_eq!(
        lithic.status(&req, Some("00000000-0000-0000-0000-000000000000")).await,
        ForwardOutcome::Processing { transaction_id: Some("00000000-0000-0000-0000-000000000000".into()) }
    );
    assert!(sim.cards().is_empty());
}

#[test]
fn simulated_asa_requests_verify_and_parse() {
    let asa = asa_authorization("card-1", 4250, "AWS.Amazon.com", "4816");
    assert!(asa::verify(ASA_SECRET.as_bytes(), &asa.headers, &asa.body));
    let auth = asa::parse(&asa.body).unwrap();
    assert_eq!((auth.card_token.as_str(), auth.amount_minor, auth.currency), ("card-1", 4250, Currency::Usd));
    assert_eq!(
        (auth.merchant_id.as_str(), auth.merchant_category.as_deref()),
        ("aws.amazon.com", Some("cloud"))
    );
    let answer = serde_json::to_value(asa::respond(Some(&auth.token), Ok(()))).unwrap();
    assert_eq!(answer, json!({ "token": auth.token, "result": "APPROVED" }));
}

#[tokio::test]
async fn card_payment_reaches_succeeded_through_the_gateway() {
    let sim = LithicSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = card_gateway(&sim, &dir).await;
    let agent = app.create_agent("cards").await;
    let (status, p) = app.pay(&agent.key, "k1", card_payment("42.50")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["provider"]["name"], "lithic");
    let done = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "succeeded").await;

    let cards = sim.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(done["provider"]["transaction_id"], cards[0].token.as_str());
    assert_eq!(cards[0].spend_limit, 4250);
    assert_eq!(
        cards[0].memo,
        format!("{} {}", p["id"].as_str().unwrap(), done["provider"]["reference"].as_str().unwrap())
    );
    assert!(!done.to_string().contains(PAN));
}

/// A gateway issuing cards at `sim`, whose calls may take up to 5 s (the
/// default is 10 s; the simulator's section has 300 ms).
async fn card_gateway(sim: &LithicSim, dir: &tempfile::TempDir) -> TestApp {
    let section = sim.section(dir, API_KEY, "").replace("timeout = \"300ms\"", "timeout = \"5s\"");
    let providers = format!("[lithic]\n{section}");
    spawn_with_providers(&provider_policy("cards", "card", "lithic"), dir, &providers).await
}

fn card_payment(amount: &str) -> serde_json::Value {
    json!({ "amount": amount, "currency": "USD", "merchant_id": "aws.amazon.com",
            "merchant_category": "cloud", "rail": "card" })
}

/// The race behind a live card purser did not know about: a create answered
/// 429 only after the forward sweep had come round (the payment was then
/// more than 2 s old). The payment is claimed by the forward that sent it,
/// so the sweep leaves it alone; the 429 is retried, after a lookup, and
/// exactly one card is issued.
#[tokio::test]
async fn a_slow_throttled_create_beside_the_sweep_issues_one_card() {
    let sim = LithicSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = card_gateway(&sim, &dir).await;
    let agent = app.create_agent("cards").await;
    sim.set_faults(Faults {
        throttle: 1,
        throttle_stall: Some(Duration::from_millis(2500)),
        ..Faults::default()
    });

    let (status, p) = app.pay(&agent.key, "k1", card_payment("17.17")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    // The payment ages past the sweep's reach while its create hangs.
    app.clock.advance(chrono::Duration::seconds(3));
    let done = app
        .wait_for_within(&agent.key, p["id"].as_str().unwrap(), "succeeded", Duration::from_secs(10))
        .await;
    let cards = sim.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(done["provider"]["transaction_id"], cards[0].token.as_str());
    assert_eq!(sim.create_bodies().len(), 2, "the throttled create and its retry, nothing from a sweep");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!((sim.cards().len(), sim.create_bodies().len()), (1, 2));
}

/// A payment recorded `failed` is final: no sweep, replica or lapsed claim
/// sends it again, and no card exists for it.
#[tokio::test]
async fn a_payment_recorded_failed_never_gets_a_card() {
    let sim = LithicSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = card_gateway(&sim, &dir).await;
    let agent = app.create_agent("cards").await;
    sim.set_faults(Faults {
        throttle: 3,
        throttle_stall: Some(Duration::from_millis(2500)),
        ..Faults::default()
    });

    let (_, p) = app.pay(&agent.key, "k1", card_payment("17.17")).await;
    let id = p["id"].as_str().unwrap();
    app.clock.advance(chrono::Duration::seconds(3));
    let failed = app.wait_for_within(&agent.key, id, "failed", Duration::from_secs(15)).await;
    assert_eq!(failed["failure"]["code"], "provider_rate_limited");
    assert_eq!(sim.create_bodies().len(), 3);

    // Lithic would now issue a card; time passes beyond any claim.
    app.clock.advance(chrono::Duration::minutes(10));
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(sim.create_bodies().len(), 3, "a failed payment was forwarded again");
    assert!(sim.cards().is_empty());
    let (_, again) = app.get(&agent.key, &format!("/v1/payments/{id}")).await;
    assert_eq!(again["status"], "failed");
    // Its 17.17 was released: a payment of the full daily limit fits.
    let (_, full) = app.pay(&agent.key, "k2", card_payment("80.00")).await;
    assert_eq!(full["status"], "approved", "{full}");
}
