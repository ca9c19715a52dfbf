//! Delivers the outbox at least once.
//!
//! Each round: new events are fanned out into one delivery per subscribed
//! endpoint; due deliveries are leased and sent concurrently, each signed
//! at send time (`webhook-id` is the event id, stable across retries). A
//! round does not wait for its sends: each attempt is recorded as it ends
//! (by a recorder that writes whatever has ended in one transaction), and
//! the next round claims more meanwhile. An endpoint takes at most
//! `PER_ENDPOINT` sends at once and none while it still has one in
//! flight, so a slow endpoint holds only its own deliveries. A crash
//! between sending and recording means the attempt is made again once the
//! lease ends: at least once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::json;
use tokio::sync::mpsc;

use super::secretbox::SecretBox;
use super::signature::{signature_header, Secret};
use super::ssrf::TargetPolicy;
use super::ssrf::{check_url, GuardedResolver};
use crate::audit::AuditEvent;
use crate::clock::{format_ts, parse_ts, Clock};
use crate::store::{AttemptResult, DueDelivery, Store, StoreError, WriteTx};

/// Most deliveries in flight at once, over all endpoints.
const IN_FLIGHT: usize = 256;
/// Most deliveries in flight at once to one endpoint.
const PER_ENDPOINT: u32 = 16;
/// Added to a delivery lease beyond the send timeout (see `round`).
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often the outbox is looked at.
    pub poll: Duration,
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Waits between attempts; when used up, the delivery has failed.
    pub retry_schedule: Vec<Duration>,
}

/// What delivering needs: the outbox, the time, the endpoints' sealed
/// secrets and where deliveries may go.
pub struct Dispatcher {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub secrets: SecretBox,
    pub targets: TargetPolicy,
    pub settings: Settings,
}

/// A running dispatcher's shared parts.
struct Running {
    deps: Dispatcher,
    http: reqwest::Client,
    /// Deliveries being sent, by endpoint id.
    in_flight: Mutex<HashMap<String, usize>>,
    /// Ended attempts, to the recorder.
    ended: mpsc::UnboundedSender<AttemptResult>,
}

impl Dispatcher {
    pub fn start(self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let timeout = self.settings.timeout;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect could point anywhere, including inside the network.
            .redirect(reqwest::redirect::Policy::none())
            // Every connection resolves through the SSRF guard, so the check
            // holds at delivery time, not only when the URL was registered.
            .dns_resolver(Arc::new(GuardedResolver::new(self.targets.clone())))
            .no_proxy()
            .user_agent(concat!("purser-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let (ended, results) = mpsc::unbounded_channel();
        let recorder = Recorder { store: self.store.clone(), schedule: self.settings.retry_schedule.clone() };
        let running = Arc::new(Running { deps: self, http, in_flight: Mutex::default(), ended });
        Ok(tokio::spawn(async move {
            tokio::join!(running.run(), recorder.run(results));
        }))
    }
}

impl Running {
    async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.deps.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A full claim means a backlog: keep going without waiting.
            loop {
                match self.round().await {
                    Ok(full) if full => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook round failed; will retry");
                        break;
                    }
                }
            }
        }
    }

    /// One round: fans out, then leases and starts what may be sent now.
    /// Answers whether it claimed all it could (a backlog).
    async fn round(self: &Arc<Self>) -> Result<bool, StoreError> {
        let store = &self.deps.store;
        // Picks up endpoints changed elsewhere (another replica) and ones
        // the recorder disabled.
        store.refresh_subscriptions().await?;
        if store.events_waiting().await? {
            let now = self.deps.clock.now();
            store.write(move |tx| Box::pin(async move { tx.fan_out(now).await })).await?;
        }
        let (busy, room) = {
            let in_flight = self.in_flight.lock().expect("in-flight lock");
            (in_flight.keys().cloned().collect::<Vec<_>>(), IN_FLIGHT - in_flight.values().sum::<usize>())
        };
        if room == 0 {
            return Ok(false);
        }
        let now = self.deps.clock.now();
        // Held past the longest a send can take, so a live sender always
        // records its attempt before anyone else may claim the delivery.
        let lease = chrono::Duration::from_std(self.deps.settings.timeout * 2 + LEASE_MARGIN)
            .unwrap_or(chrono::Duration::minutes(5));
        let limit = room as u32;
        let due = store
            .write(move |tx| {
                Box::pin(
                    async move { tx.claim_deliveries(now, now + lease, limit, PER_ENDPOINT, &busy).await },
                )
            })
            .await?;
        let full = due.len() == room;
        for delivery in due {
            let running = self.clone();
            let sending = Sending::start(self.clone(), &delivery.endpoint_id);
            tokio::spawn(async move {
                let result = running.attempt(delivery).await;
                // Ended before it is recorded: its lease keeps it from being
                // claimed again until then.
                drop(sending);
                // The recorder runs as long as the dispatcher does.
                let _ = running.ended.send(result);
            });
        }
        Ok(full)
    }

    /// Sends one delivery and says what happened.
    async fn attempt(&self, d: DueDelivery) -> AttemptResult {
        let at = self.deps.clock.now();
        let started = Instant::now();
        let outcome = self.send(&d, at).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status_code, error) = match outcome {
            Ok(code) if (200..300).contains(&code) => (Some(code), None),
            Ok(code) => (Some(code), Some(format!("endpoint answered HTTP {code}"))),
            Err(e) => (None, Some(e)),
        };
        let delivered = error.is_none();
        if !delivered {
            // Seen at the first failure, not only when the endpoint is
            // disabled a whole retry schedule later.
            metrics::counter!("purser_webhook_delivery_failures_total", "endpoint" => d.endpoint_id.clone())
                .increment(1);
        }
        let retry_at =
            (!delivered).then(|| next_attempt(&self.deps.settings.retry_schedule, d.attempts, at)).flatten();
        AttemptResult { delivery: d, at, status_code, latency_ms, error, retry_at }
    }

    async fn send(&self, d: &DueDelivery, at: DateTime<Utc>) -> Result<u16, String> {
        let url = check_url(&d.url, &self.deps.targets).map_err(|e| e.to_string())?;
        let open = |sealed: &str| -> Result<Secret, String> {
            let bytes = self
                .deps
                .secrets
                .open(sealed)
                .map_err(|e| format!("cannot unseal the endpoint secret: {e}"))?;
            Secret::from_bytes(bytes).map_err(|e| e.to_string())
        };
        let current = open(&d.secrets.current)?;
        // During a rotation's grace period both secrets sign, so receivers
        // that still hold the old one keep verifying.
        let previous = match &d.secrets.previous {
            Some((sealed, until)) if parse_ts(until).is_some_and(|u| u > at) => Some(open(sealed)?),
            _ => None,
        };
        let mut secrets = vec![&current];
        secrets.extend(previous.as_ref());
        let timestamp = at.timestamp();
        let signature = signature_header(&secrets, &d.event_id, timestamp, d.body.as_bytes());
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(response.status().as_u16())
    }
}

