//! Attacks from the OWASP API Security Top 10 (2023), one file per group of
//! classes, each asserted through the HTTP API only. Where another file already
//! covers an attack, a comment points to it instead of repeating it.

mod authentication;
mod authorization;
mod configuration;
mod consumption;
mod ssrf;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Asserts the one JSON error shape, `{ "error": { "code", "message",
/// "param"?, "request_id"? } }` and nothing else, with `code`.
fn assert_error(body: &Value, code: &str, what: &str) {
    let error = body["error"].as_object().unwrap_or_else(|| panic!("{what}: not a JSON error: {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{what}: only `error` at the top: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    for k in error.keys() {
        assert!(
            ["code", "message", "param", "request_id"].contains(&k.as_str()),
            "{what}: extra field {k}: {body}"
        );
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_parts(req.send().await.unwrap()).await
}

/// A payment of `agent` waiting for approval (quorum policy, 50.00 > 10.00);
/// returns (payment id, approval id).
async fn pending(app: &TestApp, agent: &Agent, idem: &str) -> (String, String) {
    let (status, p) = app.pay(&agent.key, idem, payment("50.00", "aws.amazon.com")).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("pending_approval")), "{p}");
    (p["id"].as_str().unwrap().to_owned(), p["approval"]["id"].as_str().unwrap().to_owned())
}
