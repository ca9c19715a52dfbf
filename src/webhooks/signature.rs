//! Signing and verifying outbound webhooks in the Standard Webhooks format
//! (<https://www.standardwebhooks.com>).
//!
//! Every delivery carries `webhook-id`, `webhook-timestamp` and `webhook-signature` headers. The
//! signature is `v1,` + base64 of HMAC-SHA256 over `"{id}.{timestamp}.{body}"` keyed with the
//! endpoint's secret bytes. Covering the id and timestamp, not only the body, is what lets a
//! merchant reject replays: an attacker who captured one delivery cannot re-send it later (the
//! timestamp is too old) or under a different id (the signature no longer matches).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of the textual form of a secret, as used by the Standard Webhooks libraries.
const WHSEC_PREFIX: &str = "whsec_";
/// Fewer bytes than this would make the HMAC key guessable; the spec requires 24 to 64.
const MIN_SECRET_BYTES: usize = 24;
/// Upper bound from the spec (and HMAC-SHA256's block size: longer keys would be hashed first).
const MAX_SECRET_BYTES: usize = 64;
/// Bytes in a freshly generated secret: 256 bits, beyond any brute force.
const GENERATED_SECRET_BYTES: usize = 32;

/// How far (either way) a `webhook-timestamp` may be from the verifier's clock. Bounds the window
/// in which a captured delivery can be replayed, while tolerating ordinary clock skew.
pub const TOLERANCE_SECONDS: i64 = 300;

/// A webhook signing secret: the raw bytes shared between purser and one merchant endpoint.
///
/// Deliberately does not implement `Display`, and its `Debug` prints `Secret(..)`, so that the
/// secret cannot end up in logs or error messages by accident. Use [`Secret::to_whsec`] where the
/// secret must really be shown (once, to the merchant).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

/// Why a text or byte string is not a usable webhook secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("webhook secret is not valid base64 (expected `whsec_` followed by standard base64)")]
    Base64,
    #[error("webhook secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long, got {0} bytes")]
    Length(usize),
}

