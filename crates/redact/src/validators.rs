//! The code that rules refer to by name: byte classes (for `not_after`,
//! `not_followed_by` and `lead`) and validators, which decide whether a regex
//! match really is a credential: checksums, structural decodes (JWT headers,
//! `user:password` in Basic credentials), and the stop words, references and
//! entropy that keep `password: ${DB_PASSWORD}` or `token: null` from being
//! read as secrets.
//!
//! Every validator looks at a bounded prefix of its match (the regex bounds
//! the match, and the extender runs only afterwards), so the work per
//! attempt stays bounded.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::rule_file::VALUE_BOUND;
use crate::rules::{
    ByteClass, GROUP_SINGLE_QUOTED, GROUP_UNQUOTED, GROUP_XML, Hit, Named, PLACEHOLDER_PREFIX,
    Validator, ValidatorFn,
};

// ---------------------------------------------------------------------------
// Registries.

/// The byte class of this name.
pub(crate) fn byte_class(name: &str) -> Option<ByteClass> {
    let f: fn(u8) -> bool = match name {
        "alnum" => is_alnum,
        "word" => is_word,
        "base64url" => is_base64url,
        "base64" => is_base64,
        "hex" => |b: u8| b.is_ascii_hexdigit(),
        "digit" => |b: u8| b.is_ascii_digit(),
        "slash" => |b: u8| b == b'/',
        "token" => |b: u8| is_base64url(b) || b == b'.',
        "azure_secret" => |b: u8| is_base64url(b) || b == b'.' || b == b'~',
        _ => return None,
    };
    BYTE_CLASSES
        .iter()
        .find(|n| *n == &name)
        .map(|n| Named { name: n, f })
}

/// Every byte class name, for listings.
pub(crate) const BYTE_CLASSES: &[&str] = &[
    "alnum",
    "word",
    "base64url",
    "base64",
    "hex",
    "digit",
    "slash",
    "token",
    "azure_secret",
];

/// The validator of this name.
pub(crate) fn validator(name: &str) -> Option<Validator> {
    let f: ValidatorFn = match name {
        "has_digit" => has_digit,
        "has_digit_and_letter" => has_digit_and_letter,
        "mixed_case_and_digit" => mixed_case_and_digit,
        "mixed_case" => mixed_case,
        "azure_sas" => azure_sas,
        "openai_key" => openai_key,
        "bearer_token" => bearer_token,
        "basic_credentials" => basic_credentials,
        "jwt" => jwt,
        "url_password" => url_password,
        "password_value" => password_value,
        "pwd_value" => pwd_value,
        "opaque_value" => opaque_value,
        "token_value" => token_value,
        "crc32_base62" => crc32_base62,
        "discord_bot_token" => discord_bot_token,
        "embedded_base64_json" => embedded_base64_json,
        "twitter_bearer" => twitter_bearer,
        "prose_credential" => prose_credential,
        _ => return None,
    };
    VALIDATORS
        .iter()
        .find(|n| *n == &name)
        .map(|n| Named { name: n, f })
}

/// Every validator name, for listings.
pub(crate) const VALIDATORS: &[&str] = &[
    "has_digit",
    "has_digit_and_letter",
    "mixed_case_and_digit",
    "mixed_case",
    "azure_sas",
    "openai_key",
    "bearer_token",
    "basic_credentials",
    "jwt",
    "url_password",
    "password_value",
    "pwd_value",
    "opaque_value",
    "token_value",
    "crc32_base62",
    "discord_bot_token",
    "embedded_base64_json",
    "twitter_bearer",
    "prose_credential",
];

// ---------------------------------------------------------------------------
// Byte classes.

pub(crate) fn is_alnum(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

pub(crate) fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn is_base64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

// ---------------------------------------------------------------------------
// Shape validators.

fn has_digit(hit: &Hit<'_>) -> bool {
    hit.secret().iter().any(u8::is_ascii_digit)
}

fn has_digit_and_letter(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.iter().any(u8::is_ascii_digit) && s.iter().any(u8::is_ascii_alphabetic)
}

fn mixed_case_and_digit(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.iter().any(u8::is_ascii_digit)
        && s.iter().any(u8::is_ascii_uppercase)
        && s.iter().any(u8::is_ascii_lowercase)
}

fn mixed_case(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_lowercase)
}

