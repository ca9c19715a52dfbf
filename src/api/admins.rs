//! Administrators: people with their own admin tokens and roles, managed
//! by an admin. The configured `PURSER_ADMIN_TOKEN` is the bootstrap
//! credential that creates the first ones.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{JsonBody, PathParams, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, PageErrors, PageQuery, Paging};
use super::validate::{self, check_len, Cidr, MAX_NAME};
use crate::api::AppState;
use crate::error::Result;
use crate::model::{AdminRole, Administrator};
use crate::service::admins;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAdminRequest, example = json!({ "name": "Dana (security)", "role": "auditor" }))]
struct CreateAdmin {
    /// 1-200 characters, not blank; audit records name the administrator
    /// with it.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\u000c\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff][^\\u0000]*$"
    )]
    name: String,
    role: AdminRole,
    /// CIDRs (or single IP addresses) the token may be used from; empty or
    /// absent: anywhere.
    #[serde(default)]
    #[schema(value_type = Vec<Cidr>)]
    allowed_cidrs: Vec<String>,
}

/// The new administrator's record plus its token, shown this one time only.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedAdmin)]
struct IssuedAdmin {
    #[serde(flatten)]
    admin: Administrator,
    /// The admin token (`psr_admin_` + base64url of 32 random bytes). Hand
    /// it to the administrator now: purser keeps only its SHA-256.
    #[schema(pattern = "^psr_admin_[A-Za-z0-9_-]{43}$")]
    token: String,
}

/// Create an administrator (admin)
///
/// Mints a `psr_admin_` token for a person, with a role: `admin` (the whole
/// admin API) or `auditor` (reads agents and their keys, payments,
/// approvals and the audit log; changes nothing). The response is the only
/// time the token is shown; purser stores only its SHA-256. Audit records
/// of what the administrator does name it as `admin:<id>/<name>`. Audited
/// (`admin.created`, without the token).
#[utoipa::path(
    post,
    path = "/v1/admins",
    operation_id = "createAdmin",
    tag = "admins",
    security(("adminToken" = [])),
    request_body = CreateAdmin,
    responses(
        (status = 201, description = "The administrator's record plus its token (`token`).", body = IssuedAdmin),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown, missing or \
            mistyped field, `name` blank or over 200 characters, `role` not `admin` or `auditor`, \
            `allowed_cidrs` not a CIDR or IP address), `invalid_body`.", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    JsonBody { body, .. }: JsonBody<CreateAdmin>,
) -> Result<(StatusCode, Json<IssuedAdmin>)> {
    check_len("name", &body.name, MAX_NAME)?;
    let cidrs = validate::allowed_cidrs(&body.allowed_cidrs)?;
    let issued = admins::create(&state.svc, &admin, body.name, body.role, cidrs).await?;
    Ok((StatusCode::CREATED, Json(IssuedAdmin { admin: issued.admin, token: issued.token })))
}

/// List administrators (admin)
///
/// Every administrator, revoked ones included, oldest first,
/// cursor-paginated. Never the token. The configured bootstrap token is not
/// an administrator record and is not listed.
#[utoipa::path(
    get,
    path = "/v1/admins",
    operation_id = "listAdmins",
    tag = "admins",
    security(("adminToken" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of administrators, oldest first.", body = Page<Administrator>),
        PageErrors,
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<Administrator>>> {
    let req = Paging::ADMIN.query(&q)?;
    Ok(Json(req.page(state.svc.store.admins(req.slice).await?, |a| a.id.clone())))
}

/// Revoke an administrator (admin)
///
/// Revokes the administrator's token at once (later requests with it get
/// `401 unauthorized`), on every replica: the token is checked against the
/// database on each request. The record stays listed with `revoked_at`.
/// Audited (`admin.revoked`).
#[utoipa::path(
    delete,
    path = "/v1/admins/{id}",
    operation_id = "revokeAdmin",
    tag = "admins",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Administrator id (`adm_...`).")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such live administrator (unknown id, or already \
            revoked).", body = ErrorBody),
    )
)]
async fn revoke(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    admins::revoke(&state.svc, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
