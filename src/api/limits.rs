//! Rate limits and the failed-authentication brake.
//!
//! Authenticated API requests are limited per credential, once the
//! credential is known ([`RateLimits::charge`], called where the caller is
//! resolved: `super::auth`), so an API key's own `rate_limit` applies and a
//! signed request counts against its agent's key, not its address. Requests
//! with no credential, and routes that take none (console, OpenAPI), are
//! limited per client address here, before any work is done.
//!
//! On SQLite the budgets are kept in this process (there is one). On
//! PostgreSQL, where replicas share the database, they are kept there
//! ([`SharedBudgets`]), so a budget holds across replicas.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::auth::CredentialSlot;
use super::client_ip::client_ip;
use super::shared_budgets::{SharedBudgets, Wait};
use super::signature;
use crate::api::AppState;
use crate::config::Config;
use crate::error::{Error, ErrorCode};
use crate::model::KeyRateLimit;

/// Checks between two sweeps of idle limiter entries.
const SWEEP_EVERY: u64 = 10_000;

pub struct RateLimits {
    reads: u32,
    writes: u32,
    /// One keyed limiter per distinct budget (the defaults and each per-key
    /// value in use), so keys with their own `rate_limit` need no limiter
    /// each; the key names the subject and whether it reads or writes.
    by_budget: RwLock<HashMap<NonZeroU32, Arc<DefaultKeyedRateLimiter<String>>>>,
    /// With PostgreSQL: the budgets all replicas spend together, in place
    /// of `by_budget`.
    shared: Option<SharedBudgets>,
    checks: AtomicU64,
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses whose failed authentications used up their budget, and
    /// until when they are refused outright.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Budgets kept in this process, or, with `shared`, in the database
    /// the replicas share.
    pub fn new(config: &Config, shared: Option<SharedBudgets>) -> Self {
        RateLimits {
            reads: config.rate_limit_reads,
            writes: config.rate_limit_writes,
            by_budget: RwLock::default(),
            shared,
            checks: AtomicU64::new(0),
            failed_auth: NonZeroU32::new(config.rate_limit_failed_auth)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request of `subject` (a key id, `approver:ID`, `admin`)
    /// against its budget: the key's own `rate_limit` where it sets one,
    /// else the gateway's default. `429` with `Retry-After` when spent.
    pub async fn charge(&self, method: &Method, subject: &str, own: KeyRateLimit) -> Result<(), Error> {
        let Some(shared) = &self.shared else { return self.charge_here(method, subject, own) };
        let Some((key, budget)) = self.budget(method, subject, own) else { return Ok(()) };
        match shared.take(&key, budget).await {
            Ok(()) => Ok(()),
            Err(Wait::For(wait)) => Err(refused(wait)),
            Err(Wait::Unavailable(e)) => Err(e),
        }
    }

    /// [`RateLimits::charge`] against the budgets of this process.
    pub fn charge_here(&self, method: &Method, subject: &str, own: KeyRateLimit) -> Result<(), Error> {
        let Some((key, budget)) = self.budget(method, subject, own) else { return Ok(()) };
        self.limiter(budget)
            .check_key(&key)
            .map_err(|not_until| refused(not_until.wait_time_from(self.clock.now())))
    }

    /// The budget a request of `subject` is counted against, and its
    /// requests per minute; `None` when unlimited (`0`).
    fn budget(&self, method: &Method, subject: &str, own: KeyRateLimit) -> Option<(String, NonZeroU32)> {
        let write = is_write(method);
        let per_minute = if write {
            own.writes_per_minute.unwrap_or(self.writes)
        } else {
            own.reads_per_minute.unwrap_or(self.reads)
        };
        let budget = NonZeroU32::new(per_minute)?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        Some((format!("{}:{subject}", if write { "w" } else { "r" }), budget))
    }

    fn limiter(&self, budget: NonZeroU32) -> Arc<DefaultKeyedRateLimiter<String>> {
        if let Some(l) = self.by_budget.read().expect("rate limit lock").get(&budget) {
            return l.clone();
        }
        let mut all = self.by_budget.write().expect("rate limit lock");
        all.entry(budget).or_insert_with(|| Arc::new(RateLimiter::keyed(Quota::per_minute(budget)))).clone()
    }

    /// Forgets subjects whose budget is full again (they would start from a
    /// full budget anyway): memory stays bounded by recent callers, even
    /// when many addresses call without a credential or fail to log in.
    fn sweep(&self) {
        if let Some(shared) = &self.shared {
            shared.sweep();
        }
        for limiter in self.by_budget.read().expect("rate limit lock").values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(failed) = &self.failed_auth {
            failed.retain_recent();
            failed.shrink_to_fit();
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

/// A request over its budget, counted.
fn refused(wait: Duration) -> Error {
    metrics::counter!("purser_rate_limited_total").increment(1);
    rate_limited(wait)
}

fn rate_limited(wait: Duration) -> Error {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Error::RateLimited { retry_after_secs: secs.max(1) }
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Routes whose handlers resolve a bearer or signed credential, and so
/// charge it (see [`RateLimits::charge`]).
fn resolves_credential(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/metrics"
}

/// Card-issuer callbacks: signed by the issuer, not a client's credential,
/// they carry the card network's volume, not one client's, so only their
/// failed signatures are limited, through the brake.
fn issuer_callback(path: &str) -> bool {
    path.starts_with("/v1/providers/")
}

/// Probes are never limited: an orchestrator must always see the truth.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

pub async fn middleware(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if exempt(&path) {
        return next.run(req).await;
    }
    let ip = client_ip(req.headers(), req.extensions(), &state.config.trusted_proxies);
    let limits = &state.limits;
    let charged_later = charged_by_handler(&req);
    // A braked address is refused outright, except for requests that carry
    // a credential: one misconfigured client behind a NAT must not lock out
    // every agent there. Those are answered normally when the credential is
    // valid, and `429` (never `401`) when it is not, which extends the brake.
    let braked = ip.and_then(|ip| limits.blocked_for(ip));
    if let Some(wait) = braked.filter(|_| !charged_later) {
        return rate_limited(wait).into_response();
    }
    if !charged_later && !issuer_callback(&path) {
        if let Err(e) = limits.charge(req.method(), &address(ip), KeyRateLimit::default()).await {
            return e.into_response();
        }
    }
    let credential = CredentialSlot::default();
    req.extensions_mut().insert(credential.clone());
    let response = next.run(req).await;
    if let (true, Some(id)) = (response.status().is_client_error(), credential.get()) {
        if let Some(code) = response.extensions().get::<ErrorCode>().filter(|c| refuses_a_credential(**c)) {
            let (svc, id, path) = (state.svc.clone(), id.to_owned(), path.clone());
            let reason = code.name();
            metrics::counter!("purser_refused_credentials_total", "reason" => reason.clone()).increment(1);
            tokio::spawn(async move {
                crate::service::alerts::on_refused_credential(&svc, &id, ip, &path, &reason).await
            });
        }
    }
    if response.status() == StatusCode::UNAUTHORIZED {
        metrics::counter!("purser_failed_auth_total").increment(1);
        if let Some(ip) = ip {
            limits.failed(ip);
            record_failure(&state, ip, &path);
            if let Some(wait) = limits.blocked_for(ip).filter(|_| braked.is_some()) {
                return rate_limited(wait).into_response();
            }
        }
    }
    response
}

/// Refusals of a credential purser recognised: revoked or expired, from
/// outside its networks, or without the scope or role the request needs.
fn refuses_a_credential(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unauthorized
            | ErrorCode::IpNotAllowed
            | ErrorCode::InsufficientScope
            | ErrorCode::AdminOnly
            | ErrorCode::InsufficientRole
            | ErrorCode::AgentOnly
            | ErrorCode::ApproverOnly
    )
}

/// Charges a request no handler took (no route, or not that method) to its
/// address when it carried a credential: the middleware left it to the
/// handler, and a bearer header alone must not buy unlimited requests.
pub async fn charge_unrouted(state: &AppState, req: Request) -> Result<(), Error> {
    if !charged_by_handler(&req) {
        // Charged to its address already, by the middleware.
        return Ok(());
    }
    let ip = client_ip(req.headers(), req.extensions(), &state.config.trusted_proxies);
    state.limits.charge(req.method(), &address(ip), KeyRateLimit::default()).await
}

/// Whether the handler charges the request to its credential (it carries
/// one, on a route that resolves one); otherwise its address pays.
fn charged_by_handler(req: &Request) -> bool {
    let headers = req.headers();
    let carries = headers.contains_key(header::AUTHORIZATION) || headers.contains_key(signature::SIGNATURE);
    carries && resolves_credential(req.uri().path())
}

/// The budget of requests judged by their address.
fn address(ip: Option<IpAddr>) -> String {
    format!("ip:{}", ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()))
}

/// Audits and counts a failed authentication in the background: the
/// request already failed, and the per-address brake above bounds how many
/// of these an attacker can cause.
fn record_failure(state: &Arc<AppState>, ip: IpAddr, path: &str) {
    let (svc, path) = (state.svc.clone(), path.to_owned());
    tokio::spawn(async move { crate::service::alerts::on_failed_auth(&svc, ip, &path).await });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(reads: u32, writes: u32) -> RateLimits {
        let mut config = Config::for_tests("sqlite://x".into(), "policies".into(), "t".into());
        (config.rate_limit_reads, config.rate_limit_writes) = (reads, writes);
        RateLimits::new(&config, None)
    }

    #[test]
    fn a_keys_own_budget_replaces_the_default_for_its_kind_only() {
        let l = limits(2, 0);
        let own = KeyRateLimit { reads_per_minute: None, writes_per_minute: Some(1) };
        assert!(l.charge_here(&Method::POST, "key_a", own).is_ok());
        assert!(matches!(l.charge_here(&Method::POST, "key_a", own), Err(Error::RateLimited { .. })));
        // Reads: the default of 2; the default writes (0) are unlimited.
        assert!(l.charge_here(&Method::GET, "key_a", own).is_ok());
        assert!(l.charge_here(&Method::GET, "key_a", own).is_ok());
        assert!(l.charge_here(&Method::GET, "key_a", own).is_err());
        for _ in 0..100 {
            assert!(l.charge_here(&Method::DELETE, "key_b", KeyRateLimit::default()).is_ok());
        }
    }

    #[test]
    fn the_sweep_forgets_callers_whose_budget_has_refilled() {
        let l = limits(60_000, 0);
        for i in 0..50 {
            l.charge_here(&Method::GET, &format!("ip:10.0.0.{i}"), KeyRateLimit::default()).unwrap();
        }
        let budget = NonZeroU32::new(60_000).unwrap();
        assert_eq!(l.limiter(budget).len(), 50);
        // 60,000 a minute refills one request per millisecond.
        std::thread::sleep(Duration::from_millis(5));
        l.sweep();
        assert_eq!(l.limiter(budget).len(), 0);
    }
}
