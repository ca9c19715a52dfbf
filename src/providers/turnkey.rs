//! Turnkey (MPC wallet): pays a merchant in an ERC-20 token (USDC) from a
//! Turnkey wallet through Turnkey's transaction management
//! (`ACTIVITY_TYPE_ETH_SEND_TRANSACTION_V2`, the version Turnkey's API
//! reference and SDKs describe: Turnkey signs, broadcasts and tracks the
//! transaction, whose one call is the token transfer).
//!
//! Every request is a JSON POST stamped with the API key: `X-Stamp` is
//! base64url (no padding) of `{"publicKey", "scheme", "signature"}`, the
//! signature being DER ECDSA P-256/SHA-256 over the exact body bytes.
//!
//! Exactly-once: Turnkey hashes an activity's POST body into a fingerprint
//! and answers any resubmission of the same body with the existing activity.
//! The body of one payment is byte-identical on every attempt (its
//! `timestampMs` is the time the forward was decided, from the reference's
//! ULID, not the clock), so submissions are retried freely and a
//! resubmission finds the activity. Turnkey refuses `timestampMs` older
//! than an hour: a payment whose provider stays unreachable for an hour
//! after approval is refused then (nothing moves) and fails.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ForwardOutcome, ForwardRequest, HttpSettings, Provider, ProviderClient, Retry, Secret};
use crate::money::Currency;

