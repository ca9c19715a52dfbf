//! The one place errors become HTTP responses:
//! `{ "error": { "code": "...", "message": "...", "request_id": "req_..." } }`
//! with a stable code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::{Error, ErrorCode};
use crate::store::StoreError;

impl Error {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Error::Invalid { code, .. } => (StatusCode::BAD_REQUEST, *code),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Error::Forbidden { code, .. } => (StatusCode::FORBIDDEN, *code),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            Error::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            Error::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Error::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType)
            }
            Error::PolicyUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::PolicyUnavailable),
            Error::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::RequestTimeout),
            Error::Store(StoreError::Unavailable(_) | StoreError::NotCommitted(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreUnavailable)
            }
            Error::Store(StoreError::Internal(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError)
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // Details of server-side failures go to the log, not the client.
            Error::Store(e) => {
                tracing::error!(error = %e, "store failure");
                match e {
                    StoreError::Unavailable(_) | StoreError::NotCommitted(_) => {
                        "the store is unavailable; nothing was changed, retry later".to_owned()
                    }
                    StoreError::Internal(_) => "internal error; nothing was changed".to_owned(),
                }
            }
            Error::PolicyUnavailable(m) => {
                tracing::error!(reason = %m, "policy unavailable");
                m.clone()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": code, "message": message });
        if let Error::Invalid { param: Some(param), .. } = &self {
            error["param"] = param.as_str().into();
        }
        if let Some(id) = super::request_id::current() {
            error["request_id"] = id.into();
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        // For the middleware that audits refused uses of real credentials.
        response.extensions_mut().insert(code);
        if let Error::RateLimited { retry_after_secs } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
