//! Real-time card authorizations (Lithic ASA) decided by the policy engine:
//! standing cards registered to agents, cards purser issued for one payment,
//! the signature check, and the latency of an answer.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{provider_policy, spawn_with_providers, Agent, TestApp};
use crate::sim::lithic::{asa_authorization, asa_request, asa_signed, AsaRequest, LithicSim, API_KEY};

struct Setup {
    app: TestApp,
    sim: LithicSim,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let sim = LithicSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let providers = format!("[lithic]\n{}", sim.section(&dir, API_KEY, ""));
    let app = spawn_with_providers(&provider_policy("cards", "card", "lithic"), &dir, &providers).await;
    Setup { app, sim, _dir: dir }
}

async fn register_card(app: &TestApp, agent: &Agent, token: &str) -> (StatusCode, Value) {
    app.admin(
        reqwest::Method::POST,
        &format!("/v1/agents/{}/cards", agent.id),
        Some(json!({ "card_token": token })),
    )
    .await
}

async fn send(app: &TestApp, req: &AsaRequest) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(app.url("/v1/providers/lithic/asa"))
        .headers(req.headers.clone())
        .header("content-type", "application/json")
        .body(req.body.clone())
        .send()
        .await
        .unwrap();
    crate::helpers::into_parts(resp).await
}