/// An Azure shared access signature: the `sig=` parameter of a URL or
/// connection string that also carries the signed version (`sv=`) within
/// the 512 bytes before it.
fn azure_sas(hit: &Hit<'_>) -> bool {
    let from = hit.start.saturating_sub(512);
    let before = hit.hay.get(from..hit.start).unwrap_or_default();
    before
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"sv=2") || w.eq_ignore_ascii_case(b"&sv="))
}

fn openai_key(hit: &Hit<'_>) -> bool {
    let secret = hit.secret();
    let body = secret.strip_prefix(b"sk-").unwrap_or(secret);
    if body.starts_with(b"ant-") {
        return false;
    }
    body.iter().any(u8::is_ascii_digit)
        && body.iter().any(u8::is_ascii_uppercase)
        && body.iter().any(u8::is_ascii_lowercase)
}

fn bearer_token(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    if is_uniform(s) || is_masked(s) {
        return false;
    }
    s.iter().any(u8::is_ascii_digit)
        || (s.len() >= 20
            && s.iter().any(u8::is_ascii_uppercase)
            && s.iter().any(u8::is_ascii_lowercase))
}

/// X (Twitter) app-only bearer tokens: a run of `A`s, then URL-encoded
/// base64 with `%2B`, `%2F` or `%3D` in it. Base64 of binary zeros also
/// starts with `A`s but has no percent sign.
fn twitter_bearer(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.contains(&b'%') && s.iter().any(u8::is_ascii_digit) && s.iter().any(u8::is_ascii_lowercase)
}

/// The 32-bit checksum of GitHub's and npm's token formats: a prefix, 30
/// base62 characters, and the CRC-32 (IEEE) of those 30 characters in 6
/// base62 digits (`0-9A-Za-z`, zero-padded).
///
/// A token whose checksum verifies is accepted whatever its characters. One
/// whose checksum fails is not proven harmless — a token mistyped by one
/// character, or a made-up one pasted into a configuration, still deserves
/// hiding — so it is accepted when its body mixes upper case, lower case and
/// digits as random tokens do, and rejected otherwise (`npm_` followed by
/// words is not a token). Tokens of other lengths (refresh tokens, formats
/// yet to come) have no checksum to verify and are judged by the same mix.
fn crc32_base62(hit: &Hit<'_>) -> bool {
    let secret = hit.secret();
    let body = match secret.iter().position(|&b| b == b'_') {
        Some(underscore) => &secret[underscore + 1..],
        None => secret,
    };
    if body.len() == 36 {
        let (random, check) = body.split_at(30);
        if check == base62_checksum(random) {
            return true;
        }
    }
    body.iter().any(u8::is_ascii_digit)
        && body.iter().any(u8::is_ascii_uppercase)
        && body.iter().any(u8::is_ascii_lowercase)
}

