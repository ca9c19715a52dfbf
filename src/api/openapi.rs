//! The OpenAPI description of the whole HTTP API, generated from the code:
//! every route is registered through the `routes!` that also documents it
//! (so the description cannot name a route the gateway lacks, or miss one
//! it serves), request and response bodies are the handlers' own types
//! (`ToSchema`), and the webhook section is built from the event catalog.
//! The document is generated once at start, served at `/openapi.json`, and
//! committed as `openapi.json`; a test fails when the committed copy is
//! stale (`cargo run -- openapi > openapi.json` refreshes it).

use std::sync::OnceLock;

use serde_json::{json, Value};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorCode;

/// The body of every error response.
#[derive(ToSchema)]
#[schema(
    example = json!({ "error": { "code": "invalid_amount",
        "message": "amount must be a decimal string such as \"42.50\", not a JSON number",
        "request_id": "req_01m8cw0yrp8k932sh9yekprxzg" } })
)]
#[allow(dead_code)] // a schema: the body is built in `api::error`
pub(super) struct ErrorBody {
    error: ErrorDetail,
}

/// A stable machine-readable `code` and a human-readable `message` (whose
/// text may change: match on `code`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    code: ErrorCode,
    /// Human-readable explanation. Not stable: match on `code`.
    message: String,
    /// On a `400`, what is wrong: a JSON pointer (RFC 6901) into the
    /// request body (`/amount`, `/rate_limit/reads_per_minute`, `/scopes/0`;
    /// for a missing or unknown field, where it is or would be), a query
    /// parameter's name (`status`), or a header's (`Idempotency-Key`).
    /// Absent when the request as a whole is at fault (not JSON, not an
    /// object, unreadable).
    #[schema(nullable = false)]
    param: Option<String>,
    /// The id of the request (also in the `x-request-id` response header and
    /// in every server log line written while serving it): quote it when
    /// reporting a problem.
    #[schema(pattern = "^req_[0-9a-z]{26}$")]
    request_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "purser",
        description = include_str!("openapi.md"),
    ),
    tags(
        (name = "payments", description = "Payments by agents: create (idempotent), evaluate (dry run), read, list."),
        (name = "approvals", description = "Approvers (and, read-only, admins): payments waiting for human approval; approve or deny them."),
        (name = "agents", description = "Admin: agents, their policy, trust level and freeze."),
        (name = "keys", description = "Admin: agent API keys and Ed25519 signing keys."),
        (name = "cards", description = "Admin: standing cards registered to agents. The card issuer's real-time authorizations on a standing card are decided by its agent's policy, like the agent's own payments (see the `providers` tag)."),
        (name = "approvers", description = "Admin: the people who approve payments, and their tokens."),
        (name = "admins", description = "Admin: the people who administer purser, each with a token and a role (`admin` or `auditor`)."),
        (name = "audit", description = "Admin: the hash-chained audit log."),
        (name = "webhooks", description = "Admin: outbound webhook endpoints, their signing secrets, delivery attempts and replays. The deliveries themselves (bodies, headers, retries) are described in the top-level `webhooks` section, one entry per event type."),
        (name = "providers", description = "Callbacks from payment providers, authenticated by the provider's signature instead of a bearer token: Lithic's Auth Stream Access, which asks purser in real time whether to approve each authorization on a card. Exists only when the providers file (`PURSER_PROVIDERS_FILE`) configures it."),
        (name = "console", description = "The approvers' web console: server-rendered HTML pages and HTML form posts (no JSON, no JavaScript), signed in with an approver token and kept by a session cookie."),
        (name = "operations", description = "Probes, metrics, the kill switch and this description."),
    ),
    // The schemas of webhook `data` that no route returns.
    components(schemas(
        ErrorBody,
        ErrorCode,
        crate::service::payments::SpendThresholdWarning,
        crate::service::alerts::ViolationSpike,
        crate::service::audit::AuditCheckpoint,
        crate::service::alerts::FailureSpike,
        crate::service::alerts::VolumeSpike,
        crate::webhooks::EventSelector,
    )),
    modifiers(&SecuritySchemes),
)]
pub(super) struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let bearer = |format: Option<&str>, description: &str| {
            let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description));
            if let Some(format) = format {
                http = http.bearer_format(format);
            }
            SecurityScheme::Http(http.build())
        };
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "agentKey",
            bearer(
                Some("psr_agent_<43 base64url characters>"),
                "Agent API key, shown once at creation (`POST /v1/agents/{id}/keys`). Unknown, revoked or \
                 expired keys get `401 unauthorized`; a key with a CIDR allowlist used from another address \
                 gets `403 ip_not_allowed`. Scopes required by an operation are listed in its security \
                 requirement.",
            ),
        );
        components.add_security_scheme(
            "approverToken",
            bearer(
                Some("psr_appr_<43 base64url characters>"),
                "Approver token, shown once at creation (`POST /v1/approvers`); `purser serve --dev` also \
                 mints and prints one for a demo approver. Grants reading approvals and approving or denying \
                 them; nothing else (on admin endpoints `403 admin_only`, on agent endpoints `403 \
                 agent_only`). Unknown or revoked tokens get `401 unauthorized`. The same token signs in to \
                 the web console (`POST /console/login`).",
            ),
        );
        components.add_security_scheme(
            "adminToken",
            bearer(
                None,
                "Admin token: the value of `PURSER_ADMIN_TOKEN` (required outside `--dev`; the bootstrap \
                 credential, audited as `admin`), a named administrator's `psr_admin_...` token from `POST \
                 /v1/admins` (audited as `admin:<id>/<name>`), or, when none is configured, the token \
                 `purser serve --dev` creates and prints. The `admin` role grants the admin API and read \
                 access to every payment; the `auditor` role reads agents, keys, payments, approvals and \
                 the audit log and changes nothing (`403 insufficient_role`).",
            ),
        );
        components.add_security_scheme(
            "metricsToken",
            bearer(
                None,
                "Metrics token: the value of `PURSER_METRICS_TOKEN`. Reads `GET /metrics` and nothing else \
                 (elsewhere it is an unknown credential), so a Prometheus scraper need not hold the admin \
                 token.",
            ),
        );
        let mut cookie = ApiKeyValue::new("purser_console");
        cookie.description = Some(
            "Web console session, set by `POST /console/login` (a random id; purser stores only its \
             SHA-256). The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/console`, `Max-Age` 8 hours (the \
             session also ends server-side after 8 hours), and `Secure` except in `--dev` mode (where plain \
             http on localhost is allowed). Revoking the approver ends its sessions; `POST /console/logout` \
             ends one. Every state-changing form carries the session's CSRF token; an approve or deny post \
             with the wrong token, or whose `Origin` header names another origin than the request's `Host` \
             (cross-origin), is refused with `403`."
                .to_owned(),
        );
        components.add_security_scheme("consoleSession", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
    }
}

