//! Property tests: random input to the two parsers that read untrusted or
//! hand-written text, the policy loader (through the library) and the
//! payment request parser (through its real HTTP route). Neither may panic;
//! each answers a clean error.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use purser::app::App;
use purser::clock::{Clock, ManualClock};
use purser::config::Config;
use purser::policy::PolicySet;
use serde_json::{json, Value};

const CASES: u32 = 256;

const VALID_POLICY: &str = r#"
[policies.test]
trust_level = "custom"
currency = "USD"
currencies = ["USD", "USDC"]
rails = ["card", "usdc"]
per_tx_limit = "100.00"
daily_limit = "100.00"
weekly_limit = "300.00"
velocity = { max = 100000, per = "1m" }
timezone = "America/New_York"
approval_threshold = "80.00"
blocked_categories = ["gambling"]

[[policies.test.merchant_allowlist]]
merchant_id = "aws.amazon.com"
max_per_tx = "30.00"
schedule = { days = ["mon", "tue"], hours = "09:00-17:00" }

[[policies.test.merchant_denylist]]
category = "weapons"
"#;

fn load(text: &str) -> Result<PolicySet, purser::policy::LoadErrors> {
    PolicySet::from_sources(&[("fuzz.toml".to_owned(), text.to_owned())])
}

fn assert_clean_policy_error(text: &str) {
    if let Err(e) = load(text) {
        let message = e.to_string();
        assert!(!message.trim().is_empty(), "an empty error for {text:?}");
        assert!(message.contains("fuzz.toml"), "the error names the file: {message}");
    }
}

/// A TOML value of the kinds a policy uses, some of them wrong on purpose.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\"[0-9]{0,12}(\\.[0-9]{0,8})?\"",
        "\"-?[0-9]{1,4}\\.[0-9]{2}\"",
        "-?[0-9]{1,20}",
        "-?[0-9]{1,5}\\.[0-9]{1,5}",
        Just("true".to_owned()),
        Just("\"\"".to_owned()),
        "\"[a-zA-Z/_:\\-]{0,24}\"",
        "\\[(\"[a-z]{0,8}\", ?){0,4}\\]",
        "\\{ max = -?[0-9]{1,12}, per = \"[0-9]{0,4}[smhdw]?\" \\}",
        Just("{ days = [\"xyz\"], hours = \"25:00-99:99\" }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ]
}

fn policy_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "trust_level",
            "currency",
            "currencies",
            "rails",
            "providers",
            "per_tx_limit",
            "daily_limit",
            "weekly_limit",
            "monthly_limit",
            "velocity",
            "timezone",
            "allowed_scopes",
            "blocked_categories",
            "approval_threshold",
            "approvals_required",
            "approval_timeout",
            "new_merchant_approval_ratio",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ]
}

