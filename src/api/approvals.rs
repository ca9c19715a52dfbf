//! Approvers (admin) and approvals (approvers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Admin, Principal};
use super::extract::{empty_as_none, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::Approval;
use crate::service::approvals::{self, Verdict};

const MAX_NAME: usize = 200;
const MAX_COMMENT: usize = 2000;
const MAX_PAGE: u32 = 200;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/approvers", post(create_approver).get(list_approvers))
        .route("/v1/approvers/{id}", delete(revoke_approver))
        .route("/v1/approvals", get(list))
        .route("/v1/approvals/{id}", get(show))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApprover {
    name: String,
}

async fn create_approver(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody { body, .. }: JsonBody<CreateApprover>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.name.trim().is_empty() || body.name.chars().count() > MAX_NAME {
        return Err(Error::invalid("invalid_request", format!("name must be 1-{MAX_NAME} characters")));
    }
    let issued = approvals::create_approver(&state, "admin", body.name).await?;
    let mut out = serde_json::to_value(&issued.approver).expect("approver serializes");
    // The only time the token is ever shown.
    out["token"] = Value::String(issued.token);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list_approvers(State(state): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>> {
    Ok(Json(json!({ "data": state.store.approvers().await? })))
}

async fn revoke_approver(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    approvals::revoke_approver(&state, "admin", &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    status: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<QueryParams<ListQuery>, Error>,
) -> Result<Json<Value>> {
    principal.approval_reader()?;
    let QueryParams(q) = query?;
    let status = q.status.unwrap_or_else(|| "pending".to_owned());
    if !["pending", "approved", "rejected", "expired"].contains(&status.as_str()) {
        return Err(Error::invalid("invalid_query", "status must be pending, approved, rejected or expired"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid("invalid_query", format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let mut data = Vec::new();
    for approval in state.store.approvals(&status, limit).await? {
        data.push(with_spend(&state, approval).await?);
    }
    Ok(Json(json!({ "data": data })))
}

async fn show(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>> {
    principal.approval_reader()?;
    let approval = state.store.approval(&id).await?.ok_or(Error::NotFound("approval"))?;
    Ok(Json(with_spend(&state, approval).await?))
}

/// An approval as returned: the record plus the agent's spend today, which
/// reviewers weigh the request against.
async fn with_spend(state: &AppState, approval: Approval) -> Result<Value> {
    let spend = approvals::spend_today(state, &approval.agent.id).await?;
    let mut out = serde_json::to_value(&approval).expect("approval serializes");
    out["agent_spend_today"] = serde_json::to_value(spend).expect("spend serializes");
    Ok(out)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
) -> Result<Json<Value>> {
    decide(state, principal, id, body, Verdict::Approve).await
}

async fn deny(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
) -> Result<Json<Value>> {
    decide(state, principal, id, body, Verdict::Deny).await
}

async fn decide(
    state: Arc<AppState>,
    principal: Principal,
    id: String,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
    verdict: Verdict,
) -> Result<Json<Value>> {
    let approver = principal.approver()?;
    // The comment is optional, and so is a body to carry it.
    let OptionalJsonBody(body) = body?;
    let comment = body.comment.filter(|c| !c.trim().is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return Err(Error::invalid(
            "invalid_request",
            format!("comment is longer than {MAX_COMMENT} characters"),
        ));
    }
    let approval = approvals::vote(&state, &approver, &id, verdict, comment).await?;
    // The vote is committed; the spend figure is information, so failing to
    // read it must not turn a recorded vote into an error.
    let fallback = serde_json::to_value(&approval).expect("approval serializes");
    Ok(Json(with_spend(&state, approval).await.unwrap_or(fallback)))
}
