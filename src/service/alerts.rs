//! Anomaly signals the hardening guides ask for, each raised once per
//! subject and clock minute as a webhook, an audit record and a metric:
//! - `policy.violation_spike`: one agent's payments denied unusually often
//!   (a looping or prompt-injected agent probing its limits);
//! - `auth.failure_spike`: failed authentications from one client address,
//!   or across the whole gateway (credential stuffing from many addresses,
//!   which the per-address brake alone does not see);
//! - `agent.volume_spike`: one agent sending unusually many requests.
//!
//! Counts are per process: with N replicas each counts its own share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Services;
use crate::audit::Actor;

/// Events per subject in the current clock minute.
#[derive(Debug, Default)]
pub struct SpikeWatch {
    /// (the minute counted, subject -> events in it). One minute for the
    /// whole map: it is emptied when the minute turns, so a count costs the
    /// same however many subjects there are (this runs on every agent
    /// request, and per address under a wide failed-auth attack).
    counts: Mutex<(i64, HashMap<String, u32>)>,
}

impl SpikeWatch {
    /// Counts one event of `subject`; `true` exactly when it is the
    /// `threshold`-th in this minute (so a spike is reported once).
    pub fn hit(&self, subject: &str, now: DateTime<Utc>, threshold: u32) -> bool {
        if threshold == 0 {
            return false;
        }
        let minute = now.timestamp().div_euclid(60);
        let mut guard = self.counts.lock().expect("spike counts lock");
        let (counted, counts) = &mut *guard;
        if *counted != minute {
            // Last minute's counts are of no use any more.
            *counted = minute;
            counts.clear();
        }
        let n = match counts.get_mut(subject) {
            Some(n) => n,
            None => counts.entry(subject.to_owned()).or_insert(0),
        };
        *n += 1;
        *n == threshold
    }
}

/// The per-minute counters of every signal.
#[derive(Debug, Default)]
struct Watches {
    denials: SpikeWatch,
    failed_auth: SpikeWatch,
    volume: SpikeWatch,
}

/// Events per clock minute that raise each signal; `0` disables it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Thresholds {
    pub denials: u32,
    pub failed_auth: u32,
    pub failed_auth_total: u32,
    pub agent_requests: u32,
}

/// The signals' thresholds and their counts in the current minute.
#[derive(Debug, Default)]
pub struct Alerts {
    thresholds: Thresholds,
    watches: Watches,
}

impl Alerts {
    pub fn new(thresholds: Thresholds) -> Alerts {
        Alerts { thresholds, watches: Watches::default() }
    }
}

/// The window every signal counts in.
const PER: &str = "1m";

/// The `data` of `policy.violation_spike`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViolationSpike {
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    agent_id: String,
    /// Denials within the clock minute that raised it (the threshold).
    denials: u32,
    /// The window counted: `1m`, a clock minute.
    #[schema(example = "1m")]
    per: &'static str,
}

/// The `data` of `auth.failure_spike`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureSpike {
    /// `address` (failures from one client address) or `gateway` (across all).
    #[schema(pattern = "^(address|gateway)$")]
    scope: &'static str,
    /// The client address, for `scope: address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    address: Option<String>,
    /// Failures within the clock minute that raised it (the threshold).
    failures: u32,
    /// The window counted: `1m`, a clock minute.
    #[schema(example = "1m")]
    per: &'static str,
}

/// The `data` of `agent.volume_spike`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VolumeSpike {
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    agent_id: String,
    /// Authenticated requests within the clock minute that raised it (the
    /// threshold).
    requests: u32,
    /// The window counted: `1m`, a clock minute.
    #[schema(example = "1m")]
    per: &'static str,
}

/// Counts a denial of `agent_id`'s payment.
pub async fn on_denial(svc: &Services, agent_id: &str) {
    let threshold = svc.alerts.thresholds.denials;
    if svc.alerts.watches.denials.hit(agent_id, svc.clock.now(), threshold) {
        let data = ViolationSpike { agent_id: agent_id.to_owned(), denials: threshold, per: PER };
        raise(svc, "policy.violation_spike", Some(agent_id), data).await;
    }
}

