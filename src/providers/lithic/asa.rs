//! Auth Stream Access (ASA): Lithic asks purser, in real time, whether to
//! approve each authorization on a card. These are the pure building blocks
//! of the endpoint (`POST /v1/providers/lithic/asa`): signature check, request
//! parsing and the response body.
//!
//! Lithic wants HTTP 200 with a decision for every request it signed
//! (`{"token", "result"}`, `result` being `APPROVED` or a decline reason); a
//! 5xx makes it send the request once more, and no answer in time falls to
//! the network's decline. So once the signature holds, everything, even a
//! body purser cannot read, is answered 200 with a decision.
//!
//! What each `status` asks:
//! - `AUTHORIZATION`, `FINANCIAL_AUTHORIZATION`: a purchase (a hold cleared
//!   later, or a single-message debit such as a cash withdrawal), decided by
//!   the policy and counted against the limits;
//! - `CREDIT_AUTHORIZATION`, `FINANCIAL_CREDIT_AUTHORIZATION`: money coming
//!   back to the card (a refund): approved for a card purser knows, never
//!   counted against a limit;
//! - `BALANCE_INQUIRY`: a zero-amount look at the balance (an ATM): approved
//!   for a card purser knows, counting nothing.
//!
//! Reversals and advices are not ASA requests: Lithic reports them as
//! transaction events, which need no answer.
//!
//! Lithic signs ASA requests the way it signs its Events API webhooks, in the
//! Standard Webhooks format: `webhook-id`, `webhook-timestamp` (Unix seconds)
//! and `webhook-signature` (`v1,` + base64 HMAC-SHA256 over
//! `"{id}.{timestamp}.{body}"`, several space-separated entries while a
//! secret is being rotated). The key is the ASA HMAC secret
//! (`GET /v1/auth_stream/secret`), `whsec_` + base64 of the key bytes.

use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::money::Currency;
use crate::policy::ReasonCode;
use crate::webhooks::signature;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Parses the ASA secret as configured (`whsec_` + base64; the prefix is
/// optional, as in Lithic's SDKs). `None` if it is not such a key.
pub(super) fn key(secret: &[u8]) -> Option<signature::Secret> {
    let text = std::str::from_utf8(secret).ok()?;
    signature::Secret::parse(text.trim()).ok()
}

/// Whether `body` with these headers was signed by Lithic with `secret` (the
/// ASA secret as configured) within the last five minutes, which bounds
/// replays of a captured request. Comparison is constant-time.
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    verify_at(secret, headers, body, chrono::Utc::now().timestamp())
}

/// [`verify`] against a given clock (Unix seconds).
pub fn verify_at(secret: &[u8], headers: &HeaderMap, body: &[u8], now_unix: i64) -> bool {
    let Some(key) = key(secret) else {
        tracing::warn!("lithic: the configured ASA secret is not a whsec_ key; ASA request refused");
        return false;
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    signature::verify(
        &key,
        header(ID_HEADER),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now_unix,
    )
    .is_ok()
}

/// The `webhook-signature` value Lithic would send for `body` under this id
/// and timestamp. For the simulator and tests.
///
/// # Panics
/// If `secret` is not a `whsec_` key: a test's own fixture is wrong.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = key(secret).expect("the ASA secret is `whsec_` followed by base64");
    signature::sign(&key, id, timestamp, body)
}

/// All three signature headers for `body`, signed now under a fresh id, as
/// Lithic sends them. For the simulator and tests.
pub fn signed_headers(secret: &[u8], body: &[u8]) -> HeaderMap {
    let id = crate::ids::new("msg");
    let timestamp = chrono::Utc::now().timestamp();
    let value = |s: String| HeaderValue::from_str(&s).expect("ids, digits and base64 are header-safe");
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, value(sign(secret, &id, timestamp, body)));
    headers.insert(TIMESTAMP_HEADER, value(timestamp.to_string()));
    headers.insert(ID_HEADER, value(id));
    headers
}

/// What an ASA request asks (its `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Purchase,
    Credit,
    BalanceInquiry,
    /// A status this gateway does not know: declined.
    Other(String),
}

