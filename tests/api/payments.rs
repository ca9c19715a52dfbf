use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn approved_payment_is_forwarded_to_the_sandbox_and_succeeds() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (status, p) = app.pay(&a.key, "k1", payment("42.50", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["status"], "approved");
    assert_eq!(p["amount"], "42.50");
    assert_eq!(p["decision"]["outcome"], "approve");
    assert_eq!(p["decision"]["reasons"], json!([]));
    assert_eq!(p["decision"]["policy"], "test");
    assert!(p["decision"]["policy_version"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(p["provider"]["name"], "sandbox");
    assert!(p["id"].as_str().unwrap().starts_with("pay_"));

    let done = app.settled(&a.key, p["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded");
    assert!(done["provider"]["transaction_id"].as_str().unwrap().starts_with("sbx_"));
}

#[tokio::test]
async fn provider_failure_releases_the_reservation() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, p) = app.pay(&a.key, "k1", payment("60.00", "shop-decline.example")).await;
    assert_eq!(p["status"], "approved");
    let done = app.settled(&a.key, p["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure"]["code"], "card_declined");
    // 60.00 was released: a full 100.00 day is still available... in two steps
    // below the approval threshold.
    let (_, p1) = app.pay(&a.key, "k2", payment("60.00", "aws.amazon.com")).await;
    let (_, p2) = app.pay(&a.key, "k3", payment("40.00", "aws.amazon.com")).await;
    assert_eq!((p1["status"].as_str(), p2["status"].as_str()), (Some("approved"), Some("approved")));
}

#[tokio::test]
async fn idempotency_key_replays_the_same_payment_and_rejects_a_different_body() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (s1, p1) = app.pay(&a.key, "same-key", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(s1, StatusCode::CREATED);
    // Same meaning, different formatting and key order: still a replay.
    let reordered = json!({ "rail": "card", "merchant_category": "cloud", "merchant_id": "aws.amazon.com",
                            "currency": "USD", "amount": "10.00" });
    let (s2, p2) = app.pay(&a.key, "same-key", reordered).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(p1["id"], p2["id"]);

    let (s3, e) = app.pay(&a.key, "same-key", payment("10.01", "aws.amazon.com")).await;
    assert_eq!(s3, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "idempotency_conflict");

    // Only one payment exists, and only 10.00 is reserved.
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, p4) = app.pay(&a.key, "other", payment("80.00", "aws.amazon.com")).await;
    let (_, p5) = app.pay(&a.key, "other-2", payment("10.01", "aws.amazon.com")).await;
    assert_eq!(p4["status"], "approved");
    assert_eq!(p5["status"], "denied");

    // Keys are per agent: another agent may use the same key.
    let b = app.create_agent("test").await;
    let (s6, p6) = app.pay(&b.key, "same-key", payment("10.00", "aws.amazon.com")).await;
    assert_eq!(s6, StatusCode::CREATED);
    assert_ne!(p6["id"], p1["id"]);
}

#[tokio::test]
async fn daily_limit_is_inclusive_and_one_cent_over_is_denied() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, p) = app.pay(&a.key, "1", payment("60.00", "aws.amazon.com")).await;
    assert_eq!(p["status"], "approved");
    let (_, over) = app.pay(&a.key, "2", payment("40.01", "aws.amazon.com")).await;
    assert_eq!(over["status"], "denied");
    assert_eq!(reason_codes(&over), vec!["daily_limit"]);
    let reason = &over["decision"]["reasons"][0];
    assert_eq!(reason["limit"], "100.00");
    assert_eq!(reason["attempted"], "100.01");
    let (_, exact) = app.pay(&a.key, "3", payment("40.00", "aws.amazon.com")).await;
    assert_eq!(exact["status"], "approved", "{exact}");
}

