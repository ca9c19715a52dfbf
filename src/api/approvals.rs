//! Approvers (admin) and approvals (approvers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Principal};
use super::extract::{empty_as_none, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, PageErrors, PageQuery, Paging};
use super::validate::{self, check_len, Cidr, MAX_NAME};
use crate::api::AppState;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Approval, ApprovalStatus, Approver};
use crate::service::approvals::{self, SpendToday, Verdict};

const MAX_COMMENT: usize = 2000;
const MAX_PAGE: u32 = 200;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create_approver, list_approvers))
        .routes(routes!(revoke_approver))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateApproverRequest, example = json!({ "name": "Alice (finance)", "allowed_cidrs": ["203.0.113.0/24"] }))]
struct CreateApprover {
    /// 1-200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\u000c\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff][^\\u0000]*$"
    )]
    name: String,
    /// CIDRs (or single IP addresses) the token, and the console sessions
    /// it opens, may be used from; empty or absent: anywhere.
    #[serde(default)]
    #[schema(value_type = Vec<Cidr>)]
    allowed_cidrs: Vec<String>,
}

/// The new approver's record plus its token, shown this one time only.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedApprover)]
struct IssuedApprover {
    #[serde(flatten)]
    approver: Approver,
    /// The approver token (`psr_appr_` + base64url of 32 random bytes). Hand
    /// it to the approver now: purser keeps only its SHA-256.
    #[schema(pattern = "^psr_appr_[A-Za-z0-9_-]{43}$")]
    token: String,
}

/// Create an approver (admin)
///
/// Mints a `psr_appr_` token for a person who approves or denies payments.
/// The response is the only time the token is shown; purser stores only its
/// SHA-256. Audited (`approver.created`, without the token).
#[utoipa::path(
    post,
    path = "/v1/approvers",
    operation_id = "createApprover",
    tag = "approvers",
    security(("adminToken" = [])),
    request_body = CreateApprover,
    responses(
        (status = 201, description = "The approver record plus its token (`token`).", body = IssuedApprover),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown, missing or \
            mistyped field, `name` blank or over 200 characters), `invalid_body`.", body = ErrorBody),
    )
)]
async fn create_approver(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    JsonBody { body, .. }: JsonBody<CreateApprover>,
) -> Result<(StatusCode, Json<IssuedApprover>)> {
    check_len("name", &body.name, MAX_NAME)?;
    let cidrs = validate::allowed_cidrs(&body.allowed_cidrs)?;
    let issued = approvals::create_approver(&state.svc, &admin, body.name, cidrs).await?;
    let issued = IssuedApprover { approver: issued.approver, token: issued.token };
    Ok((StatusCode::CREATED, Json(issued)))
}

