//! API tokens: random, shown once, stored only as SHA-256.
//!
//! A token is `kz_` followed by 43 characters of URL-safe base64 (32 random bytes from the
//! operating system). 256 bits of entropy make a salted slow hash unnecessary: a plain SHA-256
//! cannot be reversed or brute-forced, and it lets the hub find a token's member with one
//! indexed lookup.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use kizuna_store::TokenHash;

/// A freshly issued token: the secret (to show once) and what is stored.
pub struct IssuedToken {
    /// The secret, e.g. `kz_3q…`. Never stored, never logged.
    pub secret: String,
    /// What the store keeps.
    pub hash: TokenHash,
    /// The first characters of the secret, to recognise it in lists.
    pub prefix: String,
}

/// Errors issuing a token.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// Issues a new token from the operating system's random source.
pub fn issue() -> Result<IssuedToken, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let secret = format!("kz_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(8).collect();
    Ok(IssuedToken { hash: hash(&secret), secret, prefix })
}

/// The stored form of a token.
pub fn hash(secret: &str) -> TokenHash {
    TokenHash(Sha256::digest(secret.as_bytes()).into())
}

/// The hex form of a token's hash, as written in the config file for sensor tokens.
pub fn hash_hex(secret: &str) -> String {
    hex::encode(hash(secret).0)
}

/// Compares a presented token with a configured hex hash in constant time.
pub fn matches_hex(secret: &str, expected_hex: &str) -> bool {
    let got = hash_hex(secret);
    got.len() == expected_hex.len()
        && got.bytes().zip(expected_hex.to_ascii_lowercase().bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_consistently() {
        let a = issue().expect("random");
        let b = issue().expect("random");
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 46);
        assert_eq!(hash(&a.secret), a.hash);
        assert!(matches_hex(&a.secret, &hash_hex(&a.secret)));
        assert!(!matches_hex(&b.secret, &hash_hex(&a.secret)));
        assert!(a.secret.starts_with(&a.prefix));
    }
}