#[tokio::test]
async fn daily_window_rolls_over_at_local_midnight_not_utc() {
    // 23:59:00 in New York on Thursday = 04:59 UTC on Friday.
    let app = spawn_app_with(TEST_POLICY, "2026-11-27T04:59:00Z".parse().unwrap()).await;
    let a = app.create_agent("test").await;
    for (i, amount) in ["50.00", "50.00"].iter().enumerate() {
        let (_, p) = app.pay(&a.key, &format!("fill-{i}"), payment(amount, "aws.amazon.com")).await;
        assert_eq!(p["status"], "approved");
    }
    app.clock.advance(Duration::seconds(59));
    let (_, late) = app.pay(&a.key, "late", payment("0.01", "aws.amazon.com")).await;
    assert_eq!(late["status"], "denied", "23:59:59 local is still the same day");
    app.clock.advance(Duration::seconds(1));
    let (_, next) = app.pay(&a.key, "next", payment("0.01", "aws.amazon.com")).await;
    assert_eq!(next["status"], "approved", "00:00:00 local starts a new day");
}

#[tokio::test]
async fn weekly_limit_holds_across_days() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    for day in 0..3 {
        for i in 0..2 {
            let (_, p) = app.pay(&a.key, &format!("d{day}-{i}"), payment("50.00", "aws.amazon.com")).await;
            assert_eq!(p["status"], "approved", "day {day}");
        }
        app.clock.advance(Duration::days(1));
    }
    // Sunday 2026-11-29 is still ISO week 48: 300.00 spent.
    let (_, p) = app.pay(&a.key, "sunday", payment("0.01", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&p), vec!["weekly_limit"]);
    app.clock.advance(Duration::days(1));
    let (_, monday) = app.pay(&a.key, "monday", payment("0.01", "aws.amazon.com")).await;
    assert_eq!(monday["status"], "approved");
}

#[tokio::test]
async fn above_the_approval_threshold_waits_for_a_human_and_holds_the_amount() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (_, at) = app.pay(&a.key, "at", payment("80.00", "aws.amazon.com")).await;
    assert_eq!(at["status"], "approved", "at the threshold needs no approval");
    app.clock.advance(Duration::days(1));
    let (status, p) = app.pay(&a.key, "over", payment("80.01", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(p["status"], "pending_approval");
    assert_eq!(p["decision"]["outcome"], "require_approval");
    assert_eq!(reason_codes(&p), vec!["approval_required"]);
    assert_eq!(p["approval"]["status"], "pending");
    assert_eq!(p["approval"]["approvals_required"], 1);
    assert!(p["provider"].is_null());
    // The pending amount is reserved: 80.01 + 20.00 > 100.00.
    let (_, more) = app.pay(&a.key, "more", payment("20.00", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&more), vec!["daily_limit"]);
}

#[tokio::test]
async fn a_denial_lists_every_failed_rule() {
    let app = spawn_app().await;
    let a = app.create_agent("strict").await;
    let body = json!({ "amount": "75.00", "currency": "EUR", "merchant_id": "casino.example",
                       "merchant_category": "gambling", "rail": "usdc" });
    let (_, p) = app.pay(&a.key, "bad", body).await;
    assert_eq!(p["status"], "denied");
    let mut codes = reason_codes(&p);
    codes.sort();
    assert_eq!(
        codes,
        vec![
            "category_blocked",
            "currency_not_allowed",
            "merchant_not_allowed",
            "per_tx_limit",
            "rail_not_allowed",
            "scope_not_allowed"
        ]
    );
    // The amount is named in the currency it was paid in, the limit in the
    // policy's.
    let per_tx =
        p["decision"]["reasons"].as_array().unwrap().iter().find(|r| r["code"] == "per_tx_limit").unwrap();
    assert_eq!(per_tx["message"], "amount 75.00 EUR is above the per-transaction limit of 50.00 USD");
    // Denied payments reserve nothing.
    let (_, ok) = app.pay(&a.key, "ok", payment("30.00", "aws.amazon.com")).await;
    assert_eq!(ok["status"], "approved");
    let (_, capped) = app.pay(&a.key, "capped", payment("30.01", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&capped), vec!["merchant_per_tx_limit"]);
}

#[tokio::test]
async fn agents_never_see_each_others_payments() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let b = app.create_agent("test").await;
    let (_, p) = app.pay(&a.key, "1", payment("1.00", "aws.amazon.com")).await;
    let path = format!("/v1/payments/{}", p["id"].as_str().unwrap());
    let (status, e) = app.get(&b.key, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "404, not 403: existence is not revealed");
    assert_eq!(e["error"]["code"], "not_found");
    let (_, list) = app.get(&b.key, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));
    let (status, _) = app.get(&a.key, &path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.admin(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "admins see every payment");
}

