//! Circle developer-controlled wallets: approved `usdc` payments become
//! on-chain USDC transfers from one Circle wallet to the merchant's address.
//!
//! Wire format (Circle W3S API, bearer API key):
//! - `POST /v1/w3s/developer/transactions/transfer` with `idempotencyKey`,
//!   `entitySecretCiphertext`, `walletId`, `tokenId`, `destinationAddress`,
//!   `amounts`, `feeLevel` and `refId`; answers `{"data": {"id", "state"}}`;
//! - `GET /v1/w3s/transactions/{id}` answers
//!   `{"data": {"transaction": {"id", "state", "errorReason"}}}`.
//!
//! Exactly-once: the idempotency key is a UUID derived from the forward
//! reference, so every retry, re-forward after a crash and `status` without a
//! transaction id names the same transfer, and Circle answers it with the
//! transaction it already created. The entity secret ciphertext, which Circle
//! refuses to see twice, is made anew for every attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};
use futures_util::future::BoxFuture;
use reqwest::{StatusCode, Url};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ForwardRequest, HttpSettings, Provider, ProviderClient, Reply, Retry, Secret};
use crate::money::{format_amount, Currency};
use crate::store::ForwardOutcome;

const NAME: &str = "circle";

/// `[circle]` in the providers file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleConfig {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// API key (`PREFIX:ID:SECRET`), sent as a bearer token.
    pub api_key: Secret,
    /// The entity secret registered with Circle: 32 bytes as 64 hex digits.
    pub entity_secret: Secret,
    /// Circle's entity public key (RSA, PEM), as served by
    /// `GET /v1/w3s/config/entity/publicKey`: the PEM itself, or the path of
    /// a file holding it. Public, so not a `Secret`.
    pub entity_public_key: String,
    /// The developer-controlled wallet payments are sent from.
    pub wallet_id: String,
    /// Circle's id of the USDC token on the wallet's blockchain.
    pub token_id: String,
    #[serde(default)]
    pub fee_level: FeeLevel,
    /// Merchant id -> on-chain address. Only the operator decides where
    /// money goes; a merchant without an entry is not payable.
    #[serde(default)]
    pub destinations: BTreeMap<String, String>,
    #[serde(default)]
    pub poll: PollSettings,
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> String {
    "https://api.circle.com".into()
}

/// How hard Circle is asked for the gas price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FeeLevel {
    Low,
    #[default]
    Medium,
    High,
}

/// How long one forward or status call follows a new transaction before
/// leaving it `processing` for the reconciler (`[circle.poll]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollSettings {
    /// Looks at the transaction per call; the first comes right away.
    pub attempts: u32,
    /// Pause between two looks.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings { attempts: 3, interval: Duration::from_secs(1) }
    }
}

/// The Circle adapter.
pub struct Circle {
    client: ProviderClient,
    api_key: Secret,
    entity_secret: [u8; 32],
    public_key: RsaPublicKey,
    wallet_id: String,
    token_id: String,
    fee_level: FeeLevel,
    destinations: BTreeMap<String, String>,
    poll: PollSettings,
}

impl Circle {
    pub fn new(config: &CircleConfig) -> anyhow::Result<Circle> {
        check_api_key(&config.api_key)?;
        let circle = Circle {
            client: ProviderClient::new(NAME, &config.base_url, config.http.clone())?,
            entity_secret: entity_secret_bytes(&config.entity_secret)?,
            api_key: config.api_key.clone(),
            public_key: load_public_key(&config.entity_public_key)?,
            wallet_id: config.wallet_id.clone(),
            token_id: config.token_id.clone(),
            fee_level: config.fee_level,
            destinations: config.destinations.clone(),
            poll: config.poll.clone(),
        };
        // Proves at start that the key can encrypt the secret, so a
        // per-request encryption failure cannot be a configuration problem.
        circle.ciphertext().map_err(|e| anyhow::anyhow!("circle: entity_public_key cannot encrypt: {e}"))?;
        Ok(circle)
    }