/// The 6-digit base62 CRC-32 of `data`, as GitHub and npm tokens end.
pub(crate) fn base62_checksum(data: &[u8]) -> [u8; 6] {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32(data);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Discord bot tokens begin with the bot's user id (a snowflake of 17 to 20
/// decimal digits) in base64; anything else with the same dotted shape is
/// not one.
fn discord_bot_token(hit: &Hit<'_>) -> bool {
    let token = hit.secret();
    let first = token.split(|&b| b == b'.').next().unwrap_or_default();
    let Ok(decoded) = LENIENT_BASE64URL.decode(first) else {
        return false;
    };
    (17..=20).contains(&decoded.len()) && decoded.iter().all(u8::is_ascii_digit)
}

/// Tokens that wrap a base64url JSON object after a prefix (`ops_eyJ...`,
/// Grafana's `eyJrIjoi...`): the object must decode and parse. Only the
/// first 2 KiB are decoded.
fn embedded_base64_json(hit: &Hit<'_>) -> bool {
    let secret = hit.secret();
    let Some(at) = secret.windows(3).position(|w| w == b"eyJ") else {
        return false;
    };
    let body = &secret[at..];
    let body = body.split(|&b| b == b'.').next().unwrap_or_default();
    // Whole bodies must parse. A body longer than that is decoded in part,
    // and its start must read as the first member of an object.
    // A body the regex cut at its bound goes on after the match.
    let cut = hit
        .hay
        .get(hit.end)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'));
    let (part, whole) = if body.len() <= 2048 {
        (body, !cut)
    } else {
        (&body[..2048], false)
    };
    let part = part.strip_suffix(b"=").unwrap_or(part);
    let part = part.strip_suffix(b"=").unwrap_or(part);
    let Ok(decoded) = LENIENT_BASE64URL
        .decode(part)
        .or_else(|_| LENIENT_BASE64.decode(part))
    else {
        return false;
    };
    if !decoded.starts_with(b"{\"") {
        return false;
    }
    if whole {
        return matches!(
            serde_json::from_slice::<serde_json::Value>(&decoded),
            Ok(serde_json::Value::Object(_))
        );
    }
    let key_len = decoded[2..]
        .iter()
        .take(64)
        .take_while(|&&b| b != b'"' && (0x20..0x7f).contains(&b))
        .count();
    decoded.get(2 + key_len..2 + key_len + 2) == Some(b"\":")
}

/// Lenient base64: padding optional, trailing bits allowed, because the
/// value may have been cut at the regex's bound.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

const LENIENT_BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes at most the first 96 characters: the `user:` part is at the start,
/// and this keeps the work per match bounded.
fn basic_credentials(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    let s = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    let take = s.len().min(96) / 4 * 4;
    let Some(prefix) = s.get(..take) else {
        return false;
    };
    let Ok(decoded) = LENIENT_BASE64.decode(prefix) else {
        return false;
    };
    // Credentials are text: printable, and UTF-8 up to where the decoded
    // prefix was cut.
    let text = match std::str::from_utf8(&decoded) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&decoded[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    if text.chars().any(char::is_control) {
        return false;
    }
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) => decoded[..colon].iter().all(|b| (0x20..0x7f).contains(b)),
        None => false,
    }
}

/// The header segment must decode to a JSON object with an `alg` member.
/// The decode runs once per attempt; attempts start only at run starts (see
/// the rule), so the total work stays linear.
fn jwt(hit: &Hit<'_>) -> bool {
    let token = hit.secret();
    let header = token.split(|&b| b == b'.').next().unwrap_or_default();
    let Ok(decoded) = LENIENT_BASE64URL.decode(header) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&decoded) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("alg"),
        _ => false,
    }
}

fn url_password(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    !is_uniform(s)
        && !is_masked(s)
        && !is_reference(s)
        && !s.starts_with(PLACEHOLDER_PREFIX.as_bytes())
}

// ---------------------------------------------------------------------------
// Assignment values: stop words, references, masks and paths.

/// What an assignment's value must be beyond its minimum length.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueClass {
    /// Passwords may be short and may be all digits (PINs).
    Password,
    /// Tokens, secrets and keys: an all-digit value is a count or an id.
    Opaque,
}

fn password_value(hit: &Hit<'_>) -> bool {
    assignment_value(hit, ValueClass::Password)
}

fn pwd_value(hit: &Hit<'_>) -> bool {
    // The shell's `PWD` holds a directory, whatever its case.
    let s = hit.secret();
    !s.starts_with(b"/") && !is_path(s) && assignment_value(hit, ValueClass::Password)
}

fn opaque_value(hit: &Hit<'_>) -> bool {
    !is_path(hit.secret()) && assignment_value(hit, ValueClass::Opaque)
}

/// Values of keys that end in `token` but name no credential: MCP progress
/// tokens, pagination cursors (`NextToken`, `pageToken`), idempotency and
/// cancellation tokens. Recordings need them intact.
fn token_value(hit: &Hit<'_>) -> bool {
    let before = hit.hay.get(..hit.keyword_start).unwrap_or_default();
    let name_len = before
        .iter()
        .rev()
        .take(40)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        .count();
    let name: Vec<u8> = before[before.len() - name_len..]
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_lowercase)
        .collect();
    !TOKENS_NOT_CREDENTIALS.iter().any(|n| name == *n) && opaque_value(hit)
}

/// What precedes `token` in the name of a token that is no credential.
const TOKENS_NOT_CREDENTIALS: &[&[u8]] = &[
    b"progress",
    b"page",
    b"nextpage",
    b"next",
    b"continuation",
    b"sync",
    b"resume",
    b"cancellation",
    b"idempotency",
    b"pagination",
    b"cursor",
];

