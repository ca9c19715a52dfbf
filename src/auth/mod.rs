//! Credentials: generating, hashing and comparing secrets. The HTTP side of
//! authentication (extractors) lives in `api::auth`.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AGENT_KEY_PREFIX: &str = "psr_agent_";
pub const ADMIN_TOKEN_PREFIX: &str = "psr_admin_";
pub const APPROVER_TOKEN_PREFIX: &str = "psr_appr_";

/// Bytes of entropy in every generated key or token (the contract asks for at least 32).
const SECRET_BYTES: usize = 32;

/// A fresh random secret: `prefix` + base64url of 32 random bytes.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored instead of a secret: hex SHA-256. Keys carry 256 bits of
/// entropy, so a fast hash is enough (no password-style stretching needed).
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality for secrets and their hashes.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The record a presented token's hash found, if its stored hash equals
/// the presented one: the index lookup finds the row, the acceptance is
/// this constant-time comparison.
pub fn accept<T>(found: Option<(T, String)>, presented_hash: &str) -> Option<T> {
    found.filter(|(_, stored)| ct_eq(stored, presented_hash)).map(|(record, _)| record)
}

/// Whether a credential limited to `cidrs` (empty: anywhere) may be used
/// from `client`; an unknown address is outside every network.
pub fn network_allows(cidrs: &[String], client: Option<IpAddr>) -> bool {
    cidrs.is_empty()
        || client.is_some_and(|ip| {
            cidrs.iter().filter_map(|c| c.parse::<ipnet::IpNet>().ok()).any(|net| net.contains(&ip))
        })
}

/// The part of a generated key that may be shown after creation, to tell
/// keys apart: the prefix and the first 6 characters of the random part.
pub fn display_prefix(secret: &str) -> String {
    let prefix = [AGENT_KEY_PREFIX, ADMIN_TOKEN_PREFIX, APPROVER_TOKEN_PREFIX]
        .into_iter()
        .find(|p| secret.starts_with(p))
        .unwrap_or_default();
    secret.chars().take(prefix.len() + 6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_unique_and_long() {
        let a = generate(AGENT_KEY_PREFIX);
        let b = generate(AGENT_KEY_PREFIX);
        assert!(a.starts_with(AGENT_KEY_PREFIX));
        assert_ne!(a, b);
        assert_eq!(a.len(), AGENT_KEY_PREFIX.len() + 43);
    }

    #[test]
    fn networks_allow_their_addresses_only() {
        let nets = ["10.9.0.0/16".to_owned(), "2001:db8::/32".to_owned()];
        assert!(network_allows(&[], None));
        assert!(network_allows(&nets, Some("10.9.200.1".parse().unwrap())));
        assert!(network_allows(&nets, Some("2001:db8::7".parse().unwrap())));
        assert!(!network_allows(&nets, Some("127.0.0.1".parse().unwrap())));
        assert!(!network_allows(&nets, None));
    }

    #[test]
    fn hashes_and_compares() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(ct_eq("same", "same"));
        assert!(!ct_eq("same", "diff"));
        assert!(!ct_eq("same", "same-but-longer"));
    }

    #[test]
    fn display_prefix_shows_only_the_start() {
        let k = generate(AGENT_KEY_PREFIX);
        let shown = display_prefix(&k);
        assert_eq!(shown.len(), AGENT_KEY_PREFIX.len() + 6);
        assert!(k.starts_with(&shown));
    }
}