const NAME: &str = "turnkey";
const SUBMIT_PATH: &str = "public/v1/submit/eth_send_transaction";
const ACTIVITY_PATH: &str = "public/v1/query/get_activity";
const TX_STATUS_PATH: &str = "public/v1/query/get_send_transaction_status";
const STAMP_SCHEME: &str = "SIGNATURE_SCHEME_TK_API_P256";
/// `transfer(address,uint256)`.
const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// The `[turnkey]` section of the providers file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnkeyConfig {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    pub organization_id: String,
    /// Compressed P-256 public key of the API key, hex (not secret).
    pub api_public_key: String,
    /// The API key's private scalar, hex.
    pub api_private_key: Secret,
    /// The wallet account address that pays (Turnkey's `from`).
    pub sign_with: String,
    /// CAIP-2 chain id, e.g. `eip155:8453` (Base) or `eip155:84532` (Base Sepolia).
    pub caip2: String,
    /// The token's contract address on that chain.
    pub token_contract: String,
    #[serde(default = "default_token_decimals")]
    pub token_decimals: u32,
    /// Gas paid by Turnkey's Gas Station; without it the wallet pays gas
    /// and `max_fee_per_gas` and `max_priority_fee_per_gas` are required.
    #[serde(default = "default_sponsor")]
    pub sponsor: bool,
    /// Gas settings (decimal strings, wei) for unsponsored transactions;
    /// fixed here because the body must not change between attempts.
    #[serde(default)]
    pub gas_limit: Option<String>,
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
    #[serde(default)]
    pub max_priority_fee_per_gas: Option<String>,
    /// merchant_id -> the address that merchant is paid at.
    #[serde(default)]
    pub destinations: BTreeMap<String, String>,
    /// Pause between two status queries while a forward waits.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Status queries a forward makes before leaving the payment
    /// `processing` for the reconciler.
    #[serde(default = "default_poll_attempts")]
    pub poll_attempts: u32,
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> String {
    "https://api.turnkey.com".to_owned()
}
fn default_token_decimals() -> u32 {
    6
}
fn default_sponsor() -> bool {
    true
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_poll_attempts() -> u32 {
    5
}

pub struct Turnkey {
    client: ProviderClient,
    key: SigningKey,
    public_key: String,
    organization_id: String,
    from: String,
    caip2: String,
    token_contract: [u8; 20],
    token_decimals: u32,
    gas: Gas,
    destinations: BTreeMap<String, [u8; 20]>,
    poll_interval: Duration,
    poll_attempts: u32,
}

/// Who pays gas, as sent in the activity's parameters.
struct Gas {
    sponsor: bool,
    gas_limit: Option<String>,
    max_fee_per_gas: Option<String>,
    max_priority_fee_per_gas: Option<String>,
}

impl Turnkey {
    pub fn new(config: &TurnkeyConfig) -> anyhow::Result<Self> {
        let key = signing_key(config.api_private_key.expose())?;
        let public_key = config.api_public_key.to_ascii_lowercase();
        let derived = hex::encode(key.verifying_key().to_encoded_point(true).as_bytes());
        anyhow::ensure!(derived == public_key, "turnkey: api_public_key does not belong to api_private_key");
        anyhow::ensure!(config.token_decimals <= 18, "turnkey: token_decimals must be at most 18");
        anyhow::ensure!(
            config.sponsor || (config.max_fee_per_gas.is_some() && config.max_priority_fee_per_gas.is_some()),
            "turnkey: sponsor = false needs max_fee_per_gas and max_priority_fee_per_gas"
        );
        parse_address(&config.sign_with).map_err(|e| anyhow::anyhow!("turnkey: sign_with: {e}"))?;
        let token_contract = parse_address(&config.token_contract)
            .map_err(|e| anyhow::anyhow!("turnkey: token_contract: {e}"))?;
        let destinations = config
            .destinations
            .iter()
            .map(|(merchant, address)| {
                let parsed = parse_address(address)
                    .map_err(|e| anyhow::anyhow!("turnkey: destinations.{merchant}: {e}"))?;
                Ok((merchant.clone(), parsed))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Turnkey {
            client: ProviderClient::new(NAME, &config.base_url, config.http.clone())?,
            key,
            public_key,
            organization_id: config.organization_id.clone(),
            from: config.sign_with.clone(),
            caip2: config.caip2.clone(),
            token_contract,
            token_decimals: config.token_decimals,
            gas: Gas {
                sponsor: config.sponsor,
                gas_limit: config.gas_limit.clone(),
                max_fee_per_gas: config.max_fee_per_gas.clone(),
                max_priority_fee_per_gas: config.max_priority_fee_per_gas.clone(),
            },
            destinations,
            poll_interval: config.poll_interval,
            poll_attempts: config.poll_attempts,
        })
    }

    /// The activity body for `req`: the same bytes on every call.
    fn activity_body(&self, req: &ForwardRequest) -> Result<Vec<u8>, ForwardOutcome> {
        let Some(to) = self.destinations.get(&req.merchant_id) else {
            return Err(failed(
                "merchant_not_payable",
                format!("turnkey: no destination address is configured for merchant {:?}", req.merchant_id),
            ));
        };
        let units = self.token_units(req)?;
        // Turnkey refuses timestamps over an hour old; the decision time is
        // recent when the payment is forwarded, and the same on every retry.
        let timestamp_ms = req.decided_at().map(|t| t.timestamp_millis()).ok_or_else(|| {
            failed("invalid_reference", format!("turnkey: reference {:?} is not a ULID", req.reference))
        })?;
        let body = SubmitBody {
            kind: ACTIVITY_TYPE,
            timestamp_ms: timestamp_ms.to_string(),
            organization_id: &self.organization_id,
            parameters: EthSendTransaction {
                from: &self.from,
                sponsor: self.gas.sponsor,
                caip2: &self.caip2,
                calls: [Call {
                    to: format!("0x{}", hex::encode(self.token_contract)),
                    value: "0",
                    data: format!("0x{}", hex::encode(transfer_call(to, units))),
                }],
                gas_limit: self.gas.gas_limit.as_deref(),
                max_fee_per_gas: self.gas.max_fee_per_gas.as_deref(),
                max_priority_fee_per_gas: self.gas.max_priority_fee_per_gas.as_deref(),
            },
        };
        serde_json::to_vec(&body).map_err(|e| failed("internal_error", format!("turnkey: {e}")))
    }

    /// The amount in the token's base units. USDC pays USDC amounts and
    /// amounts in the fiat it is pegged to, at par.
    fn token_units(&self, req: &ForwardRequest) -> Result<u128, ForwardOutcome> {
        if req.currency != Currency::Usdc && Some(req.currency) != Currency::Usdc.pegged_to() {
            return Err(failed(
                "currency_not_supported",
                format!("turnkey pays in USDC; the payment is in {}", req.currency.code()),
            ));
        }
        let scale = Decimal::from(10u64.pow(self.token_decimals));
        req.amount
            .checked_mul(scale)
            .filter(|units| units.fract().is_zero() && units.is_sign_positive())
            .and_then(|units| units.to_u128())
            .ok_or_else(|| {
                failed(
                    "amount_not_payable",
                    format!("turnkey: {} is not a whole number of token units", req.amount),
                )
            })
    }

    /// The `X-Stamp` header value for `body`.
    fn stamp(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        let stamp = serde_json::json!({
            "publicKey": self.public_key,
            "scheme": STAMP_SCHEME,
            "signature": hex::encode(signature.to_der().as_bytes()),
        });
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stamp.to_string())
    }

    /// POSTs `body` to `path`, stamped. Every call here may be repeated:
    /// queries change nothing and submissions are deduplicated by body.
    async fn post(&self, path: &str, body: Vec<u8>) -> Result<super::Reply, super::CallError> {
        let url = self.client.url(path);
        let stamp = self.stamp(&body);
        self.client
            .send(Retry::Idempotent, |http| {
                http.post(url.clone())
                    .header("Content-Type", "application/json")
                    .header("X-Stamp", &stamp)
                    .body(body.clone())
            })
            .await
    }

    /// Submits the payment's activity; `Err` is the outcome when no
    /// activity came back.
    async fn submit(&self, body: Vec<u8>) -> Result<Activity, ForwardOutcome> {
        let reply = self.post(SUBMIT_PATH, body).await.map_err(super::CallError::forward_outcome)?;
        if !reply.status.is_success() {
            return Err(reply.refused(NAME));
        }
        // An unreadable answer is a clean failure, as for every provider
        // (`Reply::json`): it does not say that anything was created.
        reply.json::<ActivityReply>(NAME).map(|r| r.activity)
    }

    /// A query whose failure leaves the payment where it was: money may
    /// have moved, so no error here fails it.
    async fn query<T: serde::de::DeserializeOwned>(&self, path: &str, body: serde_json::Value) -> Option<T> {
        let reply = self.post(path, body.to_string().into_bytes()).await.ok()?;
        if !reply.status.is_success() {
            tracing::warn!(provider = NAME, status = reply.status.as_u16(), path, "status query refused");
            return None;
        }
        reply.json(NAME).ok()
    }

    /// A resubmission answers with the activity; any other answer, even a
    /// refusal (Turnkey refuses bodies older than an hour), does not prove
    /// the first submission never arrived.
    async fn resubmit(&self, body: Vec<u8>) -> Option<Activity> {
        match self.submit(body).await {
            Ok(activity) => Some(activity),
            Err(outcome) => {
                tracing::warn!(provider = NAME, ?outcome, "resubmission gave no activity; still processing");
                None
            }
        }
    }

    async fn get_activity(&self, activity_id: &str) -> Option<Activity> {
        let body = serde_json::json!({ "organizationId": self.organization_id, "activityId": activity_id });
        self.query::<ActivityReply>(ACTIVITY_PATH, body).await.map(|r| r.activity)
    }

    /// Follows `activity` until it is final, querying at most `polls`
    /// times; still open after that, it is left to the reconciler.
    async fn follow(&self, mut activity: Activity, polls: u32) -> ForwardOutcome {
        let mut left = polls;
        loop {
            if let Some(outcome) = self.judge(&activity).await {
                return outcome;
            }
            if left == 0 {
                return ForwardOutcome::Processing { transaction_id: Some(activity.id) };
            }
            left -= 1;
            tokio::time::sleep(self.poll_interval).await;
            match self.get_activity(&activity.id).await {
                Some(next) => activity = next,
                None => return ForwardOutcome::Processing { transaction_id: Some(activity.id) },
            }
        }
    }

    /// What an activity says about the payment, `None` while it is open.
    /// A completed activity only means Turnkey signed and broadcast the
    /// transaction; the payment succeeds once it is on chain.
    async fn judge(&self, activity: &Activity) -> Option<ForwardOutcome> {
        match activity.status.as_str() {
            "ACTIVITY_STATUS_COMPLETED" => match activity.send_transaction_status_id() {
                Some(status_id) => self.transaction_outcome(status_id).await,
                None => Some(ForwardOutcome::Succeeded { transaction_id: activity.id.clone() }),
            },
            "ACTIVITY_STATUS_FAILED" => Some(failed("activity_failed", activity.failure_message())),
            "ACTIVITY_STATUS_REJECTED" => Some(failed("activity_rejected", activity.failure_message())),
            _ => None,
        }
    }

    async fn transaction_outcome(&self, status_id: &str) -> Option<ForwardOutcome> {
        let body = serde_json::json!({
            "organizationId": self.organization_id,
            "sendTransactionStatusId": status_id,
        });
        let status: TxStatus = self.query(TX_STATUS_PATH, body).await?;
        match status.tx_status.as_str() {
            "INCLUDED" | "COMPLETED" => Some(ForwardOutcome::Succeeded {
                transaction_id: status.tx_hash().unwrap_or(status_id).to_owned(),
            }),
            "FAILED" | "CANCELLED" => Some(failed(
                "transaction_failed",
                format!(
                    "turnkey: transaction {}: {}",
                    status.tx_status.to_lowercase(),
                    status.error_message()
                ),
            )),
            _ => None,
        }
    }
}

impl Provider for Turnkey {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move {
            let body = match self.activity_body(req) {
                Ok(body) => body,
                Err(outcome) => return outcome,
            };
            match self.submit(body).await {
                Ok(activity) => self.follow(activity, self.poll_attempts).await,
                Err(outcome) => outcome,
            }
        })
    }

    fn status<'a>(
        &'a self,
        req: &'a ForwardRequest,
        transaction_id: Option<&'a str>,
    ) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move {
            let unknown = ForwardOutcome::Processing { transaction_id: transaction_id.map(str::to_owned) };
            let activity = match transaction_id {
                Some(id) => self.get_activity(id).await,
                // The identical body returns the activity the lost answer
                // was about, or creates it if the first never arrived.
                // A body that cannot be built now (the destination was
                // removed since) says nothing about the first submission.
                None => match self.activity_body(req) {
                    Ok(body) => self.resubmit(body).await,
                    Err(outcome) => {
                        tracing::warn!(
                            provider = NAME,
                            ?outcome,
                            "cannot rebuild the activity; still processing"
                        );
                        None
                    }
                },
            };
            match activity {
                Some(activity) => self.follow(activity, 0).await,
                None => unknown,
            }
        })
    }
}

