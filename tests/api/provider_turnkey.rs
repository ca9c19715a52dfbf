//! The Turnkey adapter against the simulator in `sim::turnkey`: wire format
//! (stamps), outcomes, and exactly-once under lost answers and 5xx.

use std::path::Path;
use std::time::Duration;

use purser::providers::turnkey::{Turnkey, TurnkeyConfig};
use purser::providers::{ForwardOutcome, ForwardRequest, Provider};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

use crate::helpers::{provider_policy, spawn_with_providers};
use crate::sim::turnkey::{self as tk, Sim, Transfer};

const FROM: &str = "0x1111111111111111111111111111111111111111";
const USDC: &str = "0x036cbd53842c5426634e7929541ec2318f3dcf7e";
const SHOP: &str = "0x2222222222222222222222222222222222222222";
const REFUSING: &str = "0x3333333333333333333333333333333333333333";

/// The adapter's section of a providers file. `prefix` is `turnkey.` inside
/// a whole providers file and empty for the section alone.
pub(crate) fn section(sim: &Sim, dir: &Path, prefix: &str, top: &str, http: &str) -> String {
    let key_path = dir.join("turnkey-api.key");
    std::fs::write(&key_path, format!("{}\n", hex::encode(tk::api_key().to_bytes()))).unwrap();
    let heading = if prefix.is_empty() { String::new() } else { "[turnkey]".to_owned() };
    format!(
        r#"{heading}
base_url = "{base}"
organization_id = "{org}"
api_public_key = "{public}"
api_private_key = {{ file = {key:?} }}
sign_with = "{FROM}"
caip2 = "eip155:84532"
token_contract = "{USDC}"
poll_interval = "5ms"
{top}

[{prefix}destinations]
"shop.example" = "{SHOP}"
"refusing.example" = "{REFUSING}"

[{prefix}http]
{http}
"#,
        base = sim.base_url,
        org = tk::ORGANIZATION_ID,
        public = tk::public_key_hex(&tk::api_key()),
        key = key_path.display().to_string(),
    )
}

fn adapter(sim: &Sim, top: &str, http: &str) -> Turnkey {
    let dir = tempfile::tempdir().unwrap();
    let config: TurnkeyConfig = toml::from_str(&section(sim, dir.path(), "", top, http)).unwrap();
    Turnkey::new(&config).unwrap()
}

fn request(merchant: &str, amount: &str) -> ForwardRequest {
    let ulid = ulid::Ulid::new();
    ForwardRequest {
        reference: format!("fwd_{ulid}"),
        payment_id: format!("pay_{ulid}"),
        agent_id: "agt_1".into(),
        amount: amount.parse::<Decimal>().unwrap(),
        currency: purser::money::Currency::Usdc,
        merchant_id: merchant.into(),
        merchant_category: None,
        rail: "usdc".into(),
        description: None,
    }
}

fn paid_to_shop(units: u128) -> Vec<Transfer> {
    vec![Transfer { token: USDC.into(), to: SHOP.into(), units }]
}

fn succeeded(activity: &str) -> ForwardOutcome {
    ForwardOutcome::Succeeded { transaction_id: tk::tx_hash(activity) }
}

