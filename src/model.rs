//! Domain records shared by the store, the services and the API. Their serde
//! form is the wire form documented in docs/api.md.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::money::{format_amount, Currency};
use crate::policy::{Decision, TrustLevel};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Agent {
    /// Agent id: `agt_` followed by a lower-case ULID (ids sort by creation time).
    #[schema(pattern = "^agt_[0-9a-z]{26}$", example = "agt_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    pub name: String,
    /// Name of the policy the agent is bound to.
    pub policy: String,
    pub trust_level: TrustLevel,
    /// A frozen agent's payments are denied with `agent_frozen`.
    pub frozen: bool,
    /// Present only while frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub frozen_reason: Option<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

/// RFC 3339 timestamp in UTC with millisecond precision, e.g.
/// `2026-11-26T18:20:00.000Z`.
#[derive(ToSchema)]
#[schema(value_type = String, format = DateTime, example = "2026-11-26T18:20:00.000Z")]
pub struct Timestamp(#[allow(dead_code)] String);

/// An exact decimal amount as a string: digits, optionally a `.` and more
/// digits. No sign, exponent, whitespace or separators. JSON numbers are
/// rejected.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]+(\\.[0-9]+)?$", example = "42.50")]
pub struct DecimalString(#[allow(dead_code)] String);

/// What an API key may do. Unknown scope strings are rejected when a key is
/// created, so a typo can never silently grant or withhold access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKey {
    /// Key id: `key_` followed by a lower-case ULID.
    #[schema(pattern = "^key_[0-9a-z]{26}$", example = "key_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub agent_id: String,
    /// The first characters of the key, to recognise it.
    #[schema(example = "psr_agent_Zq8v")]
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// Client networks the key is accepted from (empty: anywhere).
    #[schema(example = json!(["203.0.113.0/24"]))]
    pub allowed_cidrs: Vec<String>,
    pub rate_limit: KeyRateLimit,
    /// When the key stops working; null: never (it can still be revoked).
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Option<Timestamp>)]
    pub revoked_at: Option<String>,
    /// The key a rotation replaced this one with; set from the rotation on
    /// (the key works until `expires_at`, the end of the grace period, and
    /// cannot be rotated again: rotate its successor).
    #[schema(pattern = "^key_[0-9a-z]{26}$")]
    pub replaced_by: Option<String>,
    /// When the key last authenticated a request (to the minute: recorded at
    /// most once a minute); null: never used.
    #[schema(value_type = Option<Timestamp>)]
    pub last_used_at: Option<String>,
}

/// A whole number as JSON may write it: `8`, or `8.0` (JSON Schema counts
/// both as integers, and so do clients that keep every number a double).
/// Anything else is refused naming the field's rule, not a Rust type.
pub(crate) fn whole_number<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let number = serde_json::Number::deserialize(de)?;
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`whole_number`] for an optional field (`null` or left out: `None`).
pub(crate) fn optional_whole_number<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "whole_number")] T);
    Ok(Option::<Whole<T>>::deserialize(de)?.map(|w| w.0))
}

/// One key's own request budget, per minute; a field left out (`null`)
/// uses the gateway's `PURSER_RATE_LIMIT_READS` / `_WRITES`. Each value is
/// 1 to 1000000, lower or higher than the default (revoke a key to stop it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRateLimit {
    /// GET requests per minute.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub reads_per_minute: Option<u32>,
    /// POST, PATCH and DELETE requests per minute.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub writes_per_minute: Option<u32>,
}

/// Where a payment stands:
/// - `denied`: Denied by policy; nothing reserved.
/// - `pending_approval`: Passed the deny rules but needs human approval; the
///   amount is reserved. It then becomes `approved`, `rejected` or `expired`.
/// - `approved`: Passed policy (or was approved by the quorum of
///   approvers); reserved and being forwarded to the provider. It then
///   becomes `succeeded` or `failed`, or `processing` if the provider's
///   answer does not settle it.
/// - `processing`: Forwarded, and the provider has not said yet whether the
///   money moved (no answer after the request was sent, a 5xx, an
///   asynchronous transfer still settling). The reservation is held; purser
///   asks the provider again every `PURSER_RECONCILE_INTERVAL` (default
///   15 s) until it becomes `succeeded` or `failed`; not reaching the
///   provider, or the provider missing from this gateway's configuration,
///   leaves it `processing`.
/// - `succeeded`: The provider accepted the payment (for a standing card's
///   authorization: purser approved it, see `POST /v1/providers/lithic/asa`).
/// - `failed`: The provider declined or errored; the reserved amount is
///   released (see `failure`).
/// - `expired`: The approval timed out; the reserved amount is released.
/// - `rejected`: An approver denied it (or its agent was frozen); the
///   reserved amount is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Denied,
    PendingApproval,
    Approved,
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