async fn authorize(app: &TestApp, card: &str, cents: i64, merchant: &str, mcc: &str) -> String {
    let (status, body) = send(app, &asa_authorization(card, cents, merchant, mcc)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["result"].as_str().unwrap().to_owned()
}

/// Cards page by their token, in the order they were registered.
#[tokio::test]
async fn an_agents_cards_page_in_registration_order() {
    let Setup { app, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    let tokens: Vec<String> = ["card_c", "card_a", "card_b", "card_d"].map(String::from).to_vec();
    for token in &tokens {
        assert_eq!(register_card(&app, &agent, token).await.0, StatusCode::CREATED);
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let path = format!("/v1/agents/{}/cards", agent.id);
    for limit in [1, 3, 10] {
        assert_eq!(
            crate::pagination::walk(&app, crate::helpers::ADMIN_TOKEN, &path, limit, "card_token").await,
            tokens
        );
    }
}

#[tokio::test]
async fn standing_card_authorizations_are_decided_and_reserved_by_the_policy() {
    let Setup { app, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    let (status, card) = register_card(&app, &agent, "card_standing_1").await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    assert_eq!(register_card(&app, &agent, "card_standing_1").await.0, StatusCode::CONFLICT);

    // 60.00 approved and recorded as a settled payment of the agent.
    let first = asa_authorization("card_standing_1", 6000, "AWS.amazon.com", "4816");
    let (status, answer) = send(&app, &first).await;
    assert_eq!((status, answer["result"].as_str()), (StatusCode::OK, Some("APPROVED")), "{answer}");
    // Lithic retrying the same request gets the same answer and reserves once.
    assert_eq!(send(&app, &first).await.1["result"], "APPROVED");
    let (_, list) = app.get(&agent.key, "/v1/payments").await;
    let payments = list["data"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{list}");
    let p = &payments[0];
    assert_eq!((p["status"].as_str(), p["amount"].as_str()), (Some("succeeded"), Some("60.00")));
    assert_eq!(
        (p["provider"]["name"].as_str(), p["merchant_category"].as_str()),
        (Some("lithic"), Some("cloud"))
    );

    // 40.01 more would pass the 100.00 daily limit; 40.00 fits exactly.
    assert_eq!(
        authorize(&app, "card_standing_1", 4001, "aws.amazon.com", "4816").await,
        "INSUFFICIENT_FUNDS"
    );
    assert_eq!(authorize(&app, "card_standing_1", 4000, "aws.amazon.com", "4816").await, "APPROVED");

    // Above the approval threshold: the network cannot wait for a human.
    let other = app.create_agent("cards").await;
    register_card(&app, &other, "card_standing_2").await;
    assert_eq!(
        authorize(&app, "card_standing_2", 9000, "aws.amazon.com", "4816").await,
        "UNAUTHORIZED_MERCHANT"
    );
    // Blocked categories apply (7995: betting).
    assert_eq!(
        authorize(&app, "card_standing_2", 500, "casino.example", "7995").await,
        "UNAUTHORIZED_MERCHANT"
    );
    let (_, list) = app.get(&other.key, "/v1/payments?status=denied").await;
    let reasons: Vec<Vec<String>> =
        list["data"].as_array().unwrap().iter().map(crate::helpers::reason_codes).collect();
    assert!(reasons.contains(&vec!["category_blocked".to_owned()]), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains(&"approval_required".to_owned())), "{reasons:?}");

    // A frozen agent's card is paused; a removed card is unknown.
    app.admin(reqwest::Method::POST, &format!("/v1/agents/{}/freeze", other.id), None).await;
    assert_eq!(authorize(&app, "card_standing_2", 100, "aws.amazon.com", "4816").await, "CARD_PAUSED");
    let path = format!("/v1/agents/{}/cards/card_standing_1", agent.id);
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        authorize(&app, "card_standing_1", 100, "aws.amazon.com", "4816").await,
        "UNAUTHORIZED_MERCHANT"
    );
}

#[tokio::test]
async fn an_issued_card_may_be_charged_up_to_its_payment_and_no_more() {
    let Setup { app, sim, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    let body = json!({ "amount": "42.50", "currency": "USD", "merchant_id": "aws.amazon.com", "merchant_category": "cloud", "rail": "card" });
    let (_, p) = app.pay(&agent.key, "k1", body).await;
    let done = app.wait_for(&agent.key, p["id"].as_str().unwrap(), "succeeded").await;
    let card = done["provider"]["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(sim.cards()[0].token, card);

    assert_eq!(authorize(&app, &card, 4251, "aws.amazon.com", "4816").await, "INSUFFICIENT_FUNDS");
    // The network's category decides, whatever the payment declared: the
    // policy blocks gambling (7995), even within the amount.
    assert_eq!(authorize(&app, &card, 100, "casino.example", "7995").await, "UNAUTHORIZED_MERCHANT");
    // Up to the payment's amount in total, over several authorizations
    // (Lithic may not hold an ASA program's cards to their spend limit).
    assert_eq!(authorize(&app, &card, 4000, "aws.amazon.com", "4816").await, "APPROVED");
    let last = asa_authorization(&card, 250, "aws.amazon.com", "4816");
    assert_eq!(send(&app, &last).await.1["result"], "APPROVED");
    assert_eq!(authorize(&app, &card, 1, "aws.amazon.com", "4816").await, "INSUFFICIENT_FUNDS");
    // Lithic sending a request again gets its first answer, counted once.
    assert_eq!(send(&app, &last).await.1["result"], "APPROVED");
    // Not a card purser knows: declined.
    assert_eq!(authorize(&app, "card_unknown", 100, "aws.amazon.com", "4816").await, "UNAUTHORIZED_MERCHANT");
}

/// A card authorization recorded as a payment carries the authorization's
/// token as its provider id; a "card" with that token is still unknown.
#[tokio::test]
async fn an_authorization_token_is_never_taken_for_an_issued_card() {
    let Setup { app, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    register_card(&app, &agent, "card_standing").await;
    let first = asa_authorization("card_standing", 4250, "aws.amazon.com", "4816");
    assert_eq!(send(&app, &first).await.1["result"], "APPROVED");
    let token: Value = serde_json::from_slice(&first.body).unwrap();
    let token = token["token"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(authorize(&app, token, 4250, "aws.amazon.com", "4816").await, "UNAUTHORIZED_MERCHANT");
    }
    let (_, list) = app.get(&agent.key, "/v1/payments").await;
    let p = &list["data"][0];
    assert_eq!(
        (p["provider"]["reference"].as_str(), p["provider"]["transaction_id"].as_str()),
        (Some(token), Some(token))
    );
}

#[tokio::test]
async fn refunds_and_balance_inquiries_are_approved_and_count_against_nothing() {
    let Setup { app, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    register_card(&app, &agent, "card_refunds").await;
    let credit = |status: &str, cents| asa_request(status, "card_refunds", cents, "aws.amazon.com", "4816");

    for req in [
        credit("CREDIT_AUTHORIZATION", 4000),
        credit("FINANCIAL_CREDIT_AUTHORIZATION", 9000),
        credit("BALANCE_INQUIRY", 0),
    ] {
        let (status, answer) = send(&app, &req).await;
        assert_eq!((status, answer["result"].as_str()), (StatusCode::OK, Some("APPROVED")), "{answer}");
    }
    // No payment was recorded, nothing was reserved: the whole daily limit
    // (approval above 80.00) is still there.
    let (_, list) = app.get(&agent.key, "/v1/payments").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(authorize(&app, "card_refunds", 8000, "aws.amazon.com", "4816").await, "APPROVED");
    // A single-message purchase is a purchase: the limit now holds.
    let (_, answer) = send(&app, &credit("FINANCIAL_AUTHORIZATION", 2001)).await;
    assert_eq!(answer["result"], "INSUFFICIENT_FUNDS");
    // Each is audited under its own type.
    let (_, audit) = app.admin(reqwest::Method::GET, &format!("/v1/audit?agent={}", agent.id), None).await;
    let types: Vec<&str> =
        audit["data"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "card.credit").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "card.balance_inquiry").count(), 1, "{types:?}");

    // Not a card purser knows, or not a request it knows: declined.
    let unknown = asa_request("CREDIT_AUTHORIZATION", "card_unknown", 100, "aws.amazon.com", "4816");
    assert_eq!(send(&app, &unknown).await.1["result"], "UNAUTHORIZED_MERCHANT");
    let novel = asa_request("SOMETHING_NEW", "card_refunds", 100, "aws.amazon.com", "4816");
    assert_eq!(send(&app, &novel).await.1["result"], "UNAUTHORIZED_MERCHANT");
}

/// Lithic falls back to its own (possibly approving) handling when the
/// responder answers anything but 200: every signed request gets a 200
/// with a decision, even one purser cannot read.
#[tokio::test]
async fn every_signed_request_is_answered_200_with_a_decision() {
    let Setup { app, .. } = setup().await;
    let valid: Value =
        serde_json::from_slice(&asa_authorization("card_x", 100, "aws.amazon.com", "4816").body).unwrap();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        change(&mut v);
        asa_signed(v.to_string().into_bytes())
    };
    let cases = [
        ("not JSON", asa_signed(b"not json".to_vec()), None),
        ("a JSON array", asa_signed(b"[1, 2]".to_vec()), None),
        ("no card", with(&|v| v["card"] = Value::Null), valid["token"].as_str()),
        (
            "an unsupported cardholder currency",
            with(&|v| v["amounts"]["cardholder"]["currency"] = json!("XAU")),
            valid["token"].as_str(),
        ),
        (
            "a blank merchant",
            with(&|v| v["merchant"] = json!({ "acceptor_id": " ", "descriptor": "", "mcc": "4816" })),
            valid["token"].as_str(),
        ),
    ];
    for (what, req, token) in cases {
        let (status, answer) = send(&app, &req).await;
        assert_eq!(status, StatusCode::OK, "{what}: {answer}");
        assert_eq!(answer["result"], "UNAUTHORIZED_MERCHANT", "{what}");
        assert_eq!(answer["token"].as_str(), token, "{what}");
    }
}

#[tokio::test]
async fn unsigned_or_tampered_authorizations_are_refused() {
    let Setup { app, .. } = setup().await;
    let mut tampered = asa_authorization("card_x", 100, "aws.amazon.com", "4816");
    let text = String::from_utf8(tampered.body.clone()).unwrap().replace("\"amount\":100", "\"amount\":1");
    tampered.body = text.into_bytes();
    let (status, body) = send(&app, &tampered).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let mut unsigned = asa_authorization("card_x", 100, "aws.amazon.com", "4816");
    unsigned.headers.clear();
    assert_eq!(send(&app, &unsigned).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_authorization_endpoint_does_not_exist_without_an_asa_secret() {
    let app = crate::helpers::spawn_app().await;
    let (status, _) = send(&app, &asa_authorization("card_x", 100, "aws.amazon.com", "4816")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Lithic waits a bounded time for an answer. This prints the latency of
/// authorizations from 8 concurrent senders (debug build, sharing the
/// machine with the other tests) and holds it to a loose bound;
/// `purser bench` is where the budget is measured (docs/performance.md).
#[tokio::test]
async fn authorizations_are_answered_quickly() {
    let Setup { app, .. } = setup().await;
    let agent = app.create_agent("cards").await;
    register_card(&app, &agent, "card_fast").await;
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let app = app.clone();
        tasks.spawn(async move {
            let mut took = Vec::new();
            for _ in 0..25 {
                let req = asa_authorization("card_fast", 1, "aws.amazon.com", "4816");
                let start = Instant::now();
                let (status, _) = send(&app, &req).await;
                took.push(start.elapsed());
                assert_eq!(status, StatusCode::OK);
            }
            took
        });
    }
    let mut took: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    println!("ASA answers: p50 {:?}, p99 {:?} over {}", took[took.len() / 2], p99, took.len());
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
}
