//! Encryption at rest for webhook signing secrets.
//!
//! purser must store each endpoint's secret in a form it can recover (it signs every delivery with
//! it), so the secret cannot be hashed like an API key. Encrypting it with a key that lives only in
//! the operator's environment means a leaked database or backup alone does not let anyone forge
//! webhooks to merchants. ChaCha20-Poly1305 is authenticated, so a modified or swapped ciphertext is
//! rejected instead of silently decrypting to garbage.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Version tag of the sealed format, so the scheme can change later without ambiguity.
const SEALED_PREFIX: &str = "v1:";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// Poly1305 tag length: anything shorter cannot be a sealed value.
const TAG_BYTES: usize = 16;
/// Minimum length of a passphrase-style key. SHA-256 is not a slow password hash, so the key must
/// carry its own entropy; 32 characters keeps casual, guessable passphrases out.
const MIN_PASSPHRASE_CHARS: usize = 32;

/// Why `PURSER_ENCRYPTION_KEY` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "PURSER_ENCRYPTION_KEY is too short: use standard base64 of 32 random bytes \
         (e.g. `openssl rand -base64 32`) or a random string of at least 32 characters"
    )]
    TooShort,
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("sealed value has an unknown format version (expected `v1:`)")]
    UnknownVersion,
    #[error("sealed value is not valid base64 or is too short")]
    Malformed,
    /// Deliberately one variant for both causes: AEAD cannot tell them apart, and neither should
    /// an attacker probing with crafted values.
    #[error("sealed value could not be decrypted: wrong PURSER_ENCRYPTION_KEY or the value was modified")]
    Decrypt,
}

/// Encrypts and decrypts small secrets with the operator's key (ChaCha20-Poly1305, random nonces).
/// While the key is being rotated it also opens values sealed with the older keys it was given
/// ([`SecretBox::with_old_keys`]); it always seals with the current one.
///
/// Its `Debug` prints `SecretBox(..)`, never a key.
#[derive(Clone)]
pub struct SecretBox {
    current: ChaCha20Poly1305,
    old: Vec<ChaCha20Poly1305>,
}

impl SecretBox {
    /// Builds the box from the operator's `PURSER_ENCRYPTION_KEY`. Surrounding whitespace (such as
    /// a trailing newline from a secrets file) is ignored. Then, in this order:
    ///
    /// 1. if the text is standard base64 that decodes to exactly 32 bytes, those bytes are the key
    ///    (the recommended form: `openssl rand -base64 32`);
    /// 2. otherwise, if it is at least 32 characters long, the key is SHA-256 of its UTF-8 bytes;
    /// 3. otherwise it is refused with [`KeyError::TooShort`], because a short passphrase stretched
    ///    with a single fast hash could be brute-forced from a stolen database.
    ///
    /// Changing the key (or switching between the two forms) makes existing sealed values
    /// unreadable, so the same text must be used for the life of the database.
    pub fn from_key(text: &str) -> Result<SecretBox, KeyError> {
        Ok(SecretBox { current: cipher(text)?, old: Vec::new() })
    }

    /// The same box, also opening values sealed with any of `keys` (the keys a rotation is moving
    /// away from; `purser secrets rotate` re-seals those values under the current key).
    pub fn with_old_keys<S: AsRef<str>>(mut self, keys: &[S]) -> Result<SecretBox, KeyError> {
        self.old = keys.iter().map(|k| cipher(k.as_ref())).collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// Encrypts `plaintext` as `v1:` + base64(12-byte nonce || ciphertext || 16-byte tag).
    ///
    /// The nonce is fresh from the OS CSPRNG on every call: reusing a nonce under the same key
    /// would leak the XOR of plaintexts and allow forgeries. 96 random bits are ample for the
    /// number of secrets a gateway stores.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("ChaCha20-Poly1305 encryption only fails for inputs larger than 256 GiB");
        let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a value produced by [`SecretBox::seal`]. Fails if the format is wrong, the key is
    /// different, or any byte was changed (the Poly1305 tag is checked before anything is returned).
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let bytes = decode(sealed)?;
        std::iter::once(&self.current)
            .chain(&self.old)
            .find_map(|key| decrypt(key, &bytes))
            .ok_or(OpenError::Decrypt)
    }

    /// Whether `sealed` opens with the current key (a rotation leaves such values alone).
    pub fn sealed_with_current(&self, sealed: &str) -> bool {
        decode(sealed).is_ok_and(|bytes| decrypt(&self.current, &bytes).is_some())
    }
}

/// The nonce, ciphertext and tag of a sealed value.
fn decode(sealed: &str) -> Result<Vec<u8>, OpenError> {
    let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(OpenError::UnknownVersion)?;
    let bytes = STANDARD.decode(encoded).map_err(|_| OpenError::Malformed)?;
    if bytes.len() < NONCE_BYTES + TAG_BYTES {
        return Err(OpenError::Malformed);
    }
    Ok(bytes)
}

