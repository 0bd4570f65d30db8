//! Tests of the operators: every pseudonym is well formed and detected as
//! its kind in the context its value was found in, pseudonyms are
//! consistent under a key and differ across keys, a key recognises its own
//! pseudonyms, tokens round-trip, and the simple operators do what they say.

use crate::detect::{Detector, PersonalKind};
use crate::operators::{
    self, MaskKey, Operator, apply, detokenize, is_pseudonym, pseudonym, tokenize,
};
use crate::{detect, pseudonym as pseudonyms};

pub(crate) fn key(seed: u8) -> MaskKey {
    MaskKey::from_bytes([seed; 32])
}

/// Realistic values of every kind, each in a context where the detector
/// finds it (`{}` marks the value).
pub(crate) const SAMPLES: &[(PersonalKind, &str, &str)] = &[
    (
        PersonalKind::Email,
        "ada.lovelace@analytical.co.uk",
        "write to {} today",
    ),
    (PersonalKind::Email, "Grace.Hopper99@navy.mil", "<{}>"),
    (PersonalKind::Phone, "(415) 867-5309", "call {} now"),
    (PersonalKind::Phone, "415-867-5309", "call {} now"),
    (PersonalKind::Phone, "415.867.5309", "fax {}"),
    (PersonalKind::Phone, "+1 415 867 5309", "tel {}"),
    (PersonalKind::Phone, "1-800-867-5309", "{}"),
    (PersonalKind::Phone, "+44 20 7123 4567", "{}"),
    (PersonalKind::Phone, "+44 (0)20 7123 4567", "{}"),
    (PersonalKind::Phone, "07912 345678", "{}"),
    (PersonalKind::Phone, "020 7123 4567", "{}"),
    (PersonalKind::Phone, "+49 30 12345678", "{}"),
    (PersonalKind::Phone, "030 12345678", "{}"),
    (PersonalKind::Phone, "030/12345678", "{}"),
    (PersonalKind::Phone, "0151 23456789", "{}"),
    (PersonalKind::Phone, "+33 6 12 34 56 78", "{}"),
    (PersonalKind::Phone, "01 23 45 67 89", "{}"),
    (PersonalKind::Phone, "+91 98765 43210", "{}"),
    (PersonalKind::Phone, "098765 43210", "{}"),
    (PersonalKind::Phone, "98765 43210", "{}"),
    (PersonalKind::Phone, "+61 2 9876 5432", "{}"),
    (PersonalKind::Phone, "4158675309", "phone: {}"),
    (
        PersonalKind::PaymentCard,
        "4539 1488 0343 6467",
        "card {} exp",
    ),
    (PersonalKind::PaymentCard, "371449635398431", "{}"),
    (PersonalKind::PaymentCard, "5555-5555-5555-4444", "{}"),
    (PersonalKind::PaymentCard, "6011000990139424", "{}"),
    (PersonalKind::PaymentCard, "3056 930902 5904", "{}"),
    (PersonalKind::PaymentCard, "4222222222222", "{}"),
    (
        PersonalKind::Iban,
        "DE89 3704 0044 0532 0130 00",
        "IBAN {}.",
    ),
    (PersonalKind::Iban, "GB29NWBK60161331926819", "{}"),
    (PersonalKind::Iban, "FR1420041010050500013M02606", "{}"),
    (PersonalKind::Iban, "NO9386011117947", "{}"),
    (PersonalKind::UsSsn, "123-45-6789", "SSN {}"),
    (PersonalKind::UsSsn, "123 45 6789", "SSN {}"),
    (PersonalKind::UsSsn, "123456789", "SSN: {}"),
    (PersonalKind::IpAddress, "192.168.1.20", "from {}:8080"),
    (PersonalKind::IpAddress, "fe80::1ff:fe23:4567:890a", "{}"),
    (PersonalKind::IpAddress, "FE80::1FF:FE23:4567:890A", "{}"),
    (PersonalKind::IpAddress, "::ffff:10.1.2.3", "{}"),
    (PersonalKind::MacAddress, "00:1A:2B:3C:4D:5E", "mac {} up"),
    (PersonalKind::MacAddress, "00-1b-63-84-45-e6", "{}"),
    (PersonalKind::MacAddress, "0011.22aa.bbcc", "{}"),
    (PersonalKind::DateOfBirth, "1990-02-03", "DOB: {}"),
    (PersonalKind::DateOfBirth, "03/02/1990", "date of birth {}"),
    (PersonalKind::DateOfBirth, "13/02/1990", "date of birth {}"),
    (
        PersonalKind::DateOfBirth,
        "3 February 1990",
        "born on {} in Leeds",
    ),
    (PersonalKind::DateOfBirth, "February 3rd, 1990", "born {}"),
    (
        PersonalKind::DateOfBirth,
        "3. Februar 1990",
        "geboren am {}",
    ),
    (
        PersonalKind::PostalAddress,
        "221B Baker Street, London NW1 6XE",
        "lives at {}.",
    ),
    (
        PersonalKind::PostalAddress,
        "1600 Pennsylvania Ave NW, Washington, DC 20500",
        "address: {}",
    ),
    (
        PersonalKind::PostalAddress,
        "Hauptstraße 5, 10115 Berlin",
        "Anschrift: {}",
    ),
    (
        PersonalKind::PostalAddress,
        "12 rue de la Paix, 75002 Paris",
        "adresse : {}",
    ),
    (PersonalKind::PostalAddress, "42 Elm Road", "ship to {}"),
    (PersonalKind::PersonName, "Ada Lovelace", "Dear {},"),
    (
        PersonalKind::PersonName,
        "Grace Brewster Hopper",
        "Dr. {} will see you",
    ),
    (
        PersonalKind::PersonName,
        "Ludwig van Beethoven",
        "my name is {}.",
    ),
    (
        PersonalKind::PersonName,
        "John F. Kennedy",
        "patient {} was admitted",
    ),
    (PersonalKind::PersonName, "ADA LOVELACE", "Dear {},"),
    (PersonalKind::PersonName, "José Núñez", "name: {}"),
    (
        PersonalKind::PersonName,
        "Ngozi Okafor-Adeyemi",
        "Ms {} called",
    ),
    (PersonalKind::PersonName, "Ada", "customer {} reported"),
];

