//! Rate limits (per credential, and per client IP for requests without one)
//! and the failed-authentication brake, as one middleware.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::client_ip::client_ip;
use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::auth;
use crate::config::Config;
use crate::error::Error;

pub struct RateLimits {
    reads: Option<DefaultKeyedRateLimiter<String>>,
    writes: Option<DefaultKeyedRateLimiter<String>>,
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses whose failed authentications used up their budget, and
    /// until when they are refused outright.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        let keyed = |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        RateLimits {
            reads: keyed(config.rate_limit_reads),
            writes: keyed(config.rate_limit_writes),
            failed_auth: NonZeroU32::new(config.rate_limit_failed_auth)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `key` is over its budget for this kind of request.
    fn check(&self, write: bool, key: &String) -> Result<(), Duration> {
        let limiter = if write { &self.writes } else { &self.reads };
        match limiter {
            Some(l) => l.check_key(key).map_err(|not_until| not_until.wait_time_from(self.clock.now())),
            None => Ok(()),
        }
    }

    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().expect("rate limit lock");
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&ip);
            return None;
        }
        Some(until - now)
    }

    /// Counts a failed authentication from `ip`; past the budget the address
    /// is refused until the budget refills.
    fn failed(&self, ip: IpAddr) {
        let Some(limiter) = &self.failed_auth else { return };
        if let Err(not_until) = limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut blocked = self.blocked.lock().expect("rate limit lock");
            // Bounded memory under a wide attack: forget expired entries.
            if blocked.len() > 100_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + wait);
        }
    }
}

fn limited(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Error::RateLimited { retry_after_secs: secs.max(1) }.into_response()
}

/// Probes are never limited: an orchestrator must always see the truth.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if exempt(&path) {
        return next.run(req).await;
    }
    let ip = client_ip(req.headers(), req.extensions(), &state.config.trusted_proxies);
    let limits = &state.limits;
    if let Some(wait) = ip.and_then(|ip| limits.blocked_for(ip)) {
        return limited(wait);
    }
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The limiter key: the credential (as a hash; secrets are not kept in
    // memory longer than the request), or the address when there is none.
    let key = match req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(credential) => format!("cred:{}", &auth::hash(credential)[..32]),
        None => format!("ip:{}", ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())),
    };
    // Card-issuer callbacks (signed, not bearer-authenticated) carry the
    // card network's volume, not one client's, so only their failed
    // signatures are limited, through the brake above.
    let issuer_callback = path.starts_with("/v1/providers/");
    if let Err(wait) = if issuer_callback { Ok(()) } else { limits.check(write, &key) } {
        metrics::counter!("purser_rate_limited_total").increment(1);
        return limited(wait);
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        metrics::counter!("purser_failed_auth_total").increment(1);
        if let Some(ip) = ip {
            limits.failed(ip);
            record_failure(&state, ip, &path);
        }
    }
    response
}

/// Records a failed authentication and counts it towards the failed-auth
/// spike signal. In the background: the request already failed, so there is
/// no action to hold back; the per-address brake above bounds how many of
/// these an attacker can cause.
fn record_failure(state: &Arc<AppState>, ip: IpAddr, path: &str) {
    let (state, path) = (state.clone(), path.to_owned());
    tokio::spawn(async move {
        let now = state.clock.now();
        let event = AuditEvent::new("auth.failed", format!("ip:{ip}")).data(json!({ "path": path }));
        let written =
            state.store.write(move |tx| Box::pin(async move { tx.append_audit(event, now).await })).await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not audit a failed authentication");
        }
        crate::service::alerts::on_failed_auth(&state, ip).await;
    });
}