#[tokio::test]
async fn payments_list_pages_with_a_cursor_newest_first() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, p) = app.pay(&a.key, &format!("p{i}"), payment("1.00", "aws.amazon.com")).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/payments?limit=2&cursor={c}"),
            None => "/v1/payments?limit=2".to_owned(),
        };
        let (status, page) = app.get(&a.key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (status, all) = app.get(&a.key, "/v1/payments?status=&limit=&cursor=").await;
    assert_eq!(status, StatusCode::OK, "empty parameters mean 'not given': {all}");
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    let (_, denied) = app.get(&a.key, "/v1/payments?status=denied").await;
    assert_eq!(denied["data"], json!([]));
}

#[tokio::test]
async fn evaluate_is_a_dry_run() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    for _ in 0..3 {
        let (status, d) =
            app.post_as(&a.key, "/v1/payments/evaluate", payment("70.00", "aws.amazon.com")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(d, json!({ "decision": d["decision"] }), "only the decision");
        assert_eq!(d["decision"]["outcome"], "approve");
    }
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"], json!([]), "no payment was created");
    let (_, p) = app.pay(&a.key, "real", payment("70.00", "aws.amazon.com")).await;
    assert_eq!(p["status"], "approved", "nothing was reserved by the dry runs");
    let (_, d) = app.post_as(&a.key, "/v1/payments/evaluate", payment("30.01", "x.com")).await;
    assert_eq!(d["decision"]["outcome"], "deny");
    assert_eq!(d["decision"]["reasons"][0]["code"], "daily_limit");
}

/// The dry run answers exactly what creation then decides: in the normal
/// state, for a frozen agent, and under the kill switch (where it once said
/// `approve` while creation denied).
#[tokio::test]
async fn the_dry_run_answers_what_creation_would() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let freeze = format!("/v1/agents/{}/freeze", a.id);
    let unfreeze = format!("/v1/agents/{}/unfreeze", a.id);
    type Change<'a> = Option<(Method, &'a str, Option<serde_json::Value>)>;
    let steps: [(&str, Change); 5] = [
        ("normal", None),
        ("frozen", Some((Method::POST, freeze.as_str(), Some(json!({ "reason": "looping" }))))),
        (
            "frozen and halted",
            Some((Method::POST, "/v1/kill-switch", Some(json!({ "reason": "incident 7" })))),
        ),
        ("halted", Some((Method::POST, unfreeze.as_str(), None))),
        ("released", Some((Method::DELETE, "/v1/kill-switch", None))),
    ];
    let mut outcomes = Vec::new();
    for (i, (state, change)) in steps.into_iter().enumerate() {
        if let Some((method, path, body)) = change {
            let (status, _) = app.admin(method, path, body).await;
            assert_eq!(status, StatusCode::OK, "{state}");
        }
        let body = payment("5.00", "aws.amazon.com");
        let (_, dry) = app.post_as(&a.key, "/v1/payments/evaluate", body.clone()).await;
        let (_, created) = app.pay(&a.key, &format!("k{i}"), body).await;
        assert_eq!(dry["decision"], created["decision"], "{state}");
        outcomes.push((state, reason_codes(&created)));
    }
    let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        outcomes,
        [
            ("normal", codes(&[])),
            ("frozen", codes(&["agent_frozen"])),
            ("frozen and halted", codes(&["kill_switch", "agent_frozen"])),
            ("halted", codes(&["kill_switch"])),
            ("released", codes(&[])),
        ]
    );
}