    /// A fresh `entitySecretCiphertext`: OAEP padding is random, so every
    /// call gives a different one, as Circle requires per request.
    fn ciphertext(&self) -> Result<String, rsa::Error> {
        let sealed =
            self.public_key.encrypt(&mut rand::thread_rng(), Oaep::new::<Sha256>(), &self.entity_secret)?;
        Ok(BASE64_STANDARD.encode(sealed))
    }

    /// What to send for `req`, or why it cannot be sent at all.
    fn transfer<'a>(&'a self, req: &'a ForwardRequest) -> Result<Transfer<'a>, ForwardOutcome> {
        let unpayable = |code: &str, message: String| ForwardOutcome::Failed { code: code.into(), message };
        // USD is paid 1:1 in USDC, as policies count USDC at par with USD.
        if req.currency != Currency::Usdc && Currency::Usdc.pegged_to() != Some(req.currency) {
            return Err(unpayable(
                "currency_not_supported",
                format!("circle pays in USDC (or USD at par), not {}", req.currency.code()),
            ));
        }
        let Some(destination) = self.destinations.get(&req.merchant_id) else {
            return Err(unpayable(
                "merchant_not_payable",
                format!("merchant {:?} has no circle destination address configured", req.merchant_id),
            ));
        };
        Ok(Transfer {
            idempotency_key: idempotency_key(&req.reference),
            reference: &req.reference,
            destination,
            amount: format_amount(req.amount, Currency::Usdc),
        })
    }

    /// Creates the transfer (or, under a used idempotency key, finds the one
    /// Circle already made) and follows it.
    async fn submit(&self, transfer: Transfer<'_>) -> ForwardOutcome {
        let url = self.client.url("v1/w3s/developer/transactions/transfer");
        let sent = self
            .client
            .send(Retry::Idempotent, |http| {
                http.post(url.clone()).bearer_auth(self.api_key.expose()).json(&self.body(&transfer))
            })
            .await;
        let reply = match sent {
            Ok(reply) => reply,
            Err(e) => return e.forward_outcome(),
        };
        if !reply.status.is_success() {
            return refused(&reply);
        }
        let created: Envelope<Created> = match reply.json(NAME) {
            Ok(created) => created,
            Err(failed) => return failed,
        };
        tracing::info!(reference = transfer.reference, transaction = %created.data.id, "circle transfer created");
        self.follow(&created.data.id).await
    }

    fn body<'a>(&'a self, transfer: &'a Transfer<'a>) -> TransferBody<'a> {
        let ciphertext = self.ciphertext().unwrap_or_else(|e| {
            // Checked at start, so not expected; Circle refuses the empty
            // ciphertext with a 400 and nothing moves.
            tracing::error!(error = %e, "circle: could not encrypt the entity secret");
            String::new()
        });
        TransferBody {
            idempotency_key: &transfer.idempotency_key,
            entity_secret_ciphertext: ciphertext,
            wallet_id: &self.wallet_id,
            token_id: &self.token_id,
            destination_address: transfer.destination,
            amounts: [&transfer.amount],
            fee_level: self.fee_level,
            ref_id: transfer.reference,
        }
    }

    /// Looks at transaction `id` until it is final or the poll budget is
    /// spent. Once Circle has the transaction only its state can fail the
    /// payment: an unreadable or missing answer leaves it processing.
    async fn follow(&self, id: &str) -> ForwardOutcome {
        for look in 0..self.poll.attempts.max(1) {
            if look > 0 {
                tokio::time::sleep(self.poll.interval).await;
            }
            if let Some(outcome) = self.look(id).await.as_ref().and_then(Transaction::outcome) {
                return outcome;
            }
        }
        ForwardOutcome::Processing { transaction_id: Some(id.to_owned()) }
    }

    async fn look(&self, id: &str) -> Option<Transaction> {
        let url = transaction_url(self.client.url("v1/w3s/transactions"), id);
        let reply = self
            .client
            .send(Retry::Idempotent, |http| http.get(url.clone()).bearer_auth(self.api_key.expose()))
            .await
            .ok()?;
        if !reply.status.is_success() {
            tracing::warn!(
                transaction = id,
                status = reply.status.as_u16(),
                "circle transaction lookup refused"
            );
            return None;
        }
        match reply.json::<Envelope<Lookup>>(NAME) {
            Ok(found) => Some(found.data.transaction),
            Err(_) => {
                tracing::warn!(transaction = id, "circle transaction lookup answered an unreadable body");
                None
            }
        }
    }
}

