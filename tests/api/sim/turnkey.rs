//! A Turnkey API simulator: checks every request's API-key stamp for real,
//! deduplicates activity submissions by body like Turnkey's fingerprints,
//! and counts the transfers it executed. Faults are switched on per test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ORGANIZATION_ID: &str = "0f0e0d0c-0000-4000-8000-000000000001";

/// The API key tests configure (fixed, so no RNG is needed).
pub fn api_key() -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(b"purser turnkey simulator api key")).unwrap()
}

/// A key Turnkey has never seen.
pub fn stranger_key() -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(b"someone else's key")).unwrap()
}

pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_encoded_point(true).as_bytes())
}

/// An `X-Stamp` value over `body`, made independently of the adapter.
pub fn stamp(key: &SigningKey, body: &[u8]) -> String {
    use p256::ecdsa::signature::Signer;
    let signature: Signature = key.sign(body);
    let stamp = json!({
        "publicKey": public_key_hex(key),
        "scheme": "SIGNATURE_SCHEME_TK_API_P256",
        "signature": hex::encode(signature.to_der().as_bytes()),
    });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stamp.to_string())
}

/// One executed transfer, as the simulator read it from the calldata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub token: String,
    pub to: String,
    pub units: u128,
}

struct Activity {
    id: String,
    polls_left: u32,
    fails: bool,
}

#[derive(Default)]
struct Book {
    /// Body fingerprint -> activity id.
    fingerprints: HashMap<[u8; 32], String>,
    activities: HashMap<String, Activity>,
    transfers: Vec<Transfer>,
}

pub struct Sim {
    pub base_url: String,
    registered: VerifyingKey,
    book: Mutex<Book>,
    /// `get_activity` polls an activity stays PENDING for.
    pending_polls: AtomicU32,
    /// Submissions are recorded, then answered this late (0: at once).
    stall_ms: AtomicU32,
    /// The next submission is recorded, then answered with a 500.
    fail_500_once: AtomicBool,
    /// Transfers to this address end in ACTIVITY_STATUS_FAILED.
    failing_recipient: Mutex<Option<String>>,
    /// Every request received, stamped or not.
    pub requests: AtomicU32,
    pub refused_stamps: AtomicU32,
}

impl Sim {
    pub async fn start() -> Arc<Sim> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Arc::new(Sim {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            registered: *api_key().verifying_key(),
            book: Mutex::default(),
            pending_polls: AtomicU32::new(0),
            stall_ms: AtomicU32::new(0),
            fail_500_once: AtomicBool::new(false),
            failing_recipient: Mutex::new(None),
            requests: AtomicU32::new(0),
            refused_stamps: AtomicU32::new(0),
        });
        let app = Router::new()
            .route("/public/v1/submit/eth_send_transaction", post(submit))
            .route("/public/v1/query/get_activity", post(get_activity))
            .route("/public/v1/query/get_send_transaction_status", post(get_tx_status))
            .with_state(sim.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sim
    }

    pub fn set_pending_polls(&self, n: u32) {
        self.pending_polls.store(n, Ordering::SeqCst);
    }

    pub fn stall_submissions(&self, by: Duration) {
        self.stall_ms.store(by.as_millis() as u32, Ordering::SeqCst);
    }

    pub fn fail_next_submission_with_500(&self) {
        self.fail_500_once.store(true, Ordering::SeqCst);
    }

    pub fn fail_transfers_to(&self, address: &str) {
        *self.failing_recipient.lock().unwrap() = Some(address.to_lowercase());
    }

    /// Transfers executed: distinct activities that moved money.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.book.lock().unwrap().transfers.clone()
    }

    pub fn activities(&self) -> usize {
        self.book.lock().unwrap().activities.len()
    }

    /// Checks the `X-Stamp` header against the raw body: the registered
    /// key, the right scheme and a valid DER signature.
    fn check_stamp(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), (StatusCode, Json<Value>)> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let verdict = (|| {
            let header = headers.get("x-stamp")?.to_str().ok()?;
            let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
            let stamp: Value = serde_json::from_slice(&json).ok()?;
            let public_key = stamp["publicKey"].as_str()?;
            let key = VerifyingKey::from_sec1_bytes(&hex::decode(public_key).ok()?).ok()?;
            if key != self.registered || stamp["scheme"] != "SIGNATURE_SCHEME_TK_API_P256" {
                return None;
            }
            let signature = Signature::from_der(&hex::decode(stamp["signature"].as_str()?).ok()?).ok()?;
            key.verify(body, &signature).ok()
        })();
        verdict.ok_or_else(|| {
            self.refused_stamps.fetch_add(1, Ordering::SeqCst);
            (StatusCode::UNAUTHORIZED, Json(json!({ "code": 16, "message": "could not verify stamp" })))
        })
    }

    /// Records the activity for `body` unless its fingerprint is known.
    fn record(&self, body: &[u8], transfer: Transfer) -> String {
        let fingerprint: [u8; 32] = Sha256::digest(body).into();
        let fails = self.failing_recipient.lock().unwrap().as_deref() == Some(transfer.to.as_str());
        let mut book = self.book.lock().unwrap();
        if let Some(id) = book.fingerprints.get(&fingerprint) {
            return id.clone();
        }
        let id = format!("act-{:08}", book.activities.len() + 1);
        book.fingerprints.insert(fingerprint, id.clone());
        let polls_left = self.pending_polls.load(Ordering::SeqCst);
        book.activities.insert(id.clone(), Activity { id: id.clone(), polls_left, fails });
        if !fails {
            book.transfers.push(transfer);
        }
        id
    }

    fn activity_json(&self, id: &str, poll: bool) -> Option<Value> {
        let mut book = self.book.lock().unwrap();
        let activity = book.activities.get_mut(id)?;
        if poll && activity.polls_left > 0 {
            activity.polls_left -= 1;
        }
        let mut out = json!({ "id": activity.id, "organizationId": ORGANIZATION_ID,
                              "type": "ACTIVITY_TYPE_ETH_SEND_TRANSACTION_V2" });
        if activity.polls_left > 0 {
            out["status"] = json!("ACTIVITY_STATUS_PENDING");
        } else if activity.fails {
            out["status"] = json!("ACTIVITY_STATUS_FAILED");
            out["failure"] = json!({ "code": 7, "message": "policy denied the transfer" });
        } else {
            out["status"] = json!("ACTIVITY_STATUS_COMPLETED");
            out["result"] =
                json!({ "ethSendTransactionResultV2": { "sendTransactionStatusId": status_id(id) } });
        }
        Some(json!({ "activity": out }))
    }
}