fn failed(code: &str, message: String) -> ForwardOutcome {
    ForwardOutcome::Failed { code: code.to_owned(), message }
}

fn signing_key(hex_scalar: &str) -> anyhow::Result<SigningKey> {
    // Neither the key nor the decoding error (which may echo it) is printed.
    let bytes = hex::decode(hex_scalar.trim_start_matches("0x"))
        .map_err(|_| anyhow::anyhow!("turnkey: api_private_key is not hex"))?;
    SigningKey::from_slice(&bytes)
        .map_err(|_| anyhow::anyhow!("turnkey: api_private_key is not a P-256 private key"))
}

fn parse_address(text: &str) -> Result<[u8; 20], String> {
    let digits = text.strip_prefix("0x").ok_or_else(|| format!("{text:?} does not start with 0x"))?;
    let bytes = hex::decode(digits).map_err(|e| format!("{text:?}: {e}"))?;
    bytes.try_into().map_err(|_| format!("{text:?} is not 20 bytes"))
}

/// ABI-encoded `transfer(to, amount)`: selector, then two 32-byte words.
pub fn transfer_call(to: &[u8; 20], amount: u128) -> Vec<u8> {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&TRANSFER_SELECTOR);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(to);
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(&amount.to_be_bytes());
    data
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmitBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp_ms: String,
    organization_id: &'a str,
    parameters: EthSendTransaction<'a>,
}

