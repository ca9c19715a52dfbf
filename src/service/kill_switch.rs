//! The gateway-wide kill switch: while engaged, every new payment is denied
//! (`kill_switch`), no approval can be approved, and approved payments are
//! not forwarded (they wait, reserved, until it is released). Engaging and
//! releasing are audited and emitted as webhooks.

use super::Services;
use crate::audit::Actor;
use crate::error::Result;
use crate::model::{KillSwitch, KillSwitchState};

/// Engages the switch (`Some(reason)`) or releases it (`None`); returns
/// the switch as it now stands. Doing what is already done changes nothing.
pub async fn set(svc: &Services, actor: &Actor, reason: Option<String>) -> Result<Option<KillSwitch>> {
    let by = actor.name.clone();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let to = reason.map(|reason| KillSwitch { reason, actor: by, engaged_at: act.ts.clone() });
            if !tx.set_kill_switch(to.as_ref()).await? {
                return Ok(((), None));
            }
            let kind = if to.is_some() { "kill_switch.engaged" } else { "kill_switch.released" };
            let data = KillSwitchState::from(to);
            tx.emit(kind, &data, act.now);
            let audited = serde_json::to_value(&data).expect("the switch serializes");
            Ok(((), Some(act.event(kind).data(audited))))
        })
    })
    .await?;
    svc.store.reload_kill_switch().await?;
    Ok(svc.store.kill_switch())
}
