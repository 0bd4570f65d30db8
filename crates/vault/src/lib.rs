//! The vault's cryptography: secrets sealed at rest.
//!
//! A secret is sealed with XChaCha20-Poly1305 under the master key, with a
//! random 24-byte nonce, and with its tenant and name as associated data:
//! a sealed value copied to another name or tenant does not open. Each
//! sealed value names the key that sealed it by a public id (derived one
//! way from the key), so opening with another key fails with a clear
//! message rather than an authentication error, and rotation knows what
//! it has re-sealed already.
//!
//! Architecture invariant: a pure library: no I/O but the system's random
//! source for nonces and keys; a plaintext never appears in an error or in
//! `Debug` output.

#![forbid(unsafe_code)]

use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// The value was sealed under another key.
    #[error(
        "this secret was sealed under vault key {sealed_with}, and the key given is {given}: give the key it was sealed with"
    )]
    WrongKey { sealed_with: String, given: String },
    /// The sealed bytes, or their tenant or name, were changed.
    #[error("the sealed value of secret `{name}` does not authenticate: it was altered or moved")]
    Tampered { name: String },
    /// The key text is not a key.
    #[error("a vault key is 64 hexadecimal digits (32 bytes)")]
    BadKey,
    /// The system's random source failed.
    #[error("cannot draw random bytes: {0}")]
    Random(String),
    /// An opened value is not UTF-8 text.
    #[error("secret `{name}` is not text")]
    NotText { name: String },
}

/// The master key. Its `Debug` shows only its public id.
#[derive(Clone)]
pub struct VaultKey {
    bytes: [u8; 32],
    id: String,
}

impl VaultKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> VaultKey {
        let mut hasher = Sha256::new();
        hasher.update(b"sandbar-vault/v1/key-id\0");
        hasher.update(bytes);
        let digest = hasher.finalize();
        let id = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        VaultKey { bytes, id }
    }

    /// A key from 64 hexadecimal digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<VaultKey, VaultError> {
        let hex = text.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VaultError::BadKey);
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| VaultError::BadKey)?;
        }
        Ok(VaultKey::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<VaultKey, VaultError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| VaultError::Random(e.to_string()))?;
        Ok(VaultKey::from_bytes(bytes))
    }

    /// The key as 64 hexadecimal digits, for a key file.
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The public id: 12 hex digits of SHA-256 over a label and the key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKey(id {})", self.id)
    }
}

/// A sealed secret as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The public id of the key that sealed it.
    pub key_id: String,
    /// The 24-byte nonce.
    pub nonce: Vec<u8>,
    /// The ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// What the tag authenticates besides the value: its place.
fn associated(tenant: &str, name: &str, key_id: &str) -> Vec<u8> {
    let mut aad = b"sandbar-vault/v1\0".to_vec();
    for part in [tenant, name, key_id] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// Seals `value`, the secret `name` of `tenant`, under `key`.
pub fn seal(key: &VaultKey, tenant: &str, name: &str, value: &[u8]) -> Result<Sealed, VaultError> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| VaultError::Random(e.to_string()))?;
    let cipher = XChaCha20Poly1305::new(&key.bytes.into());
    let aad = associated(tenant, name, key.id());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: value,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Tampered {
            name: name.to_owned(),
        })?;
    Ok(Sealed {
        key_id: key.id().to_owned(),
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Opens the secret `name` of `tenant`.
pub fn open(
    key: &VaultKey,
    tenant: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<Vec<u8>, VaultError> {
    if sealed.key_id != key.id() {
        return Err(VaultError::WrongKey {
            sealed_with: sealed.key_id.clone(),
            given: key.id().to_owned(),
        });
    }
    let tampered = || VaultError::Tampered {
        name: name.to_owned(),
    };
    let nonce: [u8; 24] = sealed.nonce.as_slice().try_into().map_err(|_| tampered())?;
    let cipher = XChaCha20Poly1305::new(&key.bytes.into());
    let aad = associated(tenant, name, &sealed.key_id);
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| tampered())
}

/// Opens a secret that must be text.
pub fn open_text(
    key: &VaultKey,
    tenant: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<String, VaultError> {
    String::from_utf8(open(key, tenant, name, sealed)?).map_err(|_| VaultError::NotText {
        name: name.to_owned(),
    })
}

/// Re-seals under `new` a value sealed under `old` (rotation).
pub fn reseal(
    old: &VaultKey,
    new: &VaultKey,
    tenant: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<Sealed, VaultError> {
    let value = open(old, tenant, name, sealed)?;
    seal(new, tenant, name, &value)
}

#[cfg(test)]
mod tests;
