//! Outbound webhooks in the Standard Webhooks format: signing, secrets at
//! rest, where deliveries may go, and the dispatcher that delivers the
//! outbox at least once.

mod dispatcher;
pub mod secretbox;
pub mod signature;
pub mod ssrf;

pub use dispatcher::Dispatcher;

/// Every event type purser emits. Subscriptions are checked against this
/// list, so an endpoint cannot subscribe to a type that never comes (a typo
/// would silently receive nothing); `*` subscribes to all.
pub const EVENT_TYPES: [&str; 18] = [
    "spend.threshold_warning",
    "payment.approved",
    "payment.denied",
    "payment.pending_approval",
    "payment.processing",
    "payment.succeeded",
    "payment.failed",
    "approval.approved",
    "approval.rejected",
    "approval.expired",
    "agent.frozen",
    "agent.unfrozen",
    "policy.violation_spike",
    "auth.failure_spike",
    "agent.volume_spike",
    "kill_switch.engaged",
    "kill_switch.released",
    "endpoint.disabled",
];
