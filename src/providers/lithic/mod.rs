//! Lithic card issuing: an approved `card` payment becomes a virtual card
//! whose spend limit is exactly the approved amount, so the card cannot pay
//! more than the policy allowed.
//!
//! Wire format (Lithic REST API, `Authorization: <api key>`):
//! - `POST /v1/cards` with `type` (`SINGLE_USE` or `MERCHANT_LOCKED`),
//!   `spend_limit` (cents), `spend_limit_duration` (`TRANSACTION` for a
//!   single-use card, which closes after its first authorization; `FOREVER`
//!   for a merchant-locked one, so its lifetime total is the amount), `memo`
//!   (the payment id and the forward reference) and `state: OPEN`, with an
//!   `Idempotency-Key` header; answers the card;
//! - `GET /v1/cards/{token}` answers one card;
//! - `GET /v1/cards?memo=&begin=&page_size=&starting_after=` answers
//!   `{"data": [cards], "has_more"}`, newest first; `memo` matches part of
//!   a card's memo.
//!
//! Only the card's token, memo and state are ever read: the PAN and CVV in
//! Lithic's answers are never deserialized, logged or stored.
//!
//! At most one card per payment. Lithic's API takes an `Idempotency-Key`
//! on card creation, which its SDKs do not send; purser sends one derived
//! from the reference, but does not rest on it alone: the payment id and
//! reference go into the card's `memo`, and before every create, the first
//! and each retry, the cards carrying the reference are looked up (`memo`
//! filter, created since the payment was decided, which the reference's
//! ULID carries). Only when that lookup shows none is a card created. A create
//! is retried (after the lookup) only on an answer, 408, 409, 429 or 5xx,
//! never after a lost answer, whose card may still be on its way: that
//! payment is left `processing` and looked up again at the next status
//! look. A card found in any state is `Succeeded`: it was issued, and
//! failing the payment would release a reservation the card may still
//! spend.

pub mod asa;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use sha2::{Digest, Sha256};

use super::http::{backoff, retryable};
use super::{ForwardRequest, HttpSettings, Provider, ProviderClient, Reply, Retry, Secret};
use crate::money::{to_minor, Currency};
use crate::store::ForwardOutcome;

const NAME: &str = "lithic";

/// Largest page Lithic serves when listing.
const PAGE_SIZE: u32 = 100;
/// How many pages a lookup reads before giving up (and staying
/// `processing`). The memo filter leaves one card per payment, or a few
/// where memos were edited to mention the reference.
const MAX_PAGES: usize = 3;
/// How much earlier than the payment's creation the lookup starts, for clock
/// skew between this host and Lithic.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// `[lithic]` in the providers file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LithicConfig {
    /// `https://sandbox.lithic.com` (the default) or `https://api.lithic.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// API key, sent as the whole `Authorization` header.
    pub api_key: Secret,
    #[serde(default)]
    pub card_type: CardType,
    /// The ASA HMAC secret (`GET /v1/auth_stream/secret`, `whsec_...`),
    /// needed only if Lithic asks this gateway to decide authorizations.
    #[serde(default)]
    pub asa_secret: Option<Secret>,
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> String {
    "https://sandbox.lithic.com".to_owned()
}

/// The kind of card issued per payment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardType {
    /// Closes after its first authorization, which may not exceed the amount.
    #[default]
    SingleUse,
    /// Locked to the first merchant that charges it, for at most the amount
    /// in total (Lithic marks this type deprecated).
    MerchantLocked,
}

impl CardType {
    fn wire(self) -> (&'static str, &'static str) {
        match self {
            CardType::SingleUse => ("SINGLE_USE", "TRANSACTION"),
            CardType::MerchantLocked => ("MERCHANT_LOCKED", "FOREVER"),
        }
    }
}

pub struct Lithic {
    client: ProviderClient,
    api_key: Secret,
    card_type: CardType,
}

/// The parts of a Lithic card purser reads.
#[derive(Deserialize)]
struct Card {
    token: String,
    #[serde(default)]
    memo: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Card>,
    #[serde(default)]
    has_more: bool,
}

/// What one card creation came to.
enum Created {
    Card(String),
    /// Lithic answered, and not with a card.
    Answered(Reply),
    /// No answer: what the forward makes of it (nothing sent: failed; sent,
    /// the card may exist: processing).
    Lost(ForwardOutcome),
}

/// What a lookup by memo established.
enum Lookup {
    Found(String),
    /// The complete listing has no card for this reference.
    Absent,
    /// The lookup could not tell; what a forward makes of that.
    Unknown(ForwardOutcome),
}

impl Lithic {
    pub fn new(config: &LithicConfig) -> anyhow::Result<Self> {
        if config.asa_secret.as_ref().is_some_and(|s| asa::key(s.expose().as_bytes()).is_none()) {
            anyhow::bail!("{NAME}: asa_secret is not an ASA HMAC secret (`whsec_` followed by base64)");
        }
        Ok(Lithic {
            client: ProviderClient::new(NAME, &config.base_url, config.http.clone())?,
            api_key: config.api_key.clone(),
            card_type: config.card_type,
        })
    }