/// Audits a failed authentication from `ip` at `path` and counts it (per
/// address and gateway-wide). Recording is best effort: the request already
/// failed, so there is no action to hold back.
pub async fn on_failed_auth(svc: &Services, ip: IpAddr, path: &str) {
    let data = serde_json::json!({ "path": path });
    let written = svc
        .audited(&Actor::new(format!("ip:{ip}"), Some(ip)), |_, act| {
            Box::pin(async move { Ok(((), act.event("auth.failed").data(data))) })
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not audit a failed authentication");
    }
    let Thresholds { failed_auth: per_address, failed_auth_total: total, .. } = svc.alerts.thresholds;
    let now = svc.clock.now();
    if svc.alerts.watches.failed_auth.hit(&format!("ip:{ip}"), now, per_address) {
        let data =
            FailureSpike { scope: "address", address: Some(ip.to_string()), failures: per_address, per: PER };
        raise(svc, "auth.failure_spike", None, data).await;
    }
    if svc.alerts.watches.failed_auth.hit("gateway", now, total) {
        let data = FailureSpike { scope: "gateway", address: None, failures: total, per: PER };
        raise(svc, "auth.failure_spike", None, data).await;
    }
}

/// Audits a refused use of a credential purser recognised (`credential`: a
/// key id, `approver:<id>` or `admin`), with the client address and the
/// refusal's code. Best effort, like [`on_failed_auth`].
pub async fn on_refused_credential(
    svc: &Services,
    credential: &str,
    ip: Option<IpAddr>,
    path: &str,
    reason: &str,
) {
    let address = ip.map(|ip| ip.to_string());
    let data =
        serde_json::json!({ "credential": credential, "address": address, "path": path, "reason": reason });
    let written = svc
        .audited(&Actor::new(credential, ip), |_, act| {
            Box::pin(async move { Ok(((), act.event("auth.refused").data(data))) })
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not audit a refused credential");
    }
}

/// Counts one authenticated request of `agent_id`. Cheap when no spike
/// results, so it runs in the request; a spike is recorded in the
/// background so the request never waits on the write.
pub fn on_agent_request(svc: &std::sync::Arc<Services>, agent_id: &str) {
    let threshold = svc.alerts.thresholds.agent_requests;
    if svc.alerts.watches.volume.hit(agent_id, svc.clock.now(), threshold) {
        let (svc, agent_id) = (svc.clone(), agent_id.to_owned());
        tokio::spawn(async move {
            let data = VolumeSpike { agent_id: agent_id.clone(), requests: threshold, per: PER };
            raise(&svc, "agent.volume_spike", Some(&agent_id), data).await;
        });
    }
}

/// Emits `kind` as a webhook, an audit record and a metric. Best effort:
/// what caused it already happened, and a failure to record the signal is
/// logged.
async fn raise<T: Serialize + Send + 'static>(
    svc: &Services,
    kind: &'static str,
    agent_id: Option<&str>,
    data: T,
) {
    metrics::counter!("purser_anomaly_signals_total", "type" => kind).increment(1);
    let audited = serde_json::to_value(&data).expect("signals serialize");
    let agent_id = agent_id.map(str::to_owned);
    let written = svc
        .audited(&Actor::system("system"), move |tx, act| {
            Box::pin(async move {
                tx.emit(kind, &data, act.now);
                let event = act.event(kind).data(audited);
                Ok((
                    (),
                    match agent_id {
                        Some(agent_id) => event.agent(agent_id),
                        None => event,
                    },
                ))
            })
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, kind, "could not record an anomaly signal");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_is_reported_once_per_subject_and_minute() {
        let watch = SpikeWatch::default();
        let t: DateTime<Utc> = "2026-11-26T17:00:10Z".parse().unwrap();
        let hits: Vec<bool> = (0..5).map(|_| watch.hit("a", t, 3)).collect();
        assert_eq!(hits, [false, false, true, false, false]);
        assert!(!watch.hit("b", t, 3), "counted per subject");
        let next_minute = t + chrono::Duration::seconds(60);
        assert_eq!((0..3).map(|_| watch.hit("a", next_minute, 3)).collect::<Vec<_>>(), [false, false, true]);
        assert!(!watch.hit("a", t, 0), "0 disables");
    }
}
