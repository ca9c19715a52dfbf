//! The HTTP plumbing every real provider adapter shares: one client with
//! per-request timeouts, retries only where they cannot pay twice, and a
//! circuit breaker per provider so a dead provider fails fast instead of
//! holding every forward for a full timeout.
//!
//! Retries follow the providers' own SDKs (Stainless-generated, as Lithic's
//! and Circle's are): 408, 409, 429 and 5xx answers and lost answers are
//! tried again (a provider's `x-should-retry: true` or `false` overrides),
//! after `Retry-After` (or `retry-after-ms`) when the provider sends one of
//! up to a minute, else after 0.5 s doubling per retry up to 8 s, less up to
//! a quarter of random jitter so that retries of many payments spread out.

use std::time::Duration;

use bytes::Bytes;
use failsafe::backoff::Constant;
use failsafe::failure_policy::ConsecutiveFailures;
use failsafe::StateMachine;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Deserialize;

use super::ForwardOutcome;

/// Transport settings of one provider (`[<provider>.http]` in the
/// providers file); every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Whole-request timeout: connect, send and the full response.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per call, where retrying is allowed at all (see [`Retry`]).
    pub attempts: u32,
    /// Consecutive failures (no answer, or a 5xx) that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before letting one through.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(10),
            attempts: 3,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Whether a call may be sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The provider deduplicates this request (an idempotency key, or an
    /// identical body it recognises), so every retryable answer and lost
    /// answer is tried again.
    Idempotent,
    /// Sent once per call, or again only when the connection was refused
    /// (it never left); what any answer means, and whether to try again
    /// after finding out what happened, is the caller's to settle.
    AtMostOnce,
}

/// A provider's answer: any status, with its body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// How long the provider asked to be left alone (`Retry-After`).
    pub retry_after: Option<Duration>,
}

/// Longest `Retry-After` honoured; a longer one gets the normal backoff
/// (and the attempt budget ends the wait).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Answers worth sending again: the provider timed the request out (408),
/// hit a conflicting request in flight (409), throttled it (429), or
/// failed (5xx).
pub fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The provider's own word on retrying this answer (`x-should-retry`), if
/// it gave one.
fn should_retry(headers: &reqwest::header::HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The wait before retry number `retry` (1 for the first): the provider's
/// `Retry-After` if it gave a usable one, else exponential backoff with up
/// to 25% jitter.
pub fn backoff(retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after.filter(|w| !w.is_zero() && *w <= MAX_RETRY_AFTER) {
        return wait;
    }
    let exp = INITIAL_BACKOFF.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(MAX_BACKOFF);
    exp.mul_f64(1.0 - 0.25 * rand::random::<f64>())
}

/// `Retry-After` as seconds or an HTTP date, or `retry-after-ms`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok().or(Some(Duration::ZERO))
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No attempt reached the provider (circuit open, connection refused):
    /// nothing can have happened there.
    NotSent(String),
    /// An attempt may have reached the provider, and no answer came back.
    Uncertain(String),
}

impl CallError {
    /// What a forward that got no answer means for the payment: failed
    /// (and released) only if the provider never saw it.
    pub fn forward_outcome(self) -> ForwardOutcome {
        match self {
            CallError::NotSent(why) => {
                ForwardOutcome::Failed { code: "provider_unavailable".into(), message: why }
            }
            CallError::Uncertain(_) => ForwardOutcome::Processing { transaction_id: None },
        }
    }
}

impl Reply {
    /// What a non-2xx answer to a forward (after its retries) means: a 4xx
    /// is the provider refusing the request, nothing moved (429: it is
    /// throttling purser); a 408, 409 or 5xx may come after the provider
    /// acted, so the payment waits, `processing`, for the provider's word.
    pub fn refused(&self, provider: &str) -> ForwardOutcome {
        let code = match self.status.as_u16() {
            408 | 409 => return ForwardOutcome::Processing { transaction_id: None },
            429 => "provider_rate_limited",
            _ if self.status.is_client_error() => "provider_rejected",
            _ => return ForwardOutcome::Processing { transaction_id: None },
        };
        ForwardOutcome::Failed {
            code: code.into(),
            message: format!("{provider} answered {}: {}", self.status.as_u16(), snippet(&self.body)),
        }
    }

