//! Domain records shared by the store, the services and the API. Their serde
//! form is the wire form of DESIGN.md.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

use crate::money::{format_amount, Currency};
use crate::policy::{Decision, TrustLevel};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub policy: String,
    pub trust_level: TrustLevel,
    pub frozen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What an API key may do. Unknown scope strings are rejected when a key is
/// created, so a typo can never silently grant or withhold access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "payments:create")]
    PaymentsCreate,
    #[serde(rename = "payments:read")]
    PaymentsRead,
    #[serde(rename = "policies:read")]
    PoliciesRead,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::PaymentsCreate, Scope::PaymentsRead, Scope::PoliciesRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PaymentsCreate => "payments:create",
            Scope::PaymentsRead => "payments:read",
            Scope::PoliciesRead => "policies:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub agent_id: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub allowed_cidrs: Vec<String>,
    pub rate_limit: KeyRateLimit,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One key's own request budget; a field left out (`null`) uses the
/// gateway's `PURSER_RATE_LIMIT_READS` / `_WRITES`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRateLimit {
    #[serde(default)]
    pub reads_per_minute: Option<u32>,
    #[serde(default)]
    pub writes_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Denied,
    PendingApproval,
    Approved,
    /// Forwarded, and the provider has not said yet whether the money
    /// moved (a timeout after sending, a 5xx, an asynchronous transfer).
    /// The reservation is held; the reconciler settles it.
    Processing,
    Succeeded,
    Failed,
    Expired,
    Rejected,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 8] = [
        PaymentStatus::Denied,
        PaymentStatus::PendingApproval,
        PaymentStatus::Approved,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Expired,
        PaymentStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Denied => "denied",
            PaymentStatus::PendingApproval => "pending_approval",
            PaymentStatus::Approved => "approved",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Rejected => "rejected",
        }
    }
}

impl FromStr for PaymentStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        PaymentStatus::ALL.into_iter().find(|v| v.as_str() == s).ok_or(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderRef {
    pub name: String,
    /// The reference purser forwards under (`fwd_...`, also the provider
    /// idempotency key), so a payment can be found on the provider's side;
    /// for a card authorization, which is not forwarded, the network's
    /// authorization token.
    pub reference: String,
    /// The provider's own id for the transaction, once it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

impl ProviderRef {
    /// Where a payment is forwarded, before the provider answered. The
    /// reference is a fresh ULID under the `fwd_` prefix, minted when the
    /// payment is approved (at once, or when its approval reached quorum):
    /// unique per payment, stored, and stable across retries, so it serves
    /// as the provider's idempotency key, and its time is when the forward
    /// was decided (providers that refuse stale requests need that).
    pub fn forward(provider: &str) -> ProviderRef {
        ProviderRef { name: provider.to_owned(), reference: crate::ids::new("fwd"), transaction_id: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalSummary {
    pub id: String,
    pub status: String,
    pub approvals_required: u32,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// A payment as stored and as returned to its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: String,
    pub agent_id: String,
    pub status: PaymentStatus,
    #[serde(serialize_with = "serialize_money")]
    pub amount: Money,
    #[serde(serialize_with = "serialize_money", skip_serializing_if = "Money::is_zero")]
    pub fee: Money,
    pub currency: Currency,
    pub merchant_id: String,
    pub merchant_category: Option<String>,
    pub rail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub decision: Decision,
    pub provider: Option<ProviderRef>,
    pub approval: Option<ApprovalSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub created_at: String,
    pub updated_at: String,
}

/// An exact amount together with its currency, so it always renders with the
/// currency's precision ("42.50", never "42.5").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub value: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_amount(self.value, self.currency))
    }
}

fn serialize_money<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(m)
}

/// A person who approves or denies payments above a policy's threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approver {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One approver's vote on one approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    pub approver_id: String,
    pub approver_name: String,
    pub decision: String,
    pub comment: Option<String>,
    pub at: String,
}

/// An approval request with what an approver needs to decide it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub id: String,
    pub status: String,
    pub approvals_required: u32,
    pub expires_at: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub votes: Vec<Vote>,
    pub agent: AgentRef,
    pub payment: Payment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
}

/// A registered webhook endpoint, as listed (never its secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// End of the grace period in which the previous secret still signs.
    pub previous_secret_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One try at delivering one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub id: String,
    pub delivery_id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub at: String,
    /// `None` when there was no HTTP response (timeout, refused, blocked).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// A standing card registered to an agent: its real-time authorizations
/// are decided by the agent's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    pub card_token: String,
    pub provider: String,
    pub agent_id: String,
    pub created_at: String,
}

/// An Ed25519 public key an agent signs requests with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKey {
    pub id: String,
    pub agent_id: String,
    /// Standard base64 of the 32-byte public key.
    pub public_key: String,
    pub scopes: Vec<Scope>,
    pub rate_limit: KeyRateLimit,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The engaged gateway-wide kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillSwitch {
    pub reason: String,
    pub actor: String,
    pub engaged_at: String,
}