/// Where an approved payment is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProviderRef {
    /// Provider name (from the policy's rail mapping; `sandbox` by default;
    /// `lithic` for a standing card's authorization).
    #[schema(example = "sandbox")]
    pub name: String,
    /// The reference purser forwards under (`fwd_...`, also the provider
    /// idempotency key), so a payment can be found on the provider's side;
    /// for a card authorization, which is not forwarded, the network's
    /// authorization token.
    #[schema(example = "fwd_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub reference: String,
    /// The provider's own id for the transaction, once it answered (for
    /// `lithic`, the token of the card issued for the payment, or of the
    /// authorization for a standing card's payment). Absent until then; a
    /// `processing` payment has it if the provider gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
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

/// The approval request of a payment that needs (or needed) human
/// approval. The full request, with votes, is `GET /v1/approvals/{id}`
/// (approvers and admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApprovalSummary {
    /// Approval id: `apv_` followed by a lower-case ULID.
    #[schema(pattern = "^apv_[0-9a-z]{26}$", example = "apv_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    #[schema(value_type = ApprovalStatus)]
    pub status: String,
    /// Quorum of distinct approvers.
    #[schema(minimum = 1)]
    pub approvals_required: u32,
    /// When the approval times out (the payment then becomes `expired`).
    #[schema(value_type = Timestamp)]
    pub expires_at: String,
}

/// Where an approval request stands: `pending` (waiting for votes),
/// `approved` (the quorum approved), `rejected` (an approver denied, or the
/// agent was frozen), `expired` (nobody decided before `expires_at`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a schema: stored and sent as text
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// Why the provider did not complete the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Failure {
    /// Provider outcome code. Not a closed list: providers may add codes.
    /// Current ones: `provider_unavailable` (no attempt reached the
    /// provider: circuit open, connection refused), `provider_rejected`
    /// (the provider refused the request with a 4xx; the message quotes the
    /// start of its answer), `provider_rate_limited` (the provider kept
    /// answering 429 through every retry), `provider_bad_response` (an
    /// answer purser cannot read), `provider_not_configured` (no provider,
    /// or one not configured on this gateway), `provider_failed` (Circle
    /// reports the transfer failed, cancelled or denied), `merchant_not_payable`
    /// (no destination address for the merchant: Circle, Turnkey),
    /// `currency_not_supported`, `amount_not_payable` (not a whole number of
    /// token units: Turnkey), `invalid_reference`, `internal_error`,
    /// `activity_failed`, `activity_rejected`, `transaction_failed`
    /// (Turnkey), and the sandbox's `card_declined` and
    /// `insufficient_funds`. A `processing` payment never fails with
    /// `provider_unavailable` or `provider_not_configured`: money may
    /// already have moved, so it stays `processing`.
    pub code: String,
    pub message: String,
}

/// A payment record. Policy denials are payments too (`status: denied`),
/// not HTTP errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payment {
    /// Payment id: `pay_` followed by a lower-case ULID (ids sort by creation time).
    #[schema(pattern = "^pay_[0-9a-z]{26}$", example = "pay_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub agent_id: String,
    pub status: PaymentStatus,
    /// In the currency's precision (`42.50`, never `42.5`).
    #[serde(serialize_with = "serialize_money")]
    #[schema(value_type = DecimalString)]
    pub amount: Money,
    /// Present only when non-zero, in the currency's precision.
    #[serde(serialize_with = "serialize_money", skip_serializing_if = "Money::is_zero")]
    #[schema(value_type = Option<DecimalString>, nullable = false)]
    pub fee: Money,
    pub currency: Currency,
    /// Lower-cased.
    pub merchant_id: String,
    /// The category the policy evaluated, lower-cased: the merchant
    /// directory's when it knows the merchant (whatever the agent
    /// declared), else the declared one; null when neither gave one.
    pub merchant_category: Option<String>,
    /// What the agent declared when the merchant directory gave the
    /// merchant another category; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub declared_category: Option<String>,
    /// Lower-cased; the policy's first rail when the request had none.
    pub rail: String,
    /// Present only when the request had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub decision: Decision,
    /// Set when the payment was approved for forwarding; null otherwise.
    pub provider: Option<ProviderRef>,
    /// Set when the payment needed human approval (also after the approval
    /// was decided); null otherwise.
    pub approval: Option<ApprovalSummary>,
    /// Present only when the provider declined or errored (`status: failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub failure: Option<Failure>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
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