/// The whole cause chain: reqwest's top-level message hides why (for
/// example that the SSRF guard refused the address).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// When to try again after `attempts_before + 1` failed attempts, or `None`
/// when the schedule is used up. Jitter of ±10% spreads retries of many
/// deliveries that failed together.
pub fn next_attempt(
    schedule: &[Duration],
    attempts_before: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let wait = schedule.get(attempts_before as usize)?;
    let jittered = wait.as_millis() as i64 * rand::thread_rng().gen_range(900..=1100) / 1000;
    Some(now + chrono::Duration::milliseconds(jittered))
}

/// One delivery in flight to an endpoint, counted until dropped (even by
/// a panicking send, which would otherwise leave its endpoint busy).
struct Sending {
    running: Arc<Running>,
    endpoint: String,
}

impl Sending {
    fn start(running: Arc<Running>, endpoint: &str) -> Sending {
        *running.in_flight.lock().expect("in-flight lock").entry(endpoint.to_owned()).or_default() += 1;
        Sending { running, endpoint: endpoint.to_owned() }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut in_flight = self.running.in_flight.lock().expect("in-flight lock");
        if let Some(n) = in_flight.get_mut(&self.endpoint) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.endpoint);
            }
        }
    }
}

/// Records ended attempts: whatever has ended since the last write, in
/// one transaction.
struct Recorder {
    store: Store,
    schedule: Vec<Duration>,
}

impl Recorder {
    async fn run(self, mut ended: mpsc::UnboundedReceiver<AttemptResult>) {
        while let Some(first) = ended.recv().await {
            let mut results = vec![first];
            while let Ok(more) = ended.try_recv() {
                results.push(more);
            }
            let schedule = self.schedule.clone();
            // On failure the leases run out and the attempts are made again.
            if let Err(e) = self.store.write(move |tx| Box::pin(record(tx, results, schedule))).await {
                tracing::warn!(error = %e, "recording webhook attempts failed; they will be made again");
            }
        }
    }
}

async fn record(
    tx: &mut WriteTx,
    results: Vec<AttemptResult>,
    schedule: Vec<Duration>,
) -> Result<(), StoreError> {
    for r in &results {
        tx.record_attempt(r).await?;
        let given_up = !r.delivered() && r.retry_at.is_none();
        // An endpoint that took nothing during a whole retry schedule is
        // disabled, so a dead endpoint stops costing retries; the operator
        // hears of it through the log, the audit log and `endpoint.disabled`.
        if given_up && !tx.endpoint_delivered_since(&r.delivery.endpoint_id, &r.delivery.created_at).await? {
            let total: Duration = schedule.iter().sum();
            let reason = format!(
                "every delivery attempt failed for {} (last: {})",
                humantime::format_duration(total),
                r.error.as_deref().unwrap_or("unknown")
            );
            if let Some(endpoint) =
                tx.disable_endpoint(&r.delivery.endpoint_id, &reason, &format_ts(r.at)).await?
            {
                tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, %reason, "webhook endpoint disabled");
                tx.emit("endpoint.disabled", &endpoint, r.at);
                let event = AuditEvent::new("webhook_endpoint.disabled", "system")
                    .subject(&endpoint.id)
                    .data(json!({ "reason": reason }));
                tx.append_audit(event, r.at).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_stop() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        let now: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        let first = next_attempt(&schedule, 0, now).unwrap() - now;
        assert!((4500..=5500).contains(&first.num_milliseconds()), "{first}");
        let second = next_attempt(&schedule, 1, now).unwrap() - now;
        assert!((270_000..=330_000).contains(&second.num_milliseconds()), "{second}");
        assert_eq!(next_attempt(&schedule, 2, now), None);
    }
}