    /// Finds the card issued for `req`, or issues it: up to the attempt
    /// budget, a lookup and then, if it shows no card, a create. `on_unknown`
    /// decides what a first lookup that could not tell means for the caller.
    async fn issue(
        &self,
        req: &ForwardRequest,
        on_unknown: fn(ForwardOutcome) -> ForwardOutcome,
    ) -> ForwardOutcome {
        if req.currency != Currency::Usd {
            return ForwardOutcome::Failed {
                code: "currency_not_supported".into(),
                message: format!("{NAME} issues USD cards only; this payment is in {}", req.currency),
            };
        }
        let mut refused: Option<Reply> = None;
        for attempt in 1..=self.client.attempts() {
            if let Some(reply) = &refused {
                tokio::time::sleep(backoff(attempt - 1, reply.retry_after)).await;
            }
            match self.find(req).await {
                Lookup::Found(token) => return ForwardOutcome::Succeeded { transaction_id: token },
                Lookup::Absent => {}
                // A create already answered 408/409/5xx may have issued a
                // card the lookup could not rule out.
                Lookup::Unknown(_) if refused.as_ref().is_some_and(|r| r.status != 429) => {
                    return ForwardOutcome::Processing { transaction_id: None };
                }
                Lookup::Unknown(outcome) => return on_unknown(outcome),
            }
            match self.create(req).await {
                Created::Card(token) => return ForwardOutcome::Succeeded { transaction_id: token },
                Created::Answered(reply) if retryable(reply.status) => refused = Some(reply),
                Created::Answered(reply) => return reply.refused(NAME),
                Created::Lost(outcome) => return outcome,
            }
        }
        refused.map_or(ForwardOutcome::Processing { transaction_id: None }, |r| r.refused(NAME))
    }

    /// Sends one card creation.
    async fn create(&self, req: &ForwardRequest) -> Created {
        let (card_type, duration) = self.card_type.wire();
        let body = json!({
            "type": card_type,
            "spend_limit": to_minor(req.amount, Currency::Usd),
            "spend_limit_duration": duration,
            "memo": memo(req),
            "state": "OPEN",
        });
        let url = self.client.url("v1/cards");
        let key = idempotency_key(&req.reference);
        let sent = self.client.send(Retry::AtMostOnce, |http| {
            self.authorized(http.post(url.clone())).header("Idempotency-Key", &key).json(&body)
        });
        let reply = match sent.await {
            Ok(reply) => reply,
            Err(e) => return Created::Lost(e.forward_outcome()),
        };
        if !reply.status.is_success() {
            return Created::Answered(reply);
        }
        match reply.json::<Card>(NAME) {
            Ok(card) => {
                tracing::info!(provider = NAME, reference = %req.reference, card = %card.token, "card issued");
                Created::Card(card.token)
            }
            // A 2xx means the card exists; the lookup will find it.
            Err(_) => Created::Lost(ForwardOutcome::Processing { transaction_id: None }),
        }
    }

    /// Lists the cards created since the payment and picks the one whose
    /// memo is the reference.
    async fn find(&self, req: &ForwardRequest) -> Lookup {
        let begin = req.decided_at().map(|t| t - CLOCK_SKEW);
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let url = list_url(self.client.url("v1/cards"), &req.reference, begin, after.as_deref());
            let sent = self.client.send(Retry::Idempotent, |http| self.authorized(http.get(url.clone())));
            let page = match sent.await {
                Ok(reply) => match page(&reply) {
                    Ok(page) => page,
                    Err(outcome) => return Lookup::Unknown(outcome),
                },
                Err(e) => return Lookup::Unknown(e.forward_outcome()),
            };
            // The filter matches part of a memo: the reference must be a
            // whole word of it (cards issued before the payment id joined
            // the memo carry the reference alone).
            let ours =
                |c: &&Card| c.memo.as_deref().is_some_and(|m| m.split(' ').any(|w| w == req.reference));
            if let Some(card) = page.data.iter().find(ours) {
                return Lookup::Found(card.token.clone());
            }
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.token.clone()),
                _ => return Lookup::Absent,
            }
        }
        tracing::warn!(
            provider = NAME,
            reference = %req.reference,
            "too many cards created since this payment to find its card; left processing"
        );
        Lookup::Unknown(ForwardOutcome::Processing { transaction_id: None })
    }

    /// Where a card whose token is known stands: any card Lithic still has
    /// was issued. Not finding it proves nothing, so it stays processing.
    async fn card(&self, token: &str) -> ForwardOutcome {
        let mut url = self.client.url("v1/cards");
        if let Ok(mut path) = url.path_segments_mut() {
            path.push(token);
        }
        let sent = self.client.send(Retry::Idempotent, |http| self.authorized(http.get(url.clone())));
        let unknown = ForwardOutcome::Processing { transaction_id: Some(token.to_owned()) };
        match sent.await {
            Ok(reply) if reply.status.is_success() => match reply.json::<Card>(NAME) {
                Ok(card) => ForwardOutcome::Succeeded { transaction_id: card.token },
                Err(_) => unknown,
            },
            Ok(reply) => {
                if reply.status == StatusCode::NOT_FOUND {
                    tracing::warn!(provider = NAME, card = %token, "card not found at Lithic; left processing");
                }
                unknown
            }
            Err(_) => unknown,
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(reqwest::header::AUTHORIZATION, self.api_key.expose())
    }
}