/// A policy file built from random keys and values, with random
/// allowlist/denylist entries.
fn structured_policy() -> impl Strategy<Value = String> {
    let entry = (
        prop::sample::select(vec!["merchant_allowlist", "merchant_denylist"]),
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "merchant_id",
                    "category",
                    "max_per_tx",
                    "expires_at",
                    "lifetime_limit",
                    "schedule",
                    "bogus",
                ]),
                toml_value(),
            ),
            0..4,
        ),
    );
    (
        "[a-z][a-z0-9_-]{0,10}",
        prop::collection::vec((policy_key(), toml_value()), 0..12),
        prop::collection::vec(entry, 0..3),
    )
        .prop_map(|(name, fields, entries)| {
            let mut text = format!("[policies.{name}]\n");
            for (k, v) in fields {
                text.push_str(&format!("{k} = {v}\n"));
            }
            for (table, pairs) in entries {
                text.push_str(&format!("\n[[policies.{name}.{table}]]\n"));
                for (k, v) in pairs {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn policy_loader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        assert_clean_policy_error(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn policy_loader_survives_random_text(text in "\\PC{0,512}") {
        assert_clean_policy_error(&text);
    }

    #[test]
    fn policy_loader_survives_structured_nonsense(text in structured_policy()) {
        assert_clean_policy_error(&text);
    }

    #[test]
    fn policy_loader_survives_a_mutated_valid_file(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, "\\PC{0,6}"), 1..6)
    ) {
        prop_assert!(load(VALID_POLICY).is_ok(), "the seed policy loads");
        let mut text: Vec<char> = VALID_POLICY.chars().collect();
        for (at, delete, insert) in edits {
            let at = at.index(text.len());
            let end = (at + delete).min(text.len());
            text.splice(at..end, insert.chars());
        }
        assert_clean_policy_error(&text.into_iter().collect::<String>());
    }
}

#[test]
fn policy_loader_survives_deep_nesting() {
    for depth in [64, 1_000, 10_000] {
        for text in [
            format!("x = {}{}", "[".repeat(depth), "]".repeat(depth)),
            format!("x = {}1{}", "{ a = ".repeat(depth), " }".repeat(depth)),
            format!("[{}]", vec!["a"; depth].join(".")),
        ] {
            assert_clean_policy_error(&text);
        }
    }
}

// ---------------------------------------------------------------------------
// The payment parser, through POST /v1/payments and /v1/payments/evaluate.

const ADMIN_TOKEN: &str = "psr_admin_fuzz-token-0123456789abcdefghijklmnop";

struct Gateway {
    rt: tokio::runtime::Runtime,
    base: String,
    key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// One gateway for the whole binary, on a runtime of its own.
fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::write(
            policies.join("test.toml"),
            VALID_POLICY.replace("velocity = { max = 100000", "velocity = { max = 100000000"),
        )
        .unwrap();
        let db = format!("sqlite://{}", dir.path().join("purser.db").display());
        let http = reqwest::Client::new();
        let (base, key) = rt.block_on(async {
            let config = Config::for_tests(db, policies, ADMIN_TOKEN.to_owned());
            let clock = Arc::new(ManualClock::new("2026-11-26T17:00:00Z".parse().unwrap()));
            let app = App::build(config, clock as Arc<dyn Clock>).await.expect("app builds");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(app.serve(listener, std::future::pending()));
            let agent: Value = http
                .post(format!("{base}/v1/agents"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({ "name": "fuzz", "policy": "test" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let key: Value = http
                .post(format!("{base}/v1/agents/{}/keys", agent["id"].as_str().unwrap()))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (base, key["key"].as_str().unwrap().to_owned())
        });
        Gateway { rt, base, key, http, _dir: dir }
    })
}

/// Posts `body` as JSON to the payment routes; every answer must be a
/// success or a 4xx with the JSON error shape, never a 5xx or a dropped
/// connection.
fn post_payment(body: Vec<u8>) -> Result<(), TestCaseError> {
    post_payment_with(body, None)
}

/// The same, with `idempotency_key` (raw header bytes) instead of a fresh key.
fn post_payment_with(body: Vec<u8>, idempotency_key: Option<Vec<u8>>) -> Result<(), TestCaseError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let g = gateway();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = if n % 2 == 0 { "/v1/payments" } else { "/v1/payments/evaluate" };
    let (status, text) = g.rt.block_on(async {
        let resp = g
            .http
            .post(format!("{}{path}", g.base))
            .bearer_auth(&g.key)
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                match &idempotency_key {
                    Some(raw) => reqwest::header::HeaderValue::from_bytes(raw).unwrap(),
                    None => reqwest::header::HeaderValue::from_str(&format!("fuzz-{n}")).unwrap(),
                },
            )
            .body(body.clone())
            .send()
            .await
            .expect("the connection is answered, not dropped");
        (resp.status(), resp.text().await.expect("a whole body"))
    });
    let shown = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
    let parsed: Value = serde_json::from_str(&text)
        .map_err(|_| TestCaseError::fail(format!("{status} not JSON: {text:?} for {shown:?}")))?;
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "{} on {}: {} for {:?}",
        status,
        path,
        text,
        shown
    );
    if status.is_client_error() {
        prop_assert!(parsed["error"]["code"].is_string(), "{}: {}", status, text);
        prop_assert!(parsed["error"]["message"].is_string(), "{}: {}", status, text);
    } else {
        prop_assert!(parsed["decision"]["outcome"].is_string(), "{}: {}", status, text);
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for one payment field: usually of the right kind, often odd.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "-?[0-9]{0,30}(\\.[0-9]{0,10})?([eE][+-]?[0-9]{1,3})?".prop_map(Value::from),
        prop::sample::select(vec!["USD", "usd", "USDC", "EUR", "JPY", "XYZ", "", "US D"])
            .prop_map(Value::from),
        "[a-z0-9.\\-]{0,40}".prop_map(Value::from),
        "\\PC{0,300}".prop_map(Value::from),
        json_value(),
    ]
}

fn payment_like() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "amount",
        "currency",
        "merchant_id",
        "merchant_category",
        "rail",
        "fee",
        "description",
        "metadata",
        "status",
    ]);
    prop::collection::btree_map(field, field_value(), 0..9).prop_map(|m| {
        let mut body = json!({
            "amount": "1.00", "currency": "USD", "merchant_id": "aws.amazon.com",
            "merchant_category": "cloud", "rail": "card"
        });
        for (k, v) in m {
            body[k] = v;
        }
        body
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn payment_parser_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        post_payment(bytes)?;
    }

    #[test]
    fn payment_parser_survives_random_json(value in json_value()) {
        post_payment(serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn payment_parser_survives_payment_shaped_nonsense(body in payment_like()) {
        post_payment(serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn payment_parser_survives_odd_idempotency_keys(
        raw in prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 1..400)
            .prop_filter("no surrounding whitespace", |b| {
                !b.first().unwrap().is_ascii_whitespace() && !b.last().unwrap().is_ascii_whitespace()
            })
    ) {
        post_payment_with(serde_json::to_vec(&json!({
            "amount": "0.01", "currency": "USD", "merchant_id": "aws.amazon.com", "rail": "card"
        })).unwrap(), Some(raw))?;
    }

    #[test]
    fn payment_list_survives_random_queries(query in "\\PC{0,80}") {
        let g = gateway();
        let (status, text) = g.rt.block_on(async {
            let resp = g.http.get(format!("{}/v1/payments?{query}", g.base)).bearer_auth(&g.key).send().await
                .expect("the connection is answered, not dropped");
            (resp.status(), resp.text().await.expect("a whole body"))
        });
        prop_assert!(status.is_success() || status.is_client_error(), "{}: {} for {:?}", status, text, query);
        prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{}: {:?}", status, text);
    }
}
