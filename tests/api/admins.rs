//! Administrators with their own tokens and roles, network limits on admin
//! and approver tokens, and the client address on every audited action.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn create_admin(app: &TestApp, name: &str, role: &str, cidrs: &[&str]) -> (String, String) {
    let body = json!({ "name": name, "role": role, "allowed_cidrs": cidrs });
    let (status, admin) = app.admin(Method::POST, "/v1/admins", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{admin}");
    let (id, token) = (admin["id"].as_str().unwrap(), admin["token"].as_str().unwrap());
    assert!(id.starts_with("adm_") && token.starts_with("psr_admin_"), "{admin}");
    (id.to_owned(), token.to_owned())
}

/// The newest audit record of `kind`, waiting for it a little (refusals are
/// recorded after the response).
async fn newest(app: &TestApp, kind: &str) -> Value {
    for _ in 0..200 {
        let (_, page) = app.admin(Method::GET, &format!("/v1/audit?type={kind}&limit=500"), None).await;
        if let Some(last) = page["data"].as_array().and_then(|d| d.last()) {
            return last.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no {kind} record")
}

#[tokio::test]
async fn administrators_have_their_own_tokens_and_roles_and_are_audited_by_name() {
    let app = spawn_app().await;
    let (ana_id, ana) = create_admin(&app, "Ana", "admin", &[]).await;
    let (dee_id, dee) = create_admin(&app, "Dee", "auditor", &[]).await;

    // An admin of the `admin` role manages; the audit names her.
    let body = json!({ "name": "buyer", "policy": "test" });
    let (status, agent) = app.call(&ana, Method::POST, "/v1/agents", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let created = newest(&app, "agent.created").await;
    assert_eq!(created["actor"], format!("admin:{ana_id}/Ana"));
    assert_eq!(created["client"], "127.0.0.1");
    let made_dee = newest(&app, "admin.created").await;
    assert_eq!(
        (made_dee["actor"].as_str(), made_dee["subject"].as_str()),
        (Some("admin"), Some(dee_id.as_str()))
    );
    assert!(!made_dee["data"].as_str().unwrap().contains("psr_admin_"), "the token is never audited");

    // An auditor reads agents, keys, payments, approvals and the audit log...
    let id = agent["id"].as_str().unwrap();
    for path in [
        "/v1/agents".to_owned(),
        format!("/v1/agents/{id}"),
        format!("/v1/agents/{id}/keys"),
        format!("/v1/agents/{id}/signing-keys"),
        format!("/v1/agents/{id}/policy"),
        "/v1/payments".to_owned(),
        "/v1/approvals".to_owned(),
        "/v1/audit".to_owned(),
    ] {
        let (status, body) = app.call(&dee, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "auditor GET {path}: {body}");
    }
    // ... and changes nothing, nor reads the rest of the admin API.
    let attempts = [
        (Method::POST, "/v1/agents".to_owned(), Some(json!({ "name": "x", "policy": "test" }))),
        (Method::PATCH, format!("/v1/agents/{id}"), Some(json!({ "trust_level": "high" }))),
        (Method::POST, format!("/v1/agents/{id}/keys"), Some(json!({}))),
        (Method::POST, "/v1/admins".to_owned(), Some(json!({ "name": "me", "role": "admin" }))),
        (Method::DELETE, format!("/v1/admins/{ana_id}"), None),
        (Method::GET, "/v1/admins".to_owned(), None),
        (Method::GET, "/v1/webhook-endpoints".to_owned(), None),
        (Method::POST, "/v1/kill-switch".to_owned(), Some(json!({ "reason": "x" }))),
    ];
    for (method, path, body) in attempts {
        let (status, e) = app.call(&dee, method.clone(), &path, body).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("insufficient_role")),
            "auditor {method} {path}"
        );
    }
    let (_, agent_now) = app.admin(Method::GET, &format!("/v1/agents/{id}"), None).await;
    assert_eq!(agent_now["trust_level"], "low", "the auditor's PATCH changed nothing");
    let refused = newest(&app, "auth.refused").await;
    assert_eq!(refused["actor"], format!("admin:{dee_id}/Dee"));

    // Listed without tokens; revoking one ends its token at once.
    let (_, list) = app.admin(Method::GET, "/v1/admins", None).await;
    let names: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ana", "Dee"]);
    assert!(!list.to_string().contains("psr_admin_"), "{list}");
    let (status, _) = app.call(&ana, Method::DELETE, &format!("/v1/admins/{dee_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call(&dee, Method::GET, "/v1/agents", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, e) = app.admin(Method::DELETE, &format!("/v1/admins/{dee_id}"), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let revoked = newest(&app, "admin.revoked").await;
    assert_eq!(revoked["actor"], format!("admin:{ana_id}/Ana"));

    let (status, e) =
        app.admin(Method::POST, "/v1/admins", Some(json!({ "name": "x", "role": "root" }))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
}

#[tokio::test]
async fn admin_and_approver_tokens_may_be_limited_to_networks() {
    let app = spawn_app().await;
    let (fenced_id, fenced) = create_admin(&app, "Far", "admin", &["10.9.0.0/16"]).await;
    let (_, local) = create_admin(&app, "Near", "admin", &["127.0.0.0/8"]).await;
    let (status, e) = app.call(&fenced, Method::GET, "/v1/agents", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("ip_not_allowed")));
    let (status, _) = app.call(&local, Method::GET, "/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK);
    let refused = newest(&app, "auth.refused").await;
    assert_eq!(
        (refused["actor"].as_str(), refused["client"].as_str()),
        (Some(&*format!("admin:{fenced_id}/Far")), Some("127.0.0.1"))
    );

    let body = json!({ "name": "Remote approver", "allowed_cidrs": ["10.9.0.0/16"] });
    let (status, approver) = app.admin(Method::POST, "/v1/approvers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(approver["allowed_cidrs"], json!(["10.9.0.0/16"]));
    let token = approver["token"].as_str().unwrap();
    let (status, e) = app.call(token, Method::GET, "/v1/approvals", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("ip_not_allowed")));
    // The console refuses it too, and opens no session.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.post(app.url("/console/login")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    assert!(login.headers().get("set-cookie").is_none());

    let body = json!({ "name": "x", "role": "admin", "allowed_cidrs": ["10.0.0.0/8", "not-a-net"] });
    let (status, e) = app.admin(Method::POST, "/v1/admins", Some(body)).await;
    assert_eq!((status, e["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("/allowed_cidrs/1")));

    // The configured (bootstrap) token takes PURSER_ADMIN_ALLOWED_CIDRS.
    let net: ipnet::IpNet = "10.9.0.0/16".parse().unwrap();
    let walled = spawn_app_tweaked(TEST_POLICY, default_start(), |c| c.admin_allowed_cidrs = vec![net]).await;
    let (status, e) = walled.admin(Method::GET, "/v1/agents", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("ip_not_allowed")));
}

/// Every audited action of a request names the address it came from; the
/// gateway's own work names none. The chain, with and without addresses,
/// still verifies.
#[tokio::test]
async fn audited_actions_record_the_client_address() {
    let app = spawn_app().await;
    let agent = app.create_agent("test").await;
    let (status, p) = app.pay(&agent.key, "addr-1", payment("5.00", "shop.example")).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let approved = newest(&app, "payment.approved").await;
    assert_eq!(approved["client"], "127.0.0.1");
    assert!(approved["actor"].as_str().unwrap().starts_with(&format!("agent:{}/key:", agent.id)));
    let succeeded = newest(&app, "payment.succeeded").await;
    assert_eq!(succeeded["client"], Value::Null, "the provider's outcome is the gateway's own work");
    let (_, page) = app.admin(Method::GET, "/v1/audit?limit=500", None).await;
    let records = page["data"].as_array().unwrap();
    let by_request = records
        .iter()
        .filter(|r| r["actor"] == "admin" || r["actor"].as_str().unwrap().starts_with("agent:"));
    assert!(by_request.clone().count() >= 3);
    assert!(by_request.into_iter().all(|r| r["client"] == "127.0.0.1"), "{records:?}");
}