/// A credential named in a sentence (`%{prose:N}`): `The Datadog API key
/// is 0736...`, `Here is the token for staging: ...`, `Der password lautet
/// ...`, `Voici la clé (Twilio auth token) : ...`.
///
/// The name decides first. `key` needs a word before it that makes it a
/// credential (`API key`, `admin key`, `Mailgun key`), not an article or a
/// key of another sort (`the key`, `primary key`, `cache key`, `public
/// key`); `token` must not be a pagination or progress token. The words
/// between the name and the value must not make the value something about
/// the credential rather than the credential (`key ID`, `key fingerprint`,
/// `token length`).
///
/// `=` does not link a name to its value here: `key = HMAC(...)` and `let
/// token = ProgressToken(...)` are code, and assignments have rules of their
/// own. Then the value: not a reference, template, mask, path, URL or code
/// path (`a::b`); a password has at least 8 bytes of three classes (lower
/// case, upper case, digits, symbols); a key, token or secret at least 16
/// bytes with a letter and a digit (the rule's entropy threshold does the
/// rest). Hex digests and
/// UUIDs pass when so named: Datadog, Twilio and Algolia keys are hex,
/// Heroku's are UUIDs. Unnamed, they are left alone.
fn prose_credential(hit: &Hit<'_>) -> bool {
    let hay = hit.hay;
    let rest = &hay[hit.keyword_start..];
    let noun = if starts_with_ignore_case(rest, b"key") {
        Noun::Key
    } else if starts_with_ignore_case(rest, b"token") {
        Noun::Token
    } else if starts_with_ignore_case(rest, b"pass") {
        Noun::Password
    } else {
        Noun::Secret
    };
    let before = previous_word(&hay[..hit.keyword_start]);
    let before = before.to_ascii_lowercase();
    match noun {
        Noun::Key if before.is_empty() || KEYS_NOT_CREDENTIALS.contains(&before.as_slice()) => {
            return false;
        }
        Noun::Token if TOKENS_NOT_CREDENTIALS.contains(&before.as_slice()) => return false,
        _ => {}
    }
    let between = hay.get(hit.keyword_start..hit.start).unwrap_or_default();
    let about = between
        .split(|b| !b.is_ascii_alphabetic())
        .skip(1)
        .any(|w| ABOUT_A_CREDENTIAL.iter().any(|a| w.eq_ignore_ascii_case(a)));
    if about {
        return false;
    }
    let value = hit.secret();
    if is_reference(value)
        || is_template_placeholder(value)
        || is_masked(value)
        || is_uniform(value)
        || is_path(value)
        || value.starts_with(PLACEHOLDER_PREFIX.as_bytes())
        || value.windows(3).any(|w| w == b"://")
        || value.windows(2).any(|w| w == b"::")
        || STOP_WORDS
            .iter()
            .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
    {
        return false;
    }
    let classes = [
        value.iter().any(u8::is_ascii_lowercase),
        value.iter().any(u8::is_ascii_uppercase),
        value.iter().any(u8::is_ascii_digit),
        value.iter().any(|b| b.is_ascii_punctuation()),
    ];
    let letter = classes[0] || classes[1];
    match noun {
        Noun::Password => value.len() >= 8 && classes.iter().filter(|c| **c).count() >= 3,
        _ => value.len() >= 16 && letter && classes[2],
    }
}

/// The credential a `%{prose:N}` rule names.
enum Noun {
    Key,
    Token,
    Secret,
    Password,
}

/// Words before `key` that make it no credential: articles and pronouns
/// (`the key is`), and keys of other sorts.
const KEYS_NOT_CREDENTIALS: &[&[u8]] = &[
    b"the",
    b"a",
    b"an",
    b"this",
    b"that",
    b"these",
    b"those",
    b"my",
    b"your",
    b"our",
    b"his",
    b"her",
    b"their",
    b"its",
    b"same",
    b"which",
    b"what",
    b"each",
    b"every",
    b"any",
    b"no",
    b"one",
    b"new",
    b"old",
    b"public",
    b"publishable",
    b"pub",
    b"primary",
    b"foreign",
    b"sort",
    b"partition",
    b"composite",
    b"unique",
    b"cache",
    b"caching",
    b"idempotency",
    b"object",
    b"lookup",
    b"hash",
    b"map",
    b"dict",
    b"dictionary",
    b"registry",
    b"host",
    b"routing",
    b"shard",
    b"row",
    b"column",
    b"index",
    b"field",
    b"json",
    b"yaml",
    b"config",
    b"hot",
    b"shortcut",
    b"music",
    b"piano",
    b"answer",
    b"door",
    b"house",
    b"car",
    b"spare",
];