impl Kind {
    fn of(status: Option<&str>) -> Kind {
        match status {
            // Older payloads carry no status; they were all purchases.
            None | Some("AUTHORIZATION" | "FINANCIAL_AUTHORIZATION") => Kind::Purchase,
            Some("CREDIT_AUTHORIZATION" | "FINANCIAL_CREDIT_AUTHORIZATION") => Kind::Credit,
            Some("BALANCE_INQUIRY") => Kind::BalanceInquiry,
            Some(other) => Kind::Other(other.to_owned()),
        }
    }
}

/// One authorization Lithic asks about, in purser's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Lithic's transaction token; the response must echo it.
    pub token: String,
    pub kind: Kind,
    pub card_token: String,
    /// In the cardholder's (the card's) currency, minor units.
    pub amount_minor: i64,
    pub currency: Currency,
    pub merchant_id: String,
    pub merchant_category: Option<String>,
    pub descriptor: String,
}

/// Lithic's ASA authorization request (`card_authorization.approval_request`),
/// as Lithic sends it. purser reads only the fields below; others are
/// ignored. A signed body it cannot read is declined (`200`), not refused.
#[derive(Deserialize, ToSchema)]
#[schema(as = LithicAsaRequest)]
pub struct Request {
    /// Lithic's transaction token. The answer echoes it; it is also the
    /// idempotency key of a standing card's payment and, once approved, its
    /// `provider.transaction_id`.
    token: String,
    /// What is asked: `AUTHORIZATION` or `FINANCIAL_AUTHORIZATION` (a
    /// purchase), `CREDIT_AUTHORIZATION` or `FINANCIAL_CREDIT_AUTHORIZATION`
    /// (a refund to the card), `BALANCE_INQUIRY`. Absent on older payloads:
    /// a purchase. Anything else is declined.
    status: Option<String>,
    /// The card; its `token` is read (preferred over `card_token`).
    card: Option<CardRef>,
    /// The card's token, on payloads without `card`.
    card_token: Option<String>,
    /// When present, `amounts.cardholder` is the amount: what the card is
    /// charged, in the card's currency.
    amounts: Option<Amounts>,
    /// On payloads without `amounts`: what the card is charged (acquirer fee
    /// included), in minor units of `cardholder_currency`.
    authorization_amount: Option<i64>,
    /// Used in place of `authorization_amount` when that is absent.
    amount: Option<i64>,
    /// Currency of `authorization_amount`/`amount`; needed when `amounts` is
    /// absent.
    cardholder_currency: Option<String>,
    merchant: Merchant,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LithicAsaCard)]
struct CardRef {
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LithicAsaAmounts)]
struct Amounts {
    cardholder: Money,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LithicAsaMoney)]
struct Money {
    /// In the currency's minor units (cents for USD).
    amount: i64,
    /// Currency code; one purser does not support is declined.
    currency: String,
}

/// At least one of `acceptor_id` and `descriptor` must not be blank.
#[derive(Deserialize, ToSchema)]
#[schema(as = LithicAsaMerchant)]
struct Merchant {
    /// The card acceptor id: trimmed and lower-cased, the payment's
    /// `merchant_id`. When blank, the descriptor is used instead.
    acceptor_id: Option<String>,
    /// The merchant's name as the network shows it: the payment's
    /// `description`, and (lower-cased) its `merchant_id` when `acceptor_id`
    /// is blank.
    #[serde(default)]
    descriptor: String,
    /// Merchant category code (ISO 18245), mapped to the payment's
    /// `merchant_category` through purser's table (e.g. `7995` `gambling`,
    /// `5921` `alcohol`, `7372` `cloud`); other codes give no category.
    mcc: Option<String>,
}

/// A request purser cannot decide on: why, and the token to echo in the
/// decline if the body had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub token: Option<String>,
    pub why: String,
}