pub(crate) fn render(context: &str, value: &str) -> String {
    context.replacen("{}", value, 1)
}

/// Asserts that the detector finds exactly `value` as `kind` in `context`.
#[track_caller]
pub(crate) fn assert_found(kind: PersonalKind, value: &str, context: &str) {
    let text = render(context, value);
    let at = context.find("{}").unwrap_or(0);
    let found = Detector::new().find(&text);
    assert!(
        found
            .iter()
            .any(|f| f.kind == kind && f.start == at && f.end == at + value.len()),
        "{kind} {value:?} not found in {text:?}: {found:?}"
    );
}

#[test]
fn samples_are_detected() {
    for &(kind, value, context) in SAMPLES {
        assert_found(kind, value, context);
    }
}

#[test]
fn pseudonyms_are_detected_as_their_kind_in_the_same_context() {
    let k = key(1);
    for &(kind, value, context) in SAMPLES {
        let p = pseudonym(kind, value, &k);
        assert_ne!(p, value, "{kind} {value:?} was not changed");
        assert_found(kind, &p, context);
        // A pseudonym of a pseudonym is well formed too.
        let pp = pseudonym(kind, &p, &k);
        assert_found(kind, &pp, context);
    }
}

#[test]
fn pseudonyms_are_consistent_within_a_key_and_differ_across_keys() {
    for &(kind, value, _) in SAMPLES {
        assert_eq!(
            pseudonym(kind, value, &key(1)),
            pseudonym(kind, value, &key(1))
        );
        if kind != PersonalKind::DateOfBirth {
            let differs = (2..6)
                .any(|seed| pseudonym(kind, value, &key(seed)) != pseudonym(kind, value, &key(1)));
            assert!(
                differs,
                "{kind} {value:?} gets the same pseudonym under five keys"
            );
        }
    }
}