/// List approvers (admin)
///
/// Every approver, revoked ones included, oldest first, cursor-paginated.
/// Never the token.
#[utoipa::path(
    get,
    path = "/v1/approvers",
    operation_id = "listApprovers",
    tag = "approvers",
    security(("adminToken" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of approvers, oldest first.", body = Page<Approver>),
        PageErrors,
    )
)]
async fn list_approvers(
    State(state): State<Arc<AppState>>,
    _: Admin,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<Approver>>> {
    let req = Paging::ADMIN.query(&q)?;
    Ok(Json(req.page(state.svc.store.approvers(req.slice).await?, |a| a.id.clone())))
}

/// Revoke an approver (admin)
///
/// Revokes the approver's token at once (later requests with it get `401
/// unauthorized`) and ends its console sessions. Votes it already cast
/// stand. The approver stays listed with `revoked_at`. Audited
/// (`approver.revoked`).
#[utoipa::path(
    delete,
    path = "/v1/approvers/{id}",
    operation_id = "revokeApprover",
    tag = "approvers",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Approver id (`apr_...`).")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such live approver (unknown id, or already revoked).",
         body = ErrorBody),
    )
)]
async fn revoke_approver(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    approvals::revoke_approver(&state.svc, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An empty value (`status=`) means not given; unknown parameters are `400
/// invalid_query`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only approvals in this status (default `pending`). Anything else:
    /// `400 invalid_query`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<ApprovalStatus>)]
    status: Option<String>,
    /// At most this many, 1-200 (default 50). Out of range or not an
    /// integer: `400 invalid_query`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, to get the one after it.
    /// Anything else: `400 invalid_cursor`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = "^apv_[0-9a-z]{1,64}$")]
    cursor: Option<String>,
}

/// Approvals page by up to 200, 50 by default.
const APPROVALS: Paging = Paging { default_limit: 50, max_limit: MAX_PAGE, cursor_prefix: Some("apv_") };

/// List approvals (approver or admin)
///
/// Approvals of one status (default `pending`), each with its payment,
/// agent, votes so far and the agent's spend today. Pending ones come
/// soonest-expiring first, decided ones most recently decided first; at
/// most `limit`, no further pages. A pending approval whose deadline just
/// passed may be listed as pending until the expiry sweep (every second by
/// default) or a vote expires it.
///
/// Approver tokens and the admin token may read; agent API keys get `403
/// approver_only`.
#[utoipa::path(
    get,
    path = "/v1/approvals",
    operation_id = "listApprovals",
    tag = "approvals",
    security(("approverToken" = []), ("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The approvals.", body = Page<ApprovalView>),
        (status = 400, description = "`invalid_query` (unknown or repeated parameter, unknown `status`, `limit` \
            not an integer in 1-200).", body = ErrorBody),
        (status = 403, description = "`approver_only`: an agent API key was presented (agents never read \
            approvals); `ip_not_allowed`.", body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: an agent's policy is not loaded, so its spend today \
            cannot be computed; `store_unavailable`.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<QueryParams<ListQuery>, Error>,
) -> Result<Json<Page<ApprovalView>>> {
    principal.approval_reader()?;
    let QueryParams(q) = query?;
    let status = q.status.unwrap_or_else(|| "pending".to_owned());
    if !["pending", "approved", "rejected", "expired"].contains(&status.as_str()) {
        return Err(Error::invalid(
            ErrorCode::InvalidQuery,
            "status must be pending, approved, rejected or expired",
        )
        .at("status"));
    }
    let req = APPROVALS.request(q.limit, q.cursor.as_deref())?;
    let mut data = Vec::new();
    for approval in state.svc.store.approvals(&status, req.slice).await? {
        data.push(with_spend(&state, approval).await?);
    }
    Ok(Json(req.page(data, |a| a.approval.id.clone())))
}

/// Get an approval (approver or admin)
///
/// The approval in its current state, with its payment, agent, votes and
/// the agent's spend today. Approver tokens and the admin token may read;
/// agent API keys get `403 approver_only`.
#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    operation_id = "getApproval",
    tag = "approvals",
    security(("approverToken" = []), ("adminToken" = [])),
    params(("id" = String, Path, description = "Approval id (`apv_...`).")),
    responses(
        (status = 200, description = "The approval.", body = ApprovalView),
        (status = 403, description = "`approver_only`: an agent API key was presented; `ip_not_allowed`.",
         body = ErrorBody),
        (status = 404, description = "`not_found`: no such approval.", body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: the agent's policy is not loaded, so its spend today \
            cannot be computed; `store_unavailable`.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<ApprovalView>> {
    principal.approval_reader()?;
    let approval = state.svc.store.approval(&id).await?.ok_or(Error::NotFound("approval"))?;
    Ok(Json(with_spend(&state, approval).await?))
}

/// An approval as returned: the record plus the agent's spend today, which
/// reviewers weigh the request against.
#[derive(Serialize, ToSchema)]
#[schema(as = ApprovalWithSpend)]
struct ApprovalView {
    #[serde(flatten)]
    approval: Approval,
    /// The agent's spend today, computed when the response is made. Absent
    /// only in the answer to a vote, when it could not be read then (the
    /// vote was recorded all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    agent_spend_today: Option<SpendToday>,
}

async fn with_spend(state: &AppState, approval: Approval) -> Result<ApprovalView> {
    let spend = approvals::spend_today(&state.svc, &approval.agent.id).await?;
    Ok(ApprovalView { approval, agent_spend_today: Some(spend) })
}

/// Optional: the whole body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = VoteRequest, example = json!({ "comment": "expected GPU spend for the launch" }))]
struct VoteBody {
    /// At most 2000 characters; a blank comment counts as none.
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

/// Approve a payment (approver)
///
/// Records the calling approver's approval. One approver counts once: a
/// second vote by the same approver (approve or deny) changes nothing and
/// answers `200` with the approval as it is. While fewer than
/// `approvals_required` distinct approvers have approved, the approval
/// stays `pending`. The vote that reaches the quorum approves it: the
/// payment becomes `approved` (its amount stays reserved, `provider` is
/// set) and is forwarded to the provider asynchronously.
///
/// Votes are decided one at a time, so of an approve and a deny arriving
/// together exactly one closes the approval and the other gets `409
/// approval_not_pending`. A vote arriving after `expires_at` on an approval
/// the sweep has not expired yet expires it and gets `409
/// approval_expired`; neither is recorded. The body is optional.
///
/// Only approver tokens may vote. Audited (`approval.vote`;
/// `approval.approved` when the quorum is reached). While the kill switch
/// is engaged nothing can be approved (`409 kill_switch_engaged`).
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    operation_id = "approveApproval",
    tag = "approvals",
    security(("approverToken" = [])),
    params(("id" = String, Path, description = "Approval id (`apv_...`).")),
    request_body(content = Option<VoteBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The approval after the vote: `pending` (more approvals needed, or a \
            repeated vote) or `approved`.", body = ApprovalView),
        (status = 400, description = "`invalid_json` (a non-empty body that is not valid JSON), \
            `invalid_request` (not an object, unknown or mistyped field, `comment` over 2000 characters), \
            `invalid_body`.", body = ErrorBody),
        (status = 403, description = "`approver_only`: an agent API key (agents can never approve, not even \
            their own payments) or the admin token was presented; `ip_not_allowed`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such approval.", body = ErrorBody),
        (status = 409, description = "`approval_not_pending`: already `approved`, `rejected` or `expired`; \
            `approval_expired`: its deadline had passed, and this vote expired it; `kill_switch_engaged`. The \
            vote was not recorded.", body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: the payment's policy is no longer loaded, so it \
            cannot be routed to a provider (nothing recorded); `store_unavailable`.", body = ErrorBody),
    )
)]
async fn approve(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
) -> Result<Json<ApprovalView>> {
    decide(state, principal, id, body, Verdict::Approve).await
}

/// Deny a payment (approver)
///
/// Records the calling approver's denial. A single deny rejects the
/// approval at once, whatever approvals it already has (the quorum applies
/// to approving only): the approval and the payment become `rejected` and
/// the payment's reserved amount is released. One approver counts once: an
/// approver who already voted changes nothing and gets `200` with the
/// approval as it is. The body is optional. Only approver tokens may vote.
/// Audited (`approval.vote`, `approval.rejected`).
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/deny",
    operation_id = "denyApproval",
    tag = "approvals",
    security(("approverToken" = [])),
    params(("id" = String, Path, description = "Approval id (`apv_...`).")),
    request_body(content = Option<VoteBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The approval after the vote: `rejected` (or unchanged, for an approver who \
            had already voted).", body = ApprovalView),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown or mistyped \
            field, `comment` over 2000 characters), `invalid_body`.", body = ErrorBody),
        (status = 403, description = "`approver_only`: an agent API key or the admin token was presented; \
            `ip_not_allowed`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such approval.", body = ErrorBody),
        (status = 409, description = "`approval_not_pending`, `approval_expired`: as for approving.",
         body = ErrorBody),
    )
)]
async fn deny(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
) -> Result<Json<ApprovalView>> {
    decide(state, principal, id, body, Verdict::Deny).await
}

async fn decide(
    state: Arc<AppState>,
    principal: Principal,
    id: String,
    body: Result<OptionalJsonBody<VoteBody>, Error>,
    verdict: Verdict,
) -> Result<Json<ApprovalView>> {
    let approver = principal.approver()?;
    // The comment is optional, and so is a body to carry it.
    let OptionalJsonBody(body) = body?;
    let comment = body.comment.filter(|c| !c.trim().is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("comment is longer than {MAX_COMMENT} characters"),
        )
        .at("/comment"));
    }
    let approval =
        approvals::vote(&state.svc, &approver.approver, approver.client, &id, verdict, comment).await?;
    // The vote is committed; the spend figure is information, so failing to
    // read it must not turn a recorded vote into an error.
    let spend = approvals::spend_today(&state.svc, &approval.agent.id).await.ok();
    Ok(Json(ApprovalView { approval, agent_spend_today: spend }))
}

#[cfg(test)]
mod tests {
    use super::super::openapi::tests::constraint;
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        assert_eq!(constraint("CreateApproverRequest", "name", "maxLength") as usize, MAX_NAME);
        assert_eq!(constraint("VoteRequest", "comment", "maxLength") as usize, MAX_COMMENT);
    }
}
