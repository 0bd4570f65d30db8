use proptest::prelude::*;

use super::*;

fn key(byte: u8) -> VaultKey {
    VaultKey::from_bytes([byte; 32])
}

#[test]
fn a_sealed_secret_opens_only_with_its_key_tenant_and_name() {
    let k = key(1);
    let sealed = seal(&k, "acme", "github_token", b"ghp_real").expect("seal");
    assert!(!sealed.ciphertext.windows(8).any(|w| w == b"ghp_real"));
    assert_eq!(
        open(&k, "acme", "github_token", &sealed).expect("open"),
        b"ghp_real"
    );
    assert!(matches!(
        open(&key(2), "acme", "github_token", &sealed),
        Err(VaultError::WrongKey { .. })
    ));
    assert!(matches!(
        open(&k, "other", "github_token", &sealed),
        Err(VaultError::Tampered { .. })
    ));
    assert!(matches!(
        open(&k, "acme", "another_name", &sealed),
        Err(VaultError::Tampered { .. })
    ));
    // A key id forged to match does not help.
    let mut forged = sealed.clone();
    forged.key_id = key(2).id().to_owned();
    assert!(open(&key(2), "acme", "github_token", &forged).is_err());
}

#[test]
fn the_same_value_seals_differently_each_time() {
    let k = key(3);
    let a = seal(&k, "t", "n", b"value").expect("seal");
    let b = seal(&k, "t", "n", b"value").expect("seal");
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn rotation_keeps_every_secret_readable_under_the_new_key_only() {
    let (old, new) = (key(4), key(5));
    let sealed = seal(&old, "t", "db_password", b"hunter2").expect("seal");
    let resealed = reseal(&old, &new, "t", "db_password", &sealed).expect("reseal");
    assert_eq!(resealed.key_id, new.id());
    assert_eq!(
        open_text(&new, "t", "db_password", &resealed).expect("open"),
        "hunter2"
    );
    assert!(matches!(
        open(&old, "t", "db_password", &resealed),
        Err(VaultError::WrongKey { .. })
    ));
}

#[test]
fn keys_read_from_hex_and_never_show_in_debug() {
    let k = VaultKey::from_hex(&format!("  {}\n", "ab".repeat(32))).expect("key");
    assert_eq!(k.to_hex(), "ab".repeat(32));
    assert!(!format!("{k:?}").contains("abab"));
    assert_eq!(k.id().len(), 12);
    assert!(matches!(VaultKey::from_hex("abc"), Err(VaultError::BadKey)));
    let sealed = seal(&k, "t", "n", b"topsecretvalue").expect("seal");
    assert!(!format!("{sealed:?}").contains("topsecret"));
}

proptest! {
    #[test]
    fn any_change_to_the_sealed_bytes_is_detected(
        value in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<usize>(),
        bit in 0u8..8,
        in_nonce in any::<bool>(),
    ) {
        let k = key(9);
        let sealed = seal(&k, "t", "n", &value).expect("seal");
        prop_assert_eq!(open(&k, "t", "n", &sealed).expect("open"), value);
        let mut altered = sealed.clone();
        let target = if in_nonce { &mut altered.nonce } else { &mut altered.ciphertext };
        let i = flip % target.len();
        target[i] ^= 1 << bit;
        prop_assert!(
            matches!(open(&k, "t", "n", &altered), Err(VaultError::Tampered { .. })),
            "an altered value opened"
        );
    }
}
