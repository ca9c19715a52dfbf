//! Verifying the stored audit chain end to end.

use crate::audit::{ChainBreak, ChainVerifier};
use crate::store::{AuditFilter, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit chain broken: {0}")]
    Broken(#[from] ChainBreak),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Walks the whole chain in order; returns how many records it checked, or
/// the first changed, removed or reordered record.
pub async fn verify(store: &Store) -> Result<u64, VerifyError> {
    const PAGE: u32 = 1000;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store
            .audit_records(&AuditFilter { after_seq: Some(after), limit: PAGE, ..Default::default() })
            .await?;
        for record in &page {
            verifier.check(record)?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => return Ok(verifier.checked),
        }
    }
}
