//! `GET /v1/agents/{id}/policy`: an agent reads its own policy and what it
//! may still spend, in its policy's time zone.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_agent_reads_its_policy_and_what_it_may_still_spend_until_local_midnight() {
    // Thursday 2026-11-26 12:00 in New York; the test policy's windows are
    // New York days and weeks, 100.00 a day and 300.00 a week.
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    for (key, amount) in [("a", "30.00"), ("b", "12.50")] {
        assert_eq!(app.pay(&agent.key, key, payment(amount, "aws.amazon.com")).await.0, StatusCode::CREATED);
    }
    let (_, denied) = app.pay(&agent.key, "c", payment("60.00", "aws.amazon.com")).await;
    assert_eq!(denied["status"], "denied", "over the daily limit: {denied}");

    let (status, mine) = app.get(&agent.key, "/v1/agents/me/policy").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["agent_id"], agent.id.as_str());
    assert_eq!(
        (&mine["policy"], &mine["currency"], &mine["timezone"], &mine["trust_level"]),
        (&json!("test"), &json!("USD"), &json!("America/New_York"), &json!("custom"))
    );
    assert_eq!((&mine["per_tx_limit"], &mine["approval_threshold"]), (&json!("100.00"), &json!("80.00")));
    // The denied payment reserved nothing.
    assert_eq!(
        mine["spend"]["daily"],
        json!({ "limit": "100.00", "spent": "42.50", "remaining": "57.50", "resets_at": "2026-11-27T05:00:00.000Z" })
    );
    assert_eq!(mine["spend"]["weekly"]["remaining"], "257.50");
    assert_eq!(mine["spend"]["weekly"]["resets_at"], "2026-11-30T05:00:00.000Z", "Monday, local midnight");
    assert_eq!(
        mine["spend"]["monthly"],
        json!({ "limit": null, "spent": "42.50", "remaining": null, "resets_at": "2026-12-01T05:00:00.000Z" })
    );
    assert_eq!(
        mine["velocity"],
        json!([{ "max": 100000, "per_seconds": 60, "used": 2, "remaining": 99998 }])
    );
    assert_eq!(mine["policy_version"].as_str().unwrap().len(), "sha256:".len() + 64);

    // The same by id, and for the admin.
    let (_, by_id) = app.get(&agent.key, &format!("/v1/agents/{}/policy", agent.id)).await;
    assert_eq!(by_id["spend"], mine["spend"]);
    let (status, admin) = app.admin(Method::GET, &format!("/v1/agents/{}/policy", agent.id), None).await;
    assert_eq!((status, &admin["spend"]), (StatusCode::OK, &mine["spend"]));

    // One second before local midnight the day is the same; at it, a new one.
    app.clock.set("2026-11-27T04:59:59Z".parse().unwrap());
    assert_eq!(app.get(&agent.key, "/v1/agents/me/policy").await.1["spend"]["daily"]["spent"], "42.50");
    app.clock.set("2026-11-27T05:00:00Z".parse().unwrap());
    let (_, tomorrow) = app.get(&agent.key, "/v1/agents/me/policy").await;
    assert_eq!(tomorrow["spend"]["daily"]["remaining"], "100.00");
    assert_eq!(tomorrow["spend"]["daily"]["resets_at"], "2026-11-28T05:00:00.000Z");
    assert_eq!(tomorrow["spend"]["weekly"]["spent"], "42.50", "same week");
}

/// USDC counts at par against a USD policy with all six fraction digits:
/// `remaining` shows them (it once showed 67.38 when 67.376543 was left,
/// and a payment of 67.38 was then denied), and exactly what it shows can
/// be spent.
#[tokio::test]
async fn remaining_is_exact_and_spendable_to_the_last_unit() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let usdc = |amount: &str| {
        json!({ "amount": amount, "currency": "USDC", "merchant_id": "aws.amazon.com",
                "merchant_category": "cloud", "rail": "usdc" })
    };
    assert_eq!(app.pay(&agent.key, "a", usdc("32.623457")).await.1["status"], "approved");
    let (_, mine) = app.get(&agent.key, "/v1/agents/me/policy").await;
    let daily = &mine["spend"]["daily"];
    assert_eq!((&daily["spent"], &daily["remaining"]), (&json!("32.623457"), &json!("67.376543")), "{daily}");
    let (_, over) = app.pay(&agent.key, "b", payment("67.38", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&over), ["daily_limit"], "more than remains");
    let (_, all) = app.pay(&agent.key, "c", usdc("67.376543")).await;
    assert_eq!(all["status"], "approved", "exactly what remains: {all}");
    let (_, mine) = app.get(&agent.key, "/v1/agents/me/policy").await;
    assert_eq!(mine["spend"]["daily"]["remaining"], "0.00");
}

#[tokio::test]
async fn an_agents_policy_is_read_only_by_the_agent_with_policies_read_and_the_admin() {
    let app = spawn_app().await;
    let (a, b) = (app.create_agent("test").await, app.create_agent("strict").await);
    let (status, e) = app.get(&b.key, &format!("/v1/agents/{}/policy", a.id)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{e}");
    let (_, strict) = app.get(&b.key, "/v1/agents/me/policy").await;
    assert_eq!(
        strict["merchant_allowlist"],
        json!([
            { "merchant_id": "aws.amazon.com", "max_per_tx": "30.00", "lifetime_limit": null, "expires_at": null, "schedule": null },
            { "category": "cloud", "max_per_tx": null, "lifetime_limit": null, "expires_at": null, "schedule": null },
        ])
    );
    assert_eq!(strict["allowed_scopes"], json!(["compute"]));

    let (_, narrow) = app
        .admin(
            Method::POST,
            &format!("/v1/agents/{}/keys", a.id),
            Some(json!({ "scopes": ["payments:create"] })),
        )
        .await;
    let (status, e) = app.get(narrow["key"].as_str().unwrap(), "/v1/agents/me/policy").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    let (_, approver) = app.create_approver("alice").await;
    let (status, e) = app.get(&approver, &format!("/v1/agents/{}/policy", a.id)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("agent_only")));
    let (status, _) = app.admin(Method::GET, "/v1/agents/me/policy", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the admin is no agent");
}
