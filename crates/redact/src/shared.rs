//! `SharedRedactor`: the hot-swappable handle that all sinks of a process
//! share, so that a secret discovered late (a scenario loaded, a vault secret
//! read) is redacted by every sink from then on; and `SinkRedactor`, what
//! one sink applies at one moment: the secrets and rules, then the personal
//! data policy for that sink.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::Value;

use crate::error::RedactError;
use crate::privacy::{Privacy, Sink};
use crate::redactor::Redactor;

/// A shared, swappable [`Redactor`] and personal-data policy ([`Privacy`]),
/// seen from one [`Sink`]. Cloning gives the same handle; [`for_sink`]
/// gives the same handle seen from another sink.
///
/// [`for_sink`]: SharedRedactor::for_sink
#[derive(Clone)]
pub struct SharedRedactor {
    current: Arc<RwLock<Arc<Redactor>>>,
    privacy: Arc<RwLock<Option<Arc<Privacy>>>>,
    /// Serialises rebuilds, so that two concurrent `add_secrets` calls cannot
    /// each start from the same redactor and drop the other's secrets. It is
    /// separate from `current` so that readers never wait for a rebuild.
    rebuild: Arc<Mutex<()>>,
    sink: Sink,
}

impl SharedRedactor {
    /// A handle that starts with `initial` and no personal-data policy,
    /// seen from the store.
    pub fn new(initial: Redactor) -> Self {
        SharedRedactor {
            current: Arc::new(RwLock::new(Arc::new(initial))),
            privacy: Arc::new(RwLock::new(None)),
            rebuild: Arc::new(Mutex::new(())),
            sink: Sink::Store,
        }
    }

    /// The same handle (same secrets, same policy, changes seen by both),
    /// redacting for `sink`.
    pub fn for_sink(&self, sink: Sink) -> SharedRedactor {
        SharedRedactor {
            sink,
            ..self.clone()
        }
    }

    /// The sink this handle redacts for.
    pub fn sink(&self) -> Sink {
        self.sink
    }

    /// Installs the personal-data policy every handle applies from now on
    /// (`None`: secrets only).
    pub fn set_privacy(&self, privacy: Option<Privacy>) {
        *self.privacy.write().unwrap_or_else(PoisonError::into_inner) = privacy.map(Arc::new);
    }

    /// The personal-data policy in force, if any.
    pub fn privacy(&self) -> Option<Arc<Privacy>> {
        self.privacy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What this handle's sink applies now: fixed, for a writer that must
    /// redact many pieces alike.
    pub fn snapshot(&self) -> SinkRedactor {
        SinkRedactor {
            secrets: self.current(),
            privacy: self.privacy(),
            sink: self.sink,
        }
    }

    /// The redactor in force now. The read lock is held only to clone an
    /// `Arc`, never while redacting.
    pub fn current(&self) -> Arc<Redactor> {
        // A panic elsewhere cannot leave the `Arc` half-written, so a
        // poisoned lock still holds a valid redactor.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the redactor with the added secrets (keeping the existing
    /// ones and the patterns) and swaps it in. All or nothing: if any secret
    /// is rejected, nothing changes.
    pub fn add_secrets<'a>(
        &self,
        secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), RedactError> {
        let _rebuilding = self.rebuild.lock().unwrap_or_else(PoisonError::into_inner);
        let mut builder = self.current().to_builder();
        for (name, value) in secrets {
            builder = builder.secret(name, value)?;
        }
        let rebuilt = Arc::new(builder.build());
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = rebuilt;
        Ok(())
    }

    /// Redacts `input` for this handle's sink: secrets, then personal data.
    pub fn redact_str(&self, input: &str) -> String {
        self.snapshot().redact_str(input).into_owned()
    }

    /// Redacts every string of `value` in place for this handle's sink.
    pub fn redact_json(&self, value: &mut Value) {
        self.snapshot().redact_json(value);
    }
}

/// The redaction one sink applies, fixed at one moment: the redactor's
/// secrets and rules, then the personal-data operators of the sink's policy.
#[derive(Clone)]
pub struct SinkRedactor {
    secrets: Arc<Redactor>,
    privacy: Option<Arc<Privacy>>,
    sink: Sink,
}

impl SinkRedactor {
    /// Secrets and rules only, no personal-data policy.
    pub fn secrets_only(redactor: Arc<Redactor>, sink: Sink) -> SinkRedactor {
        SinkRedactor {
            secrets: redactor,
            privacy: None,
            sink,
        }
    }

