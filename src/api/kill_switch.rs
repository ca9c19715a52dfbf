//! `GET`, `POST` (engage) and `DELETE` (release) `/v1/kill-switch`: the
//! gateway-wide stop, for admins.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::OptionalJsonBody;
use super::openapi::ErrorBody;
use crate::api::AppState;
use crate::error::{Error, ErrorCode, Result};
use crate::model::KillSwitchState;
use crate::service::kill_switch;

const MAX_REASON: usize = 1000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(show, engage, release))
}

/// Optional: the whole body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EngageKillSwitchRequest, example = json!({ "reason": "agent fleet compromised" }))]
struct Engage {
    /// 1-1000 characters, not blank; defaults to `engaged by admin`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    reason: Option<String>,
}

/// Read the kill switch (admin)
#[utoipa::path(
    get,
    path = "/v1/kill-switch",
    operation_id = "getKillSwitch",
    tag = "operations",
    security(("adminToken" = [])),
    responses((status = 200, description = "The kill switch as it stands.", body = KillSwitchState))
)]
async fn show(State(state): State<Arc<AppState>>, _: Admin) -> Json<KillSwitchState> {
    Json(state.svc.store.kill_switch().into())
}

/// Engage the kill switch (admin)
///
/// Stops every payment at once, on every replica: new payments are denied
/// (`kill_switch`), no approval can be approved, and approved payments are
/// not forwarded (they wait, reserved, until the switch is released).
/// Engaging an engaged switch changes nothing. Audited and emitted as the
/// `kill_switch.engaged` webhook.
#[utoipa::path(
    post,
    path = "/v1/kill-switch",
    operation_id = "engageKillSwitch",
    tag = "operations",
    security(("adminToken" = [])),
    request_body(content = Option<Engage>, content_type = "application/json"),
    responses(
        (status = 200, description = "The kill switch, engaged.", body = KillSwitchState),
        (status = 400, description = "`invalid_json` (a non-empty body that is not valid JSON), \
            `invalid_request` (not an object, unknown field, `reason` blank or over 1000 characters, a NUL \
            character), `invalid_body`.", body = ErrorBody),
    )
)]
async fn engage(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    OptionalJsonBody(body): OptionalJsonBody<Engage>,
) -> Result<Json<KillSwitchState>> {
    let reason = body.reason.unwrap_or_else(|| "engaged by admin".to_owned());
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("reason must be 1-{MAX_REASON} characters"),
        )
        .at("/reason"));
    }
    Ok(Json(kill_switch::set(&state.svc, &admin, Some(reason)).await?.into()))
}

/// Release the kill switch (admin)
///
/// Payments are decided and forwarded again. Audited and emitted as the
/// `kill_switch.released` webhook.
#[utoipa::path(
    delete,
    path = "/v1/kill-switch",
    operation_id = "releaseKillSwitch",
    tag = "operations",
    security(("adminToken" = [])),
    responses((status = 200, description = "The kill switch, released.", body = KillSwitchState))
)]
async fn release(State(state): State<Arc<AppState>>, Admin(admin): Admin) -> Result<Json<KillSwitchState>> {
    Ok(Json(kill_switch::set(&state.svc, &admin, None).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::super::openapi::tests::constraint;
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        assert_eq!(constraint("EngageKillSwitchRequest", "reason", "maxLength") as usize, MAX_REASON);
    }
}