#[test]
fn a_key_recognises_its_own_pseudonyms_and_not_the_samples() {
    let k = key(7);
    for &(kind, value, _) in SAMPLES {
        let p = pseudonym(kind, value, &k);
        assert!(
            is_pseudonym(kind, &p, &k),
            "{kind} {p:?} (from {value:?}) not recognised"
        );
        assert!(
            !is_pseudonym(kind, value, &k),
            "{kind} {value:?} taken for a pseudonym"
        );
    }
}

#[test]
fn pseudonyms_keep_formats() {
    let k = key(3);
    let shape = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect()
    };
    for value in [
        "(415) 867-5309",
        "+44 (0)20 7123 4567",
        "030/12345678",
        "4539 1488 0343 6467",
        "123-45-6789",
    ] {
        let kind = match value {
            "4539 1488 0343 6467" => PersonalKind::PaymentCard,
            "123-45-6789" => PersonalKind::UsSsn,
            _ => PersonalKind::Phone,
        };
        assert_eq!(shape(&pseudonym(kind, value, &k)), shape(value), "{value}");
    }
    let card = pseudonym(PersonalKind::PaymentCard, "4539 1488 0343 6467", &k);
    assert!(card.starts_with("4539 "), "{card}");
    let digits: Vec<u8> = card.bytes().filter(u8::is_ascii_digit).collect();
    assert!(detect::luhn_ok(&digits));
    let iban = pseudonym(PersonalKind::Iban, "DE89 3704 0044 0532 0130 00", &k);
    assert!(
        iban.starts_with("DE") && iban.len() == "DE89 3704 0044 0532 0130 00".len(),
        "{iban}"
    );
    let compact: Vec<u8> = iban.bytes().filter(|b| *b != b' ').collect();
    assert!(detect::mod97_ok(&compact));
    let us = pseudonym(PersonalKind::Phone, "(415) 867-5309", &k);
    assert!(us.contains(") 555-01"), "{us}");
    let uk = pseudonym(PersonalKind::Phone, "07912 345678", &k);
    assert!(uk.starts_with("07700 900"), "{uk}");
    let de = pseudonym(PersonalKind::Phone, "+49 30 12345678", &k);
    let de_digits: String = de.chars().filter(char::is_ascii_digit).collect();
    assert!(
        [
            "493023125",
            "496990009",
            "494066969",
            "492214710",
            "498999998"
        ]
        .iter()
        .any(|p| de_digits.starts_with(p)),
        "{de}"
    );
    let ip = pseudonym(PersonalKind::IpAddress, "10.1.2.3", &k);
    assert!(
        ["192.0.2.", "198.51.100.", "203.0.113."]
            .iter()
            .any(|n| ip.starts_with(n)),
        "{ip}"
    );
    let v6 = pseudonym(PersonalKind::IpAddress, "fe80::1", &k);
    assert!(v6.starts_with("2001:db8:"), "{v6}");
    let mac = pseudonym(PersonalKind::MacAddress, "00:1A:2B:3C:4D:5E", &k);
    let first = u8::from_str_radix(&mac[..2], 16).unwrap_or(0);
    assert_eq!(
        first & 0x03,
        0x02,
        "{mac} is not locally administered unicast"
    );
    let email = pseudonym(PersonalKind::Email, "ada@company.com", &k);
    assert!(
        email.ends_with("example.com")
            || email.ends_with("example.net")
            || email.ends_with("example.org")
            || email.ends_with(".example"),
        "{email}"
    );
    let dob = pseudonym(PersonalKind::DateOfBirth, "1990-02-03", &k);
    assert!(dob.starts_with("1990-02-"), "{dob}");
    assert_eq!(
        pseudonym(PersonalKind::DateOfBirth, &dob, &k),
        dob,
        "a pseudonymous date is its own pseudonym"
    );
    let ssn = pseudonym(PersonalKind::UsSsn, "123-45-6789", &k);
    let area: u32 = ssn[..3].parse().unwrap_or(0);
    assert!((773..=899).contains(&area), "{ssn}");
}

