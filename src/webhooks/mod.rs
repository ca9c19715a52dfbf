//! Outbound webhooks in the Standard Webhooks format: signing, secrets at
//! rest, where deliveries may go, and the dispatcher that delivers the
//! outbox at least once.

mod dispatcher;
pub mod secretbox;
pub mod signature;
pub mod ssrf;

pub use dispatcher::{Dispatcher, Settings as DeliverySettings};

/// One type of event purser emits: what happened, and what its `data` is.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    pub name: &'static str,
    pub summary: &'static str,
    /// The name of the schema of `data` in the OpenAPI description.
    pub data: &'static str,
    /// What `data` holds, said for this event.
    pub data_summary: &'static str,
}

const PAYMENT_AFTER: &str = "The payment record, as it is after the change.";

/// Every event type purser emits. Subscriptions are checked against this
/// list, so an endpoint cannot subscribe to a type that never comes (a typo
/// would silently receive nothing); `*` subscribes to all. The webhook
/// section of the OpenAPI description is built from it.
pub const EVENTS: [EventType; 19] = [
    EventType {
        name: "spend.threshold_warning",
        summary: "An agent's reserved spend crossed 80% of a daily, weekly or monthly limit. Emitted with the \
                  `payment.approved` or `payment.pending_approval` of the payment that crossed it, once per \
                  window crossed.",
        data: "SpendThresholdWarning",
        data_summary: "Which window, how much is reserved in it now and its limit.",
    },
    EventType {
        name: "payment.approved",
        summary: "A new payment passed its policy (`status: approved`) and is being forwarded to its provider.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "payment.denied",
        summary: "A new payment was denied by its policy (`status: denied`); `decision.reasons` lists every \
                  rule that failed.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "payment.pending_approval",
        summary: "A new payment needs human approval (`status: pending_approval`); `approval` names the \
                  approval request.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "payment.processing",
        summary: "A forwarded payment's outcome is not known yet (`status: processing`): the provider has not \
                  said whether the money moved (no answer after the request was sent, a 5xx, an asynchronous \
                  transfer still settling). Its reservation is held; purser asks the provider every \
                  `PURSER_RECONCILE_INTERVAL` (default 15 s) until `payment.succeeded` or `payment.failed` \
                  follows. Sent once, when the payment first becomes `processing`.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "payment.succeeded",
        summary: "The provider accepted a payment (`status: succeeded`); `provider.transaction_id` is the \
                  provider's id (for a standing card's authorization, which purser approved itself, Lithic's \
                  authorization token).",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "payment.failed",
        summary: "The provider declined or errored on a payment (`status: failed`, with `failure`); its \
                  reserved amount was released.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "approval.approved",
        summary: "A payment waiting for approval reached its quorum of approvers (`status: approved`) and is \
                  being forwarded to its provider.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "approval.rejected",
        summary: "An approver denied a payment waiting for approval, or its agent was frozen (`status: \
                  rejected`); its reserved amount was released.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "approval.expired",
        summary: "A payment's approval timed out (`status: expired`); its reserved amount was released.",
        data: "Payment",
        data_summary: PAYMENT_AFTER,
    },
    EventType {
        name: "agent.frozen",
        summary: "An admin froze an agent (or froze a frozen agent again with a new reason).",
        data: "Agent",
        data_summary: "The agent record after the freeze (`frozen: true`, with `frozen_reason`).",
    },
    EventType {
        name: "agent.unfrozen",
        summary: "An admin unfroze an agent.",
        data: "Agent",
        data_summary: "The agent record after the change (`frozen: false`).",
    },
    EventType {
        name: "policy.violation_spike",
        summary: "One agent's payments were denied `PURSER_ALERT_DENIALS_PER_MINUTE` times within a clock \
                  minute (a looping or prompt-injected agent probing its limits). Raised once per agent and \
                  minute; also audited and counted in `purser_anomaly_signals_total`.",
        data: "ViolationSpike",
        data_summary: "The agent and the count that raised it.",
    },
    EventType {
        name: "auth.failure_spike",
        summary: "Authentication failed `PURSER_ALERT_FAILED_AUTH_PER_MINUTE` times from one client address, \
                  or `PURSER_ALERT_FAILED_AUTH_TOTAL_PER_MINUTE` times across the gateway, within a clock \
                  minute (credential stuffing). Raised once per subject and minute; also audited and counted.",
        data: "FailureSpike",
        data_summary: "Where the failures came from and their count. Never the presented credential.",
    },
    EventType {
        name: "agent.volume_spike",
        summary: "One agent sent `PURSER_ALERT_AGENT_REQUESTS_PER_MINUTE` authenticated requests within a \
                  clock minute. Raised once per agent and minute; also audited and counted.",
        data: "VolumeSpike",
        data_summary: "The agent and the count that raised it.",
    },
    EventType {
        name: "kill_switch.engaged",
        summary: "An admin engaged the kill switch: every new payment is denied (`kill_switch`), no approval \
                  can be approved, and approved payments wait until it is released.",
        data: "KillSwitchState",
        data_summary: "The kill switch as it now stands.",
    },
    EventType {
        name: "kill_switch.released",
        summary: "An admin released the kill switch: payments are decided and forwarded again.",
        data: "KillSwitchState",
        data_summary: "The kill switch as it now stands (`engaged: false`).",
    },
    EventType {
        name: "audit.checkpoint",
        summary: "The audit chain's head, sent every `PURSER_AUDIT_CHECKPOINT` (default 1 h) when the log has \
                  grown since the last one, so a copy of the head lives outside the database: `purser audit \
                  verify --expect-head <head>` then detects records removed from the end of the log, which no \
                  link inside the chain can show. Each replica sends its own; keep the newest.",
        data: "AuditCheckpoint",
        data_summary: "The head as `<seq>:<sha256>`, and its two parts.",
    },
    EventType {
        name: "endpoint.disabled",
        summary: "purser disabled a webhook endpoint because a delivery failed its whole retry schedule with no \
                  successful delivery to it since. Sent to the other endpoints subscribed to it (the disabled \
                  one gets nothing); also logged and audited (`webhook_endpoint.disabled`). Re-enable with \
                  `PATCH /v1/webhook-endpoints/{id}` `{\"disabled\": false}`.",
        data: "WebhookEndpoint",
        data_summary: "The endpoint record after disabling (`disabled: true`, with `disabled_reason`).",
    },
];

/// Whether purser emits events of type `name`.
pub fn is_event_type(name: &str) -> bool {
    EVENTS.iter().any(|e| e.name == name)
}

/// What an endpoint subscribes to: an event type of [`EVENTS`], or `*` for
/// every type (including types added later). For the OpenAPI description;
/// subscriptions are plain strings checked with [`is_event_type`].
pub struct EventSelector;

impl utoipa::PartialSchema for EventSelector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let names = EVENTS.iter().map(|e| e.name).chain(["*"]);
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "An event type, or `*` for every event type (including types added later). Unknown \
                 types are rejected with `400 invalid_request`.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventSelector {
    fn name() -> std::borrow::Cow<'static, str> {
        "WebhookEventSelector".into()
    }
}
