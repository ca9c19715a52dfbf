//! Verifying the stored audit chain end to end, and publishing its head
//! outside the database.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

use super::Services;
use crate::audit::{ChainBreak, ChainVerifier};
use crate::error::Result;
use crate::store::{AuditFilter, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    // Not a `source`: the message already says it, once.
    #[error("audit chain broken: {0}")]
    Broken(ChainBreak),
    /// The chain is sound but ends before the head recorded elsewhere: its
    /// newest records were removed (which no link inside it can show).
    #[error("the audit chain ends at {last}, before the expected head {expected}: records were removed from its end")]
    HeadNotReached { expected: Head, last: String },
    #[error("record {seq} is not the expected head {expected}: the chain was rewritten")]
    HeadMismatch { seq: i64, expected: Head },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChainBreak> for VerifyError {
    fn from(e: ChainBreak) -> Self {
        VerifyError::Broken(e)
    }
}

/// The chain's newest record, as `<seq>:<sha256>`: kept outside the
/// database (a ticket, a log, the `audit.checkpoint` webhook), it shows
/// removals from the end that the chain itself cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for Head {
    type Err = String;

    fn from_str(s: &str) -> Result<Head, String> {
        let (seq, hash) =
            s.split_once(':').ok_or("a head is <seq>:<sha256>, as `purser audit head` prints it")?;
        let seq = seq.parse().map_err(|_| format!("{seq:?} is not a record number"))?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(format!("{hash:?} is not a SHA-256 in lower-case hex"));
        }
        Ok(Head { seq, hash: hash.to_owned() })
    }
}

/// The newest record's head, without walking the chain; `None` when the
/// log is empty.
pub async fn head(store: &Store) -> Result<Option<Head>, StoreError> {
    Ok(store.audit_head().await?.map(|(seq, hash)| Head { seq, hash }))
}

/// What a verification found: how many records, and the head.
#[derive(Debug)]
pub struct Verified {
    pub checked: u64,
    pub head: Option<Head>,
}

/// Walks the whole chain in order; answers how many records it checked and
/// its head, or the first changed, removed or reordered record. With
/// `expect`, the chain must also pass through that head.
pub async fn verify(store: &Store, expect: Option<&Head>) -> Result<Verified, VerifyError> {
    const PAGE: u32 = 1000;
    let mut verifier = ChainVerifier::default();
    let mut head = None;
    let mut after = 0;
    loop {
        let page = store
            .audit_records(&AuditFilter { after_seq: Some(after), limit: PAGE, ..Default::default() })
            .await?;
        for record in &page {
            verifier.check(record)?;
            if let Some(expected) = expect.filter(|e| e.seq == record.seq) {
                if expected.hash != record.hash {
                    return Err(VerifyError::HeadMismatch { seq: record.seq, expected: expected.clone() });
                }
            }
        }
        if let Some(last) = page.last() {
            head = Some(Head { seq: last.seq, hash: last.hash.clone() });
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => break,
        }
    }
    if let Some(expected) = expect.filter(|e| head.as_ref().is_none_or(|h| h.seq < e.seq)) {
        let last = head.as_ref().map_or("no record at all".to_owned(), Head::to_string);
        return Err(VerifyError::HeadNotReached { expected: expected.clone(), last });
    }
    Ok(Verified { checked: verifier.checked, head })
}

/// Chains the audit records decisions left waiting (PostgreSQL), so that a
/// reader of the log sees every committed record.
pub async fn seal(svc: &Services) -> Result<()> {
    Ok(svc.store.seal_audit().await?)
}

/// The `audit.checkpoint` webhook's data: the chain's head when it was
/// sent. Kept by whoever receives it, it lets `purser audit verify
/// --expect-head` show records removed from the end of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditCheckpoint {
    /// `<seq>:<sha256>`, as `purser audit head` prints it.
    #[schema(
        pattern = "^[0-9]+:[0-9a-f]{64}$",
        example = "1207:9f2c4e1b7a0d3c5e8f6a2b4d1c0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"
    )]
    pub head: String,
    /// The newest record's `seq`.
    pub seq: i64,
    /// The newest record's `hash`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

/// Emits `audit.checkpoint` with the chain's head, unless no endpoint
/// subscribes to it, the log is empty or its head is still
/// `unchanged_since` (the last checkpoint's `seq`); answers the head it
/// sent. The head is read in the write transaction that emits it, so it is
/// the head at that instant. (Nothing sent is nothing to skip next time: a
/// newly subscribed endpoint gets the current head.)
pub async fn checkpoint(svc: &Services, unchanged_since: Option<i64>) -> Result<Option<Head>> {
    let clock = svc.clock.clone();
    let sent = svc
        .store
        .write(move |tx| {
            Box::pin(async move {
                if !tx.subscribed("audit.checkpoint") {
                    return Ok(None);
                }
                let Some((seq, hash)) = tx.audit_head().await? else { return Ok(None) };
                if unchanged_since == Some(seq) {
                    return Ok(None);
                }
                let head = Head { seq, hash };
                let data = AuditCheckpoint { head: head.to_string(), seq, hash: head.hash.clone() };
                tx.emit("audit.checkpoint", &data, clock.now());
                Ok::<_, StoreError>(Some(head))
            })
        })
        .await?;
    Ok(sent)
}
