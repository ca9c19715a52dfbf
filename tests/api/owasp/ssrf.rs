//! API7: server side request forgery.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::helpers::*;

// API7:2023 Server side request forgery.
//
// Already covered: http outside dev, 127.0.0.1, [::1], 169.254.169.254,
// 10.x, `localhost`, userinfo (webhooks.rs
// `webhook_targets_inside_the_network_are_refused`) and a name that turns
// internal after registration (webhooks.rs
// `every_delivery_resolves_again_so_a_target_that_turns_internal_is_refused`).
// Here: other spellings of internal addresses, and the PATCH route.

const INTERNAL_SPELLINGS: [&str; 17] = [
    "https://2130706433/hooks",
    "https://0x7f000001/hooks",
    "https://0177.0.0.1/hooks",
    "https://127.1/hooks",
    "https://0.0.0.0/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data",
    "https://[fe80::1]/hooks",
    "https://[fd00::1]/hooks",
    "https://[::]/hooks",
    "https://192.168.1.1/hooks",
    "https://172.16.0.1/hooks",
    "https://100.64.0.1/hooks",
    "https://LOCALHOST/hooks",
    "https://localhost./hooks",
    "https://example.com@127.0.0.1/hooks",
    "file:///etc/passwd",
];

#[tokio::test]
async fn api7_ssrf_other_spellings_of_internal_addresses_are_refused() {
    let app = spawn_app().await;
    for url in INTERNAL_SPELLINGS {
        let (status, e) = app
            .admin(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url, "events": ["*"] })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_error(&e, "invalid_webhook_url", url);
    }
    let (_, hooks) = app.admin(Method::GET, "/v1/webhook-endpoints", None).await;
    assert_eq!(hooks["data"], json!([]));
}

#[tokio::test]
async fn api7_ssrf_an_endpoint_cannot_be_moved_inside_the_network() {
    let app = spawn_app().await;
    let (status, wh) = app
        .admin(
            Method::POST,
            "/v1/webhook-endpoints",
            Some(json!({ "url": "https://93.184.216.34/hooks", "events": ["*"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wh}");
    let path = format!("/v1/webhook-endpoints/{}", wh["id"].as_str().unwrap());
    for url in ["http://93.184.216.34/hooks", "https://169.254.169.254/latest", "https://localhost/h"]
        .into_iter()
        .chain(INTERNAL_SPELLINGS)
    {
        let (status, e) = app.admin(Method::PATCH, &path, Some(json!({ "url": url }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_error(&e, "invalid_webhook_url", url);
    }
    let (_, after) = app.admin(Method::GET, &path, None).await;
    assert_eq!(after["url"], "https://93.184.216.34/hooks");
}