/// Words between a credential's name and its value that make the value
/// something about the credential: `API key ID:`, `token length is`.
const ABOUT_A_CREDENTIAL: &[&[u8]] = &[
    b"id",
    b"ids",
    b"name",
    b"names",
    b"fingerprint",
    b"hash",
    b"checksum",
    b"digest",
    b"prefix",
    b"suffix",
    b"length",
    b"size",
    b"type",
    b"format",
    b"version",
    b"field",
    b"header",
    b"variable",
    b"env",
    b"file",
    b"path",
    b"url",
    b"location",
    b"count",
    b"limit",
    b"scope",
    b"scopes",
    b"label",
    b"alias",
    b"owner",
    b"expiry",
    b"expires",
    b"expiration",
    b"policy",
    b"hint",
    b"reset",
    b"requirements",
    b"strength",
];

/// The word (letters, digits, `-`, `.`) just before `before`'s end, across
/// spaces and an opening parenthesis.
fn previous_word(before: &[u8]) -> &[u8] {
    let trimmed = before
        .iter()
        .rev()
        .take(8)
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let end = before.len() - trimmed;
    if trimmed == 0 && end > 0 {
        return &[];
    }
    let len = before[..end]
        .iter()
        .rev()
        .take(32)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        .count();
    &before[end - len..end]
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// Words that say something about a value rather than being one: JSON and
/// language literals, type names, and the placeholders people put in
/// examples and templates. Compared without regard to case.
const STOP_WORDS: &[&str] = &[
    "null",
    "nil",
    "none",
    "true",
    "false",
    "undefined",
    "empty",
    "required",
    "optional",
    "string",
    "integer",
    "number",
    "bool",
    "boolean",
    "object",
    "option",
    "secretstr",
    "secretstring",
    "securestring",
    "redacted",
    "masked",
    "hidden",
    "unset",
    "[redacted]",
    "<redacted>",
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "replaceme",
    "replace_me",
    "replace-me",
    "placeholder",
    "example",
    "sample",
    "dummy",
    "todo",
    "fixme",
    "tbd",
    "notset",
    "not_set",
    "not-set",
    "xxx",
    "n/a",
    // A variable named like the key: `self.password = password`.
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "credentials",
    "creds",
];

fn assignment_value(hit: &Hit<'_>, class: ValueClass) -> bool {
    let value = hit.secret();
    if value.is_empty() || is_uniform(value) || is_masked(value) || is_reference(value) {
        return false;
    }
    if STOP_WORDS
        .iter()
        .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
        || is_template_placeholder(value)
    {
        return false;
    }
    if value.starts_with(PLACEHOLDER_PREFIX.as_bytes()) {
        return false;
    }
    if hit.group == GROUP_XML && !closes_xml_element(hit) {
        return false;
    }
    // `prompt='Password: ', stream=None`: the quote after the colon closes a
    // string; what follows it is code, not a quoted value.
    if hit.group == GROUP_SINGLE_QUOTED
        && matches!(
            value.first(),
            Some(b',' | b')' | b';' | b']' | b'}' | b' ' | b'\t')
        )
    {
        return false;
    }
    if hit.group == GROUP_UNQUOTED {
        // Paths, pointers and private names are code, not values:
        // `xToken: ::core::option::Option<...>`, `passwd: __u32`,
        // `phrase: *const c_char`, `secret: &str`.
        if matches!(value.first(), Some(b':' | b'_' | b'*' | b'&')) {
            return false;
        }
        // A control byte does not start a value: after `password=` in a
        // coloured log, `\x1b[0m` resets the colour and the value follows it
        // (quoted, or already a placeholder).
        if value.first().is_some_and(u8::is_ascii_control) {
            return false;
        }
        if TYPE_NAMES
            .iter()
            .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
        {
            return false;
        }
        // `password = get_password()` and `token = env["X"]` are code, not
        // values; their unquoted capture stops at the bracket. So are type
        // annotations: `password: Option<String>`, `api_key: Optional[str]`.
        if looks_like_code(value, hit.hay.get(hit.end).copied()) {
            return false;
        }
        // In JSON (`"password": 1234`) an unquoted value is a number, and
        // replacing it would leave invalid JSON behind.
        if is_json_number(value) && after_json_key(hit) {
            return false;
        }
    }
    if class == ValueClass::Opaque && value.iter().all(u8::is_ascii_digit) {
        return false;
    }
    true
}

/// An unquoted value that reads as code rather than as a value: an
/// identifier followed by a call, an index, a macro's `!` or type parameters
/// (`get_password()`, `env["X"]`, `Optional[str]`, `Option<String>`,
/// `Token![fn]`), a path or a member access. The unquoted form stops at `<`,
/// `)` and `]`, so the byte after the value tells too.
fn looks_like_code(value: &[u8], next: Option<u8>) -> bool {
    let ident = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':'))
        .count();
    if ident == 0 || value[0].is_ascii_digit() {
        return false;
    }
    let whole = ident == value.len();
    // Paths (`mio::Token`, `token::Paren`) and member access
    // (`node.extern_token`, `self.token`).
    if value.windows(2).any(|w| w == b"::") {
        return true;
    }
    if whole
        && value.contains(&b'.')
        && value
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'))
        && !value.ends_with(b".")
        && !value.windows(2).any(|w| w == b"..")
    {
        return true;
    }
    match value.get(ident) {
        // Type parameters follow a type name, which starts upper case; a
        // CamelCase type name without digits ends a parameter or field
        // declaration (`token: CancellationToken,`).
        None => {
            let camel = value[0].is_ascii_uppercase()
                && value.iter().all(u8::is_ascii_alphabetic)
                && value.iter().filter(|b| b.is_ascii_uppercase()).count() >= 2;
            // A snake_case variable passed on (`token: pending_token,`).
            let variable =
                value.contains(&b'_') && value.iter().all(|b| b.is_ascii_lowercase() || *b == b'_');
            (next == Some(b'<') && value[0].is_ascii_uppercase())
                || ((camel || variable) && matches!(next, Some(b',' | b')' | b'{')))
        }
        // Calls (`Token(SERVER.0`, `promoted.seal(b`) and indexes.
        Some(b'(') => true,
        Some(b'[') => ident + 1 == value.len() || matches!(next, Some(b')' | b']')),
        // Macros: `Token![struct]`, `bracketed!(content in input)`.
        Some(b'!') => matches!(value.get(ident + 1), Some(b'(' | b'[' | b'{')),
        Some(_) => false,
    }
}

