//! The records the store keeps: runs and their events, the audit trail,
//! sealed secrets, access tokens and approvals, the enums stored as
//! lowercase text, and the timestamp formats used on disk and in JSON output.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// A run about to start: what `Store::create_run` writes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub tenant: String,
    pub scenario_name: String,
    pub scenario_hash: String,
    pub seed: u64,
    pub clock_start: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// `"stdio"` or `"http"`.
    pub transport: String,
    /// A free-form JSON object (`null` is stored as `{}`).
    pub labels: serde_json::Value,
}

/// A stored run, with its outcome and how many events it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub tenant: String,
    pub scenario_name: String,
    pub scenario_hash: String,
    pub seed: u64,
    #[serde(serialize_with = "serialize_millis")]
    pub clock_start: DateTime<Utc>,
    #[serde(serialize_with = "serialize_millis")]
    pub started_at: DateTime<Utc>,
    pub transport: String,
    pub labels: serde_json::Value,
    pub status: RunStatus,
    #[serde(serialize_with = "serialize_millis_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    pub event_count: u64,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still being written by a live store instance.
    Active,
    Completed,
    /// Its writer stopped (a crash, a kill, or a close) before the run ended.
    Interrupted,
    Failed,
}

/// What kind of thing an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Request,
    Response,
    Notification,
    Fault,
    Error,
    Lifecycle,
    /// A replayed run left its recording: a call the cassette cannot answer.
    Divergence,
    /// A canary appeared where it must not: a tool's arguments, a request
    /// to an upstream, a prompt to the model.
    Leak,
    /// An access decision on a call: the token's scope, the scenario's
    /// policy, or a person's approval allowed or refused it.
    Policy,
}

/// Which way an event travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToServer,
    ToClient,
    Internal,
}

/// An event to append. `seq` is assigned by the caller, one counter per run.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub run_id: String,
    pub tenant: String,
    pub seq: u64,
    pub kind: EventKind,
    pub direction: Direction,
    pub method: Option<String>,
    pub request_id: Option<String>,
    pub virtual_time: DateTime<Utc>,
    pub wall_time: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// A stored event, as redacted when it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub run_id: String,
    pub tenant: String,
    pub seq: u64,
    pub kind: EventKind,
    pub direction: Direction,
    pub method: Option<String>,
    pub request_id: Option<String>,
    #[serde(serialize_with = "serialize_millis")]
    pub virtual_time: DateTime<Utc>,
    #[serde(serialize_with = "serialize_millis")]
    pub wall_time: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// The text of an enum value that is not one of its variants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what} (expected one of: {})", .expected.join(", "))]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static [&'static str],
}

/// Implements `as_str`, `Display` and `FromStr` over one table of
/// variant/text pairs so that the three can never disagree.
macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident => $text:literal),+ $(,)?) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The text stored in the database and printed to users.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

text_enum!(RunStatus, "run status",
    Active => "active",
    Completed => "completed",
    Interrupted => "interrupted",
    Failed => "failed",
);

text_enum!(EventKind, "event kind",
    Request => "request",
    Response => "response",
    Notification => "notification",
    Fault => "fault",
    Error => "error",
    Lifecycle => "lifecycle",
    Divergence => "divergence",
    Leak => "leak",
    Policy => "policy",
);

text_enum!(Direction, "event direction",
    ToServer => "to_server",
    ToClient => "to_client",
    Internal => "internal",
);

text_enum!(ApprovalStatus, "approval status",
    Pending => "pending",
    Approved => "approved",
    Denied => "denied",
    Expired => "expired",
);

/// Serializes a time as RFC 3339 in UTC with millisecond precision and `Z`,
/// the form promised by `--json` output.
fn serialize_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn serialize_millis_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize_millis(t, s),
        None => s.serialize_none(),
    }
}

/// Writes a time in the on-disk form: RFC 3339 in UTC with exactly nine
/// fractional digits and `Z`.
///
/// The width is fixed so that text order is time order, which lets SQL sort
/// and compare the column as plain text; nanoseconds are kept so that a time
/// read back equals the time written. This is hand-rolled rather than going
/// through `to_rfc3339_opts` because it runs twice per event on the writer's
/// hot path and can reuse one buffer instead of allocating.
pub(crate) fn write_db_time(buf: &mut String, t: &DateTime<Utc>) {
    // chrono encodes a leap second as a nanosecond count past one billion.
    let (second, nanos) = match t.nanosecond() {
        n if n >= 1_000_000_000 => (60, n - 1_000_000_000),
        n => (t.second(), n),
    };
    let year = t.year();
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => {
            // Digits written in place: `write!` costs several times more,
            // and this runs twice for every event.
            let mut text = *b"0000-00-00T00:00:00.000000000Z";
            for (range, value) in [
                (0..4, year),
                (5..7, t.month()),
                (8..10, t.day()),
                (11..13, t.hour()),
                (14..16, t.minute()),
                (17..19, second),
                (20..29, nanos),
            ] {
                let mut value = value;
                for byte in text[range].iter_mut().rev() {
                    *byte = b'0' + (value % 10) as u8;
                    value /= 10;
                }
            }
            // Only ASCII digits and separators were written.
            buf.push_str(std::str::from_utf8(&text).unwrap_or_default());
        }
        // Years outside 0000–9999 need a sign in RFC 3339; they do not sort
        // as text, but they round-trip, which is all such a value can expect.
        _ => buf.push_str(&t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
    }
}

