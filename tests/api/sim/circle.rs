//! A Circle developer-controlled wallets API on 127.0.0.1, strict where the
//! real one is: bearer API key, an entity secret ciphertext that must
//! decrypt to the registered secret and is never accepted twice, and
//! idempotency keys that map to one transaction. Transactions go from
//! `INITIATED` to `COMPLETE` (or `FAILED` for [`FAILING_ADDRESS`]) after a
//! set number of lookups. Faults are switched on per test.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::prelude::{Engine, BASE64_STANDARD};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const API_KEY: &str = "TEST_API_KEY:sim0001:5ec4e7c0ffee";
/// The entity secret registered with this simulator (hex, 32 bytes).
pub const ENTITY_SECRET: &str = "8f2c1d9e4b7a60351c2e9f8d7b6a5c4e3d2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
pub const WALLET_ID: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
pub const TOKEN_ID: &str = "7adb2b7d-c9cd-5164-b2d4-b73b088274dc";
/// Transfers to this address end `FAILED`.
pub const SHOP: &str = "shop.example";
pub const SHOP_ADDRESS: &str = "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c";
pub const BROKE: &str = "broke.example";

pub const FAILING_ADDRESS: &str = "0x00000000000000000000000000000000000dead1";

/// The simulator's RSA key pair: made once per test process, since a
/// 2048-bit key takes seconds in a debug build.
pub fn private_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation"))
}

/// Circle's entity public key as `GET /v1/w3s/config/entity/publicKey`
/// serves it (PKCS#1 PEM).
pub fn public_key_pem() -> String {
    RsaPublicKey::from(private_key()).to_pkcs1_pem(Default::default()).expect("PEM").to_string()
}

/// A ciphertext as a correct client makes it, for hand-made requests.
pub fn encrypt_for(key: &RsaPublicKey, secret: &[u8]) -> String {
    BASE64_STANDARD.encode(key.encrypt(&mut rand::thread_rng(), Oaep::new::<Sha256>(), secret).unwrap())
}

/// Fault switches; all off by default.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Create the transaction, then answer only after this long.
    pub stall: Option<Duration>,
    /// Create the transaction, then answer 500 once.
    pub fail_once: bool,
    /// Answer 200 with a body that is not JSON, creating nothing.
    pub garbage: bool,
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub state: &'static str,
    pub idempotency_key: String,
    pub ref_id: String,
    pub destination: String,
    pub amounts: Vec<String>,
    pub wallet_id: String,
    pub token_id: String,
    pub fee_level: String,
    lookups: u32,
}

#[derive(Default)]
struct Ledger {
    faults: Faults,
    transactions: HashMap<String, Transaction>,
    by_key: HashMap<String, String>,
    seen_ciphertexts: HashSet<String>,
    /// Every ciphertext received on a transfer request, in order.
    ciphertexts: Vec<String>,
    requests: u32,
}

struct Shared {
    ledger: Mutex<Ledger>,
    /// Lookups after which a transaction is final.
    final_after: u32,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap()
    }
}