/// The document as served, generated once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&document()).expect("the document serializes");
        text.push('\n');
        text
    })
}

/// The whole description: the routes' operations with the responses every
/// route can give, the info, and the webhooks.
fn document() -> Value {
    let mut api = super::routes().into_openapi();
    for item in api.paths.paths.values_mut() {
        for operation in operations(item) {
            add_common_responses(operation);
            allow_empty_query_values(operation);
        }
    }
    let mut doc = serde_json::to_value(&api).expect("the document serializes");
    // The console reads its forms and links leniently (a form it cannot
    // use is refused as a whole): only the JSON API refuses NUL.
    for (path, item) in doc["paths"].as_object_mut().expect("paths").iter_mut() {
        if !path.starts_with("/console") {
            forbid_nul(item);
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object_mut().expect("schemas").iter_mut() {
        if !name.starts_with("Console") {
            forbid_nul(schema);
        }
    }
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["info"]["summary"] = json!("Payment policy gateway for AI agents.");
    doc["security"] = json!([{ "agentKey": [] }, { "adminToken": [] }, { "approverToken": [] }]);
    doc["webhooks"] = webhooks();
    doc
}

/// The `webhooks` section: one entry per event type of the catalog.
fn webhooks() -> Value {
    let header = |name: &str, description: &str, pattern: &str, example: &str| {
        json!({ "name": name, "in": "header", "required": true, "description": description,
                "schema": { "type": "string", "pattern": pattern }, "example": example })
    };
    let headers = [
        header(
            "webhook-id",
            "The event id: unique per event, the same on every retry and every replay of it. Deliveries \
             are at least once, so use it to deduplicate.",
            "^msg_[0-9a-z]{26}$",
            "msg_01jdx3k8q9m4v7w2c5b6n0p1rt",
        ),
        header(
            "webhook-timestamp",
            "When this attempt was signed and sent, in Unix seconds (a retry or replay has a new one; the \
             body's `timestamp` is when the event happened). Reject deliveries whose timestamp is more than \
             5 minutes from your clock: that bounds replays of a captured delivery.",
            "^[0-9]+$",
            "1795717200",
        ),
        header(
            "webhook-signature",
            "Space-separated list of signatures, each `v1,` + standard base64 of HMAC-SHA256 keyed with the \
             secret's bytes (the base64 after `whsec_`, decoded) over `{webhook-id}.{webhook-timestamp}.{body}`, \
             the body being the exact bytes received (verify before parsing). Normally one entry; two while a \
             rotated secret's grace period runs. Accept the delivery if any `v1` entry matches (compare in \
             constant time); ignore entries with other version tags. `purser webhook verify` checks one \
             delivery.",
            "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    let delivery = "**Delivery.** purser POSTs the event to every enabled endpoint subscribed to its type \
        (or `*`) that existed when the event happened, with `Content-Type: application/json`, `User-Agent: \
        purser-webhooks/<version>` and the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers. \
        Any 2xx response means delivered (the response body is ignored). Anything else is a failed attempt: \
        another status, a redirect (redirects are not followed), no answer within `PURSER_WEBHOOK_TIMEOUT` \
        (default 10 s), or a connection error, including an address refused by the SSRF guard, which checks \
        every address the host resolves to at every connection. Failed attempts are retried after the waits \
        of `PURSER_WEBHOOK_RETRY_SCHEDULE` (default `5s,5m,30m,2h,5h,10h,10h`: 8 attempts over about 27.5 \
        hours), each wait with +/-10% jitter. An endpoint whose delivery fails its whole schedule, with no \
        2xx since that delivery was queued, is disabled (`endpoint.disabled`). Delivery is at least once \
        (deduplicate on `webhook-id`), and deliveries are not ordered, not even per endpoint.";
    let entries = crate::webhooks::EVENTS.iter().map(|event| {
        let body = json!({
            "type": "object",
            "description": "The body of every webhook delivery, stored when the event happens and sent \
                byte-for-byte the same on every retry and replay.",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": { "const": event.name },
                "timestamp": {
                    "type": "string", "format": "date-time",
                    "description": "When the event happened: RFC 3339 in UTC with millisecond precision (the \
                        `webhook-timestamp` header is when this attempt was sent).",
                },
                "data": {
                    "allOf": [{ "$ref": format!("#/components/schemas/{}", event.data) }],
                    "description": event.data_summary,
                },
            },
        });
        let operation = json!({ "post": {
            "operationId": format!("webhook_{}", event.name.replace('.', "_")),
            "tags": ["webhooks"],
            "summary": event.summary,
            "description": format!("{}\n\n{delivery}", event.summary),
            "security": [],
            "parameters": headers,
            "requestBody": { "required": true, "content": { "application/json": { "schema": body } } },
            "responses": {
                "2XX": { "description": "Delivered. The response body is ignored." },
                "default": { "description": "Not delivered: the attempt is retried per the retry schedule." },
            },
        }});
        (event.name.to_owned(), operation)
    });
    Value::Object(entries.collect())
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Text anywhere in a request (body, query, path) may not hold the NUL
/// character (`extract` refuses it: PostgreSQL cannot store it): every
/// string schema without a pattern of its own says so.
fn forbid_nul(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let constrained = ["pattern", "enum", "const", "format"].iter().any(|k| map.contains_key(*k));
            if is_string && !constrained {
                map.insert("pattern".to_owned(), json!("^[^\\u0000]*$"));
            }
            map.values_mut().for_each(forbid_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

/// Every query parameter of this API may be present but empty, meaning not
/// given (`?status=&limit=&cursor=`, a URL template filled in with nothing):
/// the handlers read them with `extract::empty_as_none`.
fn allow_empty_query_values(operation: &mut Operation) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in != ParameterIn::Query {
            continue;
        }
        if let Some(schema) = parameter.schema.take() {
            let empty = ObjectBuilder::new().schema_type(Type::String).max_length(Some(0));
            parameter.schema = Some(AnyOfBuilder::new().item(schema).item(empty).into());
        }
    }
}

/// Answers every route can give, whatever it does: the rate limit (every
/// route but the probes), an unexpected failure, and an unreachable store;
/// a missing or unknown credential where one is needed; the role check of
/// admin-only routes; and the body checks of routes that take JSON. An
/// operation that describes one of these itself keeps its own.
fn add_common_responses(operation: &mut Operation) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
    };
    let is_probe = operation.operation_id.as_deref().is_some_and(|id| id == "healthz" || id == "readyz");
    let requirements: Vec<Value> = operation
        .security
        .iter()
        .flatten()
        .map(|s| serde_json::to_value(s).expect("security requirements serialize"))
        .collect();
    let needs_credential = !requirements.is_empty() && requirements.iter().all(|r| r != &json!({}));
    let admin_only = requirements == [json!({ "adminToken": [] })];
    // Provider callbacks read the raw signed bytes, whatever their type.
    let callback = operation.tags.iter().flatten().any(|t| t == "providers");
    let takes_json = !callback
        && operation.request_body.as_ref().is_some_and(|body| body.content.contains_key("application/json"));
    let mut common = vec![
        ("500", error("`internal_error`: unexpected server-side failure; nothing was changed.").build()),
        (
            "503",
            error(
                "`store_unavailable`: the database is unreachable; `request_timeout`: the request ran \
                 longer than `PURSER_REQUEST_TIMEOUT`. Nothing was changed, except that a write may \
                 still complete after a timeout (retry with the same `Idempotency-Key`).",
            )
            .build(),
        ),
    ];
    if !is_probe {
        let retry_after = HeaderBuilder::new()
            .schema(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::Integer)),
            )
            .description(Some("Seconds to wait before trying again."))
            .build();
        common.push((
            "429",
            error(
                "`rate_limited`: over the credential's (or, without one, the client address's) read or \
                 write budget, or the address failed authentication too often.",
            )
            .header("Retry-After", retry_after)
            .build(),
        ));
    }
    if needs_credential {
        common.push((
            "401",
            error(
                "`unauthorized`: missing or unknown bearer token, revoked or expired API key, or unknown \
                 or revoked approver token.",
            )
            .build(),
        ));
    }
    if admin_only {
        common.push((
            "403",
            error(
                "`admin_only`: an agent API key or an approver token was presented; \
                 `insufficient_role`: an auditor's token on an endpoint that changes something (auditors \
                 read agents, keys, payments, approvals and the audit log); `ip_not_allowed`: a credential \
                 used from outside its CIDR allowlist.",
            )
            .build(),
        ));
    }
    if takes_json {
        common.push((
            "413",
            error("`payload_too_large`: the body is larger than the configured limit (64 KiB by default).")
                .build(),
        ));
        common.push((
            "415",
            error("`unsupported_media_type`: `Content-Type` is not `application/json`.").build(),
        ));
    }
    for (status, response) in common {
        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| response.into());
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A property's constraint in the generated document, e.g.
    /// `("PaymentRequest", "merchant_id", "maxLength")`, for tests that hold
    /// the documented bounds to the constants the code checks.
    pub(in crate::api) fn constraint(schema: &str, property: &str, key: &str) -> u64 {
        let doc = document();
        let value = &doc["components"]["schemas"][schema]["properties"][property][key];
        value.as_u64().unwrap_or_else(|| panic!("{schema}.{property} has no {key}: {value}"))
    }

    #[test]
    fn the_committed_description_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == json(),
            "openapi.json is stale: regenerate it with `cargo run -- openapi > openapi.json` and commit it"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let text = json();
        let doc: Value = serde_json::from_str(text).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "no schema {name}");
        }
    }

    #[test]
    fn every_event_type_is_a_webhook() {
        let doc = document();
        let webhooks = doc["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), crate::webhooks::EVENTS.len());
        for event in crate::webhooks::EVENTS {
            let data = &webhooks[event.name]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["properties"]["data"]["allOf"][0]["$ref"];
            let name = data.as_str().unwrap().trim_start_matches("#/components/schemas/");
            assert!(doc["components"]["schemas"].get(name).is_some(), "{}: no schema {name}", event.name);
        }
    }

    #[test]
    fn every_operation_answers_the_common_errors() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for status in ["500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path} lacks {status}");
                }
                let id = op["operationId"].as_str().unwrap();
                assert_eq!(responses.contains_key("429"), !["healthz", "readyz"].contains(&id), "{id}");
            }
        }
    }
}