    /// Parses a JSON body; an unparseable one is a clean failure: the
    /// provider did not say that anything happened.
    pub fn json<T: serde::de::DeserializeOwned>(&self, provider: &str) -> Result<T, ForwardOutcome> {
        serde_json::from_slice(&self.body).map_err(|e| ForwardOutcome::Failed {
            code: "provider_bad_response".into(),
            message: format!(
                "{provider} answered {} with a body purser cannot read: {e}",
                self.status.as_u16()
            ),
        })
    }
}

/// The start of a provider's error body, printable and short: it lands in
/// the payment's failure message, which agents read.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

type Breaker = StateMachine<ConsecutiveFailures<Constant>, ()>;

/// One provider's HTTP endpoint: base URL, client and circuit breaker.
pub struct ProviderClient {
    name: &'static str,
    base: Url,
    http: reqwest::Client,
    breaker: Breaker,
    settings: HttpSettings,
}

impl ProviderClient {
    pub fn new(name: &'static str, base_url: &str, settings: HttpSettings) -> anyhow::Result<Self> {
        let mut base =
            Url::parse(base_url).map_err(|e| anyhow::anyhow!("{name}: base_url {base_url:?}: {e}"))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("purser/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let policy = failsafe::failure_policy::consecutive_failures(
            settings.breaker_failures.max(1),
            failsafe::backoff::constant(settings.breaker_cooldown),
        );
        let breaker = failsafe::Config::new().failure_policy(policy).build();
        Ok(ProviderClient { name, base, http, breaker, settings })
    }

    /// `path` (relative, no leading slash) under the base URL.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path.trim_start_matches('/')).unwrap_or_else(|_| self.base.clone())
    }

    /// Attempts per call (at least one).
    pub fn attempts(&self) -> u32 {
        self.settings.attempts.max(1)
    }

    /// Sends the request `build` makes, once per attempt (so per-attempt
    /// values such as Circle's fresh ciphertext are made anew), retrying as
    /// `retry` allows (see the module's notes for when and how long).
    pub async fn send<F>(&self, retry: Retry, build: F) -> Result<Reply, CallError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let mut maybe_sent = false;
        let mut last_error = String::new();
        let mut wait = None;
        for attempt in 1..=self.attempts() {
            if let Some(wait) = wait.take() {
                tokio::time::sleep(wait).await;
            }
            if !self.breaker.is_call_permitted() {
                last_error = format!("{}: circuit open after repeated failures", self.name);
                break;
            }
            let more = attempt < self.attempts();
            match build(&self.http).send().await {
                Ok(response) => {
                    let status = response.status();
                    let after = retry_after(response.headers());
                    let told = should_retry(response.headers());
                    match response.bytes().await {
                        Ok(body) => {
                            // A provider that throttles or refuses is up;
                            // only 5xx count towards opening the circuit.
                            if status.is_server_error() {
                                self.breaker.on_error();
                            } else {
                                self.breaker.on_success();
                            }
                            let again = match retry {
                                Retry::Idempotent => told.unwrap_or_else(|| retryable(status)),
                                Retry::AtMostOnce => false,
                            };
                            if again && more {
                                tracing::info!(
                                    provider = self.name,
                                    status = status.as_u16(),
                                    attempt,
                                    "retrying"
                                );
                                wait = Some(backoff(attempt, after));
                                maybe_sent |= status != StatusCode::TOO_MANY_REQUESTS;
                                continue;
                            }
                            return Ok(Reply { status, body, retry_after: after });
                        }
                        Err(e) => {
                            self.breaker.on_error();
                            maybe_sent = true;
                            last_error = format!("{}: reading the answer: {e}", self.name);
                        }
                    }
                }
                Err(e) => {
                    self.breaker.on_error();
                    // A refused connection never carried the request; a
                    // timeout or reset may have come after the provider
                    // acted on it.
                    if !e.is_connect() {
                        maybe_sent = true;
                    }
                    last_error = format!("{}: {}", self.name, describe(&e));
                }
            }
            if maybe_sent && retry == Retry::AtMostOnce {
                break;
            }
            wait = Some(backoff(attempt, None));
        }
        tracing::warn!(provider = self.name, error = %last_error, maybe_sent, "provider call got no answer");
        Err(if maybe_sent { CallError::Uncertain(last_error) } else { CallError::NotSent(last_error) })
    }
}