/// The on-disk form of a time, as a new string.
pub(crate) fn db_time(t: &DateTime<Utc>) -> String {
    let mut s = String::with_capacity(30);
    write_db_time(&mut s, t);
    s
}

/// Parses a time written by `write_db_time`.
pub(crate) fn parse_db_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn enums_round_trip_through_their_text() {
        for s in RunStatus::ALL {
            assert_eq!(s.to_string().parse::<RunStatus>(), Ok(*s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for k in EventKind::ALL {
            assert_eq!(k.to_string().parse::<EventKind>(), Ok(*k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        for d in Direction::ALL {
            assert_eq!(d.to_string().parse::<Direction>(), Ok(*d));
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::json!(d.as_str())
            );
        }
        for a in ApprovalStatus::ALL {
            assert_eq!(a.to_string().parse::<ApprovalStatus>(), Ok(*a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::json!(a.as_str())
            );
        }
    }

    #[test]
    fn all_lists_variants_in_discriminant_order() {
        // The writer indexes per-variant tables with `variant as usize`.
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        for (i, d) in Direction::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }

    #[test]
    fn enum_parse_errors_name_the_choices() {
        let err = "Done".parse::<RunStatus>().unwrap_err().to_string();
        assert_eq!(
            err,
            "\"Done\" is not a valid run status (expected one of: active, completed, interrupted, failed)"
        );
        assert!("ToServer".parse::<Direction>().is_err());
    }

    #[test]
    fn db_times_are_fixed_width_and_round_trip() {
        let check = |t: DateTime<Utc>, expect: &str| {
            let s = db_time(&t);
            assert_eq!(s, expect);
            assert_eq!(parse_db_time(&s), Some(t));
        };
        check(
            Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap(),
            "2026-01-15T09:00:00.000000000Z",
        );
        check(
            Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap(),
            "2023-11-14T22:13:20.123456789Z",
        );
        check(
            Utc.with_ymd_and_hms(1, 2, 3, 4, 5, 6).unwrap(),
            "0001-02-03T04:05:06.000000000Z",
        );
    }

    proptest::proptest! {
        /// The digits written by hand are chrono's RFC 3339 with nine
        /// fractional digits, leap seconds included, for every time the
        /// fixed-width form covers, and they read back as the same time.
        #[test]
        fn db_times_agree_with_chrono(
            secs in -62_167_219_200i64..253_402_300_800i64,
            nanos in 0u32..1_000_000_000u32,
            leap in proptest::bool::weighted(0.2),
        ) {
            // chrono takes a leap second only at a minute's last second.
            let (secs, nanos) = if leap {
                (secs - secs.rem_euclid(60) + 59, nanos + 1_000_000_000)
            } else {
                (secs, nanos)
            };
            let t = Utc.timestamp_opt(secs, nanos).single();
            proptest::prop_assert!(t.is_some(), "{secs} s {nanos} ns");
            let t = t.unwrap();
            let s = db_time(&t);
            proptest::prop_assert_eq!(&s, &t.to_rfc3339_opts(SecondsFormat::Nanos, true));
            proptest::prop_assert_eq!(parse_db_time(&s), Some(t));
        }
    }

    #[test]
    fn event_records_serialize_in_field_order_with_millisecond_times() {
        let t = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let record = EventRecord {
            run_id: "r1".into(),
            tenant: "default".into(),
            seq: 3,
            kind: EventKind::Request,
            direction: Direction::ToServer,
            method: Some("tools/call".into()),
            request_id: None,
            virtual_time: t,
            wall_time: t,
            payload: serde_json::json!({"a": 1}),
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"run_id":"r1","tenant":"default","seq":3,"kind":"request","direction":"to_server","method":"tools/call","request_id":null,"virtual_time":"2023-11-14T22:13:20.123Z","wall_time":"2023-11-14T22:13:20.123Z","payload":{"a":1}}"#
        );
    }
}

/// An entry for the audit trail: who did what, and the details (redacted
/// before they are written, like everything else).
#[derive(Clone, Debug, PartialEq)]
pub struct NewAudit {
    pub tenant: String,
    /// Who: a user name, a token's id, `cli:USER`.
    pub actor: String,
    /// What: `unmask`, `approve`, `token.issue`...
    pub action: String,
    pub detail: serde_json::Value,
}

/// A written audit entry, with its place in the tenant's hash chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tenant: String,
    /// 1 for the tenant's first entry, then one more each.
    pub seq: u64,
    #[serde(serialize_with = "serialize_millis")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
    /// The previous entry's hash (64 zeros before the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of `prev_hash` and this entry's content.
    pub hash: String,
}

impl AuditRecord {
    /// The hash this entry must have: SHA-256 over the previous hash and
    /// the entry's fields, each length-prefixed.
    pub fn expected_hash(&self) -> String {
        audit_hash(
            &self.prev_hash,
            &self.tenant,
            self.seq,
            &db_time(&self.at),
            &self.actor,
            &self.action,
            &self.detail.to_string(),
        )
    }
}

/// The hash of the genesis entry's predecessor.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn audit_hash(
    prev: &str,
    tenant: &str,
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for field in [prev, tenant, &seq.to_string(), at, actor, action, detail] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A vault secret as stored: sealed, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub tenant: String,
    pub name: String,
    /// The public id of the key that sealed it.
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// An access token as stored: the secret part only as a hash.
///
/// Tokens are configuration, not events: like sealed secrets they bypass
/// the redactor. The id and tenant are checked like ids (an id the redactor
/// would alter is refused), and the hash must be a SHA-256 in lowercase hex,
/// so the bearer value itself cannot be stored by mistake; the other fields
/// are written as given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredToken {
    /// The public id, e.g. `tok_3f9a…`.
    pub id: String,
    /// The tenant the token acts for; it must exist.
    pub tenant: String,
    /// A free label; may be empty.
    pub name: String,
    /// The lowercase hex SHA-256 of the bearer value; unique.
    pub hash: String,
    /// The scenario the token is bound to, if any.
    pub scenario: Option<String>,
    /// The run the token is bound to, if any.
    pub run: Option<String>,
    /// What the token may do; opaque to the store.
    pub scopes: serde_json::Value,
    /// The most calls the token may make; `None` for no limit.
    pub budget: Option<u64>,
    /// Calls counted so far by `Store::spend_token`.
    pub calls_used: u64,
    #[serde(serialize_with = "serialize_millis")]
    pub created_at: DateTime<Utc>,
    /// From this time on the token is expired; `None` for never.
    #[serde(serialize_with = "serialize_millis_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_millis_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What spending one call of a token found. Only `Spent` counted the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// The call was counted; `calls_used` is the new count.
    Spent {
        calls_used: u64,
    },
    /// No token has that id.
    Unknown,
    Revoked,
    /// Its `expires_at` is at or before the time given.
    Expired,
    /// It has used its whole budget.
    OverBudget,
}

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a person's decision.
    Pending,
    Approved,
    Denied,
    /// Nobody decided in time.
    Expired,
}

/// A call waiting for a person's decision: what `Store::request_approval`
/// writes. The text fields pass the redactor before they are written; the
/// ids are checked like ids and the hash must be a SHA-256 in lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    pub id: String,
    pub tenant: String,
    pub run_id: String,
    /// The tool called.
    pub tool: String,
    /// The lowercase hex SHA-256 of the call's canonical arguments.
    pub args_hash: String,
    /// The call's arguments; redacted before they are written.
    pub arguments: serde_json::Value,
    /// Which policy rule asked for approval.
    pub rule: String,
    /// What to show the person deciding; redacted before it is written.
    pub message: String,
    /// Who made the call: a token id, or `open`.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// From this time on the approval can no longer be decided.
    pub expires_at: DateTime<Utc>,
}

