//! Limits hold under concurrency: check-and-reserve is one atomic step.

use std::collections::HashMap;

use futures_util::future::join_all;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::*;

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_simultaneous_payments_never_exceed_the_daily_limit() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let results = join_all((0..100).map(|i| {
        let (app, key) = (&app, &a.key);
        async move { app.pay(key, &format!("c{i}"), payment("10.00", "aws.amazon.com")).await }
    }))
    .await;
    let approved: Vec<&Value> =
        results.iter().map(|(_, p)| p).filter(|p| p["status"] == "approved").collect();
    let denied: Vec<&Value> = results.iter().map(|(_, p)| p).filter(|p| p["status"] == "denied").collect();
    assert_eq!(approved.len(), 10, "exactly 10 x 10.00 fit in 100.00");
    assert_eq!(denied.len(), 90);
    assert!(denied.iter().all(|p| reason_codes(p) == ["daily_limit"]));

    // What is stored agrees: reserved (approved or succeeded) sums to the limit.
    let (_, list) = app.get(&a.key, "/v1/payments?limit=200").await;
    let reserved: Decimal = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "approved" || p["status"] == "succeeded")
        .map(|p| dec(&p["amount"]))
        .sum();
    assert_eq!(reserved, Decimal::new(10000, 2));
}

/// Deterministic amounts between 0.01 and 30.00 (a tiny LCG; no test RNG).
pub(crate) fn amounts(n: usize) -> Vec<String> {
    let mut x: u64 = 0x5eed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let cents = 1 + (x >> 33) % 3000;
            format!("{}.{:02}", cents / 100, cents % 100)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mixed_amounts_match_a_sequential_model() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let amounts = amounts(150);
    let results = join_all(amounts.iter().enumerate().map(|(i, amt)| {
        let (app, key) = (&app, &a.key);
        async move { app.pay(key, &format!("m{i}"), payment(amt, "aws.amazon.com")).await }
    }))
    .await;
    let by_id: HashMap<String, &Value> =
        results.iter().map(|(_, p)| (p["id"].as_str().unwrap().to_owned(), p)).collect();
    assert_eq!(by_id.len(), amounts.len());

    // The audit log's sequence is the order decisions committed in. Replaying
    // the payments in that order through a sequential model of the daily
    // limit must give exactly the outcomes the gateway gave.
    let (spent, checked) = replay_in_commit_order(&app, &a.id, &by_id, Decimal::new(10000, 2)).await;
    assert_eq!(checked, amounts.len());
    assert!(spent <= Decimal::new(10000, 2));
    assert!(spent > Decimal::new(7000, 2), "the limit was actually used up");
}

/// Replays the decisions for `agent` in commit order (the audit log's) on a
/// sequential model of the daily `limit`, checking that each payment in
/// `by_id` got the model's outcome. Returns the model's spend and how many
/// decisions it checked.
pub(crate) async fn replay_in_commit_order(
    app: &Client,
    agent: &str,
    by_id: &HashMap<String, &Value>,
    limit: Decimal,
) -> (Decimal, usize) {
    let mut records = Vec::new();
    let mut path = format!("/v1/audit?agent={agent}&limit=1000");
    loop {
        let (_, page) = app.admin(Method::GET, &path, None).await;
        records.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/v1/audit?agent={agent}&limit=1000&cursor={next}"),
            None => break,
        }
    }
    let mut spent = Decimal::ZERO;
    let mut checked = 0;
    for record in &records {
        let kind = record["type"].as_str().unwrap();
        if kind != "payment.approved" && kind != "payment.denied" {
            continue;
        }
        let p = by_id[record["subject"].as_str().unwrap()];
        let amount = dec(&p["amount"]);
        let model_approves = spent + amount <= limit;
        if model_approves {
            spent += amount;
        }
        assert_eq!(
            p["status"] == "approved",
            model_approves,
            "payment {} of {amount} at spent {spent}",
            p["id"]
        );
        checked += 1;
    }
    (spent, checked)
}
