//! The HTTP API: routes, extractors and the error mapping. Handlers parse,
//! call a service function and render; they hold no business logic.

mod admins;
mod agents;
mod approvals;
mod audit;
mod auth;
mod cards;
mod client_ip;
mod console;
mod error;
mod extract;
mod health;
mod kill_switch;
mod limits;
mod metrics;
mod openapi;
mod page;
mod payments;
mod request_id;
mod shared_budgets;
mod signature;
mod state;
mod strict_json;
mod validate;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::PathParams;
pub use limits::RateLimits;
pub use metrics::handle as metrics_handle;
pub use openapi::json as openapi_json;
pub use state::AppState;

use crate::error::Error;

/// Headers every response carries. The CSP fits both the JSON API and the
/// console (its only non-self resource is its inline stylesheet). The
/// referrer policy is `same-origin`, not `no-referrer`: with the latter
/// browsers send `Origin: null` on the console's own form posts, which its
/// cross-origin check must then refuse.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("cache-control", "no-store"),
];

/// Cross-origin access only for the configured origins (none by default,
/// so browsers keep other sites' pages away from the API).
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            // Ed25519-signed requests (docs/api.md, "Signed requests").
            HeaderName::from_static(signature::AGENT),
            HeaderName::from_static(signature::TIMESTAMP),
            HeaderName::from_static(signature::SIGNATURE),
            HeaderName::from_static(signature::NONCE),
        ])
        .expose_headers([HeaderName::from_static(request_id::HEADER), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Answers `503 request_timeout` when a request runs past
/// `PURSER_REQUEST_TIMEOUT`. Reading the body counts: a client trickling
/// its request cannot hold a connection open.
async fn timeout(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout { secs: limit.as_secs() }.into_response(),
    }
}

/// Every route, each registered together with its OpenAPI operation.
fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(payments::router())
        .merge(agents::router())
        .merge(cards::router())
        .merge(approvals::router())
        .merge(admins::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(kill_switch::router())
        .merge(console::router())
        .routes(routes!(openapi))
}

/// This API's OpenAPI description
///
/// The document itself (OpenAPI 3.1), generated from the gateway's own
/// routes and types; the same as `openapi.json` in the repository.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json",
               body = Object)),
)]
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi::json())
}

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    let mut headers: Vec<(HeaderName, HeaderValue)> = SECURITY_HEADERS
        .iter()
        .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
        .collect();
    if !state.config.dev {
        // Outside dev, purser is only ever reached over TLS (directly or
        // through a proxy): tell browsers never to try plain http.
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    let (routes, _) = routes().split_for_parts();
    let router = routes
        .route_layer(axum::middleware::from_fn(metrics::count_response))
        .fallback(|State(state): State<Arc<AppState>>, req: Request| async move {
            limits::charge_unrouted(&state, req)
                .await
                .err()
                .unwrap_or(Error::NotFound("route"))
                .into_response()
        })
        .method_not_allowed_fallback(|State(state): State<Arc<AppState>>, req: Request| async move {
            limits::charge_unrouted(&state, req)
                .await
                .err()
                .unwrap_or(Error::MethodNotAllowed)
                .into_response()
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), signature::middleware))
        .layer(axum::middleware::from_fn_with_state(state.clone(), timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::middleware))
        // One access-log line per request at `info`, inside the request's
        // span (request id, method, path): status and latency, never a
        // header or a body.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(cors(&state.config.cors_origins))
        .with_state(state);
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, value))
    })
}