/// A stored approval, as redacted when it was written, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub tenant: String,
    pub run_id: String,
    pub tool: String,
    pub args_hash: String,
    pub arguments: serde_json::Value,
    pub rule: String,
    pub message: String,
    pub requested_by: String,
    #[serde(serialize_with = "serialize_millis")]
    pub requested_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_millis")]
    pub expires_at: DateTime<Utc>,
    pub status: ApprovalStatus,
    /// Who decided; `None` while pending, or when it expired.
    pub decided_by: Option<String>,
    /// The arguments hash the decider said they reviewed, as they gave it.
    pub decided_args_hash: Option<String>,
    /// When it left `pending`, by a decision or by expiring.
    #[serde(serialize_with = "serialize_millis_opt")]
    pub decided_at: Option<DateTime<Utc>>,
    /// Why, if the decider said.
    pub reason: Option<String>,
}

/// A person's decision on an approval. `by` and `reason` pass the redactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// Approve the call, or deny it.
    pub approve: bool,
    /// Who decided.
    pub by: String,
    /// The lowercase hex SHA-256 of the arguments the decider reviewed.
    pub args_hash: String,
    pub reason: Option<String>,
}

/// What `Store::decide_approval` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The decision was recorded; the approval now has this status.
    Recorded(ApprovalStatus),
    /// The tenant has no approval with that id.
    NotFound,
    /// Someone decided first; the decision found is kept.
    AlreadyDecided(ApprovalStatus),
    /// The approval expired before this decision; nothing was recorded.
    Expired,
}

/// Whether `s` is a SHA-256 written as lowercase hex.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