impl Provider for Circle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move {
            match self.transfer(req) {
                Ok(transfer) => self.submit(transfer).await,
                Err(unpayable) => unpayable,
            }
        })
    }

    fn status<'a>(
        &'a self,
        req: &'a ForwardRequest,
        transaction_id: Option<&'a str>,
    ) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move {
            if let Some(id) = transaction_id {
                return self.follow(id).await;
            }
            match self.transfer(req) {
                Ok(transfer) => self.submit(transfer).await,
                Err(why) => {
                    // An earlier forward may have created the transfer, so
                    // this payment cannot fail here; the operator has to
                    // restore the merchant's destination.
                    tracing::warn!(payment = %req.payment_id, ?why, "circle cannot resubmit a processing payment");
                    ForwardOutcome::Processing { transaction_id: None }
                }
            }
        })
    }
}

/// One payment as Circle sees it; the same on every attempt but the
/// ciphertext.
struct Transfer<'a> {
    idempotency_key: String,
    reference: &'a str,
    destination: &'a str,
    amount: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody<'a> {
    idempotency_key: &'a str,
    entity_secret_ciphertext: String,
    wallet_id: &'a str,
    token_id: &'a str,
    destination_address: &'a str,
    amounts: [&'a str; 1],
    fee_level: FeeLevel,
    ref_id: &'a str,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Lookup {
    transaction: Transaction,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transaction {
    id: String,
    state: String,
    #[serde(default)]
    error_reason: Option<String>,
}

impl Transaction {
    /// The payment's outcome if the state is final, else `None`.
    /// `CONFIRMED` is not final: the transfer is in a block but lacks the
    /// confirmations Circle requires, and a reorg can still drop it; Circle
    /// moves it to `COMPLETE` once it cannot.
    fn outcome(&self) -> Option<ForwardOutcome> {
        match self.state.as_str() {
            "COMPLETE" => Some(ForwardOutcome::Succeeded { transaction_id: self.id.clone() }),
            "FAILED" | "CANCELLED" | "DENIED" => Some(ForwardOutcome::Failed {
                code: "provider_failed".into(),
                message: format!(
                    "circle transaction {} ended {}: {}",
                    self.id,
                    self.state,
                    error_reason(self.error_reason.as_deref())
                ),
            }),
            _ => None,
        }
    }
}

/// Circle's `errorReason` is a code such as `INSUFFICIENT_TOKEN`; anything
/// else is cut down to that alphabet, since agents read the message.
fn error_reason(reason: Option<&str>) -> String {
    let code: String = reason
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if code.is_empty() {
        "no reason given".into()
    } else {
        code
    }
}

/// What a refused create means. Authentication, permission, conflict and
/// rate-limit answers come before Circle looks at the idempotency key, so
/// they cannot prove that an earlier attempt (or a forward before a crash)
/// did not create the transfer: the payment waits, and the reconciler
/// resubmits. Other 4xx are Circle refusing this transfer.
fn refused(reply: &Reply) -> ForwardOutcome {
    match reply.status {
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::CONFLICT
        | StatusCode::TOO_MANY_REQUESTS => {
            tracing::warn!(status = reply.status.as_u16(), "circle refused a transfer for now");
            ForwardOutcome::Processing { transaction_id: None }
        }
        _ => reply.refused(NAME),
    }
}

/// `{base}/{id}`, with the id as one escaped path segment whatever Circle
/// put in it.
fn transaction_url(mut base: Url, id: &str) -> Url {
    if let Ok(mut segments) = base.path_segments_mut() {
        segments.pop_if_empty().push(id);
    }
    base
}

/// A UUID v4-shaped key from the forward reference: the same payment always
/// gets the same key.
fn idempotency_key(reference: &str) -> String {
    let digest = Sha256::digest(reference.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn check_api_key(key: &Secret) -> anyhow::Result<()> {
    let parts: Vec<&str> = key.expose().split(':').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        anyhow::bail!("circle: api_key must have the form PREFIX:ID:SECRET ({key:?})");
    }
    Ok(())
}

fn entity_secret_bytes(secret: &Secret) -> anyhow::Result<[u8; 32]> {
    // The decoder's own error would quote the offending character.
    let bytes = hex::decode(secret.expose()).unwrap_or_default();
    bytes.try_into().map_err(|_| anyhow::anyhow!("circle: entity_secret must be 64 hex digits ({secret:?})"))
}

/// The PEM itself or a file holding it; PKCS#1 (`RSA PUBLIC KEY`, as Circle
/// serves it) or SPKI (`PUBLIC KEY`).
fn load_public_key(value: &str) -> anyhow::Result<RsaPublicKey> {
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| anyhow::anyhow!("circle: entity_public_key file {value}: {e}"))?
    };
    let pem = pem.trim();
    let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
    } else {
        RsaPublicKey::from_public_key_pem(pem).map_err(|e| e.to_string())
    };
    key.map_err(|e| anyhow::anyhow!("circle: entity_public_key is not an RSA public key in PEM: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_stable_uuid_v4() {
        let key = idempotency_key("fwd_01JD0000000000000000000000");
        assert_eq!(key, idempotency_key("fwd_01JD0000000000000000000000"));
        assert_ne!(key, idempotency_key("fwd_01JD0000000000000000000001"));
        let groups: Vec<&str> = key.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    fn txn(state: &str, reason: Option<&str>) -> Transaction {
        Transaction { id: "t1".into(), state: state.into(), error_reason: reason.map(Into::into) }
    }

    #[test]
    fn only_final_states_settle() {
        assert_eq!(
            txn("COMPLETE", None).outcome(),
            Some(ForwardOutcome::Succeeded { transaction_id: "t1".into() })
        );
        for state in ["FAILED", "CANCELLED", "DENIED"] {
            let Some(ForwardOutcome::Failed { code, message }) =
                txn(state, Some("INSUFFICIENT_TOKEN")).outcome()
            else {
                panic!("{state} must fail");
            };
            assert_eq!(code, "provider_failed");
            assert!(message.contains(state) && message.contains("INSUFFICIENT_TOKEN"), "{message}");
        }
        for state in ["INITIATED", "QUEUED", "CLEARED", "SENT", "CONFIRMED", "STUCK", "SOMETHING_NEW"] {
            assert_eq!(txn(state, None).outcome(), None, "{state}");
        }
    }

    #[test]
    fn error_reasons_are_codes_only() {
        assert_eq!(error_reason(Some("bad\n<script>x")), "badscriptx");
        assert_eq!(error_reason(None), "no reason given");
    }

    #[test]
    fn transaction_ids_stay_one_path_segment() {
        let base = Url::parse("https://api.circle.com/v1/w3s/transactions").unwrap();
        assert_eq!(transaction_url(base.clone(), "abc-1").path(), "/v1/w3s/transactions/abc-1");
        assert_eq!(transaction_url(base, "../x?y").path(), "/v1/w3s/transactions/..%2Fx%3Fy");
    }
}