#[test]
fn names_keep_their_shape() {
    let k = key(4);
    let words = |s: &str| s.split(' ').count();
    for value in [
        "Ada Lovelace",
        "Grace Brewster Hopper",
        "Ada",
        "Lovelace, Ada",
        "ADA LOVELACE",
        "ada lovelace",
        "John F. Kennedy",
        "Ludwig van Beethoven",
    ] {
        let p = pseudonym(PersonalKind::PersonName, value, &k);
        assert_eq!(words(&p), words(value), "{value:?} -> {p:?}");
        assert_eq!(p.contains(", "), value.contains(", "), "{value:?} -> {p:?}");
        assert_eq!(
            p == p.to_uppercase(),
            value == value.to_uppercase(),
            "{value:?} -> {p:?}"
        );
        assert_eq!(
            p.contains(" van "),
            value.contains(" van "),
            "{value:?} -> {p:?}"
        );
    }
    let hinted = pseudonyms::make(
        PersonalKind::PersonName,
        "Lovelace",
        &k,
        pseudonyms::NameHint::Family,
    );
    assert!(crate::lists::family_index(&hinted).is_some(), "{hinted}");
}

#[test]
fn tokens_round_trip_and_keep_formats() {
    let k = key(9);
    for &(kind, value, context) in SAMPLES {
        let token = match tokenize(kind, value, &k) {
            Ok(token) => token,
            Err(e) => panic!("{kind} {value:?}: {e}"),
        };
        assert_eq!(
            detokenize(kind, &token, &k).as_deref(),
            Ok(value),
            "{kind} {value:?} -> {token:?}"
        );
        if kind != PersonalKind::IpAddress || !value.contains('.') {
            assert_eq!(token.len(), value.len(), "{kind} {value:?} -> {token:?}");
        }
        if !matches!(kind, PersonalKind::PostalAddress | PersonalKind::PersonName) {
            assert_found(kind, &token, context);
        }
    }
}

#[test]
fn tokens_keep_what_they_promise() {
    let k = key(9);
    let card = tokenize(PersonalKind::PaymentCard, "4539 1488 0343 6467", &k).unwrap_or_default();
    assert!(card.starts_with("4539 14"), "{card}");
    assert_ne!(card, "4539 1488 0343 6467");
    let iban = tokenize(PersonalKind::Iban, "DE89 3704 0044 0532 0130 00", &k).unwrap_or_default();
    assert!(iban.starts_with("DE"));
    let ssn = tokenize(PersonalKind::UsSsn, "123-45-6789", &k).unwrap_or_default();
    assert!(crate::detect::shapes::is_ssn(&ssn), "{ssn}");
    let us = tokenize(PersonalKind::Phone, "+1 415 867 5309", &k).unwrap_or_default();
    assert!(us.starts_with("+1 "), "{us}");
}

#[test]
fn tokenize_refuses_malformed_values() {
    let k = key(9);
    for (kind, value) in [
        (PersonalKind::PaymentCard, "4539 1488 0343 6468"),
        (PersonalKind::Iban, "DE89 3704 0044 0532 0130 01"),
        (PersonalKind::UsSsn, "000-12-3456"),
        (PersonalKind::Email, "not an email"),
        (PersonalKind::IpAddress, "999.1.1.1"),
        (PersonalKind::MacAddress, "00:1A:2b:3C:4d:5E"),
        (PersonalKind::Phone, "12"),
        (PersonalKind::DateOfBirth, "yesterday"),
    ] {
        assert!(tokenize(kind, value, &k).is_err(), "{kind} {value:?}");
    }
    // A value that cannot be tokenized is redacted by `apply`.
    assert_eq!(
        apply(&Operator::Tokenize, PersonalKind::UsSsn, "000-12-3456", &k),
        "[REDACTED:us_ssn]"
    );
}

