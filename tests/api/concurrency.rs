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
fn amounts(n: usize) -> Vec<String> {
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
    let (_, audit) = app.admin(Method::GET, &format!("/v1/audit?agent={}&limit=1000", a.id), None).await;
    let mut spent = Decimal::ZERO;
    let limit = Decimal::new(10000, 2);
    let mut checked = 0;
    for record in audit["data"].as_array().unwrap() {
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
    assert_eq!(checked, amounts.len());
    assert!(spent <= limit);
    assert!(spent > limit - Decimal::new(3000, 2), "the limit was actually used up");
}
