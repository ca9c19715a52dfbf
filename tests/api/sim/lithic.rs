//! A Lithic cards API on 127.0.0.1, strict where the real one is: the API
//! key as the whole `Authorization` header, a spend limit and its duration on
//! every card, cursor-paginated listing with `begin` and a partial-match
//! `memo` filter. It records but ignores the `Idempotency-Key` of card
//! creation (so the adapter's own guard is what is tested), and its answers
//! carry the PAN and CVV, which the adapter must never read. Faults are
//! switched on per test. Also builds signed ASA requests as Lithic sends
//! them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use purser::providers::lithic::asa;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

pub const API_KEY: &str = "sim-lithic-api-key-0123456789";
/// The ASA HMAC secret the simulated program signs with (24 key bytes).
pub const ASA_SECRET: &str = "whsec_c2ltdWxhdGVkLWFzYS1zZWNyZXQtMDAw";
/// The PAN every simulated card has; it must never show up in purser.
pub const PAN: &str = "4111111289144142";

/// Fault switches; all off by default.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Create the card, then answer only after this long.
    pub stall: Option<Duration>,
    /// Answer the next card creation 500, creating nothing.
    pub fail_once: bool,
    /// Answer the next this many card creations 429 (`Retry-After: 1`),
    /// creating nothing, each after `throttle_stall`.
    pub throttle: u32,
    pub throttle_stall: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Card {
    pub token: String,
    pub card_type: String,
    pub memo: String,
    pub spend_limit: i64,
    pub spend_limit_duration: String,
    pub state: String,
    created: DateTime<Utc>,
}

#[derive(Default)]
struct Ledger {
    cards: Vec<Card>,
    faults: Faults,
    requests: u32,
    create_bodies: Vec<Value>,
    idempotency_keys: Vec<Option<String>>,
    memo_filters: Vec<Option<String>>,
}

pub struct LithicSim {
    pub base: String,
    ledger: Arc<Mutex<Ledger>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LithicSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LithicSim {
    pub async fn start() -> LithicSim {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let app = Router::new()
            .route("/v1/cards", get(list).post(create))
            .route("/v1/cards/{token}", get(retrieve))
            .with_state(ledger.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        LithicSim { base, ledger, server }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap()
    }

    /// A `[lithic]` providers-file section for this simulator, with the
    /// credentials in files under `dir`; `extra` adds keys.
    pub fn section(&self, dir: &tempfile::TempDir, api_key: &str, extra: &str) -> String {
        let key = dir.path().join("lithic_api_key");
        std::fs::write(&key, format!("{api_key}\n")).unwrap();
        let asa = dir.path().join("lithic_asa_secret");
        std::fs::write(&asa, ASA_SECRET).unwrap();
        format!(
            "base_url = {:?}\napi_key = {{ file = {:?} }}\nasa_secret = {{ file = {:?} }}\n{extra}\n\
             http = {{ timeout = \"300ms\", attempts = 3 }}\n",
            self.base,
            key.display().to_string(),
            asa.display().to_string(),
        )
    }

    pub fn set_faults(&self, faults: Faults) {
        self.ledger().faults = faults;
    }

    pub fn cards(&self) -> Vec<Card> {
        self.ledger().cards.clone()
    }

    /// Every request received, answered or not.
    pub fn requests(&self) -> u32 {
        self.ledger().requests
    }

    /// Bodies of every `POST /v1/cards`, including refused ones.
    pub fn create_bodies(&self) -> Vec<Value> {
        self.ledger().create_bodies.clone()
    }

    /// The `Idempotency-Key` of every `POST /v1/cards`.
    pub fn idempotency_keys(&self) -> Vec<Option<String>> {
        self.ledger().idempotency_keys.clone()
    }

    /// The `memo` filter of every listing.
    pub fn memo_filters(&self) -> Vec<Option<String>> {
        self.ledger().memo_filters.clone()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "debugging_request_id": "sim", "message": message }))).into_response()
}

/// Counts the request and checks the API key: the refusal, if any.
fn refusal(ledger: &Mutex<Ledger>, headers: &HeaderMap) -> Option<Response> {
    ledger.lock().unwrap().requests += 1;
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(API_KEY) => None,
        _ => Some(error(StatusCode::UNAUTHORIZED, "Please provide API key in Authorization header")),
    }
}

/// The full card, as Lithic answers creation and retrieval: PCI fields too.
fn full(card: &Card) -> Value {
    let mut v = listed(card);
    v["pan"] = json!(PAN);
    v["cvv"] = json!("776");
    v
}

fn listed(card: &Card) -> Value {
    json!({
        "token": card.token,
        "type": card.card_type,
        "memo": card.memo,
        "spend_limit": card.spend_limit,
        "spend_limit_duration": card.spend_limit_duration,
        "state": card.state,
        "created": card.created.to_rfc3339(),
        "last_four": &PAN[12..],
        "exp_month": "11",
        "exp_year": "2029",
        "funding": { "type": "DEPOSITORY_CHECKING", "state": "ENABLED" },
    })
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The card a valid creation body describes.
fn card_from(body: &Value) -> Result<Card, &'static str> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let card_type = field("type").filter(|t| ["SINGLE_USE", "MERCHANT_LOCKED", "VIRTUAL"].contains(t));
    let duration = field("spend_limit_duration")
        .filter(|d| ["TRANSACTION", "FOREVER", "MONTHLY", "ANNUALLY"].contains(d));
    let spend_limit = body.get("spend_limit").and_then(Value::as_i64).filter(|l| *l >= 1);
    let state = field("state").unwrap_or("OPEN");
    match (card_type, duration, spend_limit) {
        (None, ..) => Err("type is missing or not a card type"),
        (_, None, _) => Err("spend_limit_duration is missing or invalid"),
        (_, _, None) => Err("spend_limit must be an integer number of cents, at least 1"),
        (Some(t), Some(d), Some(l)) => Ok(Card {
            token: uuid(),
            card_type: t.to_owned(),
            memo: field("memo").unwrap_or_default().to_owned(),
            spend_limit: l,
            spend_limit_duration: d.to_owned(),
            state: state.to_owned(),
            created: Utc::now(),
        }),
    }
}

