//! Rotating the encryption key: every stored secret sealed anew under the
//! new key, all in one transaction.
//!
//! The order that keeps webhooks flowing: start the gateways with the new
//! key as `PURSER_ENCRYPTION_KEY` and the old one in
//! `PURSER_ENCRYPTION_OLD_KEYS` (they seal with the new key and open with
//! both), run [`rotate`] (`purser secrets rotate`), then drop the old key.

use crate::store::{Store, StoreError};
use crate::webhooks::secretbox::SecretBox;

/// What a rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Sealed anew under the new key.
    pub resealed: usize,
    /// Already under the new key (sealed by a gateway that has it, or by an
    /// earlier run), left alone.
    pub already: usize,
    /// Changed by a gateway between the read and the write (a secret
    /// rotated meanwhile); run again to cover them.
    pub changed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// Nothing was changed: some values open with neither key.
    #[error(
        "{} stored secret(s) open with neither key (webhook endpoints {}): wrong --from-key-file? \
         Nothing was changed",
        .0.len(),
        .0.join(", ")
    )]
    Unreadable(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals every stored secret that `to` cannot open under `to`, reading it
/// with `from`. Either every such value is replaced or, when one cannot be
/// read, none is.
pub async fn rotate(store: &Store, from: &SecretBox, to: &SecretBox) -> Result<Rotated, RotateError> {
    let mut rotated = Rotated::default();
    let mut work = Vec::new();
    let mut unreadable = Vec::new();
    for stored in store.stored_secrets().await? {
        if to.sealed_with_current(&stored.sealed) {
            rotated.already += 1;
            continue;
        }
        match from.open(&stored.sealed) {
            Ok(plain) => work.push((stored, to.seal(&plain))),
            Err(_) => unreadable.push(stored.endpoint_id),
        }
    }
    if !unreadable.is_empty() {
        unreadable.dedup();
        return Err(RotateError::Unreadable(unreadable));
    }
    let replaced = store
        .write(move |tx| {
            Box::pin(async move {
                let mut replaced = 0;
                for (stored, sealed) in &work {
                    replaced += usize::from(tx.reseal(stored, sealed).await?);
                }
                Ok::<_, StoreError>((replaced, work.len()))
            })
        })
        .await?;
    rotated.resealed = replaced.0;
    rotated.changed = replaced.1 - replaced.0;
    Ok(rotated)
}