#[tokio::test]
async fn stamps_are_checked_against_the_exact_body_and_the_registered_key() {
    let sim = Sim::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/public/v1/query/get_activity", sim.base_url);
    let body = json!({ "organizationId": tk::ORGANIZATION_ID, "activityId": "act-none" }).to_string();
    let post = |stamp: String, body: String| http.post(&url).header("X-Stamp", stamp).body(body).send();

    // A correct stamp gets past authentication (to "no such activity").
    let ok = post(tk::stamp(&tk::api_key(), body.as_bytes()), body.clone()).await.unwrap();
    assert_eq!(ok.status(), StatusCode::NOT_FOUND);
    // The same stamp on a changed body, and a stamp by another key, do not.
    let tampered = body.replace("act-none", "act-00000001");
    let refused = post(tk::stamp(&tk::api_key(), body.as_bytes()), tampered).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let stranger = post(tk::stamp(&tk::stranger_key(), body.as_bytes()), body.clone()).await.unwrap();
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.refused_stamps.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Every request the adapter makes passes.
    let turnkey = adapter(&sim, "", "");
    assert_eq!(turnkey.forward(&request("shop.example", "1.00")).await, succeeded("act-00000001"));
    assert_eq!(sim.refused_stamps.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_completed_transfer_pays_the_configured_address_once() {
    let sim = Sim::start().await;
    let turnkey = adapter(&sim, "", "");
    let req = request("shop.example", "12.50");
    assert_eq!(turnkey.forward(&req).await, succeeded("act-00000001"));
    // Forwarding the same payment again (a crash before the outcome was
    // recorded) sends the same body: Turnkey answers with the same activity.
    assert_eq!(turnkey.forward(&req).await, succeeded("act-00000001"));
    assert_eq!(sim.transfers(), paid_to_shop(12_500_000));
}

#[tokio::test]
async fn a_failed_activity_fails_the_payment() {
    let sim = Sim::start().await;
    sim.fail_transfers_to(REFUSING);
    let turnkey = adapter(&sim, "", "");
    match turnkey.forward(&request("refusing.example", "3.00")).await {
        ForwardOutcome::Failed { code, message } => {
            assert_eq!(code, "activity_failed");
            assert!(message.contains("policy denied"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(sim.transfers(), vec![]);
}

#[tokio::test]
async fn a_pending_activity_is_left_processing_and_settled_through_status() {
    let sim = Sim::start().await;
    sim.set_pending_polls(4);
    let turnkey = adapter(&sim, "poll_attempts = 1", "");
    let req = request("shop.example", "7.00");
    let pending = ForwardOutcome::Processing { transaction_id: Some("act-00000001".into()) };
    assert_eq!(turnkey.forward(&req).await, pending);

    let mut outcome = pending.clone();
    for _ in 0..5 {
        outcome = turnkey.status(&req, Some("act-00000001")).await;
        if outcome != pending {
            break;
        }
    }
    assert_eq!(outcome, succeeded("act-00000001"));
    assert_eq!(sim.transfers(), paid_to_shop(7_000_000));
}

#[tokio::test]
async fn a_lost_answer_leaves_processing_and_status_finds_the_one_transfer() {
    let sim = Sim::start().await;
    sim.stall_submissions(Duration::from_secs(2));
    let turnkey = adapter(&sim, "", "timeout = \"200ms\"\nattempts = 2");
    let req = request("shop.example", "9.99");
    assert_eq!(turnkey.forward(&req).await, ForwardOutcome::Processing { transaction_id: None });

    sim.stall_submissions(Duration::ZERO);
    assert_eq!(turnkey.status(&req, None).await, succeeded("act-00000001"));
    assert_eq!(sim.activities(), 1);
    assert_eq!(sim.transfers(), paid_to_shop(9_990_000));
}

#[tokio::test]
async fn a_500_is_retried_into_the_same_activity() {
    let sim = Sim::start().await;
    sim.fail_next_submission_with_500();
    let turnkey = adapter(&sim, "", "");
    assert_eq!(turnkey.forward(&request("shop.example", "2.00")).await, succeeded("act-00000001"));
    assert_eq!(sim.activities(), 1);
    assert_eq!(sim.transfers(), paid_to_shop(2_000_000));
}

#[tokio::test]
async fn a_merchant_without_a_destination_is_not_paid_and_nothing_is_sent() {
    let sim = Sim::start().await;
    let turnkey = adapter(&sim, "", "");
    match turnkey.forward(&request("unknown.example", "1.00")).await {
        ForwardOutcome::Failed { code, .. } => assert_eq!(code, "merchant_not_payable"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(sim.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_agent_pays_usdc_through_turnkey_end_to_end() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let providers = section(&sim, dir.path(), "turnkey.", "", "");
    let app = spawn_with_providers(&provider_policy("onchain", "usdc", "turnkey"), &dir, &providers).await;

    let agent = app.create_agent("onchain").await;
    let (status, payment) = app
        .pay(
            &agent.key,
            "turnkey-e2e-1",
            json!({ "amount": "5.25", "currency": "USDC", "merchant_id": "shop.example", "merchant_category": "retail", "rail": "usdc" }),
        )
        .await;
    assert!(status.is_success(), "{status} {payment}");
    let id = payment["id"].as_str().unwrap();
    let paid = app.wait_for(&agent.key, id, "succeeded").await;
    assert_eq!(paid["provider"]["transaction_id"], tk::tx_hash("act-00000001"), "{paid}");
    assert_eq!(sim.transfers(), paid_to_shop(5_250_000));
}