    /// The sink this redacts for.
    pub fn sink(&self) -> Sink {
        self.sink
    }

    /// Whether `other` applies exactly this: the same redactor, the same
    /// personal-data policy, the same sink. What one redacted stays valid
    /// for the other, so a result can be kept for as long as this holds.
    pub fn same_as(&self, other: &SinkRedactor) -> bool {
        self.sink == other.sink
            && Arc::ptr_eq(&self.secrets, &other.secrets)
            && match (&self.privacy, &other.privacy) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }

    /// The secrets-and-rules part.
    pub fn secrets(&self) -> &Redactor {
        &self.secrets
    }

    /// `input` with its secrets replaced by placeholders and its personal
    /// data by the sink's operators. Borrowed when nothing changed.
    pub fn redact_str<'a>(&self, input: &'a str) -> Cow<'a, str> {
        let Some(privacy) = &self.privacy else {
            return self.secrets.redact_str(input);
        };
        let masker = privacy.masker(self.sink);
        // One read of the text: the redactor's pass also finds the words
        // that give personal data its context, which the masker then uses
        // instead of a pass of its own.
        // Cue words are common (`name`, `call`, `user`): room for one in
        // about every forty bytes spares the buffer most of its growing.
        let mut cues = Vec::with_capacity((input.len() / 40).min(256));
        let redacted = self.secrets.redact_str_with_cues(input, &mut cues);
        let masked = masker.mask_cow_with_cues(&redacted, &cues);
        match masked {
            Cow::Borrowed(_) => redacted,
            Cow::Owned(masked) => Cow::Owned(masked),
        }
    }

    /// Every string of `value` redacted in place (object keys included for
    /// secrets; personal data is found in values, with their field names as
    /// context).
    pub fn redact_json(&self, value: &mut Value) {
        self.redact_json_seen(value, &mut |_, _| {});
    }

    /// [`SinkRedactor::redact_json`], calling `seen(replacement, original)`
    /// for every personal datum replaced by a value that stands for it alone
    /// (a pseudonym, a token, a hash): what lets a run map what an agent was
    /// shown back to the real value.
    pub fn redact_json_seen(&self, value: &mut Value, seen: &mut sandbar_mask::Seen<'_>) {
        match &self.privacy {
            None => self.secrets.redact_json(value),
            // One walk, and one read of each string for both: the masker
            // walks the document and hands each part to the redactor first.
            Some(privacy) => privacy.masker(self.sink).mask_json_in_place_with(
                value,
                seen,
                &mut SecretsFirst(&self.secrets),
            ),
        }
    }
}

/// The redactor's part of a JSON document's one walk: keys, numbers and
/// strings redacted for secrets, and the cue words of each string found in
/// the same read.
struct SecretsFirst<'r>(&'r Redactor);

impl sandbar_mask::JsonReader for SecretsFirst<'_> {
    fn keys(&mut self, map: &mut serde_json::Map<String, Value>) {
        self.0.redact_keys(map);
    }

    fn number(&mut self, value: &mut Value) {
        self.0.redact_number(value);
    }

    fn string(&mut self, text: &mut String, cues: &mut Vec<(usize, usize, usize)>) {
        if let Cow::Owned(redacted) = self.0.redact_str_with_cues(text, cues) {
            *text = redacted;
        }
    }
}

/// A bare redactor, as a cassette writer's: secrets and rules only.
impl From<Arc<Redactor>> for SinkRedactor {
    fn from(redactor: Arc<Redactor>) -> SinkRedactor {
        SinkRedactor::secrets_only(redactor, Sink::Cassette)
    }
}

impl From<Redactor> for SinkRedactor {
    fn from(redactor: Redactor) -> SinkRedactor {
        SinkRedactor::secrets_only(Arc::new(redactor), Sink::Cassette)
    }
}

impl std::fmt::Debug for SinkRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkRedactor")
            .field("sink", &self.sink)
            .field("secrets", &self.secrets.secret_count())
            .field("privacy", &self.privacy.is_some())
            .finish()
    }
}

impl Default for SharedRedactor {
    fn default() -> Self {
        SharedRedactor::new(Redactor::new())
    }
}

impl std::fmt::Debug for SharedRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedRedactor")
            .field(&*self.current())
            .finish()
    }
}
