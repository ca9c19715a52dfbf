//! Every client mistake answers a 4xx JSON error with a stable code.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn raw_pay(
    app: &TestApp,
    key: &str,
    content_type: Option<&str>,
    idem: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app.http.post(app.url("/v1/payments")).bearer_auth(key).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    into_parts(req.send().await.unwrap()).await
}

/// A bad request and the error it must get: name, Content-Type,
/// Idempotency-Key, body, status, error code.
type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<u8>, StatusCode, &'a str);

#[tokio::test]
async fn bad_payment_requests_get_stable_error_codes() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let good = payment("10.00", "aws.amazon.com");
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        serde_json::to_vec(&b).unwrap()
    };
    let json_ct = Some("application/json");
    let long_key = "x".repeat(300);
    let cases: Vec<Case> = vec![
        (
            "wrong content type",
            Some("text/plain"),
            Some("k"),
            serde_json::to_vec(&good).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "no content type",
            None,
            Some("k"),
            serde_json::to_vec(&good).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "malformed json",
            json_ct,
            Some("k"),
            b"{\"amount\": \"1.00\",".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        ("not an object", json_ct, Some("k"), b"[1,2]".to_vec(), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "amount as number",
            json_ct,
            Some("k"),
            with("amount", json!(10.5)),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "too many digits",
            json_ct,
            Some("k"),
            with("amount", json!("10.001")),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "negative",
            json_ct,
            Some("k"),
            with("amount", json!("-5.00")),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "zero",
            json_ct,
            Some("k"),
            with("amount", json!("0.00")),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "exponent",
            json_ct,
            Some("k"),
            with("amount", json!("1e3")),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "huge",
            json_ct,
            Some("k"),
            with("amount", json!("99999999999999999999999999999999")),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "fee as number",
            json_ct,
            Some("k"),
            with("fee", json!(1)),
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "unknown currency",
            json_ct,
            Some("k"),
            with("currency", json!("XYZ")),
            StatusCode::BAD_REQUEST,
            "invalid_currency",
        ),
        (
            "JPY fraction",
            json_ct,
            Some("k"),
            {
                let mut b = good.clone();
                b["currency"] = json!("JPY");
                serde_json::to_vec(&b).unwrap()
            },
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            "unknown field",
            json_ct,
            Some("k"),
            with("status", json!("succeeded")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "repeated key (serde_json would keep the last)",
            json_ct,
            Some("k"),
            br#"{"amount":"1.00","amount":"400.00","currency":"USD","merchant_id":"aws.amazon.com","rail":"card"}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "missing merchant",
            json_ct,
            Some("k"),
            serde_json::to_vec(&json!({ "amount": "1.00", "currency": "USD" })).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "empty merchant",
            json_ct,
            Some("k"),
            with("merchant_id", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "merchant wrong type",
            json_ct,
            Some("k"),
            with("merchant_id", json!(5)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "missing idempotency key",
            json_ct,
            None,
            serde_json::to_vec(&good).unwrap(),
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
        ),
        (
            "oversized idempotency key",
            json_ct,
            Some(long_key.as_str()),
            serde_json::to_vec(&good).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
        (
            "oversized body",
            json_ct,
            Some("k"),
            with("description", json!("x".repeat(70 * 1024))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "deeply nested",
            json_ct,
            Some("k"),
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (name, content_type, idem, body, status, code) in cases {
        let (got, e) = raw_pay(&app, &a.key, content_type, idem, body).await;
        assert_eq!(got, status, "{name}: {e}");
        assert_eq!(e["error"]["code"], code, "{name}: {e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
    }
    // None of them created a payment.
    let (_, list) = app.get(&a.key, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn unknown_routes_methods_and_queries_answer_json() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let (status, e) = app.get(&a.key, "/v1/nope").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, e) =
        into_parts(app.http.delete(app.url("/v1/payments")).bearer_auth(&a.key).send().await.unwrap()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    for q in ["limit=0", "limit=201", "limit=abc", "status=bogus", "cursor=not-a-cursor", "surprise=1"] {
        let (status, e) = app.get(&a.key, &format!("/v1/payments?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e["error"]["code"].as_str().unwrap().starts_with("invalid_"), "{q}: {e}");
    }
}

#[tokio::test]
async fn nul_characters_are_refused_at_the_edge() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let mut body = payment("1.00", "aws.amazon.com");
    body["description"] = "GPU\u{0}hours".into();
    let (status, e) = app.pay(&a.key, "k1", body).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, _) = app.admin(reqwest::Method::GET, "/v1/audit?agent=%00", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// What the OpenAPI description admits is accepted: a JSON `null` for an
/// optional body, a whole number written `60.0`, a PATCH that changes
/// nothing. And what it refuses is refused whoever asks: a console verdict
/// other than approve or deny is 404 even without a session.
#[tokio::test]
async fn what_the_description_admits_is_accepted() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let send = |method: reqwest::Method, path: String, body: &'static str| {
        let req = app.http.request(method, app.url(&path)).bearer_auth(ADMIN_TOKEN);
        async move {
            let req = req.header("Content-Type", "application/json").body(body);
            into_parts(req.send().await.unwrap()).await
        }
    };
    let (status, agent) = send(reqwest::Method::PATCH, format!("/v1/agents/{}", a.id), "{}").await;
    assert_eq!((status, agent["id"].as_str()), (StatusCode::OK, Some(a.id.as_str())), "{agent}");
    let (status, frozen) = send(reqwest::Method::POST, format!("/v1/agents/{}/freeze", a.id), "null").await;
    assert_eq!(
        (status, frozen["frozen_reason"].as_str()),
        (StatusCode::OK, Some("frozen by admin")),
        "{frozen}"
    );
    let (_, key) =
        app.admin(reqwest::Method::POST, &format!("/v1/agents/{}/keys", a.id), Some(json!({}))).await;
    let rotate = format!("/v1/agents/{}/keys/{}/rotate", a.id, key["id"].as_str().unwrap());
    let (status, rotated) = send(reqwest::Method::POST, rotate, r#"{"grace_seconds": 60.0}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let (status, e) = send(
        reqwest::Method::POST,
        format!("/v1/agents/{}/keys/x/rotate", a.id),
        r#"{"grace_seconds": 1.5}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!e["error"]["message"].as_str().unwrap().contains("u64"), "{e}");

    let console = app.http.post(app.url("/console/approvals/apv_x/bogus")).form(&[("csrf", "x")]);
    assert_eq!(console.send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

/// A 400 names what is wrong in `param`, so a client (or a model) can fix
/// the right field: a JSON pointer into the body, a query parameter's
/// name, or a header's. A request wrong as a whole has no `param`.
#[tokio::test]
async fn a_400_names_the_field_at_fault() {
    let app = spawn_app().await;
    let a = app.create_agent("test").await;
    let good = payment("10.00", "aws.amazon.com");
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let bodies = [
        (with("merchant_id", json!(5)), Some("/merchant_id")),
        (with("amount", json!(10)), Some("/amount")),
        (with("amount", json!("1.234")), Some("/amount")),
        (with("currency", json!("XYZ")), Some("/currency")),
        (with("status", json!("succeeded")), Some("/status")),
        (with("metadata", json!({ "a/b": "x\u{0}" })), Some("/metadata/a~1b")),
        (json!({ "amount": "1.00", "currency": "USD" }), Some("/merchant_id")),
    ];
    for (body, param) in bodies {
        let (status, e) = app.pay(&a.key, "k", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["error"]["param"].as_str(), param, "{body}: {e}");
    }
    let repeated = br#"{"amount":"1.00","metadata":{"x":1,"x":2}}"#.to_vec();
    let (_, e) = raw_pay(&app, &a.key, Some("application/json"), Some("k"), repeated).await;
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
        (Some("invalid_request"), Some("/metadata/x")),
        "{e}"
    );
    let (status, e) = raw_pay(&app, &a.key, Some("application/json"), Some("k"), b"[1]".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].get("param").is_none(), "{e}");
    let (_, e) =
        raw_pay(&app, &a.key, Some("application/json"), None, serde_json::to_vec(&good).unwrap()).await;
    assert_eq!(e["error"]["param"], "Idempotency-Key", "{e}");

    for (query, param) in
        [("limit=abc", "limit"), ("limit=0", "limit"), ("status=bogus", "status"), ("surprise=1", "surprise")]
    {
        let (status, e) = app.get(&a.key, &format!("/v1/payments?{query}")).await;
        assert_eq!(
            (status, e["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some(param)),
            "{query}: {e}"
        );
    }
    let (status, e) = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/keys", a.id),
            Some(
                json!({ "allowed_cidrs": ["10.0.0.0/8", "nope"], "rate_limit": { "writes_per_minute": 0 } }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "/allowed_cidrs/1", "{e}");
}
