//! The service-level error: every failure a client can see, each with a
//! stable machine-readable code. `api::error` maps it to HTTP in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or violates the contract (400).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Missing, unknown, expired or revoked credential (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such thing, or not yours to see (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed, but refers to something that does not exist (422).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
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
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden { code, message: message.into() }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable { code, message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
