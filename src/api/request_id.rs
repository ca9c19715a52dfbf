//! A request id (`req_<ULID>`) for every request: in the `x-request-id`
//! response header, in every log line written while the request is served
//! (the trace span carries it) and in every error body, so a client's
//! report can be matched to the server's log. Ids are always minted here;
//! one sent by the client is replaced, since it could forge log lines.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(String::clone).ok()
}

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let id = crate::ids::new("req");
    let value = HeaderValue::from_str(&id).expect("an id is a valid header value");
    req.headers_mut().insert(HEADER, value.clone());
    let mut response = REQUEST_ID.scope(id, next.run(req)).await;
    response.headers_mut().insert(HEADER, value);
    response
}

/// The trace span of a request: what every log line inside it carries.
pub fn span(req: &Request) -> tracing::Span {
    let id = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}