#[test]
fn simple_operators() {
    let k = key(2);
    assert_eq!(
        apply(
            &Operator::Redact,
            PersonalKind::Email,
            "ada@example.org",
            &k
        ),
        "[REDACTED:email]"
    );
    assert_eq!(
        apply(
            &Operator::Mask { keep: 4, char: '*' },
            PersonalKind::PaymentCard,
            "4539 1488 0343 6467",
            &k
        ),
        "**** **** **** 6467"
    );
    assert_eq!(
        apply(
            &Operator::Mask { keep: 0, char: '#' },
            PersonalKind::Phone,
            "(415) 867-5309",
            &k
        ),
        "(###) ###-####"
    );
    let h = apply(
        &Operator::Hash { length: 16 },
        PersonalKind::Email,
        "ada@example.org",
        &k,
    );
    assert_eq!(h.len(), 16);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        h,
        apply(
            &Operator::Hash { length: 16 },
            PersonalKind::Email,
            "ada@example.org",
            &k
        )
    );
    assert_ne!(
        h,
        apply(
            &Operator::Hash { length: 16 },
            PersonalKind::Email,
            "ada@example.org",
            &key(3)
        )
    );
    assert_eq!(
        apply(
            &Operator::Hash { length: 100 },
            PersonalKind::Email,
            "x",
            &k
        )
        .len(),
        64
    );
}

#[test]
fn operators_serialize_with_an_op_tag() {
    let cases = [
        (Operator::Redact, r#"{"op":"redact"}"#),
        (
            Operator::Mask { keep: 4, char: '*' },
            r#"{"op":"mask","keep":4,"char":"*"}"#,
        ),
        (
            Operator::Hash { length: 16 },
            r#"{"op":"hash","length":16}"#,
        ),
        (Operator::Pseudonymize, r#"{"op":"pseudonymize"}"#),
        (Operator::Tokenize, r#"{"op":"tokenize"}"#),
    ];
    for (op, json) in cases {
        assert_eq!(serde_json::to_string(&op).ok().as_deref(), Some(json));
        assert_eq!(serde_json::from_str::<Operator>(json).ok(), Some(op));
    }
    assert_eq!(
        serde_json::from_str::<Operator>(r#"{"op":"mask"}"#).ok(),
        Some(Operator::Mask { keep: 4, char: '*' })
    );
    assert_eq!(
        serde_json::to_string(&PersonalKind::UsSsn).ok().as_deref(),
        Some("\"us_ssn\"")
    );
}

#[test]
fn keys_derive_per_tenant_and_never_print_their_bytes() {
    let a = MaskKey::derive(b"platform secret", "tenant-a");
    let b = MaskKey::derive(b"platform secret", "tenant-b");
    let a2 = MaskKey::derive(b"platform secret", "tenant-a");
    let v = "ada@company.com";
    assert_eq!(
        pseudonym(PersonalKind::Email, v, &a),
        pseudonym(PersonalKind::Email, v, &a2)
    );
    assert_ne!(
        operators::apply(&Operator::Hash { length: 64 }, PersonalKind::Email, v, &a),
        operators::apply(&Operator::Hash { length: 64 }, PersonalKind::Email, v, &b)
    );
    let printed = format!("{:?}", MaskKey::from_bytes([0xAB; 32]));
    assert!(printed.starts_with("MaskKey(id "), "{printed}");
    assert!(!printed.to_lowercase().contains("abab"), "{printed}");
}

#[test]
fn list_names_are_detected_as_names() {
    for name in crate::lists::GIVEN_NAMES
        .iter()
        .chain(crate::lists::FAMILY_NAMES)
    {
        assert_found(PersonalKind::PersonName, name, "Dear {},");
        let full = format!("Ada {name}");
        assert_found(PersonalKind::PersonName, &full, "customer {} reported");
    }
}

#[test]
fn values_under_keys_are_masked_idempotently() {
    // Keys in free text whose values are read by their own parsers only.
    for text in [
        "address: Street=Dear born ",
        "Street=name: ",
        "street: 12 Main Street, Springfield, IL 62704",
    ] {
        for op in [
            Operator::Pseudonymize,
            Operator::Redact,
            Operator::Hash { length: 16 },
            Operator::Mask { keep: 4, char: '*' },
        ] {
            let m = crate::masker::Masker::new(Detector::new(), key(0), op.clone());
            let once = m.mask(text);
            assert_eq!(m.mask(&once), once, "{op:?} on {text:?}");
        }
    }
}