impl Secret {
    /// A new random secret of 32 bytes from the operating system's CSPRNG (a predictable secret
    /// would let anyone forge deliveries).
    pub fn generate() -> Secret {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Wraps raw secret bytes, refusing lengths outside 24..=64 bytes: shorter keys are too weak,
    /// longer ones are outside the Standard Webhooks spec and other implementations may reject them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret, SecretError> {
        if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            Ok(Secret(bytes))
        } else {
            Err(SecretError::Length(bytes.len()))
        }
    }

    /// Parses the textual form `whsec_` + standard (padded) base64. Like the stock Standard
    /// Webhooks libraries, the `whsec_` prefix is optional, so merchants can paste either form.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text.strip_prefix(WHSEC_PREFIX).unwrap_or(text);
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        Secret::from_bytes(bytes)
    }

    /// The textual form, `whsec_` + standard base64, as shown to merchants.
    pub fn to_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The HMAC over `"{id}.{timestamp}.{body}"`. The body is fed as raw bytes: signatures must be
    /// computed over exactly the bytes sent, never over re-serialised JSON.
    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One signature entry: `v1,` + standard base64 of HMAC-SHA256(secret bytes, `"{id}.{timestamp}.{body}"`).
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` header value: one space-separated `v1,...` entry per secret. While a
/// rotated secret's grace period runs, deliveries are signed with both the new and the old secret
/// so that a merchant still verifying with the old one is not cut off.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| sign(secret, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Why a delivery failed verification. The messages are meant to be shown to merchants as-is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the `{0}` header is missing or empty")]
    MissingHeader(&'static str),
    #[error("the `webhook-timestamp` header is not a Unix timestamp in whole seconds")]
    BadTimestamp,
    #[error(
        "the `webhook-timestamp` is more than 5 minutes in the past: this may be a replayed delivery \
         (or this machine's clock is wrong)"
    )]
    TimestampTooOld,
    #[error("the `webhook-timestamp` is more than 5 minutes in the future: check this machine's clock")]
    TimestampTooNew,
    #[error(
        "no `v1` signature in the `webhook-signature` header matches: check that the secret is the \
         endpoint's current one and that the body is verified exactly as received, before any parsing"
    )]
    NoMatchingSignature,
}

/// Verifies one delivery as a merchant would.
///
/// Checks, in order: the id, timestamp and signature headers are present; the timestamp is within
/// [`TOLERANCE_SECONDS`] of `now_unix` either way (limits replays of captured deliveries); and at
/// least one `v1,` entry of the space-separated `signature_header` matches. Entries with other
/// version tags are ignored so that future signature schemes can be added alongside `v1`.
/// Signatures are compared in constant time, so timing does not reveal how much of a forged
/// signature was right.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-id"));
    }
    if timestamp.trim().is_empty() {
        return Err(VerifyError::MissingHeader("webhook-timestamp"));
    }
    if signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader("webhook-signature"));
    }

    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    // Widen before subtracting: an attacker-chosen timestamp near i64::MIN/MAX must not overflow.
    let age = i128::from(now_unix) - i128::from(timestamp);
    if age > i128::from(TOLERANCE_SECONDS) {
        return Err(VerifyError::TimestampTooOld);
    }
    if -age > i128::from(TOLERANCE_SECONDS) {
        return Err(VerifyError::TimestampTooNew);
    }

    let expected = secret.mac(msg_id, timestamp, body).finalize().into_bytes();
    let matched = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(expected.as_slice())));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The official Standard Webhooks test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::parse(SECRET).unwrap()
    }

    #[test]
    fn official_test_vector() {
        assert_eq!(sign(&secret(), MSG_ID, TIMESTAMP, BODY), EXPECTED);
        assert_eq!(verify(&secret(), MSG_ID, "1614265330", EXPECTED, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn secret_text_forms() {
        let with_prefix = secret();
        let without_prefix = Secret::parse(SECRET.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(with_prefix.as_bytes(), without_prefix.as_bytes());
        assert_eq!(with_prefix.as_bytes().len(), 24);
        assert_eq!(with_prefix.to_whsec(), SECRET);

        let generated = Secret::generate();
        assert_eq!(generated.as_bytes().len(), 32);
        assert_ne!(generated.as_bytes(), Secret::generate().as_bytes());
        assert_eq!(Secret::parse(&generated.to_whsec()).unwrap().as_bytes(), generated.as_bytes());

        assert_eq!(Secret::parse("whsec_not base64!").unwrap_err(), SecretError::Base64);
        assert_eq!(Secret::parse("whsec_c2hvcnQ=").unwrap_err(), SecretError::Length(5));
        assert_eq!(Secret::from_bytes(vec![7; 23]).unwrap_err(), SecretError::Length(23));
        assert_eq!(Secret::from_bytes(vec![7; 65]).unwrap_err(), SecretError::Length(65));
        assert!(Secret::from_bytes(vec![7; 24]).is_ok());
        assert!(Secret::from_bytes(vec![7; 64]).is_ok());
    }

    #[test]
    fn tampering_fails() {
        let s = secret();
        let ts = "1614265330";
        assert_eq!(
            verify(&s, MSG_ID, ts, EXPECTED, br#"{"test": 2432232315}"#, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&s, "msg_p5jXN8AQM9LWM0D4loKWxJel", ts, EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&s, MSG_ID, "1614265331", EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        let other = Secret::generate();
        assert_eq!(
            verify(&other, MSG_ID, ts, EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamp_tolerance() {
        let s = secret();
        let ts = "1614265330";
        assert_eq!(verify(&s, MSG_ID, ts, EXPECTED, BODY, TIMESTAMP + 300), Ok(()));
        assert_eq!(verify(&s, MSG_ID, ts, EXPECTED, BODY, TIMESTAMP - 300), Ok(()));
        assert_eq!(
            verify(&s, MSG_ID, ts, EXPECTED, BODY, TIMESTAMP + 301),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            verify(&s, MSG_ID, ts, EXPECTED, BODY, TIMESTAMP - 301),
            Err(VerifyError::TimestampTooNew)
        );
        // Extreme values must not overflow.
        let min = i64::MIN.to_string();
        assert_eq!(verify(&s, MSG_ID, &min, EXPECTED, BODY, i64::MAX), Err(VerifyError::TimestampTooOld));
        let max = i64::MAX.to_string();
        assert_eq!(verify(&s, MSG_ID, &max, EXPECTED, BODY, i64::MIN), Err(VerifyError::TimestampTooNew));
    }

    #[test]
    fn malformed_headers() {
        let s = secret();
        let ts = "1614265330";
        assert_eq!(
            verify(&s, "", ts, EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(&s, MSG_ID, "", EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            verify(&s, MSG_ID, ts, " ", BODY, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        assert_eq!(verify(&s, MSG_ID, "soon", EXPECTED, BODY, TIMESTAMP), Err(VerifyError::BadTimestamp));
        assert_eq!(
            verify(&s, MSG_ID, "1614265330.5", EXPECTED, BODY, TIMESTAMP),
            Err(VerifyError::BadTimestamp)
        );
        // Only v1 entries count, and undecodable entries are skipped rather than fatal.
        let v2 = EXPECTED.replacen("v1,", "v2,", 1);
        assert_eq!(verify(&s, MSG_ID, ts, &v2, BODY, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
        let mixed = format!("v1,!!! {v2} {EXPECTED}");
        assert_eq!(verify(&s, MSG_ID, ts, &mixed, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn rotation_header_verifies_with_either_secret() {
        let old = secret();
        let new = Secret::generate();
        let header = signature_header(&[&new, &old], MSG_ID, TIMESTAMP, BODY);
        assert_eq!(header, format!("{} {EXPECTED}", sign(&new, MSG_ID, TIMESTAMP, BODY)));
        assert_eq!(verify(&old, MSG_ID, "1614265330", &header, BODY, TIMESTAMP), Ok(()));
        assert_eq!(verify(&new, MSG_ID, "1614265330", &header, BODY, TIMESTAMP), Ok(()));
        let stranger = Secret::generate();
        assert_eq!(
            verify(&stranger, MSG_ID, "1614265330", &header, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn debug_does_not_leak() {
        let s = secret();
        let printed = format!("{s:?} {s:#?}");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert!(!printed.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!printed.contains(&format!("{:?}", s.as_bytes())));
        assert!(!printed.contains(&hex::encode(s.as_bytes())));
    }
}