/// Reads an ASA request body. The amount is what the card is charged:
/// `amounts.cardholder`, or on older payloads `authorization_amount` (which
/// includes the acquirer fee) in `cardholder_currency`.
pub fn parse(body: &[u8]) -> Result<Authorization, Unreadable> {
    read(body).map_err(|why| {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let token = value.as_ref().and_then(|v| v.get("token")).and_then(Value::as_str).map(str::to_owned);
        Unreadable { token, why }
    })
}

fn read(body: &[u8]) -> Result<Authorization, String> {
    let req: Request = serde_json::from_slice(body).map_err(|e| format!("not an ASA request: {e}"))?;
    let card_token = req
        .card
        .map(|c| c.token)
        .or(req.card_token)
        .ok_or("ASA request names no card (`card.token` or `card_token`)")?;
    let (amount_minor, currency) = match req.amounts {
        Some(a) => (a.cardholder.amount, a.cardholder.currency),
        None => {
            let amount = req.authorization_amount.or(req.amount).ok_or("ASA request has no amount")?;
            (amount, req.cardholder_currency.ok_or("ASA request has no cardholder currency")?)
        }
    };
    let currency = currency.trim().parse::<Currency>().map_err(|e| e.to_string())?;
    let descriptor = req.merchant.descriptor.trim().to_owned();
    let merchant_id = match req.merchant.acceptor_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.to_lowercase(),
        _ if !descriptor.is_empty() => descriptor.to_lowercase(),
        _ => return Err("ASA request identifies no merchant (acceptor_id or descriptor)".into()),
    };
    let merchant_category = req.merchant.mcc.as_deref().and_then(category).map(str::to_owned);
    Ok(Authorization {
        token: req.token,
        kind: Kind::of(req.status.as_deref()),
        card_token,
        amount_minor,
        currency,
        merchant_id,
        merchant_category,
        descriptor,
    })
}

/// A decline, as one of the `result` values Lithic documents (any other
/// string would decline too, as `CUSTOM_ASA_RESULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decline {
    /// Not allowed on this card: the merchant, category, an approval the
    /// network cannot wait for, an unknown card, an unreadable request.
    UnauthorizedMerchant,
    /// An amount limit of the agent's policy would be exceeded.
    InsufficientFunds,
    /// The agent's velocity limit would be exceeded.
    VelocityExceeded,
    /// The agent is frozen, or every payment is halted (kill switch).
    CardPaused,
}

impl Decline {
    pub fn result(self) -> &'static str {
        match self {
            Decline::UnauthorizedMerchant => "UNAUTHORIZED_MERCHANT",
            Decline::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Decline::VelocityExceeded => "VELOCITY_EXCEEDED",
            Decline::CardPaused => "CARD_PAUSED",
        }
    }
}

impl Decline {
    /// The decline for a policy's denial, from the reasons it gave: the
    /// most telling one for a cardholder at a till.
    pub fn for_reasons(codes: impl IntoIterator<Item = ReasonCode>) -> Decline {
        let mut decline = Decline::UnauthorizedMerchant;
        for code in codes {
            match code {
                ReasonCode::AgentFrozen | ReasonCode::KillSwitch => return Decline::CardPaused,
                ReasonCode::VelocityLimit => decline = Decline::VelocityExceeded,
                ReasonCode::PerTxLimit
                | ReasonCode::DailyLimit
                | ReasonCode::WeeklyLimit
                | ReasonCode::MonthlyLimit
                | ReasonCode::LifetimeLimit
                    if decline == Decline::UnauthorizedMerchant =>
                {
                    decline = Decline::InsufficientFunds
                }
                _ => {}
            }
        }
        decline
    }
}

/// purser's answer to an ASA request, sent with HTTP 200.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = LithicAsaResponse)]
pub struct Response {
    /// The request's `token`, echoed (null only for a body purser could not
    /// read one from).
    token: Option<String>,
    /// `APPROVED`, or a decline: `CARD_PAUSED` (the agent is frozen, or the
    /// kill switch is engaged), `VELOCITY_EXCEEDED`, `INSUFFICIENT_FUNDS` (an
    /// amount limit, or more than an issued card's payment), or
    /// `UNAUTHORIZED_MERCHANT` (anything else: the merchant or category, an
    /// approval the network cannot wait for, an unknown card, an unreadable
    /// request, a store that is down).
    #[schema(
        pattern = "^(APPROVED|CARD_PAUSED|VELOCITY_EXCEEDED|INSUFFICIENT_FUNDS|UNAUTHORIZED_MERCHANT)$"
    )]
    result: &'static str,
}

