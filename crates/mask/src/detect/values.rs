//! Checks a value against what its field name implies: a `dob` field must
//! hold a date, a `first_name` field a name, an `address` field an address.
//! A value that fails the check is not reported under the field's kind
//! (free-text detection still runs over it).

use super::field::{Component, FieldHint};
use super::{Candidate, PersonalKind, address, date, name, phone, ssn};

/// The rank of a finding that covers a whole field value: above anything
/// free-text detection finds inside the same bytes.
const FIELD_RANK: u8 = 4;

/// Adds a candidate for `value` (which starts at byte `offset` of the
/// scanned text) if it fits the kind `hint` names.
pub(crate) fn check(hint: FieldHint, value: &str, offset: usize, out: &mut Vec<Candidate>) {
    let Some(kind) = hint.kind else { return };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return;
    }
    let s = offset + (value.len() - value.trim_start().len());
    let e = s + trimmed.len();
    let (ok, end) = match kind {
        PersonalKind::DateOfBirth => match date::whole(trimmed) {
            Some(m) => (true, s + m.end),
            None => (false, e),
        },
        PersonalKind::UsSsn => (ssn::is_ssn(trimmed), e),
        PersonalKind::Phone => (phone::is_phone(trimmed), e),
        PersonalKind::PostalAddress => {
            let ok = match hint.component {
                Some(Component::Street) => address::is_street_value(trimmed),
                Some(Component::Postcode) => address::is_postcode(trimmed),
                None => address::is_address_value(trimmed),
            };
            (ok, e)
        }
        PersonalKind::PersonName => (name::is_name_value(trimmed, hint.definite), e),
        _ => (false, e),
    };
    if ok {
        out.push(Candidate::new(kind, s, end, FIELD_RANK));
    }
}