/// Type names that follow a key in declarations (`token: u64`, `password:
/// str`, `secret: bytes`), beside those among the stop words.
const TYPE_NAMES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64", "str", "char", "int", "uint", "long", "short", "float", "double", "byte", "bytes",
    "text", "varchar", "blob", "void", "any", "unknown", "never", "dict", "list", "vec", "map",
];

/// An XML value (`<password>VALUE`) counts when the key is a tag name and the
/// element closes right after the value (`</password>`), or the regex cut the
/// value at its bound: `(?P<password>.*)` in a regex, or `T: Token> Peek` in
/// code, are not elements.
fn closes_xml_element(hit: &Hit<'_>) -> bool {
    // The key must sit in a tag: `<password>`, `<db_password>`.
    let before = hit.hay.get(..hit.keyword_start).unwrap_or_default();
    let name = before
        .iter()
        .rev()
        .take(64)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        .count();
    if before.len() <= name || before[before.len() - name - 1] != b'<' {
        return false;
    }
    hit.hay[hit.end..].starts_with(b"</") || hit.end - hit.start >= VALUE_BOUND
}

/// A value of three or more of one repeated byte (`***`, `xxxxxxxx`) is a
/// mask, not a secret.
fn is_uniform(value: &[u8]) -> bool {
    value.len() >= 3 && value.windows(2).all(|w| w[0] == w[1])
}

/// Masks with separators: `xxxx-xxxx-xxxx`, `****.****`, `...`, `•••`.
fn is_masked(value: &[u8]) -> bool {
    value.len() >= 3
        && value.iter().all(|b| {
            matches!(
                b,
                b'x' | b'X' | b'*' | b'.' | b'#' | b'?' | b'-' | b'_' | b' '
            )
        })
        || value.starts_with("•".as_bytes()) && value.chunks(3).all(|c| c == "•".as_bytes())
}