fn status_id(activity_id: &str) -> String {
    format!("sts-{activity_id}")
}

pub fn tx_hash(activity_id: &str) -> String {
    format!("0x{}", hex::encode(Sha256::digest(activity_id.as_bytes())))
}

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn bad_request(message: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({ "code": 3, "message": message })))
}

/// The transfer an ERC-20 `transfer(address,uint256)` activity asks for.
fn parse_transfer(body: &Value) -> Result<Transfer, &'static str> {
    if body["type"] != "ACTIVITY_TYPE_ETH_SEND_TRANSACTION_V2" {
        return Err("wrong activity type");
    }
    if body["organizationId"] != ORGANIZATION_ID || !body["timestampMs"].is_string() {
        return Err("bad organizationId or timestampMs");
    }
    let p = &body["parameters"];
    if !p["from"].is_string() || !p["caip2"].is_string() || p.get("to").is_some() {
        return Err("bad parameters (V2 takes calls, not to/value/data)");
    }
    // V2: one call, the token's transfer, carrying no ether.
    let [call] = p["calls"].as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err("calls must hold exactly the one transfer");
    };
    if call["value"] != "0" {
        return Err("the transfer call carries ether");
    }
    let p = call;
    let data = p["data"].as_str().and_then(|d| d.strip_prefix("0x")).ok_or("no data")?;
    let data = hex::decode(data).map_err(|_| "data is not hex")?;
    if data.len() != 68 || data[..4] != [0xa9, 0x05, 0x9c, 0xbb] || data[4..16] != [0; 12] {
        return Err("data is not an ERC-20 transfer");
    }
    if data[36..52] != [0; 16] {
        return Err("amount too large");
    }
    Ok(Transfer {
        token: p["to"].as_str().ok_or("no to")?.to_lowercase(),
        to: format!("0x{}", hex::encode(&data[16..36])),
        units: u128::from_be_bytes(data[52..68].try_into().unwrap()),
    })
}

async fn submit(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Answer {
    sim.check_stamp(&headers, &body)?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|_| bad_request("body is not JSON"))?;
    let transfer = parse_transfer(&parsed).map_err(bad_request)?;
    let id = sim.record(&body, transfer);
    let stall = sim.stall_ms.load(Ordering::SeqCst);
    if stall > 0 {
        tokio::time::sleep(Duration::from_millis(stall.into())).await;
    }
    if sim.fail_500_once.swap(false, Ordering::SeqCst) {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "message": "internal error" }))));
    }
    Ok(Json(sim.activity_json(&id, false).unwrap()))
}

async fn get_activity(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Answer {
    sim.check_stamp(&headers, &body)?;
    let query: Value = serde_json::from_slice(&body).map_err(|_| bad_request("body is not JSON"))?;
    let id = query["activityId"].as_str().ok_or_else(|| bad_request("no activityId"))?;
    sim.activity_json(id, true)
        .map(Json)
        .ok_or_else(|| (StatusCode::NOT_FOUND, Json(json!({ "message": "no such activity" }))))
}

async fn get_tx_status(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Answer {
    sim.check_stamp(&headers, &body)?;
    let query: Value = serde_json::from_slice(&body).map_err(|_| bad_request("body is not JSON"))?;
    let id = query["sendTransactionStatusId"]
        .as_str()
        .and_then(|s| s.strip_prefix("sts-"))
        .filter(|id| sim.book.lock().unwrap().activities.contains_key(*id))
        .ok_or_else(|| (StatusCode::NOT_FOUND, Json(json!({ "message": "no such transaction" }))))?;
    Ok(Json(json!({ "txStatus": "INCLUDED", "eth": { "txHash": tx_hash(id) } })))
}