/// The activity purser submits, and the key of its result.
const ACTIVITY_TYPE: &str = "ACTIVITY_TYPE_ETH_SEND_TRANSACTION_V2";
const RESULT_POINTER: &str = "/ethSendTransactionResultV2/sendTransactionStatusId";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EthSendTransaction<'a> {
    from: &'a str,
    sponsor: bool,
    caip2: &'a str,
    /// One call: the token's `transfer`.
    calls: [Call; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    gas_limit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_fee_per_gas: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_priority_fee_per_gas: Option<&'a str>,
}

#[derive(Serialize)]
struct Call {
    to: String,
    value: &'static str,
    data: String,
}

#[derive(Deserialize)]
struct ActivityReply {
    activity: Activity,
}

#[derive(Debug, Deserialize)]
struct Activity {
    id: String,
    status: String,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    failure: Option<serde_json::Value>,
}

impl Activity {
    fn send_transaction_status_id(&self) -> Option<&str> {
        self.result.as_ref()?.pointer(RESULT_POINTER)?.as_str()
    }

    fn failure_message(&self) -> String {
        let reason = self.failure.as_ref().and_then(|f| f.get("message")).and_then(|m| m.as_str());
        format!("turnkey: activity {} {}", self.id, reason.unwrap_or("gave no reason"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxStatus {
    tx_status: String,
    #[serde(default)]
    eth: Option<serde_json::Value>,
    #[serde(default)]
    tx_error: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl TxStatus {
    fn tx_hash(&self) -> Option<&str> {
        self.eth.as_ref()?.get("txHash")?.as_str().filter(|h| !h.is_empty())
    }

    fn error_message(&self) -> &str {
        self.error
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .or(self.tx_error.as_deref())
            .unwrap_or("no reason given")
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier;

    use super::*;

    const TOKEN: &str = "0x036cbd53842c5426634e7929541ec2318f3dcf7e";
    const SHOP: &str = "0x2222222222222222222222222222222222222222";

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn adapter(public_key: &str) -> anyhow::Result<Turnkey> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, hex::encode(key().to_bytes())).unwrap();
        let config: TurnkeyConfig = toml::from_str(&format!(
            "organization_id = \"org\"\napi_public_key = \"{public_key}\"\n\
             api_private_key = {{ file = {:?} }}\nsign_with = \"0x{}\"\ncaip2 = \"eip155:8453\"\n\
             token_contract = \"{TOKEN}\"\ndestinations = {{ \"shop.example\" = \"{SHOP}\" }}\n",
            path.display().to_string(),
            "11".repeat(20),
        ))
        .unwrap();
        Turnkey::new(&config)
    }

    fn own_public_key() -> String {
        hex::encode(key().verifying_key().to_encoded_point(true).as_bytes())
    }

    fn req(amount: &str, currency: Currency) -> ForwardRequest {
        let ulid = ulid::Ulid::from_parts(1_764_176_400_000, 42);
        ForwardRequest {
            reference: format!("fwd_{ulid}"),
            payment_id: format!("pay_{ulid}"),
            agent_id: "agt_1".into(),
            amount: amount.parse().unwrap(),
            currency,
            merchant_id: "shop.example".into(),
            merchant_category: None,
            rail: "usdc".into(),
            description: None,
        }
    }

    #[test]
    fn the_body_never_changes_and_the_stamp_signs_exactly_it() {
        let turnkey = adapter(&own_public_key()).unwrap();
        let body = turnkey.activity_body(&req("12.5", Currency::Usdc)).unwrap();
        assert_eq!(body, turnkey.activity_body(&req("12.5", Currency::Usdc)).unwrap());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "ACTIVITY_TYPE_ETH_SEND_TRANSACTION_V2");
        assert_eq!(json["timestampMs"], "1764176400000");
        assert_eq!(json["parameters"]["calls"][0]["to"], TOKEN);
        assert_eq!(json["parameters"]["sponsor"], true);
        let expected = transfer_call(&parse_address(SHOP).unwrap(), 12_500_000);
        assert_eq!(json["parameters"]["calls"][0]["data"], format!("0x{}", hex::encode(expected)));
        assert_eq!(json["parameters"]["calls"][0]["value"], "0");
        assert_eq!(json["parameters"]["calls"].as_array().unwrap().len(), 1);
        assert_eq!(json["parameters"].get("to"), None, "V1's fields are gone");

        let stamp = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(turnkey.stamp(&body)).unwrap();
        let stamp: serde_json::Value = serde_json::from_slice(&stamp).unwrap();
        assert_eq!(stamp["publicKey"], own_public_key());
        assert_eq!(stamp["scheme"], STAMP_SCHEME);
        let signature =
            Signature::from_der(&hex::decode(stamp["signature"].as_str().unwrap()).unwrap()).unwrap();
        assert!(key().verifying_key().verify(&body, &signature).is_ok());
    }

    #[test]
    fn usdc_and_its_peg_are_paid_in_whole_token_units() {
        let turnkey = adapter(&own_public_key()).unwrap();
        assert_eq!(turnkey.token_units(&req("1.5", Currency::Usd)), Ok(1_500_000));
        let code = |r: Result<u128, ForwardOutcome>| match r {
            Err(ForwardOutcome::Failed { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(turnkey.token_units(&req("1.5", Currency::Eur))), "currency_not_supported");
        assert_eq!(code(turnkey.token_units(&req("0.0000001", Currency::Usdc))), "amount_not_payable");
    }

    #[test]
    fn a_public_key_of_another_key_is_refused_at_start() {
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let err =
            adapter(&hex::encode(other.verifying_key().to_encoded_point(true).as_bytes())).err().unwrap();
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(!err.to_string().contains(&hex::encode(key().to_bytes())));
    }

    #[test]
    fn transfer_calls_are_68_bytes_of_selector_address_and_amount() {
        let to = [0x11u8; 20];
        let data = transfer_call(&to, 5_250_000);
        assert_eq!(data.len(), 68);
        assert_eq!(
            hex::encode(&data),
            format!("a9059cbb{}{}{:064x}", "0".repeat(24), "11".repeat(20), 5_250_000u128)
        );
    }

    #[test]
    fn addresses_must_be_twenty_hex_bytes() {
        assert!(parse_address(&format!("0x{}", "ab".repeat(20))).is_ok());
        assert!(parse_address(&"ab".repeat(20)).is_err());
        assert!(parse_address("0xabcd").is_err());
        assert!(parse_address(&format!("0x{}", "zz".repeat(20))).is_err());
    }

    #[test]
    fn transaction_failures_carry_turnkeys_reason() {
        let status: TxStatus = serde_json::from_value(serde_json::json!({
            "txStatus": "FAILED", "txError": "flat", "error": { "message": "execution reverted" }
        }))
        .unwrap();
        assert_eq!(status.error_message(), "execution reverted");
        assert_eq!(status.tx_hash(), None);
    }
}
