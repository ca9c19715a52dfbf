//! `GET`, `POST` (engage) and `DELETE` (release) `/v1/kill-switch`: the
//! gateway-wide stop, for admins.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::extract::OptionalJsonBody;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::KillSwitch;
use crate::service::kill_switch;

const ADMIN: &str = "admin";
const MAX_REASON: usize = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/v1/kill-switch", get(show).post(engage).delete(release))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Engage {
    #[serde(default)]
    reason: Option<String>,
}

fn render(current: Option<KillSwitch>) -> Json<Value> {
    Json(json!({ "engaged": current.is_some(), "kill_switch": current }))
}

async fn show(State(state): State<Arc<AppState>>, _: Admin) -> Json<Value> {
    render(state.store.kill_switch())
}

async fn engage(
    State(state): State<Arc<AppState>>,
    _: Admin,
    OptionalJsonBody(body): OptionalJsonBody<Engage>,
) -> Result<Json<Value>> {
    let reason = body.reason.unwrap_or_else(|| "engaged by admin".to_owned());
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON {
        return Err(Error::invalid("invalid_request", format!("reason must be 1-{MAX_REASON} characters")));
    }
    Ok(render(kill_switch::set(&state, ADMIN, Some(reason)).await?))
}

async fn release(State(state): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>> {
    Ok(render(kill_switch::set(&state, ADMIN, None).await?))
}
