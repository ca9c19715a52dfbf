//! `GET /metrics`: Prometheus text format, for the metrics-only token or
//! the admin (decision counts carry agents' behaviour, so it is not
//! public; a scraper should not hold the admin token). What is counted
//! where:
//! - `purser_decisions_total{outcome,reason}` and
//!   `purser_decision_seconds` (histogram): the payment service;
//! - `purser_provider_outcomes_total{provider,outcome}`: the forwarder and
//!   reconciler;
//! - `purser_failed_auth_total`, `purser_rate_limited_total`,
//!   `purser_refused_credentials_total{reason}`: the limits middleware;
//! - `purser_http_requests_total{method,route,status}`: every routed
//!   response (`count_response`);
//! - `purser_retention_deleted_total{kind}`: the retention sweep;
//! - `purser_webhook_backlog`, `purser_payments_processing`: read from the
//!   store at scrape time.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::MetricsReader;
use crate::api::AppState;
use crate::error::Result;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(render))
}

/// The process's recorder, installed once (one process may serve several
/// gateways, as the tests do; they then share counters).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            )
            .expect("static buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (an embedding program) keeps
        // its own; this handle then renders nothing but the gauges below.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts each routed response by method, route template and status
/// (`purser_http_requests_total`), for error-rate alarms per endpoint.
pub async fn count_response(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("purser_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// Prometheus metrics (metrics token or admin)
///
/// Decisions by outcome and reason, decision latency, provider outcomes,
/// failed authentications, rate-limited requests, anomaly signals, the
/// webhook backlog and the payments still `processing`, in the Prometheus
/// text format. Give the scraper `PURSER_METRICS_TOKEN`, which reads this
/// and nothing else.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(("metricsToken" = []), ("adminToken" = [])),
    responses((status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4", body = String))
)]
async fn render(State(state): State<Arc<AppState>>, _: MetricsReader) -> Result<impl IntoResponse> {
    let (backlog, processing) = state.svc.store.backlog().await?;
    metrics::gauge!("purser_webhook_backlog").set(backlog as f64);
    metrics::gauge!("purser_payments_processing").set(processing as f64);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render()))
}
