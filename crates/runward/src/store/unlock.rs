//! Unlock-code hashing: PBKDF2-HMAC-SHA256 with a random 16-byte salt.
//!
//! The stored form is `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`; verification reads
//! the iteration count from it, so raising the default keeps old records verifiable.

use super::chain::hex;
use crate::{Error, ErrorKind, Result};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};
use std::num::NonZeroU32;

/// PBKDF2 iterations for new unlock-code hashes.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
const SCHEME: &str = "pbkdf2-sha256";
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Hashes `code` with a fresh salt.
pub(crate) fn hash_code(code: &str, iterations: u32) -> Result<String> {
    if code.is_empty() {
        return Err(Error::invalid(
            "the unlock code is empty; pass a non-empty code",
        ));
    }
    let iterations = NonZeroU32::new(iterations).ok_or_else(|| {
        Error::invalid("unlock-code iterations must be at least 1; use the default")
    })?;
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let mut out = [0u8; digest::SHA256_OUTPUT_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        code.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{SCHEME}${iterations}${}${}",
        hex(&salt),
        hex(&out)
    ))
}

/// True when `code` matches `stored`; compares in constant time.
pub(crate) fn verify_code(stored: &str, code: &str) -> Result<bool> {
    let malformed = || {
        Error::new(
            ErrorKind::Storage,
            "the stored unlock-code hash is malformed; set a new unlock code",
        )
    };
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    let iterations = iter.parse::<NonZeroU32>().map_err(|_| malformed())?;
    let salt = unhex(salt).ok_or_else(malformed)?;
    let hash = unhex(hash).ok_or_else(malformed)?;
    Ok(pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        code.as_bytes(),
        &hash,
    )
    .is_ok())
}

/// A fresh code of four groups of four characters from an unambiguous alphabet (80 bits).
pub(crate) fn generate_code() -> Result<String> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[(*b as usize) % CODE_ALPHABET.len()] as char)
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| {
        Error::new(
            ErrorKind::Internal,
            "the system random number generator failed",
        )
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_code("open sesame", 1000).unwrap();
        let b = hash_code("open sesame", 1000).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("pbkdf2-sha256$1000$"));
        assert!(!a.contains("open sesame"));
        assert!(verify_code(&a, "open sesame").unwrap());
        assert!(verify_code(&b, "open sesame").unwrap());
        assert!(!verify_code(&a, "open sesame!").unwrap());
    }

    #[test]
    fn malformed_hashes_and_empty_codes_are_errors() {
        assert_eq!(
            verify_code("plain", "x").unwrap_err().kind(),
            ErrorKind::Storage
        );
        assert_eq!(
            verify_code("pbkdf2-sha256$10$zz$00", "x")
                .unwrap_err()
                .kind(),
            ErrorKind::Storage
        );
        assert_eq!(
            hash_code("", 10).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn generated_codes_have_the_documented_shape() {
        let code = generate_code().unwrap();
        assert_eq!(code.len(), 19);
        assert_eq!(code.split('-').count(), 4);
        assert!(
            code.chars()
                .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(code, generate_code().unwrap());
    }
}
