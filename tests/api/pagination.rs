//! Every list pages the same way: `limit`, `cursor`, and a `Page` envelope
//! whose `next_cursor` walks the whole list once, in order, without
//! skipping or repeating an item.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Walks `path` with pages of `limit` items and returns every item's `key`.
pub async fn walk(app: &TestApp, token: &str, path: &str, limit: usize, key: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(token, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit, "{url}: {page}");
        seen.extend(data.iter().map(|item| item[key].as_str().unwrap().to_owned()));
        match (&page["has_more"], &page["next_cursor"]) {
            (Value::Bool(true), Value::String(next)) => {
                assert_eq!(data.len(), limit, "{url}: a page before the last is full");
                cursor = Some(next.clone());
            }
            (Value::Bool(false), Value::Null) => return seen,
            _ => panic!("{url}: has_more and next_cursor disagree: {page}"),
        }
    }
    panic!("{path}: the cursor never ended");
}

/// The same items as one big page, in the same order.
async fn whole(app: &TestApp, token: &str, path: &str, key: &str) -> Vec<String> {
    walk(app, token, path, 200, key).await
}

#[tokio::test]
async fn every_list_pages_through_each_item_once_in_order() {
    let app = spawn_app_tweaked(TEST_POLICY, default_start(), local_webhooks).await;
    let agents: Vec<Agent> = futures_util::future::join_all((0..5).map(|_| app.create_agent("quorum"))).await;
    let a = &agents[0];
    for i in 0..4 {
        let path = format!("/v1/agents/{}/keys", a.id);
        assert_eq!(app.admin(Method::POST, &path, Some(json!({}))).await.0, StatusCode::CREATED);
        let public_key = ed25519_dalek::SigningKey::from_bytes(&[i + 1; 32]).verifying_key();
        let body =
            json!({ "public_key": base64::engine::general_purpose::STANDARD.encode(public_key.as_bytes()) });
        let path = format!("/v1/agents/{}/signing-keys", a.id);
        assert_eq!(app.admin(Method::POST, &path, Some(body)).await.0, StatusCode::CREATED);
        app.create_approver(&format!("approver-{i}")).await;
        let url = format!("http://127.0.0.1:9/hook-{i}");
        let (status, e) = app
            .admin(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url, "events": ["*"] })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
        // Above the quorum policy's approval threshold: pending.
        let (status, p) = app.pay(&a.key, &format!("k{i}"), payment("20.00", "aws.amazon.com")).await;
        assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("pending_approval")), "{p}");
    }
    let keys = format!("/v1/agents/{}/keys", a.id);
    let signing_keys = format!("/v1/agents/{}/signing-keys", a.id);
    let lists = [
        (ADMIN_TOKEN, "/v1/agents", "id", 5),
        (ADMIN_TOKEN, keys.as_str(), "id", 5),
        (ADMIN_TOKEN, signing_keys.as_str(), "id", 4),
        (ADMIN_TOKEN, "/v1/approvers", "id", 4),
        (ADMIN_TOKEN, "/v1/webhook-endpoints", "id", 4),
        (ADMIN_TOKEN, "/v1/approvals", "id", 4),
        (a.key.as_str(), "/v1/payments", "id", 4),
        (ADMIN_TOKEN, "/v1/audit", "id", 20),
    ];
    for (token, path, key, at_least) in lists {
        let all = whole(&app, token, path, key).await;
        assert!(all.len() >= at_least, "{path}: {all:?}");
        for limit in [1, 2, 3] {
            assert_eq!(walk(&app, token, path, limit, key).await, all, "{path} by {limit}");
        }
    }

    // `after` follows the audit log from a known `seq`.
    let (_, first) = app.get(ADMIN_TOKEN, "/v1/audit?limit=5").await;
    let fifth = first["data"][4]["seq"].as_i64().unwrap();
    let (_, rest) = app.get(ADMIN_TOKEN, &format!("/v1/audit?after={fifth}&limit=1")).await;
    assert_eq!(rest["data"][0]["seq"].as_i64(), Some(fifth + 1), "{rest}");

    // Bad page requests name what is wrong.
    for (query, code, param) in [
        ("limit=0", "invalid_query", "limit"),
        ("limit=1001", "invalid_query", "limit"),
        ("cursor=a%20b", "invalid_cursor", "cursor"),
        ("cursor=%C3%A9", "invalid_cursor", "cursor"),
        ("colour=red", "invalid_query", "colour"),
    ] {
        let (status, e) = app.get(ADMIN_TOKEN, &format!("/v1/agents?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {e}");
        assert_eq!(
            (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
            (Some(code), Some(param)),
            "{e}"
        );
    }
}

/// Decided approvals come most recent first, and page in that order too.
#[tokio::test]
async fn decided_approvals_page_most_recent_first() {
    let app = spawn_app().await;
    let a = app.create_agent("quorum").await;
    let (_, approver) = app.create_approver("ops").await;
    let mut decided = Vec::new();
    for i in 0..4 {
        let (_, p) = app.pay(&a.key, &format!("k{i}"), payment("20.00", "aws.amazon.com")).await;
        let approval = p["approval"]["id"].as_str().unwrap().to_owned();
        let (status, v) = app.vote(&approver, &approval, "deny", None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        decided.push(approval);
        app.clock.advance(chrono::Duration::seconds(1));
    }
    decided.reverse();
    for limit in [1, 3] {
        assert_eq!(walk(&app, ADMIN_TOKEN, "/v1/approvals?status=rejected", limit, "id").await, decided);
    }
}