#[tokio::test]
async fn a_frozen_agent_is_denied_until_unfrozen() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (status, agent) = app
        .admin(Method::POST, &format!("/v1/agents/{}/freeze", a.id), Some(json!({ "reason": "suspicious" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["frozen"], true);
    let (_, p) = app.pay(&a.key, "1", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&p), vec!["agent_frozen"]);
    app.admin(Method::POST, &format!("/v1/agents/{}/unfreeze", a.id), None).await;
    let (_, p) = app.pay(&a.key, "2", payment("1.00", "aws.amazon.com")).await;
    assert_eq!(p["status"], "approved");
}

const LADDER_POLICY: &str = r#"
[policies.ladder]
currency = "USD"
rails = ["card"]
"#;

#[tokio::test]
async fn raising_trust_level_raises_ladder_limits_without_editing_files() {
    let app = spawn_app_with(LADDER_POLICY, default_start()).await;
    let a = app.create_agent("ladder").await;
    let (_, p) = app.pay(&a.key, "1", payment("50.01", "aws.amazon.com")).await;
    assert_eq!(reason_codes(&p), vec!["per_tx_limit"], "low: 50 per transaction");
    let (status, agent) = app
        .admin(Method::PATCH, &format!("/v1/agents/{}", a.id), Some(json!({ "trust_level": "medium" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["trust_level"], "medium");
    let (_, p) = app.pay(&a.key, "2", payment("50.01", "aws.amazon.com")).await;
    assert_eq!(p["status"], "approved", "{p}");
}

#[tokio::test]
async fn every_decision_and_admin_change_is_in_a_verifiable_audit_chain() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    app.pay(&a.key, "1", payment("1.00", "aws.amazon.com")).await;
    app.pay(&a.key, "2", payment("500.00", "aws.amazon.com")).await;
    app.admin(Method::POST, &format!("/v1/agents/{}/freeze", a.id), Some(json!({}))).await;
    let (status, audit) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
    let records: Vec<purser::audit::AuditRecord> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    let mut verifier = purser::audit::ChainVerifier::default();
    for r in &records {
        verifier.check(r).expect("chain intact");
    }
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    for expected in ["agent.created", "key.created", "payment.approved", "payment.denied", "agent.frozen"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    assert!(!audit.to_string().contains(&a.key), "the key never appears in the audit log");

    // What `purser audit verify` runs: intact, then one edited record is found.
    let store = purser::store::Store::connect(&app.database_url).await.unwrap();
    let checked = purser::service::audit::verify(&store, None).await.unwrap().checked;
    assert_eq!(checked, records.len() as u64);
    let raw = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    sqlx::query("UPDATE audit_log SET data = '{\"amount\":\"0.01\"}' WHERE seq = 3")
        .execute(&raw)
        .await
        .unwrap();
    let broken = purser::service::audit::verify(&store, None).await.unwrap_err().to_string();
    assert!(broken.contains("seq 3"), "{broken}");
}

/// Makes the audit log refuse every insert, or accept them again.
async fn audit_log_writable(app: &TestApp, writable: bool) {
    let raw = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let postgres = app.database_url.starts_with("postgres");
    let statements: &[&str] = match (writable, postgres) {
        (false, false) => &["CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_log \
                             BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END"],
        (true, false) => &["DROP TRIGGER audit_read_only"],
        // Decisions commit their records to `audit_pending` first.
        (false, true) => &[
            "CREATE FUNCTION audit_read_only() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit log is read-only'; END $$",
            "CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_read_only()",
            "CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_pending \
             FOR EACH ROW EXECUTE FUNCTION audit_read_only()",
        ],
        (true, true) => {
            &["DROP TRIGGER audit_read_only ON audit_log", "DROP TRIGGER audit_read_only ON audit_pending"]
        }
    };
    for sql in statements {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_happens() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    audit_log_writable(&app, false).await;

    let (status, e) = app.pay(&a.key, "k1", payment("60.00", "aws.amazon.com")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable"))
    );
    let (status, _) = app.admin(Method::POST, &format!("/v1/agents/{}/freeze", a.id), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "no payment without its audit record");

    // Writable again: the agent was not frozen, and the refused payment
    // reserved nothing (the whole daily limit is still there).
    audit_log_writable(&app, true).await;
    let (status, p) = app.pay(&a.key, "k1", payment("100.00", "aws.amazon.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["status"], "pending_approval", "{p}");
}

#[tokio::test]
async fn the_audit_log_exports_as_json_lines_and_csv() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    for i in 0..5 {
        let (_, p) = app.pay(&a.key, &format!("k{i}"), payment("1.00", "aws.amazon.com")).await;
        app.wait_for(&a.key, p["id"].as_str().unwrap(), "succeeded").await;
    }
    let (_, page) = app.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let records = page["data"].as_array().unwrap();
    let app = &app;
    let download = |query: &str| {
        let url = app.url(&format!("/v1/audit?{query}"));
        async move { app.http.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap() }
    };

    let resp = download("format=jsonl").await;
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(&lines, records, "every record, as the JSON API shows it");
    let mut chain = purser::audit::ChainVerifier::default();
    for line in &lines {
        let record: purser::audit::AuditRecord = serde_json::from_value(line.clone()).unwrap();
        chain.check(&record).expect("the export verifies");
    }

    let csv = download("format=csv&type=payment.approved").await.text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next().unwrap(), "seq,id,at,type,actor,client,agent_id,subject,data,prev_hash,hash");
    assert_eq!(rows.count(), 5);
    let (status, e) = app.admin(Method::GET, "/v1/audit?format=xml", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let resp = app.http.get(app.url("/v1/audit?format=csv")).bearer_auth(&a.key).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "admins only");
}

/// The agent does not choose the category: the merchant directory decides
/// it for the merchants it knows, the declared one is kept beside, and an
/// unknown merchant with no category is refused where categories matter.
#[tokio::test]
async fn the_merchant_directory_overrides_a_declared_category() {
    let policies = format!(
        "{TEST_POLICY}\n[merchants.\"casino.example\"]\ncategory = \"gambling\"\n\
         [merchants.\"*.amazonaws.com\"]\ncategory = \"cloud\"\n"
    );
    let app = spawn_app_with(&policies, default_start()).await;
    let a = app.create_agent("test").await;
    let mut lie = payment("20.00", "casino.example");
    lie["merchant_category"] = "cloud".into();
    let (status, p) = app.pay(&a.key, "k1", lie).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["status"], "denied");
    assert_eq!(reason_codes(&p), ["category_blocked"]);
    assert_eq!(
        (p["merchant_category"].as_str(), p["declared_category"].as_str()),
        (Some("gambling"), Some("cloud"))
    );
    assert!(app.metrics().await.contains("purser_declared_category_mismatch_total"));

    let mut unknown = payment("20.00", "new.example");
    unknown.as_object_mut().unwrap().remove("merchant_category");
    let (_, p) = app.pay(&a.key, "k2", unknown).await;
    assert_eq!(reason_codes(&p), ["category_unknown"]);

    let mut known = payment("20.00", "s3.amazonaws.com");
    known.as_object_mut().unwrap().remove("merchant_category");
    let (_, p) = app.pay(&a.key, "k3", known).await;
    assert_eq!(
        (p["status"].as_str(), p["merchant_category"].as_str()),
        (Some("approved"), Some("cloud")),
        "{p}"
    );
    assert!(p.get("declared_category").is_none(), "{p}");
}