/// `your-api-key`, `<YOUR_TOKEN>`, `insert_token_here`, `sk-...`: words that
/// ask the reader to put a value there.
fn is_template_placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    let lower = lower.as_slice();
    let separated = |prefix: &[u8]| {
        lower.starts_with(prefix)
            && matches!(lower.get(prefix.len()), Some(b'-' | b'_' | b' ' | b'.'))
    };
    separated(b"your")
        || separated(b"insert")
        || separated(b"enter")
        || separated(b"replace")
        || lower.ends_with(b"_here")
        || lower.ends_with(b"-here")
        || lower.ends_with(b"...")
        || lower.ends_with("…".as_bytes())
}

/// References to a secret held elsewhere: environment variables, templates,
/// angle-bracket placeholders, code that reads the environment, secret
/// manager references.
fn is_reference(value: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"${",
        b"$(",
        b"{{",
        b"{%",
        b"%(",
        b"%{",
        b"#{",
        b"<%",
        b"process.env",
        b"import.meta.env",
        b"Deno.env",
        b"os.environ",
        b"os.getenv",
        b"getenv(",
        b"System.getenv",
        b"Environment.GetEnvironmentVariable",
        b"env.",
        b"env(",
        b"ENV[",
        b"ENV.fetch",
        b"$env:",
        b"secrets.",
        b"vault:",
        b"op://",
        b"ref+",
        b"arn:aws:secretsmanager:",
        b"arn:aws:ssm:",
        b"projects/",
    ];
    if PREFIXES.iter().any(|p| value.starts_with(p)) {
        return true;
    }
    // `$DB_PASSWORD`: by convention environment variables are upper case, so
    // a password such as `$ecret99` is still treated as a value.
    if let Some(name) = value.strip_prefix(b"$")
        && !name.is_empty()
        && !name[0].is_ascii_digit()
        && name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
    {
        return true;
    }
    // `%DB_PASSWORD%` in Windows scripts.
    if value.len() > 2
        && value.starts_with(b"%")
        && value.ends_with(b"%")
        && value[1..value.len() - 1]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return true;
    }
    // `<your-token-here>`
    value.starts_with(b"<") && value.ends_with(b">")
}

/// File paths: `./key.pem`, `~/.ssh/id_rsa`, `C:\keys\x`, `file:...`, and
/// absolute paths whose segments are lower-case words (`/run/secrets/db`).
/// A base64 secret may start with `/` too, but it mixes cases.
/// `~`, `~/...`, `~user` or `~user/...`: a home directory. A value that
/// only starts with `~` (`~J*gT3ouE0g+`) is not one.
fn is_home_path(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"~") else {
        return false;
    };
    let user = rest
        .iter()
        .take_while(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
        .count();
    matches!(rest.get(user), None | Some(b'/'))
}

fn is_path(s: &[u8]) -> bool {
    if s.starts_with(b"./")
        || s.starts_with(b"../")
        || is_home_path(s)
        || s.starts_with(b"file:")
        || (s.len() >= 3
            && s[0].is_ascii_alphabetic()
            && s[1] == b':'
            && matches!(s[2], b'\\' | b'/'))
    {
        return true;
    }
    s.starts_with(b"/")
        && s[1..].iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'/' | b'.' | b'_' | b'-')
        })
}

fn is_json_number(value: &[u8]) -> bool {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    !digits.is_empty()
        && digits[0].is_ascii_digit()
        && digits
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// Whether the value follows `":` (after optional spaces), that is, the key
/// was a quoted JSON key.
fn after_json_key(hit: &Hit<'_>) -> bool {
    let before = hit.hay.get(..hit.start).unwrap_or_default();
    let mut rest = before;
    while let Some((&last, init)) = rest.split_last() {
        if last == b' ' || last == b'\t' {
            rest = init;
        } else {
            break;
        }
    }
    let Some(rest) = rest.strip_suffix(b":") else {
        return false;
    };
    let trimmed = rest
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |i| &rest[..=i]);
    trimmed.ends_with(b"\"")
}

// ---------------------------------------------------------------------------
// Entropy.

/// Shannon entropy of the bytes of `value`, in bits per byte: 0 for `aaaa`,
/// 2 for `abcd`, about 5.95 for a long random base62 string. Only the first
/// 256 bytes count, so the cost per match is bounded.
pub(crate) fn shannon_entropy(value: &[u8]) -> f64 {
    let value = &value[..value.len().min(256)];
    if value.is_empty() {
        return 0.0;
    }
    let mut counts = [0u16; 256];
    for &b in value {
        counts[usize::from(b)] += 1;
    }
    let len = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}
