//! The [`Masker`]: a detector, a key and an operator per kind, applied to
//! text, JSON field values and whole JSON documents.
//!
//! Masking is idempotent: `mask(mask(text)) == mask(text)`. Placeholders
//! are never detected again; a value that is a hash of the configured
//! length (hex digits with a letter among them) is left alone; what a mask leaves visible is left
//! alone where it touches the mask character; a pseudonym is detected
//! again but recognised as this key's own and left alone (see
//! `pseudonym.rs` for how each kind is recognised), and a pseudonymous
//! date of birth is its own pseudonym. Tokens are the exception: a token is
//! a valid value of its kind and masking it again encrypts it again, so a
//! text is tokenized once, and detokenized once.

use serde_json::Value;

use crate::detect::{self, Detector, PersonalFinding, PersonalKind};
use crate::key::MaskKey;
use crate::operators::{self, Operator};
use crate::pseudonym::{self, NameHint};

/// A JSON string that holds encoded bytes (an image, a file: base64 of at
/// least 128 characters, no spaces) rather than text. Its digits between
/// `+` and `/` can look like a card or a phone number; masking them would
/// corrupt the bytes and protect nobody.
fn is_encoded_binary(s: &str) -> bool {
    s.len() >= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// What [`Masker::mask_json_seen`] calls with a replacement and the value
/// it replaced.
pub type Seen<'a> = dyn FnMut(&str, &str) + 'a;

/// What reads a JSON document's parts before [`Masker`] masks them (see
/// [`Masker::mask_json_in_place_with`]).
pub trait JsonReader {
    /// An object, before its values: its keys may be rewritten.
    fn keys(&mut self, map: &mut serde_json::Map<String, Value>);
    /// A number, which may be replaced.
    fn number(&mut self, value: &mut Value);
    /// A string, before it is masked: it may be rewritten, and `cues`
    /// (empty when called) receives every occurrence in what it then holds
    /// of every cue word of [`crate::cue_words`] (start, end, index).
    fn string(&mut self, text: &mut String, cues: &mut Vec<(usize, usize, usize)>);
}

/// Masks personal data in text and JSON.
#[derive(Debug, Clone)]
pub struct Masker {
    detector: Detector,
    key: MaskKey,
    default: Operator,
    per_kind: Vec<(PersonalKind, Operator)>,
}

impl Masker {
    /// A masker that applies `operator` to every kind `detector` finds.
    pub fn new(detector: Detector, key: MaskKey, operator: Operator) -> Masker {
        Masker {
            detector,
            key,
            default: operator,
            per_kind: Vec::new(),
        }
        .with_own_mask_chars()
    }

    /// Uses `operator` for `kind` instead of the default.
    pub fn with_operator(mut self, kind: PersonalKind, operator: Operator) -> Masker {
        self.per_kind.retain(|(k, _)| *k != kind);
        self.per_kind.push((kind, operator));
        self.with_own_mask_chars()
    }

    /// Adds the characters this masker writes to those its detector knows
    /// (see [`Detector::with_mask_chars`]), so that it does not read what
    /// masking left as something to mask again.
    fn with_own_mask_chars(mut self) -> Masker {
        let mut chars = self.detector.mask_chars().to_vec();
        for op in std::iter::once(&self.default).chain(self.per_kind.iter().map(|(_, op)| op)) {
            if let Operator::Mask { char, .. } = op {
                chars.push(*char);
            }
        }
        self.detector = self.detector.with_mask_chars(&chars);
        self
    }

    /// The operator applied to `kind`.
    pub fn operator(&self, kind: PersonalKind) -> &Operator {
        self.per_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&self.default, |(_, op)| op)
    }

    /// `text` with its personal data masked.
    pub fn mask(&self, text: &str) -> String {
        self.mask_cow(text).into_owned()
    }

    /// [`Masker::mask`], borrowing `text` back when nothing in it is
    /// personal data (no copy, no comparison).
    pub fn mask_cow<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let findings = self.detector.find(text);
        self.replace_cow(text, &findings)
    }

    /// [`Masker::mask_cow`], given the cue words' occurrences in `text`
    /// (see [`Detector::find_with_cues`]).
    pub fn mask_cow_with_cues<'a>(
        &self,
        text: &'a str,
        cues: &[(usize, usize, usize)],
    ) -> std::borrow::Cow<'a, str> {
        let findings = self.detector.find_with_cues(text, cues);
        self.replace_cow(text, &findings)
    }

    fn replace_cow<'a>(
        &self,
        text: &'a str,
        findings: &[crate::PersonalFinding],
    ) -> std::borrow::Cow<'a, str> {
        if findings.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        let masked = self.replace(text, findings, NameHint::Unknown, &mut |_, _| {});
        if masked == text {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(masked)
        }
    }

    /// One JSON string value masked, its field name (or path) giving
    /// context; see [`Detector::find_in_field`].
    pub fn mask_field(&self, field: Option<&str>, text: &str) -> String {
        self.mask_field_changed(field, text, None, &mut |_, _| {})
            .unwrap_or_else(|| text.to_owned())
    }

    /// The masked text, or `None` when nothing in it changes; `cues` are
    /// the cue words' occurrences in `text` when another read found them.
    fn mask_field_changed(
        &self,
        field: Option<&str>,
        text: &str,
        cues: Option<&[(usize, usize, usize)]>,
        seen: &mut Seen<'_>,
    ) -> Option<String> {
        let findings = match cues {
            Some(cues) => self.detector.find_in_field_with_cues(field, text, cues),
            None => self.detector.find_in_field(field, text),
        };
        if findings.is_empty() {
            return None;
        }
        let hint = match field.and_then(detect::field_name_part) {
            Some(true) => NameHint::Given,
            Some(false) => NameHint::Family,
            None => NameHint::Unknown,
        };
        let masked = self.replace(text, &findings, hint, seen);
        (masked != text).then_some(masked)
    }

    /// A JSON document with every string value masked in the context of
    /// its path (`customer.first_name`, `orders[0].address`). Keys are not
    /// masked.
    pub fn mask_json(&self, value: &Value) -> Value {
        self.mask_json_seen(value, &mut |_, _| {})
    }

    /// [`Masker::mask_json`], calling `seen(replacement, original)` for every
    /// value replaced by one that stands for it alone — a pseudonym, a token
    /// or a hash, not a placeholder or a partial mask — so that a caller can
    /// map replacements back to what they replaced.
    pub fn mask_json_seen(&self, value: &Value, seen: &mut Seen<'_>) -> Value {
        let mut masked = value.clone();
        self.mask_json_in_place(&mut masked, seen);
        masked
    }

    /// [`Masker::mask_json_seen`] in place: only the strings that change are
    /// replaced, and the document is never held twice.
    pub fn mask_json_in_place(&self, value: &mut Value, seen: &mut Seen<'_>) {
        let mut path = String::new();
        self.mask_value_in_place(value, &mut path, seen, &mut None);
    }

    /// [`Masker::mask_json_in_place`] with another reader of the document
    /// first: `reader` sees each object's keys before its values, each
    /// number, and each string before it is masked, and reports the cue
    /// words it found in the string, so that each string is read once for
    /// both (a redactor's secrets, then personal data).
    pub fn mask_json_in_place_with(
        &self,
        value: &mut Value,
        seen: &mut Seen<'_>,
        reader: &mut dyn JsonReader,
    ) {
        let mut path = String::new();
        self.mask_value_in_place(value, &mut path, seen, &mut Some(reader));
    }

    fn mask_value_in_place(
        &self,
        value: &mut Value,
        path: &mut String,
        seen: &mut Seen<'_>,
        reader: &mut Option<&mut dyn JsonReader>,
    ) {
        match value {
            Value::String(s) => {
                let mut cues = Vec::new();
                let cues = match reader {
                    Some(reader) => {
                        reader.string(s, &mut cues);
                        Some(cues.as_slice())
                    }
                    None => None,
                };
                if is_encoded_binary(s) {
                    return;
                }
                let field = (!path.is_empty()).then_some(path.as_str());
                if let Some(masked) = self.mask_field_changed(field, s, cues, seen) {
                    *s = masked;
                }
            }
            Value::Array(items) => {
                let len = path.len();
                for (i, item) in items.iter_mut().enumerate() {
                    path.truncate(len);
                    path.push_str(&format!("[{i}]"));
                    self.mask_value_in_place(item, path, seen, reader);
                }
                path.truncate(len);
            }
            Value::Object(map) => {
                if let Some(reader) = reader {
                    reader.keys(map);
                }
                let len = path.len();
                for (k, v) in map.iter_mut() {
                    path.truncate(len);
                    if len > 0 {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.mask_value_in_place(v, path, seen, reader);
                }
                path.truncate(len);
            }
            Value::Number(_) => {
                if let Some(reader) = reader {
                    reader.number(value);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn replace(
        &self,
        text: &str,
        findings: &[PersonalFinding],
        hint: NameHint,
        seen: &mut Seen<'_>,
    ) -> String {
        if findings.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 16 * findings.len());
        let mut last = 0;
        for f in findings {
            let Some(value) = text.get(f.start..f.end) else {
                continue;
            };
            out.push_str(&text[last..f.start]);
            let op = self.operator(f.kind);
            if let Operator::Mask { char: with, .. } = op {
                // What a mask leaves visible can have a shape of its own
                // (`***.**8.1.20`); next to the mask character, it is the
                // tail of a masked value.
                let touches = text[..f.start].ends_with(*with)
                    || text[f.end..].starts_with(*with)
                    || value.contains(*with);
                if touches {
                    out.push_str(value);
                    last = f.end;
                    continue;
                }
            }
            if let Operator::Hash { length } = op {
                // A hash this masker wrote (hex with a letter in it, so never
                // a card or phone number).
                let hex = value.len() == (*length).clamp(1, 64)
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if hex && value.bytes().any(|b| b.is_ascii_alphabetic()) {
                    out.push_str(value);
                    last = f.end;
                    continue;
                }
            }
            let replacement = match op {
                Operator::Pseudonymize if operators::is_pseudonym(f.kind, value, &self.key) => {
                    value.to_owned()
                }
                Operator::Pseudonymize => pseudonym::make(f.kind, value, &self.key, hint),
                _ => operators::apply(op, f.kind, value, &self.key),
            };
            let stands_alone = matches!(
                op,
                Operator::Pseudonymize | Operator::Tokenize | Operator::Hash { .. }
            );
            if stands_alone && replacement != value && !replacement.starts_with("[REDACTED:") {
                seen(&replacement, value);
            }
            out.push_str(&replacement);
            last = f.end;
        }
        out.push_str(&text[last..]);
        out
    }
}
