//! The service-level error: every failure a client can see, each with a
//! stable machine-readable code. `api::error` maps it to HTTP in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or violates the contract (400). `param`
    /// names what is wrong: a JSON pointer into the body (`/amount`,
    /// `/rate_limit/reads_per_minute`), a query parameter (`status`) or a
    /// header (`Idempotency-Key`); `None` when the request as a whole is
    /// (not JSON, not a JSON object).
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String, param: Option<String> },
    /// Missing, unknown, expired or revoked credential (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this (403).
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    /// No such thing, or not yours to see (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with current state (409).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// Well-formed, but refers to something that does not exist (422).
    #[error("{message}")]
    Unprocessable { code: ErrorCode, message: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests; retry after {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("this route does not support that HTTP method")]
    MethodNotAllowed,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The request took longer than `PURSER_REQUEST_TIMEOUT` (503); a write
    /// may still complete, so clients retry with the same idempotency key.
    #[error("the request took longer than {secs} seconds; retry (with the same Idempotency-Key)")]
    Timeout { secs: u64 },
    /// Policies cannot be evaluated for this agent: fail closed (503).
    #[error("{0}")]
    PolicyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Invalid { code, message: message.into(), param: None }
    }

    /// Names the part of the request an `Invalid` error is about (see
    /// [`Error::Invalid`]); other errors are returned unchanged.
    pub fn at(self, what: impl Into<String>) -> Self {
        self.at_some(Some(what.into()))
    }

    /// [`Error::at`] when the location may be unknown.
    pub fn at_some(mut self, what: Option<String>) -> Self {
        if let Error::Invalid { param, .. } = &mut self {
            *param = what;
        }
        self
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Conflict { code, message: message.into() }
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Forbidden { code, message: message.into() }
    }

    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Unprocessable { code, message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `None` from a lookup is the client's `404`.
pub trait OrNotFound<T> {
    /// `what` names the thing in the message: "agent not found".
    fn or_not_found(self, what: &'static str) -> Result<T>;
}

impl<T> OrNotFound<T> for Option<T> {
    fn or_not_found(self, what: &'static str) -> Result<T> {
        self.ok_or(Error::NotFound(what))
    }
}

/// The stable, machine-readable code of every error a client can get,
/// with the HTTP status it comes with; the wire form is snake_case
/// (`invalid_request`). `api::error` maps each to its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: The body is not a JSON object, has an unknown, missing or mistyped field, or a field breaks
    /// a documented limit (identifier format, description or metadata size, empty scopes, bad
    /// `expires_at` or CIDR, empty `events` or an unknown webhook event type, `grace_seconds` over
    /// 2592000, a `card_token` that is not 1-128 printable ASCII characters, a NUL character, ...).
    InvalidRequest,
    /// 400: The request body is not syntactically valid JSON (an empty body included, except where the
    /// body is optional).
    InvalidJson,
    /// 400: `amount` or `fee` is not a decimal string (a JSON number is rejected), is malformed, is
    /// zero (`amount` only), exceeds 1000000000, or has more fraction digits than the currency allows.
    InvalidAmount,
    /// 400: `currency` is not one of the supported currency codes.
    InvalidCurrency,
    /// 400: A query parameter does not parse, is out of range, is unknown, or names an unknown payment
    /// or approval status.
    InvalidQuery,
    /// 400: `cursor` is not a `next_cursor` value from a previous page.
    InvalidCursor,
    /// 400: The request body could not be read.
    InvalidBody,
    /// 400: `POST /v1/payments` was sent without an `Idempotency-Key` header.
    IdempotencyKeyRequired,
    /// 400: The `Idempotency-Key` header is not 1-255 printable ASCII characters (no spaces).
    InvalidIdempotencyKey,
    /// 400: A webhook endpoint's `url` is not a valid absolute URL; is not `https` (plain `http` is
    /// accepted only in `--dev` mode); carries a user name or password; has a host name that does not
    /// resolve; or is, or resolves to, a forbidden address: loopback, private, carrier-grade NAT, link-
    /// local (including the cloud metadata addresses `169.254.169.254` and `fd00:ec2::254`), unique-
    /// local, unspecified, multicast, broadcast, documentation or other reserved ranges (IPv6 forms
    /// that embed an IPv4 address are judged by that address), unless the address is in a network the
    /// operator allowed with `PURSER_WEBHOOK_ALLOWED_NETS` (`--dev` also allows loopback). The message
    /// names the reason.
    InvalidWebhookUrl,
    /// 401: Missing bearer token, unknown token or API key, revoked or expired API key, unknown or
    /// revoked approver token, or the key's agent no longer exists; on the card issuer's callback
    /// (`POST /v1/providers/lithic/asa`), a missing signature header, a timestamp more than 5 minutes
    /// off, or no matching signature. Sent with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// 403: The agent API key lacks the scope the endpoint needs (`payments:create`, `payments:read` or
    /// `policies:read`).
    InsufficientScope,
    /// 403: The endpoint needs an admin token (the configured one or an administrator's); an agent API
    /// key or an approver token was presented.
    AdminOnly,
    /// 403: The administrator's role is `auditor`, which reads agents (and their keys), payments,
    /// approvals and the audit log but changes nothing; the endpoint needs the `admin` role.
    InsufficientRole,
    /// 403: The endpoint is for agents (the admin token or an approver token was presented), or an
    /// agent asked to list another agent's payments, or an approver token asked for an agent's policy
    /// (`GET /v1/agents/{id}/policy` is for the agent and the admin).
    AgentOnly,
    /// 403: Only approver tokens may approve or deny payments (agents never, not even their own
    /// payments; nor the admin token), and only approver tokens and the admin token may read approvals
    /// (an agent API key was presented).
    ApproverOnly,
    /// 403: The credential (an agent API key, an administrator's or approver's token, the configured
    /// admin token with `PURSER_ADMIN_ALLOWED_CIDRS`, or an approver's console session) has a CIDR
    /// allowlist and the client address is not in it.
    IpNotAllowed,
    /// 404: No such route or resource, or a payment that belongs to another agent (its existence is not
    /// revealed).
    NotFound,
    /// 405: The route exists but does not support this HTTP method.
    MethodNotAllowed,
    /// 409: The `Idempotency-Key` was already used by this agent with a different request body.
    IdempotencyConflict,
    /// 409: The approval was already decided (`approved` or `rejected`) or has `expired`; the vote was
    /// not recorded. The message names the status.
    ApprovalNotPending,
    /// 409: The approval's deadline (`expires_at`) had passed when the vote arrived; the vote was not
    /// recorded, and the approval was expired by it (the payment becomes `expired` and its reservation
    /// is released).
    ApprovalExpired,
    /// 409: A standing card with this `card_token` is already registered (to this or another agent).
    CardExists,
    /// 422: The named policy is not loaded; the message lists the known policies.
    UnknownPolicy,
    /// 422: An agent's `trust_level` is `low`, `medium` or `high`; `custom` belongs to a policy (which
    /// then sets its own limits), never to an agent.
    InvalidTrustLevel,
    /// 413: The request body is larger than the configured limit (64 KiB by default).
    PayloadTooLarge,
    /// 415: A request with a body must be sent with `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 503: The agent's (or the payment's) policy is not loaded, so the payment cannot be evaluated, an
    /// approved payment cannot be routed to a provider, or an agent's spend today cannot be computed;
    /// purser fails closed.
    PolicyUnavailable,
    /// 503: The database is unreachable; nothing was changed. Safe to retry (with the same
    /// `Idempotency-Key` for payments).
    StoreUnavailable,
    /// 500: Unexpected server-side failure; nothing was changed. Details go to the server log, never to
    /// the client.
    InternalError,
    /// 429: Over the credential's read or write budget (an API key's or Ed25519 signing key's own
    /// `rate_limit`, else the gateway's default, which approver tokens and the admin token have), or,
    /// for requests without a credential and routes that take none, the client address's, or the
    /// address failed authentication too often; the `Retry-After` header says how many seconds to wait.
    /// `/healthz` and `/readyz` are never limited; card-issuer callbacks (`/v1/providers/...`) are not
    /// held to the read and write budgets, only their failed signatures count.
    RateLimited,
    /// 503: The request ran longer than `PURSER_REQUEST_TIMEOUT` (30 s by default; reading the body
    /// included). A write may still have completed: retry with the same `Idempotency-Key`.
    RequestTimeout,
    /// 409: This Ed25519 public key is already registered.
    SigningKeyExists,
    /// 409: This exact signed request (same signature) was already accepted within the last 10 minutes.
    /// Send a fresh `Purser-Nonce` with each request to make every signature unique.
    SignatureReplayed,
    /// 409: The API key cannot be rotated: it is revoked, has expired, or was already rotated (the
    /// message names its successor, which can be). Create a new key instead.
    KeyNotRotatable,
    /// 409: The kill switch is engaged: nothing can be approved until it is released.
    KillSwitchEngaged,
}

impl ErrorCode {
    /// The wire name (`ip_not_allowed`), for logs, metrics and audit data.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}
