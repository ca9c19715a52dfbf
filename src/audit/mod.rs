//! The tamper-evident audit log: what a record is, how its hash is computed
//! and how a chain is verified. Appending happens in `store`, inside the same
//! transaction as the change the record describes.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acts, and from which network address: every record of a request
/// names both. The gateway's own work (`system`, `provider:...`) has no
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub client: Option<IpAddr>,
}

impl Actor {
    pub fn new(name: impl Into<String>, client: Option<IpAddr>) -> Self {
        Actor { name: name.into(), client }
    }

    /// The gateway itself, or a component of it.
    pub fn system(name: impl Into<String>) -> Self {
        Actor::new(name, None)
    }
}

/// Something that happened, before it is placed in the chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub actor: String,
    pub client: Option<IpAddr>,
    pub agent_id: Option<String>,
    pub subject: Option<String>,
    pub data: serde_json::Value,
}

impl AuditEvent {
    /// An event of the gateway's own (no client address).
    pub fn new(kind: &'static str, actor: impl Into<String>) -> Self {
        Self::by(kind, &Actor::system(actor))
    }

    /// An event done by `actor`, from its address.
    pub fn by(kind: &'static str, actor: &Actor) -> Self {
        Self {
            kind,
            actor: actor.name.clone(),
            client: actor.client,
            agent_id: None,
            subject: None,
            data: serde_json::Value::Null,
        }
    }

    pub fn agent(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// One record of the hash-chained audit log, as stored and exported (and
/// read back from an export). `hash` = hex SHA-256 of `prev_hash`, a newline
/// and the JSON array `[seq, id, at, type, actor, agent_id, subject, data]`,
/// with `client` appended as a ninth element when the record has one
/// (records written before addresses were kept hash as they always did);
/// the first record's `prev_hash` is 64 zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain, gapless.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(pattern = "^aud_[0-9a-z]{26}$")]
    pub id: String,
    #[schema(value_type = crate::model::Timestamp)]
    pub at: String,
    /// Event type, e.g. `agent.created`, `key.created`, `payment.approved`,
    /// `payment.denied`, `approval.vote`, `card.authorization`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who did it: `admin`, `agent:<agent id>/key:<key id>`,
    /// `approver:<approver id>`, `provider:<name>`, `card:<card token>`,
    /// `system` or `system:<component>`.
    pub actor: String,
    /// The network address the action came from (after trusted proxies),
    /// or null for the gateway's own work.
    #[serde(default)]
    pub client: Option<String>,
    /// The agent concerned, if any.
    pub agent_id: Option<String>,
    /// The object concerned (payment id, key id, card token, ...), if any.
    pub subject: Option<String>,
    /// The event's details as JSON text, kept as the exact text that was
    /// hashed.
    pub data: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must carry given its content and `prev_hash`.
    pub fn expected_hash(&self) -> String {
        // A JSON array is an unambiguous encoding of the fields: no separator
        // inside a field can make two different records hash the same.
        let fields = (
            self.seq,
            &self.id,
            &self.at,
            &self.kind,
            &self.actor,
            &self.agent_id,
            &self.subject,
            &self.data,
        );
        let canonical = match &self.client {
            None => serde_json::to_string(&fields),
            Some(client) => {
                let (seq, id, at, kind, actor, agent_id, subject, data) = fields;
                serde_json::to_string(&(seq, id, at, kind, actor, agent_id, subject, data, client))
            }
        }
        .expect("tuple of strings serializes");
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(canonical.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Where a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record seq {seq}: content does not match its hash (changed)")]
    Altered { seq: i64 },
    #[error(
        "record seq {seq}: prev_hash does not match the previous record (removed or reordered before it)"
    )]
    Unlinked { seq: i64 },
    #[error("record seq {seq}: sequence gap after {prev} (removed records)")]
    Gap { seq: i64, prev: i64 },
}

/// Incremental verifier: feed records in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    prev_hash: String,
    prev_seq: Option<i64>,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { prev_hash: GENESIS_HASH.to_owned(), prev_seq: None, checked: 0 }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        if let Some(prev) = self.prev_seq {
            if record.seq != prev + 1 {
                return Err(ChainBreak::Gap { seq: record.seq, prev });
            }
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainBreak::Unlinked { seq: record.seq });
        }
        if record.expected_hash() != record.hash {
            return Err(ChainBreak::Altered { seq: record.seq });
        }
        self.prev_hash.clone_from(&record.hash);
        self.prev_seq = Some(record.seq);
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    id: format!("aud_{seq}"),
                    at: "2026-11-26T00:00:00.000Z".into(),
                    kind: "agent.created".into(),
                    actor: "admin".into(),
                    client: (seq % 2 == 0).then(|| "192.0.2.7".into()),
                    agent_id: Some("agt_1".into()),
                    subject: None,
                    data: format!("{{\"n\":{seq}}}"),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.expected_hash();
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.check(r)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn detects_changed_removed_and_reordered_records() {
        let mut changed = chain(5);
        changed[2].data = "{\"n\":99}".into();
        assert_eq!(verify(&changed), Err(ChainBreak::Altered { seq: 3 }));

        let mut removed = chain(5);
        removed.remove(2);
        assert_eq!(verify(&removed), Err(ChainBreak::Gap { seq: 4, prev: 2 }));

        // Renumbering after a removal still breaks the hash links.
        let mut renumbered = chain(5);
        renumbered.remove(2);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert!(verify(&renumbered).is_err());

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert!(verify(&reordered).is_err());

        // The client address is covered by the hash, and so is its absence.
        let mut moved = chain(5);
        moved[1].client = Some("198.51.100.1".into());
        assert_eq!(verify(&moved), Err(ChainBreak::Altered { seq: 2 }));
        let mut erased = chain(5);
        erased[1].client = None;
        assert_eq!(verify(&erased), Err(ChainBreak::Altered { seq: 2 }));
    }
}