pub struct CircleSim {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl CircleSim {
    /// A simulator whose transactions are final on the `final_after`-th
    /// lookup.
    pub async fn start(final_after: u32) -> CircleSim {
        let shared = Arc::new(Shared { ledger: Mutex::default(), final_after });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sim = CircleSim { addr, shared, running: None };
        sim.serve(listener);
        sim
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/v1/w3s/developer/transactions/transfer", post(create_transfer))
            .route("/v1/w3s/transactions/{id}", get(get_transaction))
            .with_state(self.shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.running = Some((stop, served));
    }

    /// Closes the port; connections are refused until [`CircleSim::resume`].
    pub async fn shut_down(&mut self) {
        if let Some((stop, served)) = self.running.take() {
            let _ = stop.send(());
            let _ = served.await;
        }
    }

    /// Serves again on the same address, with the same transactions.
    pub async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// The body of a `[circle]` section for `sim` (no subtables, so it also
    /// parses on its own), with its secrets in files under `dir` and the public
    /// key inline, or in the file `public_key`.
    pub fn section(&self, dir: &tempfile::TempDir, public_key: Option<&std::path::Path>) -> String {
        let api_key = dir.path().join("circle_api_key");
        let entity_secret = dir.path().join("circle_entity_secret");
        std::fs::write(&api_key, format!("{API_KEY}\n")).unwrap();
        std::fs::write(&entity_secret, format!("{ENTITY_SECRET}\n")).unwrap();
        let public_key = match public_key {
            Some(path) => format!("{:?}", path.display().to_string()),
            None => format!("\"\"\"\n{}\"\"\"", public_key_pem()),
        };
        format!(
            r#"base_url = "{base}"
api_key = {{ file = {api_key:?} }}
entity_secret = {{ file = {entity_secret:?} }}
entity_public_key = {public_key}
wallet_id = "{WALLET_ID}"
token_id = "{TOKEN_ID}"
destinations = {{ "{SHOP}" = "{SHOP_ADDRESS}", "{BROKE}" = "{FAILING_ADDRESS}" }}
poll = {{ attempts = 3, interval = "10ms" }}
http = {{ timeout = "2s" }}
    "#,
            base = self.base_url(),
            api_key = api_key.display().to_string(),
            entity_secret = entity_secret.display().to_string(),
        )
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.ledger().faults = faults;
    }

    /// Transfers executed (transactions created).
    pub fn transfers(&self) -> usize {
        self.shared.ledger().transactions.len()
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        self.shared.ledger().transactions.values().cloned().collect()
    }

    pub fn ciphertexts(&self) -> Vec<String> {
        self.shared.ledger().ciphertexts.clone()
    }

    /// Requests of any kind that reached the simulator.
    pub fn requests(&self) -> u32 {
        self.shared.ledger().requests
    }
}

fn circle_error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferRequest {
    idempotency_key: String,
    entity_secret_ciphertext: String,
    wallet_id: String,
    token_id: String,
    destination_address: String,
    amounts: Vec<String>,
    fee_level: String,
    ref_id: String,
}

/// Whether `ciphertext` is the registered entity secret under this
/// simulator's key.
fn holds_entity_secret(ciphertext: &str) -> bool {
    let Ok(sealed) = BASE64_STANDARD.decode(ciphertext) else { return false };
    private_key().decrypt(Oaep::new::<Sha256>(), &sealed).is_ok_and(|s| hex::encode(s) == ENTITY_SECRET)
}

async fn create_transfer(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    shared.ledger().requests += 1;
    if !authorized(&headers) {
        return circle_error(StatusCode::UNAUTHORIZED, 401, "Malformed authorization.");
    }
    let Ok(req) = serde_json::from_str::<TransferRequest>(&body) else {
        return circle_error(StatusCode::BAD_REQUEST, 2, "API parameter invalid");
    };
    if shared.ledger().faults.garbage {
        return (StatusCode::OK, "<html><body>upstream hiccup</body></html>").into_response();
    }
    if !shared.ledger().seen_ciphertexts.insert(req.entity_secret_ciphertext.clone()) {
        return circle_error(StatusCode::BAD_REQUEST, 156013, "The entity secret ciphertext has been used.");
    }
    shared.ledger().ciphertexts.push(req.entity_secret_ciphertext.clone());
    if !holds_entity_secret(&req.entity_secret_ciphertext) {
        return circle_error(StatusCode::BAD_REQUEST, 156016, "The provided entity secret is invalid.");
    }
    let (id, faults) = {
        let mut ledger = shared.ledger();
        let id = match ledger.by_key.get(&req.idempotency_key) {
            Some(id) => id.clone(),
            None => record(&mut ledger, req),
        };
        let faults = ledger.faults.clone();
        ledger.faults.fail_once = false;
        (id, faults)
    };
    if faults.fail_once {
        return circle_error(StatusCode::INTERNAL_SERVER_ERROR, 500, "Internal server error.");
    }
    if let Some(stall) = faults.stall {
        tokio::time::sleep(stall).await;
    }
    (StatusCode::CREATED, Json(json!({ "data": { "id": id, "state": "INITIATED" } }))).into_response()
}

fn record(ledger: &mut Ledger, req: TransferRequest) -> String {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    ledger.by_key.insert(req.idempotency_key.clone(), id.clone());
    let txn = Transaction {
        id: id.clone(),
        state: "INITIATED",
        idempotency_key: req.idempotency_key,
        ref_id: req.ref_id,
        destination: req.destination_address,
        amounts: req.amounts,
        wallet_id: req.wallet_id,
        token_id: req.token_id,
        fee_level: req.fee_level,
        lookups: 0,
    };
    ledger.transactions.insert(id.clone(), txn);
    id
}

async fn get_transaction(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut ledger = shared.ledger();
    ledger.requests += 1;
    if !authorized(&headers) {
        return circle_error(StatusCode::UNAUTHORIZED, 401, "Malformed authorization.");
    }
    let Some(txn) = ledger.transactions.get_mut(&id) else {
        return circle_error(StatusCode::NOT_FOUND, 156001, "Cannot find the transaction.");
    };
    txn.lookups += 1;
    if txn.lookups >= shared.final_after && txn.state == "INITIATED" {
        txn.state = if txn.destination == FAILING_ADDRESS { "FAILED" } else { "COMPLETE" };
    }
    let error_reason = if txn.state == "FAILED" { "INSUFFICIENT_NATIVE_TOKEN" } else { "" };
    let body: Value = json!({ "data": { "transaction": {
        "id": txn.id,
        "state": txn.state,
        "blockchain": "MATIC-AMOY",
        "custodyType": "DEVELOPER",
        "transactionType": "OUTBOUND",
        "walletId": txn.wallet_id,
        "tokenId": txn.token_id,
        "destinationAddress": txn.destination,
        "amounts": txn.amounts,
        "refId": txn.ref_id,
        "errorReason": error_reason,
    }}});
    Json(body).into_response()
}
