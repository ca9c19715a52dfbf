//! Anomaly signals the hardening guides ask for: an agent whose payments
//! are denied unusually often (a looping or prompt-injected agent probing
//! its limits) raises `policy.violation_spike`, once per agent and minute,
//! as a webhook, an audit record and a metric.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::AppState;
use crate::audit::AuditEvent;

/// Denials per agent in the current clock minute.
#[derive(Debug, Default)]
pub struct DenialWatch {
    /// agent id -> (minute, denials in it)
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

impl DenialWatch {
    /// Counts one denial; `true` exactly when it is the `threshold`-th of
    /// its agent in this minute (so a spike is reported once).
    pub fn denied(&self, agent_id: &str, now: DateTime<Utc>, threshold: u32) -> bool {
        if threshold == 0 {
            return false;
        }
        let minute = now.timestamp().div_euclid(60);
        let mut counts = self.counts.lock().expect("denial counts lock");
        // Last minute's counts are of no use any more.
        counts.retain(|_, (m, _)| *m == minute);
        let (_, n) = counts.entry(agent_id.to_owned()).or_insert((minute, 0));
        *n += 1;
        *n == threshold
    }
}

/// Records a denial of `agent_id`'s payment and raises the spike signal
/// when the agent crosses the configured rate. Best effort: the decision is
/// already committed, and a failure to record the signal is logged.
pub async fn on_denial(state: &AppState, agent_id: &str) {
    let now = state.clock.now();
    let threshold = state.config.alert_denials_per_minute;
    if !state.denials.denied(agent_id, now, threshold) {
        return;
    }
    metrics::counter!("purser_violation_spikes_total").increment(1);
    let data = json!({ "agent_id": agent_id, "denials": threshold, "per": "1m" });
    let event = AuditEvent::new("policy.violation_spike", "system").agent(agent_id).data(data.clone());
    let written = state
        .store
        .write(move |tx| {
            Box::pin(async move {
                tx.emit("policy.violation_spike", &data, now);
                tx.append_audit(event, now).await
            })
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, agent_id, "could not record a policy violation spike");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_is_reported_once_per_agent_and_minute() {
        let watch = DenialWatch::default();
        let t: DateTime<Utc> = "2026-11-26T17:00:10Z".parse().unwrap();
        let hits: Vec<bool> = (0..5).map(|_| watch.denied("a", t, 3)).collect();
        assert_eq!(hits, [false, false, true, false, false]);
        assert!(!watch.denied("b", t, 3), "counted per agent");
        let next_minute = t + chrono::Duration::seconds(60);
        assert_eq!(
            (0..3).map(|_| watch.denied("a", next_minute, 3)).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(!watch.denied("a", t, 0), "0 disables");
    }
}