fn decrypt(key: &ChaCha20Poly1305, bytes: &[u8]) -> Option<Vec<u8>> {
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    key.decrypt(Nonce::from_slice(nonce), ciphertext).ok()
}

/// The cipher for one operator key, in either of the forms [`SecretBox::from_key`] accepts.
fn cipher(text: &str) -> Result<ChaCha20Poly1305, KeyError> {
    let text = text.trim();
    let key: [u8; KEY_BYTES] = match STANDARD.decode(text) {
        Ok(bytes) if bytes.len() == KEY_BYTES => bytes.try_into().expect("length checked"),
        _ if text.chars().count() >= MIN_PASSPHRASE_CHARS => Sha256::digest(text.as_bytes()).into(),
        _ => return Err(KeyError::TooShort),
    };
    Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // base64 of the 32 bytes 0x00..=0x1f.
    const B64_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const PASSPHRASE: &str = "correct horse battery staple, but longer";

    fn sbox() -> SecretBox {
        SecretBox::from_key(B64_KEY).unwrap()
    }

    #[test]
    fn round_trip() {
        let b = sbox();
        for plaintext in [&b""[..], b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &[0xff; 1000]] {
            let sealed = b.seal(plaintext);
            assert!(sealed.starts_with("v1:"));
            assert_eq!(b.open(&sealed).unwrap(), plaintext);
        }
        // The same key text gives the same key, in both forms (including a trailing newline).
        let sealed = b.seal(b"secret");
        assert_eq!(SecretBox::from_key(&format!("{B64_KEY}\n")).unwrap().open(&sealed).unwrap(), b"secret");
        let p = SecretBox::from_key(PASSPHRASE).unwrap();
        assert_eq!(SecretBox::from_key(PASSPHRASE).unwrap().open(&p.seal(b"x")).unwrap(), b"x");
    }

    #[test]
    fn nonce_differs_between_seals() {
        let b = sbox();
        let (one, two) = (b.seal(b"same"), b.seal(b"same"));
        assert_ne!(one, two);
        let nonce = |s: &str| STANDARD.decode(&s[3..]).unwrap()[..NONCE_BYTES].to_vec();
        assert_ne!(nonce(&one), nonce(&two));
    }

    #[test]
    fn tamper_fails() {
        let b = sbox();
        let sealed = b.seal(b"merchant secret");
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        for i in [0, NONCE_BYTES, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = format!("v1:{}", STANDARD.encode(&bytes));
            assert_eq!(b.open(&tampered), Err(OpenError::Decrypt), "flipped byte {i}");
            bytes[i] ^= 1;
        }
        bytes.truncate(bytes.len() - 1);
        assert_eq!(b.open(&format!("v1:{}", STANDARD.encode(&bytes))), Err(OpenError::Decrypt));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = sbox().seal(b"merchant secret");
        let other = SecretBox::from_key(PASSPHRASE).unwrap();
        assert_eq!(other.open(&sealed), Err(OpenError::Decrypt));
    }

    #[test]
    fn old_keys_open_during_a_rotation_and_never_seal() {
        let old = SecretBox::from_key(PASSPHRASE).unwrap();
        let sealed_before = old.seal(b"merchant secret");
        let rotating = sbox().with_old_keys(&[PASSPHRASE]).unwrap();
        assert_eq!(rotating.open(&sealed_before).unwrap(), b"merchant secret");
        assert!(!rotating.sealed_with_current(&sealed_before));
        let sealed_now = rotating.seal(b"new secret");
        assert!(rotating.sealed_with_current(&sealed_now));
        assert_eq!(sbox().open(&sealed_now).unwrap(), b"new secret", "sealed with the current key");
        assert_eq!(sbox().open(&sealed_before), Err(OpenError::Decrypt), "once rotated, the old key is gone");
        assert_eq!(sbox().with_old_keys(&["short"]).unwrap_err(), KeyError::TooShort);
    }

    #[test]
    fn bad_format_fails() {
        let b = sbox();
        assert_eq!(b.open("v2:AAAA"), Err(OpenError::UnknownVersion));
        assert_eq!(b.open(""), Err(OpenError::UnknownVersion));
        assert_eq!(b.open("v1:not base64!"), Err(OpenError::Malformed));
        assert_eq!(b.open(&format!("v1:{}", STANDARD.encode([0u8; 27]))), Err(OpenError::Malformed));
    }

    #[test]
    fn short_key_rejected() {
        assert_eq!(SecretBox::from_key("").unwrap_err(), KeyError::TooShort);
        assert_eq!(SecretBox::from_key("hunter2").unwrap_err(), KeyError::TooShort);
        assert_eq!(SecretBox::from_key(&"x".repeat(31)).unwrap_err(), KeyError::TooShort);
        // Valid base64 of 16 bytes (24 characters) is neither a 32-byte key nor a long passphrase.
        assert_eq!(SecretBox::from_key(&STANDARD.encode([9u8; 16])).unwrap_err(), KeyError::TooShort);
        assert!(SecretBox::from_key(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn debug_does_not_leak() {
        assert_eq!(format!("{:?}", sbox()), "SecretBox(..)");
    }
}
