//! Request extractors that answer every client mistake with our JSON error
//! format instead of axum's plain-text rejections.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::strict_json::Strict;
use crate::api::AppState;
use crate::error::{Error, ErrorCode};

/// A JSON request body: `Content-Type: application/json`, within the body
/// limit, syntactically valid, and matching `T` (unknown fields rejected
/// where `T` says so).
pub struct JsonBody<T> {
    pub body: T,
    value: serde_json::Value,
}

impl<T> JsonBody<T> {
    /// SHA-256 of the body's canonical form (keys sorted, no whitespace):
    /// two requests with the same meaning hash the same, whatever their
    /// formatting or key order.
    pub fn canonical_hash(&self) -> String {
        let text = serde_json::to_string(&self.value).expect("a parsed value serializes");
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Error> {
        let is_json = is_json(&req);
        let bytes = body_bytes(req, state).await?;
        if !is_json {
            return Err(Error::UnsupportedMediaType);
        }
        parse(&bytes)
    }
}

/// A JSON body that may be left out entirely (no body at all, or a JSON
/// `null`, means `T::default()`); a body that is sent must be JSON like any
/// other.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<Arc<AppState>> for OptionalJsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Error> {
        let is_json = is_json(&req);
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() || (is_json && bytes.trim_ascii() == b"null") {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !is_json {
            return Err(Error::UnsupportedMediaType);
        }
        parse(&bytes).map(|b: JsonBody<T>| OptionalJsonBody(b.body))
    }
}

/// Path parameters, rejected as `invalid_request` (JSON) when they do not
/// decode (e.g. percent-encoded bytes that are not UTF-8).
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Arc<AppState>> for PathParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        if parts.uri.path().contains("%00") {
            return Err(nul_refused());
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParams(value))
            .map_err(|rejection| Error::invalid(ErrorCode::InvalidRequest, rejection.body_text()))
    }
}

/// The exact body bytes, for callbacks whose signature covers them; only
/// the size limit is checked here.
pub struct RawBody(pub Bytes);

impl FromRequest<Arc<AppState>> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Error> {
        body_bytes(req, state).await.map(RawBody)
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

async fn body_bytes(req: Request, state: &Arc<AppState>) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge { limit: state.config.max_body_bytes }
        } else {
            Error::invalid(ErrorCode::InvalidBody, rejection.body_text())
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<JsonBody<T>, Error> {
    let not_json = |e: serde_json::Error| {
        Error::invalid(ErrorCode::InvalidJson, format!("request body is not valid JSON: {e}"))
    };
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut reader) {
        Ok(Strict(value)) => value,
        // Well-formed, but an object repeats a key.
        Err(e) if e.inner().is_data() => {
            let at = location(e.path(), &e.inner().to_string(), true);
            return Err(Error::invalid(ErrorCode::InvalidRequest, e.into_inner().to_string()).at_some(at));
        }
        Err(e) => return Err(not_json(e.into_inner())),
    };
    reader.end().map_err(not_json)?;
    if !value.is_object() {
        return Err(Error::invalid(ErrorCode::InvalidRequest, "request body must be a JSON object"));
    }
    if let Some(at) = nul_at(&value, String::new()) {
        return Err(nul_refused().at_some(Some(at).filter(|at| !at.is_empty())));
    }
    let body = serde_path_to_error::deserialize(&value).map_err(|e| {
        let at = location(e.path(), &e.inner().to_string(), true);
        Error::invalid(ErrorCode::InvalidRequest, e.into_inner().to_string()).at_some(at)
    })?;
    Ok(JsonBody { body, value })
}

/// Where a deserialization error is: for a body, the JSON pointer (RFC
/// 6901) of the value; for a query string, the parameter's name. serde
/// reports a missing or unknown field at its parent, naming the field in
/// the message: the location then goes on to the field.
fn location(path: &serde_path_to_error::Path, message: &str, pointer: bool) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut tokens: Vec<String> = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    if let Some(field) = named.filter(|field| tokens.last().map(String::as_str) != Some(field)) {
        tokens.push(field.to_owned());
    }
    // No location may hold NUL: name what holds the token that has one.
    if let Some(first) = tokens.iter().position(|t| t.contains('\0')) {
        tokens.truncate(first);
    }
    if tokens.is_empty() {
        None
    } else if pointer {
        Some(tokens.iter().map(|t| format!("/{}", token(t))).collect())
    } else {
        Some(tokens.join("."))
    }
}

/// One reference token of a JSON pointer, escaped.
fn token(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// NUL cannot be stored as text (PostgreSQL refuses it) and is never
/// meaningful in an id, a name or a description: refused at the edge.
fn nul_refused() -> Error {
    Error::invalid(ErrorCode::InvalidRequest, "text may not contain the NUL character")
}

/// The JSON pointer of the first string (or key) holding a NUL, if any.
fn nul_at(value: &serde_json::Value, at: String) -> Option<String> {
    let child = |key: &str| format!("{at}/{}", token(key));
    match value {
        serde_json::Value::String(s) => s.contains('\0').then_some(at),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| nul_at(item, child(&i.to_string())))
        }
        // A key with NUL in it cannot be named (no pointer may hold NUL):
        // the object holding it is.
        serde_json::Value::Object(map) => {
            map.iter()
                .find_map(|(k, v)| if k.contains('\0') { Some(at.clone()) } else { nul_at(v, child(k)) })
        }
        _ => None,
    }
}

/// Query parameters, rejected as `invalid_query` when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(nul_refused());
        }
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs).map(QueryParams).map_err(|e| {
            let at = location(e.path(), &e.inner().to_string(), false);
            let message = format!("query string: {}", e.into_inner());
            let error = Error::invalid(ErrorCode::InvalidQuery, message);
            error.at_some(at)
        })
    }
}

/// For query parameters: `?status=` (present but empty) means "not given",
/// as in `GET /v1/payments?status=&limit=&cursor=`; otherwise the value must
/// parse as `T`.
pub fn empty_as_none<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = serde::Deserialize::deserialize(de)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// For a nested object in a JSON body: only `{...}`. A derived struct also
/// accepts a JSON array of its fields in order (`[5, 10]`), which no client
/// means and the API does not document.
pub fn object_only<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Object<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    de.deserialize_map(Object(std::marker::PhantomData))
}
