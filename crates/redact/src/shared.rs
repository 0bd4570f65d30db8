//! `SharedRedactor`: the hot-swappable handle that all sinks of a process
//! share, so that a secret discovered late (a scenario loaded, a vault secret
//! read) is redacted by every sink from then on.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::Value;

use crate::error::RedactError;
use crate::redactor::Redactor;

/// A shared, swappable [`Redactor`]. Cloning gives the same handle.
#[derive(Clone)]
pub struct SharedRedactor {
    current: Arc<RwLock<Arc<Redactor>>>,
    /// Serialises rebuilds, so that two concurrent `add_secrets` calls cannot
    /// each start from the same redactor and drop the other's secrets. It is
    /// separate from `current` so that readers never wait for a rebuild.
    rebuild: Arc<Mutex<()>>,
}

impl SharedRedactor {
    /// A handle that starts with `initial`.
    pub fn new(initial: Redactor) -> Self {
        SharedRedactor {
            current: Arc::new(RwLock::new(Arc::new(initial))),
            rebuild: Arc::new(Mutex::new(())),
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

    /// Redacts `input` with the current redactor.
    pub fn redact_str(&self, input: &str) -> String {
        self.current().redact_str(input).into_owned()
    }

    /// Redacts every string of `value` in place with the current redactor.
    pub fn redact_json(&self, value: &mut Value) {
        self.current().redact_json(value);
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
