//! The crypto primitives libmongocrypt asks its host for, on RustCrypto crates.
//!
//! The libmongocrypt keyshift links (from the pymongocrypt wheel) has no crypto backend
//! of its own: like PyMongo, the host hands it callbacks. Each primitive is a plain
//! function over byte slices (so it has known-answer tests), and [`install`] wires all
//! of them into a [`CryptBuilder`]. Every failure becomes a libmongocrypt error; the
//! `mongocrypt` crate also catches panics at the FFI boundary, but nothing here panics
//! on input.

use std::io::Write;

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use mongocrypt::CryptBuilder;
use mongocrypt::error::{Error as CryptError, ErrorKind, Result as CryptResult};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

/// A primitive failed; the message never contains key material or input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError(pub &'static str);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CryptoError {}

type Result<T> = std::result::Result<T, CryptoError>;

const KEY_LEN: usize = 32;
const BLOCK_LEN: usize = 16;

fn check_key_iv(key: &[u8], iv: &[u8]) -> Result<()> {
    if key.len() != KEY_LEN {
        return Err(CryptoError("AES-256 needs a 32-byte key"));
    }
    if iv.len() != BLOCK_LEN {
        return Err(CryptoError("AES-256 needs a 16-byte IV"));
    }
    Ok(())
}

fn check_blocks(input: &[u8]) -> Result<()> {
    if !input.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError(
            "AES-256-CBC/ECB input must be whole 16-byte blocks",
        ));
    }
    Ok(())
}

/// AES-256-CBC encryption without padding (libmongocrypt pads before calling).
pub fn aes_256_cbc_encrypt(key: &[u8], iv: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    check_key_iv(key, iv)?;
    check_blocks(input)?;
    let enc = cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| CryptoError("AES-256-CBC: bad key or IV length"))?;
    Ok(enc.encrypt_padded_vec::<NoPadding>(input))
}

/// AES-256-CBC decryption without unpadding (libmongocrypt unpads after calling).
pub fn aes_256_cbc_decrypt(key: &[u8], iv: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    check_key_iv(key, iv)?;
    check_blocks(input)?;
    let dec = cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| CryptoError("AES-256-CBC: bad key or IV length"))?;
    dec.decrypt_padded_vec::<NoPadding>(input)
        .map_err(|_| CryptoError("AES-256-CBC: decryption failed"))
}

/// AES-256-CTR with a 128-bit big-endian counter (encryption and decryption are one).
pub fn aes_256_ctr(key: &[u8], iv: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    check_key_iv(key, iv)?;
    let mut cipher = ctr::Ctr128BE::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| CryptoError("AES-256-CTR: bad key or IV length"))?;
    // Zeroed if the keystream runs out half-way; moved out whole on success.
    let mut buf = Zeroizing::new(input.to_vec());
    cipher
        .try_apply_keystream(&mut buf)
        .map_err(|_| CryptoError("AES-256-CTR: keystream exhausted"))?;
    Ok(std::mem::take(&mut *buf))
}

/// AES-256-ECB encryption of whole blocks (libmongocrypt's fallback for CTR).
pub fn aes_256_ecb_encrypt(key: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    if key.len() != KEY_LEN {
        return Err(CryptoError("AES-256 needs a 32-byte key"));
    }
    check_blocks(input)?;
    let enc = ecb::Encryptor::<Aes256>::new_from_slice(key)
        .map_err(|_| CryptoError("AES-256-ECB: bad key length"))?;
    Ok(enc.encrypt_padded_vec::<NoPadding>(input))
}

/// HMAC-SHA-512.
pub fn hmac_sha_512(key: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
        .map_err(|_| CryptoError("HMAC-SHA-512: bad key"))?;
    mac.update(input);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// HMAC-SHA-256.
pub fn hmac_sha_256(key: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| CryptoError("HMAC-SHA-256: bad key"))?;
    mac.update(input);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// SHA-256.
pub fn sha_256(input: &[u8]) -> Vec<u8> {
    Sha256::digest(input).to_vec()
}

/// `count` bytes from the operating system's secure random source.
pub fn random(count: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; count];
    getrandom::fill(&mut buf).map_err(|_| CryptoError("the OS random source failed"))?;
    Ok(buf)
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `input`, with a PKCS#8 DER private key (GCP's JWT).
pub fn sign_rsassa_pkcs1_v1_5_sha256(pkcs8_der: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let key = rsa::PrivateKey::from_pkcs8_der(pkcs8_der)
        .map_err(|_| CryptoError("RSA signing: the private key is not valid PKCS#8 DER"))?;
    let signer = SigningKey::<Sha256>::new(key);
    let sig = signer
        .try_sign(input)
        .map_err(|_| CryptoError("RSA signing failed"))?;
    Ok(sig.to_vec())
}

/// Turns a primitive's result into what libmongocrypt expects: bytes written to `out`.
/// The result (a decrypted DEK, a new DEK's random bytes, a keystream, a MAC key) is
/// moved, not copied, into a wrapper that zeroes it when this returns: the only copy
/// left is the one libmongocrypt owns.
fn emit(result: Result<Vec<u8>>, out: &mut dyn Write) -> CryptResult<()> {
    let bytes = Zeroizing::new(result.map_err(to_crypt_error)?);
    out.write_all(&bytes).map_err(|_| CryptError {
        kind: ErrorKind::Client,
        code: None,
        message: Some("crypto hook output larger than libmongocrypt's buffer".into()),
    })
}

fn to_crypt_error(e: CryptoError) -> CryptError {
    CryptError {
        kind: ErrorKind::Client,
        code: None,
        message: Some(format!("keyshift crypto hook: {e}")),
    }
}

/// Installs every crypto hook libmongocrypt can ask for on `builder`.
pub fn install(builder: CryptBuilder) -> CryptResult<CryptBuilder> {
    builder
        .crypto_hooks(
            |key, iv, input, out| emit(aes_256_cbc_encrypt(key, iv, input), out),
            |key, iv, input, out| emit(aes_256_cbc_decrypt(key, iv, input), out),
            |out, count| emit(random(count as usize), out),
            |key, input, out| emit(hmac_sha_512(key, input), out),
            |key, input, out| emit(hmac_sha_256(key, input), out),
            |input, out| emit(Ok(sha_256(input)), out),
        )?
        .aes_256_ctr(
            |key, iv, input, out| emit(aes_256_ctr(key, iv, input), out),
            |key, iv, input, out| emit(aes_256_ctr(key, iv, input), out),
        )?
        .aes_256_ecb(|key, _iv, input, out| emit(aes_256_ecb_encrypt(key, input), out))?
        .crypto_hook_sign_rsassa_pkcs1_v1_5(|key, input, out| {
            emit(sign_rsassa_pkcs1_v1_5_sha256(key, input), out)
        })
}

#[cfg(test)]
mod tests;