async fn create(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = refusal(&ledger, &headers) {
        return refused;
    }
    let throttled = {
        let mut l = ledger.lock().unwrap();
        l.create_bodies.push(body.clone());
        let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        l.idempotency_keys.push(key);
        (l.faults.throttle > 0).then(|| {
            l.faults.throttle -= 1;
            l.faults.throttle_stall
        })
    };
    if let Some(stall) = throttled {
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        let mut answer = error(StatusCode::TOO_MANY_REQUESTS, "Rate limited");
        answer.headers_mut().insert("retry-after", "1".parse().unwrap());
        return answer;
    }
    let (card, stall) = {
        let mut l = ledger.lock().unwrap();
        if std::mem::take(&mut l.faults.fail_once) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
        let card = match card_from(&body) {
            Ok(card) => card,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        };
        l.cards.push(card.clone());
        (card, l.faults.stall)
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Json(full(&card)).into_response()
}

async fn retrieve(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if let Some(refused) = refusal(&ledger, &headers) {
        return refused;
    }
    let l = ledger.lock().unwrap();
    match l.cards.iter().find(|c| c.token == token) {
        Some(card) => Json(full(card)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Card not found"),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    memo: Option<String>,
    begin: Option<DateTime<Utc>>,
    page_size: Option<usize>,
    starting_after: Option<String>,
}

async fn list(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(refused) = refusal(&ledger, &headers) {
        return refused;
    }
    let size = q.page_size.unwrap_or(50);
    if !(1..=100).contains(&size) {
        return error(StatusCode::BAD_REQUEST, "page_size must be between 1 and 100");
    }
    let mut l = ledger.lock().unwrap();
    l.memo_filters.push(q.memo.clone());
    // Newest first.
    let mut cards: Vec<&Card> = l
        .cards
        .iter()
        .rev()
        .filter(|c| q.begin.is_none_or(|b| c.created >= b))
        .filter(|c| q.memo.as_ref().is_none_or(|m| c.memo.contains(m.as_str())))
        .collect();
    if let Some(after) = &q.starting_after {
        let Some(at) = cards.iter().position(|c| &c.token == after) else {
            return error(StatusCode::BAD_REQUEST, "starting_after is not a card in this listing");
        };
        cards.drain(..=at);
    }
    let has_more = cards.len() > size;
    let data: Vec<Value> = cards.into_iter().take(size).map(listed).collect();
    Json(json!({ "data": data, "has_more": has_more })).into_response()
}

/// An ASA authorization request as Lithic sends it: the JSON body and its
/// Standard Webhooks signature headers, signed with [`ASA_SECRET`].
pub struct AsaRequest {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub fn asa_authorization(card_token: &str, amount_cents: i64, acceptor_id: &str, mcc: &str) -> AsaRequest {
    asa_request("AUTHORIZATION", card_token, amount_cents, acceptor_id, mcc)
}

/// Signs `body` as Lithic signs an ASA request.
pub fn asa_signed(body: Vec<u8>) -> AsaRequest {
    AsaRequest { headers: asa::signed_headers(ASA_SECRET.as_bytes(), &body), body }
}

/// An ASA request of any `status` (`CREDIT_AUTHORIZATION`, `BALANCE_INQUIRY`, ...).
pub fn asa_request(
    status: &str,
    card_token: &str,
    amount_cents: i64,
    acceptor_id: &str,
    mcc: &str,
) -> AsaRequest {
    let body = json!({
        "token": uuid(),
        "event_type": "card_authorization.approval_request",
        "status": status,
        "created": Utc::now().to_rfc3339(),
        "acquirer_fee": 0,
        "amount": amount_cents,
        "authorization_amount": amount_cents,
        "merchant_amount": amount_cents,
        "merchant_currency": "USD",
        "cardholder_currency": "USD",
        "cash_amount": 0,
        "settled_amount": 0,
        "transaction_initiator": "CARDHOLDER",
        "amounts": {
            "cardholder": { "amount": amount_cents, "conversion_rate": "1.000000", "currency": "USD" },
            "hold": { "amount": amount_cents, "currency": "USD" },
            "merchant": { "amount": amount_cents, "currency": "USD" },
            "settlement": null
        },
        "avs": { "address": "", "address_on_file_match": "NOT_PRESENT", "zipcode": "" },
        "card": {
            "token": card_token,
            "last_four": &PAN[12..],
            "memo": "",
            "spend_limit": 0,
            "spend_limit_duration": "TRANSACTION",
            "state": "OPEN",
            "type": "SINGLE_USE"
        },
        "merchant": {
            "acceptor_id": acceptor_id,
            "acquiring_institution_id": "000000000000",
            "city": "SEATTLE",
            "country": "USA",
            "descriptor": acceptor_id.to_uppercase(),
            "mcc": mcc,
            "state": "WA"
        },
        "pos": {
            "entry_mode": { "card": "NOT_PRESENT", "cardholder": "NOT_PRESENT", "pan": "ECOMMERCE", "pin_entered": false }
        }
    })
    .to_string()
    .into_bytes();
    asa_signed(body)
}
