//! Tests of the Masker: text, fields and JSON documents are masked with
//! each operator, and masking is idempotent.

use serde_json::json;

use crate::detect::{Detector, PersonalKind};
use crate::key::MaskKey;
use crate::masker::Masker;
use crate::operators::Operator;
use crate::operators_tests::{SAMPLES, key, render};

fn masker(op: Operator) -> Masker {
    Masker::new(Detector::new(), key(5), op)
}

const OPERATORS: &[Operator] = &[
    Operator::Redact,
    Operator::Mask { keep: 4, char: '*' },
    Operator::Hash { length: 16 },
    Operator::Pseudonymize,
];

#[test]
fn every_sample_is_masked_and_masking_is_idempotent() {
    for op in OPERATORS {
        let m = masker(op.clone());
        for &(kind, value, context) in SAMPLES {
            let text = render(context, value);
            let once = m.mask(&text);
            assert!(
                !once.contains(value),
                "{op:?} left {kind} {value:?} in {once:?}"
            );
            let twice = m.mask(&once);
            assert_eq!(twice, once, "{op:?} is not idempotent on {text:?}");
        }
    }
}

#[test]
fn a_document_of_every_kind_is_masked_idempotently() {
    let text: String = SAMPLES
        .iter()
        .map(|&(_, value, context)| render(context, value))
        .collect::<Vec<_>>()
        .join("\n");
    for op in OPERATORS {
        let m = masker(op.clone());
        let once = m.mask(&text);
        for &(_, value, _) in SAMPLES {
            assert!(!once.contains(value), "{op:?} left {value:?}");
        }
        assert_eq!(m.mask(&once), once, "{op:?}");
    }
}

#[test]
fn redaction_names_the_kind() {
    let m = masker(Operator::Redact);
    assert_eq!(
        m.mask("Dear Ada Lovelace, your card 4539 1488 0343 6467 ships to 221B Baker Street, London NW1 6XE."),
        "Dear [REDACTED:person_name], your card [REDACTED:payment_card] ships to [REDACTED:postal_address]."
    );
}

#[test]
fn operators_can_differ_by_kind() {
    let m = masker(Operator::Redact).with_operator(
        PersonalKind::PaymentCard,
        Operator::Mask { keep: 4, char: '*' },
    );
    assert_eq!(
        m.mask("ada@x.org paid with 4539148803436467"),
        "[REDACTED:email] paid with ************6467"
    );
    assert_eq!(m.operator(PersonalKind::Email), &Operator::Redact);
}

#[test]
fn fields_give_context() {
    let m = masker(Operator::Redact);
    assert_eq!(
        m.mask_field(Some("first_name"), "Ada"),
        "[REDACTED:person_name]"
    );
    assert_eq!(
        m.mask_field(Some("product_name"), "Widget Pro"),
        "Widget Pro"
    );
    assert_eq!(
        m.mask_field(Some("dob"), "1990-02-03"),
        "[REDACTED:date_of_birth]"
    );
    assert_eq!(m.mask_field(None, "Ada"), "Ada");
    let p = masker(Operator::Pseudonymize);
    let surname = p.mask_field(Some("last_name"), "Lovelace");
    assert!(crate::lists::family_index(&surname).is_some(), "{surname}");
    let given = p.mask_field(Some("first_name"), "Lovelace");
    assert!(crate::lists::given_index(&given).is_some(), "{given}");
}

#[test]
fn json_documents_are_masked_by_path() {
    let doc = json!({
        "order": {"id": "o-1001", "total": 120.5, "status": "delivered"},
        "customer": {
            "name": "Ada Lovelace",
            "email": "ada@analytical.co.uk",
            "phone": "+44 20 7123 4567",
            "dob": "1990-02-03",
            "address": {"line1": "221B Baker Street", "city": "London", "postcode": "NW1 6XE"}
        },
        "product": {"name": "Widget Pro", "sku": "WP-2000"},
        "notes": ["Call Ada back", "card on file: 4539 1488 0343 6467"]
    });
    let m = masker(Operator::Redact);
    let masked = m.mask_json(&doc);
    let expected = json!({
        "order": {"id": "o-1001", "total": 120.5, "status": "delivered"},
        "customer": {
            "name": "[REDACTED:person_name]",
            "email": "[REDACTED:email]",
            "phone": "[REDACTED:phone]",
            "dob": "[REDACTED:date_of_birth]",
            "address": {"line1": "[REDACTED:postal_address]", "city": "London", "postcode": "[REDACTED:postal_address]"}
        },
        "product": {"name": "Widget Pro", "sku": "WP-2000"},
        "notes": ["Call Ada back", "card on file: [REDACTED:payment_card]"]
    });
    assert_eq!(masked, expected);
    let p = masker(Operator::Pseudonymize);
    let once = p.mask_json(&doc);
    assert_eq!(p.mask_json(&once), once);
    assert_eq!(once["product"], doc["product"]);
    assert_ne!(once["customer"]["name"], doc["customer"]["name"]);

    // In place gives the same document, and reports what stands for what.
    let mut in_place = doc.clone();
    let mut seen = Vec::new();
    p.mask_json_in_place(&mut in_place, &mut |pseudonym, real| {
        seen.push((pseudonym.to_owned(), real.to_owned()));
    });
    assert_eq!(in_place, once);
    assert!(
        seen.contains(&(
            once["customer"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            "ada@analytical.co.uk".to_owned()
        ))
    );
    let mut redacted = doc.clone();
    m.mask_json_in_place(&mut redacted, &mut |_, _| {});
    assert_eq!(redacted, expected);
}

#[test]
fn detector_key_and_masker_are_shareable_between_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Detector>();
    shareable::<crate::operators::MaskKey>();
    shareable::<Masker>();
    let m = masker(Operator::Redact);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || m.mask("ada@example.org"))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().ok().as_deref(), Some("[REDACTED:email]"));
    }
}

