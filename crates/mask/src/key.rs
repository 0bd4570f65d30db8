//! The per-tenant masking key. Every keyed operation derives its own
//! sub-key from it, so that no two purposes share key material:
//!
//! ```text
//! tenant key  = HMAC-SHA256(tenant_secret, "sandbar-mask/v1/tenant\0" || tenant)
//! sub-key(p)  = HMAC-SHA256(tenant key,    "sandbar-mask/v1/" || p)
//! ```
//!
//! for the purposes `hash` (the Hash operator), `pseudonym` (choosing
//! pseudonyms), `mark` (the keyed check that recognises this key's own
//! pseudonyms), `ff1` (the AES-256 key of format-preserving encryption) and
//! `feistel` (the round key of the small-domain permutation used where a
//! value has too few characters for FF1).

use std::fmt;
use std::sync::Arc;

use aes::Aes256;
use fpe::ff1::FF1;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key everything keyed derives from. Cloning is cheap (the derived
/// material is shared). Its `Debug` output shows a short identifier derived
/// from the key, never the key.
#[derive(Clone)]
pub struct MaskKey {
    inner: Arc<Material>,
}

pub(crate) struct Material {
    pub hash: Keyed,
    pub pseudonym: Keyed,
    pub mark: Keyed,
    pub feistel: Keyed,
    /// FF1 instances for the radixes tokens use (10, 16, 26, 256).
    pub ff1: Ff1Set,
    id: [u8; 4],
}

pub(crate) struct Ff1Set {
    pub decimal: FF1<Aes256>,
    pub hex: FF1<Aes256>,
    pub letters: FF1<Aes256>,
    pub bytes: FF1<Aes256>,
}

impl MaskKey {
    /// A key from 32 bytes of key material (for example from a vault).
    pub fn from_bytes(bytes: [u8; 32]) -> MaskKey {
        let ff1_key = sub_key(&bytes, "ff1");
        let ff1 = Ff1Set {
            decimal: ff1_for(&ff1_key, 10),
            hex: ff1_for(&ff1_key, 16),
            letters: ff1_for(&ff1_key, 26),
            bytes: ff1_for(&ff1_key, 256),
        };
        let id_full = sub_key(&bytes, "id");
        let material = Material {
            hash: Keyed::new(&sub_key(&bytes, "hash")),
            pseudonym: Keyed::new(&sub_key(&bytes, "pseudonym")),
            mark: Keyed::new(&sub_key(&bytes, "mark")),
            feistel: Keyed::new(&sub_key(&bytes, "feistel")),
            ff1,
            id: [id_full[0], id_full[1], id_full[2], id_full[3]],
        };
        MaskKey {
            inner: Arc::new(material),
        }
    }

    /// The key of one tenant, derived from a secret held for all tenants.
    pub fn derive(tenant_secret: &[u8], tenant: &str) -> MaskKey {
        let mut message = b"sandbar-mask/v1/tenant\0".to_vec();
        message.extend_from_slice(tenant.as_bytes());
        MaskKey::from_bytes(hmac(tenant_secret, &[&message]))
    }

    /// A short public identifier of the key (8 hex digits, derived from it
    /// one way): what a recording names to say which key masked it.
    pub fn id(&self) -> String {
        self.inner.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn material(&self) -> &Material {
        &self.inner
    }
}

impl fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.inner.id;
        write!(
            f,
            "MaskKey(id {:02x}{:02x}{:02x}{:02x})",
            id[0], id[1], id[2], id[3]
        )
    }
}

fn sub_key(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut message = b"sandbar-mask/v1/".to_vec();
    message.extend_from_slice(purpose.as_bytes());
    hmac(&master[..], &[&message])
}

fn ff1_for(key: &[u8; 32], radix: u32) -> FF1<Aes256> {
    // The key is 32 bytes, as AES-256 wants, and every radix used is in
    // FF1's range 2..=2^16, so this cannot fail.
    FF1::<Aes256>::new(key, radix).expect("radixes 10, 16, 26 and 256 are valid for FF1")
}

/// A key HMAC-SHA256 can be keyed with.
pub(crate) trait MacKey {
    /// The MAC's state with the key absorbed.
    fn keyed(&self) -> HmacSha256;
}

impl MacKey for [u8] {
    fn keyed(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        <HmacSha256 as KeyInit>::new_from_slice(self).expect("HMAC takes keys of any length")
    }
}

/// A sub-key with HMAC's key pads already hashed: each MAC starts from a
/// copy of that state, two SHA-256 compressions fewer than keying it
/// afresh (a pseudonym takes several MACs).
#[derive(Clone)]
pub(crate) struct Keyed(HmacSha256);

impl Keyed {
    fn new(key: &[u8; 32]) -> Keyed {
        Keyed(key[..].keyed())
    }
}

impl MacKey for Keyed {
    fn keyed(&self) -> HmacSha256 {
        self.0.clone()
    }
}

/// HMAC-SHA256 of the parts, each prefixed by its length so that no two
/// different lists of parts give the same message.
pub(crate) fn hmac(key: &(impl MacKey + ?Sized), parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = key.keyed();
    for part in parts {
        let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A stream of keyed pseudo-random numbers, determined by a key and a
/// label (the kind, the value, a counter).
pub(crate) struct Stream<'k> {
    key: &'k Keyed,
    label: Vec<u8>,
    block: [u8; 32],
    used: usize,
    counter: u64,
}

impl<'k> Stream<'k> {
    pub(crate) fn new(key: &'k Keyed, parts: &[&[u8]]) -> Stream<'k> {
        let mut label = Vec::new();
        for part in parts {
            label.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            label.extend_from_slice(part);
        }
        Stream {
            key,
            label,
            block: [0; 32],
            used: 32,
            counter: 0,
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.used + 8 > 32 {
            self.block = hmac(self.key, &[&self.label, &self.counter.to_be_bytes()]);
            self.counter += 1;
            self.used = 0;
        }
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.block[self.used..self.used + 8]);
        self.used += 8;
        u64::from_be_bytes(bytes)
    }

    /// A number below `n` (n > 0), with negligible bias for the small `n`
    /// used here.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// An index into a list of `len` items.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(u64::try_from(len).unwrap_or(u64::MAX))).unwrap_or(0)
    }

    /// An ASCII digit.
    pub(crate) fn digit(&mut self) -> u8 {
        b'0' + u8::try_from(self.below(10)).unwrap_or(0)
    }

    /// One of `items`.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}