/// reqwest's error without the URL (which may carry ids operators consider
/// private) and with its cause, which says what actually went wrong.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind} ({cause})"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_cut_short_and_printable() {
        let long = "x".repeat(500);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), 201);
        assert_eq!(snippet(b"bad\n\x1b[31mthing"), "bad[31mthing");
    }

    #[test]
    fn only_unsent_calls_fail_a_forward() {
        assert!(matches!(CallError::NotSent("x".into()).forward_outcome(), ForwardOutcome::Failed { .. }));
        assert_eq!(
            CallError::Uncertain("x".into()).forward_outcome(),
            ForwardOutcome::Processing { transaction_id: None }
        );
        let reply = |code| Reply {
            status: StatusCode::from_u16(code).unwrap(),
            body: Bytes::new(),
            retry_after: None,
        };
        let failed = |code: u16| match reply(code).refused("p") {
            ForwardOutcome::Failed { code, .. } => Some(code),
            _ => None,
        };
        assert_eq!(failed(422).as_deref(), Some("provider_rejected"));
        assert_eq!(failed(401).as_deref(), Some("provider_rejected"));
        assert_eq!(failed(429).as_deref(), Some("provider_rate_limited"));
        for maybe_acted in [408, 409, 500, 503] {
            assert_eq!(reply(maybe_acted).refused("p"), ForwardOutcome::Processing { transaction_id: None });
        }
    }

    #[test]
    fn retryable_answers_are_the_sdks_ones() {
        let retried: Vec<u16> = (100..600).filter(|c| retryable(StatusCode::from_u16(*c).unwrap())).collect();
        let mut expected = vec![408, 409, 429];
        expected.extend(500..600);
        assert_eq!(retried, expected);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap_or_honours_retry_after() {
        for retry in 1..=8 {
            let full = Duration::from_millis(500 * 2u64.pow(retry - 1)).min(MAX_BACKOFF);
            for _ in 0..50 {
                let wait = backoff(retry, None);
                assert!(wait <= full && wait >= full.mul_f64(0.75), "retry {retry}: {wait:?}");
            }
        }
        assert_eq!(backoff(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert!(backoff(1, Some(Duration::ZERO)) >= INITIAL_BACKOFF.mul_f64(0.75), "as the SDKs: 0 < wait");
        assert!(backoff(1, Some(Duration::from_secs(3600))) <= INITIAL_BACKOFF, "an hour is not honoured");
        assert!(backoff(u32::MAX, None) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let headers = |pairs: &[(&'static str, String)]| {
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert_eq!(retry_after(&headers(&[("retry-after", "2".into())])), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5".into())])),
            Some(Duration::from_millis(1500))
        );
        let both = headers(&[("retry-after", "9".into()), ("retry-after-ms", "250".into())]);
        assert_eq!(retry_after(&both), Some(Duration::from_millis(250)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = retry_after(&headers(&[("retry-after", soon)])).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
        let past = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc2822();
        assert_eq!(retry_after(&headers(&[("retry-after", past)])), Some(Duration::ZERO));
        for bad in ["soon", "-1", ""] {
            assert_eq!(retry_after(&headers(&[("retry-after", bad.into())])), None, "{bad:?}");
        }
        assert_eq!(retry_after(&headers(&[])), None);
        assert_eq!(should_retry(&headers(&[("x-should-retry", "false".into())])), Some(false));
        assert_eq!(should_retry(&headers(&[("x-should-retry", "true".into())])), Some(true));
        assert_eq!(should_retry(&headers(&[("x-should-retry", "maybe".into())])), None);
    }
}