#[test]
fn encoded_bytes_in_json_are_left_whole() {
    // Base64 whose digits between `+` and `/` form a Luhn-valid card number.
    let blob = format!(
        "{}+4539148803436467/{}",
        "QUJD".repeat(20),
        "RUZH".repeat(20)
    );
    let doc = json!({"contents": [{"uri": "file:///a.png", "blob": blob.clone()}], "note": "card 4539148803436467"});
    let m = masker(Operator::Redact);
    let masked = m.mask_json(&doc);
    assert_eq!(masked["contents"][0]["blob"], json!(blob));
    assert_eq!(masked["note"], json!("card [REDACTED:payment_card]"));
    let mut in_place = doc.clone();
    m.mask_json_in_place(&mut in_place, &mut |_, _| {});
    assert_eq!(in_place, masked);
}

/// Inputs on which masking once was not idempotent: a name that ends a
/// phrase before a key (`SSN` read as part of the key `SSN customer name`
/// the first time, and its pseudonym as part of `NASREEN customer name` the
/// second), and a hash of a name (hex with digits) that made a field's
/// value look like an address; and a phone number's pseudonym that fell
/// under another numbering plan than the number's.
#[test]
fn masking_is_idempotent_where_it_once_was_not() {
    for text in [
        "Dear SSN customer name: SSN ",
        "StreetStreet:\"Dear DOB: ::",
        // Ten digits after `phone` that no plan reads, whose pseudonym
        // once drew a valid North American number.
        "phone 7100002520(",
        // The same after a title.
        "Dr. ASSN name: SSN SSN ",
        // A signature masked to its last four letters, `******name:`, once
        // read as the key `name` on a second masking.
        "Sincerely,\nStreetname: SSN DE89 ",
    ] {
        for op in OPERATORS {
            for seed in [0, 5, 17, 255] {
                let m = Masker::new(Detector::new(), MaskKey::from_bytes([seed; 32]), op.clone());
                let once = m.mask(text);
                assert_eq!(m.mask(&once), once, "{op:?}, key {seed}, on {text:?}");
            }
        }
    }
}

/// Masking twice gives what masking once gave whatever character the mask
/// operator writes, for the default operator and for one kind's alone:
/// the masker tells its detector which characters it writes.
#[test]
fn masking_is_idempotent_with_any_mask_character() {
    let texts = [
        "Sincerely,\nStreetname: SSN DE89 ",
        "Sincerely,\nRosalind Franklin\nStreetname: Ada Lovelace",
        "**Name:** Ada Lovelace, **Phone:** +1 415 555 0132",
        "full_name=Ada Lovelace email=ada@example.org",
    ];
    for mask in ['*', '#', '~', 'X', '•', '_', '-'] {
        let op = Operator::Mask {
            keep: 4,
            char: mask,
        };
        let everything = Masker::new(Detector::new(), key(5), op.clone());
        let names_only = Masker::new(Detector::new(), key(5), Operator::Pseudonymize)
            .with_operator(PersonalKind::PersonName, op);
        for m in [&everything, &names_only] {
            for text in texts {
                let once = m.mask(text);
                assert_eq!(m.mask(&once), once, "mask {mask:?} on {text:?}");
            }
            for &(kind, value, context) in SAMPLES {
                let text = render(context, value);
                let once = m.mask(&text);
                assert_eq!(m.mask(&once), once, "mask {mask:?}, {kind}, on {text:?}");
            }
        }
    }
}