/// A person who approves or denies payments above a policy's approval
/// threshold. The token is never shown after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Approver {
    /// Approver id: `apr_` followed by a lower-case ULID.
    #[schema(pattern = "^apr_[0-9a-z]{26}$", example = "apr_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    pub name: String,
    /// Client networks the token (and the console sessions it opens) is
    /// accepted from (empty: anywhere).
    #[schema(example = json!(["203.0.113.0/24"]))]
    pub allowed_cidrs: Vec<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    /// When the approver was revoked, or null.
    #[schema(value_type = Option<Timestamp>)]
    pub revoked_at: Option<String>,
}

/// What an administrator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Everything the admin API offers.
    Admin,
    /// Reads agents (with their keys), payments and the audit log; changes
    /// nothing.
    Auditor,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "admin",
            AdminRole::Auditor => "auditor",
        }
    }
}

impl FromStr for AdminRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(AdminRole::Admin),
            "auditor" => Ok(AdminRole::Auditor),
            other => Err(format!("unknown admin role {other:?}")),
        }
    }
}

/// A person with an admin token of their own. The token is never shown
/// after creation; audit records name the administrator who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Administrator {
    /// Administrator id: `adm_` followed by a lower-case ULID.
    #[schema(pattern = "^adm_[0-9a-z]{26}$", example = "adm_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    pub name: String,
    pub role: AdminRole,
    /// Client networks the token is accepted from (empty: anywhere).
    #[schema(example = json!(["203.0.113.0/24"]))]
    pub allowed_cidrs: Vec<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    /// When the administrator was revoked, or null.
    #[schema(value_type = Option<Timestamp>)]
    pub revoked_at: Option<String>,
}

/// One approver's vote. Each approver votes at most once per approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Vote {
    #[schema(pattern = "^apr_[0-9a-z]{26}$")]
    pub approver_id: String,
    pub approver_name: String,
    /// `approve` or `deny`.
    #[schema(pattern = "^(approve|deny)$")]
    pub decision: String,
    /// The approver's comment, or null when none (or a blank one) was given.
    pub comment: Option<String>,
    #[schema(value_type = Timestamp)]
    pub at: String,
}

/// An approval request with what an approver needs to decide it. Created
/// with the payment when its policy decision is `require_approval` (the
/// payment is then `pending_approval` and its amount reserved). One approver
/// counts once; once `approvals_required` distinct approvers have approved,
/// it is `approved` and the payment is forwarded; a single deny rejects it
/// at once; nobody deciding before `expires_at` expires it. Rejected and
/// expired approvals release the payment's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Approval {
    #[schema(pattern = "^apv_[0-9a-z]{26}$", example = "apv_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    #[schema(value_type = ApprovalStatus)]
    pub status: String,
    /// Quorum: how many distinct approvers must approve (the policy's
    /// `approvals_required`).
    #[schema(minimum = 1)]
    pub approvals_required: u32,
    /// Deadline (the policy's `approval_timeout` after creation). A pending
    /// approval past it is expired by a background sweep (every second by
    /// default, and at start) or by the next vote on it, whichever comes
    /// first.
    #[schema(value_type = Timestamp)]
    pub expires_at: String,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    /// When it was approved, rejected or expired; null while pending.
    #[schema(value_type = Option<Timestamp>)]
    pub decided_at: Option<String>,
    /// Votes so far, oldest first.
    pub votes: Vec<Vote>,
    pub agent: AgentRef,
    /// The payment in its current state; `decision.reasons` says why it
    /// needs review.
    pub payment: Payment,
}

/// The agent that asked for the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentRef {
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub id: String,
    pub name: String,
}