/// The response body Lithic expects (with HTTP 200): `Ok` approves.
pub fn respond(token: Option<&str>, answer: Result<(), Decline>) -> Response {
    let result = match answer {
        Ok(()) => "APPROVED",
        Err(decline) => decline.result(),
    };
    Response { token: token.map(str::to_owned), result }
}

/// Purser's category for a merchant category code (ISO 18245), for the MCCs
/// policies most often care about; others have no category.
fn category(mcc: &str) -> Option<&'static str> {
    let code: u16 = mcc.trim().parse().ok()?;
    Some(match code {
        7800..=7802 | 7995 => "gambling",
        5813 | 5921 => "alcohol",
        5993 => "tobacco",
        5967 | 7273 => "adult",
        5723 => "weapons",
        5411 | 5499 => "grocery",
        4816 | 7372 => "cloud",
        5734 | 5817 | 5818 => "software",
        3000..=3299 | 4511 | 4722 => "travel",
        3501..=3999 | 7011 => "lodging",
        3351..=3500 | 7512 => "car_rental",
        4111 | 4121 | 4131 => "transport",
        5812 | 5814 => "restaurants",
        5310 | 5311 | 5399 | 5999 => "retail",
        5651 | 5691 => "apparel",
        5732 => "electronics",
        7311 => "advertising",
        4814 | 4899 => "telecom",
        4900 => "utilities",
        5912 | 8011 | 8021 | 8062 | 8099 => "health",
        8220 | 8299 => "education",
        9222 | 9311 | 9399 => "government",
        8398 => "charity",
        6012 | 6051 | 6211 => "financial",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wire(response: Response) -> Value {
        serde_json::to_value(response).unwrap()
    }

    // The Standard Webhooks reference vector: Lithic's SDKs verify ASA and
    // Events webhooks with exactly this construction.
    const SECRET: &[u8] = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;

    /// Shaped like a real sandbox ASA request (card_authorization.approval_request).
    const SAMPLE: &str = r#"{
        "token": "7842e70e-2b17-47ca-8541-869636bedf6a",
        "event_type": "card_authorization.approval_request",
        "status": "AUTHORIZATION",
        "created": "2026-11-26T15:20:08Z",
        "acquirer_fee": 0,
        "amount": 4250,
        "authorization_amount": 4250,
        "merchant_amount": 4250,
        "merchant_currency": "USD",
        "cardholder_currency": "USD",
        "cash_amount": 0,
        "settled_amount": 0,
        "transaction_initiator": "CARDHOLDER",
        "amounts": {
            "cardholder": { "amount": 4250, "conversion_rate": "1.000000", "currency": "USD" },
            "hold": { "amount": 4250, "currency": "USD" },
            "merchant": { "amount": 4250, "currency": "USD" },
            "settlement": null
        },
        "avs": { "address": "", "address_on_file_match": "NOT_PRESENT", "zipcode": "" },
        "card": {
            "token": "76b9f589-8935-4e78-8809-7f583bf0fb89",
            "last_four": "3860",
            "memo": "fwd_01jdxz",
            "spend_limit": 4250,
            "spend_limit_duration": "TRANSACTION",
            "state": "OPEN",
            "type": "SINGLE_USE"
        },
        "merchant": {
            "acceptor_id": "AWS.AMAZON.COM ",
            "acquiring_institution_id": "000000000000",
            "city": "SEATTLE",
            "country": "USA",
            "descriptor": "AWS EMEA",
            "mcc": "7372",
            "state": "WA"
        },
        "pos": { "entry_mode": { "card": "NOT_PRESENT", "cardholder": "NOT_PRESENT", "pan": "ECOMMERCE", "pin_entered": false } }
    }"#;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID_HEADER, id.parse().unwrap());
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_vector() {
        let sig = sign(SECRET, ID, TS, VECTOR_BODY);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_at(SECRET, &headers(ID, TS, &sig), VECTOR_BODY, TS));
        // The prefix is optional, and surrounding whitespace from a file is ignored.
        assert!(verify_at(b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", &headers(ID, TS, &sig), VECTOR_BODY, TS));
    }

    #[test]
    fn verify_refuses_anything_not_signed_now_with_this_secret() {
        let body = SAMPLE.as_bytes();
        let signed = signed_headers(SECRET, body);
        assert!(verify(SECRET, &signed, body));

        let mut tampered = body.to_vec();
        tampered[SAMPLE.find("4250").unwrap()] = b'9';
        assert!(!verify(SECRET, &signed, &tampered));

        let other = b"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify(other, &signed, body));
        assert!(!verify(b"not a key", &signed, body));

        for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
            let mut missing = signed.clone();
            missing.remove(name);
            assert!(!verify(SECRET, &missing, body), "without {name}");
        }

        // A captured request replayed later is refused.
        let sig = sign(SECRET, ID, TS, body);
        assert!(verify_at(SECRET, &headers(ID, TS, &sig), body, TS + 300));
        assert!(!verify_at(SECRET, &headers(ID, TS, &sig), body, TS + 301));
    }

    #[test]
    fn parses_a_realistic_request() {
        let auth = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            auth,
            Authorization {
                token: "7842e70e-2b17-47ca-8541-869636bedf6a".into(),
                kind: Kind::Purchase,
                card_token: "76b9f589-8935-4e78-8809-7f583bf0fb89".into(),
                amount_minor: 4250,
                currency: Currency::Usd,
                merchant_id: "aws.amazon.com".into(),
                merchant_category: Some("cloud".into()),
                descriptor: "AWS EMEA".into(),
            }
        );
    }

    #[test]
    fn parses_older_payloads_and_falls_back_to_the_descriptor() {
        let body = json!({
            "token": "t1",
            "card_token": "c1",
            "authorization_amount": 1999,
            "amount": 1900,
            "cardholder_currency": "USD",
            "merchant": { "acceptor_id": " ", "descriptor": "Corner Liquor ", "mcc": "5921" }
        });
        let auth = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!((auth.card_token.as_str(), auth.amount_minor), ("c1", 1999));
        assert_eq!(auth.merchant_id, "corner liquor");
        assert_eq!(auth.descriptor, "Corner Liquor");
        assert_eq!(auth.merchant_category.as_deref(), Some("alcohol"));
    }

    #[test]
    fn refuses_requests_it_cannot_decide_on_keeping_their_token() {
        let unreadable = |body: &[u8]| parse(body).unwrap_err();
        assert_eq!(unreadable(b"{}").token, None);
        assert_eq!(unreadable(b"not json"), Unreadable { token: None, why: unreadable(b"not json").why });
        let no_card = json!({ "token": "t", "amount": 1, "cardholder_currency": "USD", "merchant": {} });
        let e = unreadable(no_card.to_string().as_bytes());
        assert!(e.why.contains("card") && e.token.as_deref() == Some("t"), "{e:?}");
        let odd_currency = json!({
            "token": "t", "card_token": "c", "amount": 1, "cardholder_currency": "XAU",
            "merchant": { "descriptor": "x" }
        });
        assert!(unreadable(odd_currency.to_string().as_bytes()).why.contains("XAU"));
        let no_merchant = json!({ "token": "t", "card_token": "c", "amount": 1, "cardholder_currency": "USD", "merchant": {} });
        assert!(unreadable(no_merchant.to_string().as_bytes()).why.contains("merchant"));
    }

    #[test]
    fn every_documented_status_has_its_meaning() {
        let with_status = |status: &str| {
            let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
            v["status"] = json!(status);
            parse(v.to_string().as_bytes()).unwrap().kind
        };
        assert_eq!(with_status("AUTHORIZATION"), Kind::Purchase);
        assert_eq!(with_status("FINANCIAL_AUTHORIZATION"), Kind::Purchase);
        assert_eq!(with_status("CREDIT_AUTHORIZATION"), Kind::Credit);
        assert_eq!(with_status("FINANCIAL_CREDIT_AUTHORIZATION"), Kind::Credit);
        assert_eq!(with_status("BALANCE_INQUIRY"), Kind::BalanceInquiry);
        assert_eq!(with_status("SOMETHING_NEW"), Kind::Other("SOMETHING_NEW".into()));
    }

    #[test]
    fn responses_echo_the_token_with_a_documented_result() {
        let auth = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            wire(respond(Some(&auth.token), Ok(()))),
            json!({ "token": "7842e70e-2b17-47ca-8541-869636bedf6a", "result": "APPROVED" })
        );
        let results: Vec<Value> = [
            Decline::UnauthorizedMerchant,
            Decline::InsufficientFunds,
            Decline::VelocityExceeded,
            Decline::CardPaused,
        ]
        .into_iter()
        .map(|d| wire(respond(Some("t"), Err(d)))["result"].clone())
        .collect();
        assert_eq!(
            results,
            ["UNAUTHORIZED_MERCHANT", "INSUFFICIENT_FUNDS", "VELOCITY_EXCEEDED", "CARD_PAUSED"]
        );
        assert_eq!(wire(respond(None, Err(Decline::UnauthorizedMerchant)))["token"], Value::Null);
    }

    #[test]
    fn denials_decline_with_the_most_telling_result() {
        use ReasonCode::*;
        assert_eq!(Decline::for_reasons([CategoryBlocked]), Decline::UnauthorizedMerchant);
        assert_eq!(Decline::for_reasons([DailyLimit, CategoryBlocked]), Decline::InsufficientFunds);
        assert_eq!(Decline::for_reasons([DailyLimit, VelocityLimit]), Decline::VelocityExceeded);
        assert_eq!(Decline::for_reasons([VelocityLimit, PerTxLimit]), Decline::VelocityExceeded);
        assert_eq!(Decline::for_reasons([DailyLimit, AgentFrozen]), Decline::CardPaused);
        assert_eq!(Decline::for_reasons([KillSwitch]), Decline::CardPaused);
        assert_eq!(Decline::for_reasons([ApprovalRequired]), Decline::UnauthorizedMerchant);
        assert_eq!(Decline::for_reasons([]), Decline::UnauthorizedMerchant);
    }

    #[test]
    fn merchant_category_codes_map_to_policy_categories() {
        let cases = [
            ("7995", Some("gambling")),
            ("5921", Some("alcohol")),
            ("5993", Some("tobacco")),
            ("5967", Some("adult")),
            ("7273", Some("adult")),
            ("5411", Some("grocery")),
            ("4816", Some("cloud")),
            ("5734", Some("software")),
            ("4511", Some("travel")),
            ("3000", Some("travel")),
            ("3299", Some("travel")),
            ("7011", Some("lodging")),
            ("5812", Some("restaurants")),
            ("5814", Some("restaurants")),
            ("5999", Some("retail")),
            ("0742", None),
            ("9999", None),
            ("", None),
            ("abcd", None),
        ];
        for (mcc, want) in cases {
            assert_eq!(category(mcc), want, "MCC {mcc:?}");
        }
    }

    #[test]
    fn every_mapped_category_is_one_policies_know() {
        use crate::policy::{BUILTIN_SCOPES, DEFAULT_BLOCKED_CATEGORIES, EXTRA_CATEGORIES};
        let known: Vec<&str> = BUILTIN_SCOPES
            .iter()
            .flat_map(|(_, cats)| cats.iter().copied())
            .chain(DEFAULT_BLOCKED_CATEGORIES.iter().copied())
            .chain(EXTRA_CATEGORIES.iter().copied())
            .collect();
        for code in 0..10_000u16 {
            if let Some(c) = category(&format!("{code:04}")) {
                assert!(known.contains(&c), "MCC {code} maps to unknown category {c}");
            }
        }
    }
}
