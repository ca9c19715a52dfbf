//! The HTTP plumbing every real provider adapter shares: one client with
//! per-request timeouts, retries only where they cannot pay twice, and a
//! circuit breaker per provider so a dead provider fails fast instead of
//! holding every forward for a full timeout.

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
    /// identical body it recognises), so timeouts and 5xx are retried.
    Idempotent,
    /// Sent at most once; only a request that provably never left (the
    /// connection was refused) is tried again.
    AtMostOnce,
}

/// A provider's answer: any status, with its body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
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
    /// What a non-2xx answer to a forward means: a 4xx is the provider
    /// refusing the request (nothing moved); a 5xx may have been accepted
    /// before it failed, so the payment waits for the reconciler.
    pub fn refused(&self, provider: &str) -> ForwardOutcome {
        if self.status.is_client_error() {
            ForwardOutcome::Failed {
                code: "provider_rejected".into(),
                message: format!("{provider} answered {}: {}", self.status.as_u16(), snippet(&self.body)),
            }
        } else {
            ForwardOutcome::Processing { transaction_id: None }
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

    /// Sends the request `build` makes, once per attempt (so per-attempt
    /// values such as Circle's fresh ciphertext are made anew), retrying as
    /// `retry` allows with a short backoff.
    pub async fn send<F>(&self, retry: Retry, build: F) -> Result<Reply, CallError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let mut maybe_sent = false;
        let mut last_error = String::new();
        for attempt in 1..=self.settings.attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt - 2))).await;
            }
            if !self.breaker.is_call_permitted() {
                last_error = format!("{}: circuit open after repeated failures", self.name);
                break;
            }
            match build(&self.http).send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => {
                            if status.is_server_error() {
                                self.breaker.on_error();
                                maybe_sent = true;
                                if retry == Retry::Idempotent && attempt < self.settings.attempts {
                                    continue;
                                }
                            } else {
                                self.breaker.on_success();
                            }
                            return Ok(Reply { status, body });
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
        let reply = |code| Reply { status: StatusCode::from_u16(code).unwrap(), body: Bytes::new() };
        assert!(
            matches!(reply(422).refused("p"), ForwardOutcome::Failed { ref code, .. } if code == "provider_rejected")
        );
        assert_eq!(reply(503).refused("p"), ForwardOutcome::Processing { transaction_id: None });
    }
}