/// A registered webhook endpoint as listed. Its signing secrets are never
/// shown after creation or rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    /// Webhook endpoint id: `wh_` followed by a lower-case ULID.
    #[schema(pattern = "^wh_[0-9a-z]{26}$", example = "wh_01jdx3k8q9m4v7w2c5b6n0p1rt")]
    pub id: String,
    /// Where deliveries are POSTed, in normalized form (e.g.
    /// `https://hooks.example.com` is stored as `https://hooks.example.com/`).
    #[schema(format = "uri")]
    pub url: String,
    /// The operator's note, or null.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// The event types delivered to this endpoint (`*` = all).
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// A disabled endpoint gets no deliveries: set by `PATCH` or by purser
    /// after failing deliveries (see `endpoint.disabled`).
    pub disabled: bool,
    /// Why purser disabled the endpoint; null otherwise. Cleared when the
    /// endpoint is re-enabled.
    pub disabled_reason: Option<String>,
    /// End of the latest rotation's grace period, during which the previous
    /// secret also signs (it stays set after it has passed); null if the
    /// secret was never rotated.
    #[schema(value_type = Option<Timestamp>)]
    pub previous_secret_until: Option<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

/// One try at delivering one event to one endpoint. An attempt succeeded
/// when `status_code` is 2xx (then `error` is null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(pattern = "^att_[0-9a-z]{26}$")]
    pub id: String,
    /// The delivery (one event queued for one endpoint, with its own retry
    /// schedule) this attempt belongs to. A replay is a new delivery.
    #[schema(pattern = "^dlv_[0-9a-f]{24}$")]
    pub delivery_id: String,
    /// Webhook event id, sent as the `webhook-id` header, the same on every
    /// retry and replay of the event.
    #[schema(pattern = "^msg_[0-9a-z]{26}$")]
    pub event_id: String,
    #[schema(pattern = "^wh_[0-9a-z]{26}$")]
    pub endpoint_id: String,
    /// When the attempt was made.
    #[schema(value_type = Timestamp)]
    pub at: String,
    /// The endpoint's HTTP status; null when there was no HTTP response
    /// (timeout, connection refused, TLS failure, address refused by the
    /// SSRF guard, ...).
    #[schema(minimum = 100, maximum = 599)]
    pub status_code: Option<u16>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// Why the attempt failed; null when delivered.
    pub error: Option<String>,
}

/// A standing card registered to an agent: the card issuer's real-time
/// authorizations on it are decided by the agent's policy (see `POST
/// /v1/providers/lithic/asa`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Card {
    /// The issuer's token for the card (for Lithic, the card's `token`), as
    /// registered (case-sensitive).
    #[schema(pattern = "^[!-~]{1,128}$", example = "76b9f589-8935-4e78-8809-7f583bf0fb89")]
    pub card_token: String,
    /// The card issuer whose authorizations purser answers; `lithic`.
    #[schema(example = "lithic")]
    pub provider: String,
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub agent_id: String,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
}

/// An Ed25519 public key an agent signs requests with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SigningKey {
    /// Signing key id: `sk_` followed by a lower-case ULID.
    #[schema(pattern = "^sk_[0-9a-z]{26}$")]
    pub id: String,
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub agent_id: String,
    /// Standard base64 of the 32-byte public key.
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub public_key: String,
    pub scopes: Vec<Scope>,
    pub rate_limit: KeyRateLimit,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    /// Present once the key is revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>, nullable = false)]
    pub revoked_at: Option<String>,
}

/// The engaged gateway-wide kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KillSwitch {
    pub reason: String,
    /// Who engaged it (`admin`).
    pub actor: String,
    #[schema(value_type = Timestamp)]
    pub engaged_at: String,
}

/// The kill switch as it stands: while engaged, every new payment is
/// denied (`kill_switch`), no approval can be approved, and approved
/// payments are not forwarded (they wait, reserved, until it is released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KillSwitchState {
    pub engaged: bool,
    /// The switch while engaged; null when released.
    pub kill_switch: Option<KillSwitch>,
}

impl From<Option<KillSwitch>> for KillSwitchState {
    fn from(kill_switch: Option<KillSwitch>) -> Self {
        KillSwitchState { engaged: kill_switch.is_some(), kill_switch }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let read = |text: &str| serde_json::from_str::<KeyRateLimit>(text).map(|l| l.reads_per_minute);
        assert_eq!(read(r#"{"reads_per_minute": 8}"#).unwrap(), Some(8));
        assert_eq!(read(r#"{"reads_per_minute": 8.0}"#).unwrap(), Some(8));
        assert_eq!(read(r#"{"reads_per_minute": 1e3}"#).unwrap(), Some(1000));
        assert_eq!(read(r#"{"reads_per_minute": null}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        for bad in ["8.5", "-1", "4294967296", "\"8\"", "1e300"] {
            let e = read(&format!(r#"{{"reads_per_minute": {bad}}}"#)).unwrap_err().to_string();
            assert!(!e.contains("u32"), "{bad}: {e}");
        }
    }
}