/// A listing page, or what a forward makes of not getting one.
fn page(reply: &Reply) -> Result<Page, ForwardOutcome> {
    if !reply.status.is_success() {
        return Err(reply.refused(NAME));
    }
    reply.json::<Page>(NAME)
}

/// The card's memo: what an operator searches Lithic's dashboard for, and
/// what the lookup finds the card by.
fn memo(req: &ForwardRequest) -> String {
    format!("{} {}", req.payment_id, req.reference)
}

/// A UUID (the form Lithic's `Idempotency-Key` takes) derived from the
/// reference: the same on every attempt for one payment.
fn idempotency_key(reference: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(reference.as_bytes())[..16].try_into().expect("16 of 32 bytes");
    // Version 8 (custom), RFC 9562 variant.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn list_url(mut url: Url, memo: &str, begin: Option<DateTime<Utc>>, after: Option<&str>) -> Url {
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("memo", memo);
        query.append_pair("page_size", &PAGE_SIZE.to_string());
        if let Some(begin) = begin {
            query.append_pair("begin", &begin.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        if let Some(after) = after {
            query.append_pair("starting_after", after);
        }
    }
    url
}

impl Provider for Lithic {
    fn name(&self) -> &'static str {
        NAME
    }

    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(self.issue(req, |outcome| outcome))
    }

    fn status<'a>(
        &'a self,
        req: &'a ForwardRequest,
        transaction_id: Option<&'a str>,
    ) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move {
            match transaction_id {
                Some(token) => self.card(token).await,
                // A failed lookup says nothing about a card that may exist.
                None => self.issue(req, |_| ForwardOutcome::Processing { transaction_id: None }).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_defaults_and_refuses_typos() {
        std::env::set_var("PURSER_TEST_LITHIC_KEY", "k");
        let config: LithicConfig = toml::from_str("api_key = { env = \"PURSER_TEST_LITHIC_KEY\" }").unwrap();
        assert_eq!(config.base_url, "https://sandbox.lithic.com");
        assert_eq!(config.card_type, CardType::SingleUse);
        assert!(config.asa_secret.is_none());
        let merchant: LithicConfig =
            toml::from_str("api_key = { env = \"PURSER_TEST_LITHIC_KEY\" }\ncard_type = \"MERCHANT_LOCKED\"")
                .unwrap();
        assert_eq!(merchant.card_type.wire(), ("MERCHANT_LOCKED", "FOREVER"));
        assert_eq!(CardType::SingleUse.wire(), ("SINGLE_USE", "TRANSACTION"));
        assert!(toml::from_str::<LithicConfig>(
            "api_key = { env = \"PURSER_TEST_LITHIC_KEY\" }\ncard_typ = \"SINGLE_USE\""
        )
        .is_err());
        assert!(toml::from_str::<LithicConfig>("api_key = \"literal\"").is_err());
    }

    #[test]
    fn a_malformed_asa_secret_stops_startup() {
        std::env::set_var("PURSER_TEST_LITHIC_KEY2", "k");
        std::env::set_var("PURSER_TEST_LITHIC_ASA", "not-base64!");
        let config: LithicConfig = toml::from_str(
            "api_key = { env = \"PURSER_TEST_LITHIC_KEY2\" }\nasa_secret = { env = \"PURSER_TEST_LITHIC_ASA\" }",
        )
        .unwrap();
        let err = Lithic::new(&config).err().unwrap().to_string();
        assert!(err.contains("asa_secret") && !err.contains("not-base64"), "{err}");
    }

    #[test]
    fn listing_urls_filter_by_memo_from_the_payment_time() {
        let base = Url::parse("https://sandbox.lithic.com/v1/cards").unwrap();
        let begin = DateTime::parse_from_rfc3339("2026-11-26T17:00:00Z").unwrap().to_utc();
        assert_eq!(
            list_url(base.clone(), "fwd_1", Some(begin), Some("c-1")).as_str(),
            "https://sandbox.lithic.com/v1/cards?memo=fwd_1&page_size=100&begin=2026-11-26T17%3A00%3A00Z&starting_after=c-1"
        );
        assert_eq!(list_url(base, "fwd_2", None, None).query(), Some("memo=fwd_2&page_size=100"));
    }

    #[test]
    fn idempotency_keys_are_uuids_fixed_per_reference() {
        let key = idempotency_key("fwd_01jdxzq0000000000000000000");
        assert_eq!(key, idempotency_key("fwd_01jdxzq0000000000000000000"));
        assert_ne!(key, idempotency_key("fwd_01jdxzq0000000000000000001"));
        let groups: Vec<usize> = key.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(key.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&key[14..15], "8", "version 8");
        assert!("89ab".contains(&key[19..20]), "RFC 9562 variant");
    }
}
