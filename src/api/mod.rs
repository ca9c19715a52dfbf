//! The HTTP API: routes, extractors and the error mapping. Handlers parse,
//! call a service function and render; they hold no business logic.

mod agents;
mod approvals;
mod audit;
mod auth;
mod error;
mod extract;
mod health;
mod payments;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::Error;

/// The OpenAPI description of every route (kept in the repo, served as is).
const OPENAPI: &str = include_str!("../../openapi.json");

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .merge(payments::router())
        .merge(agents::router())
        .merge(approvals::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .merge(health::router())
        .merge(crate::console::router())
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .fallback(|| async { Error::NotFound("route").into_response() })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
