//! A stand-in for `sandbar_redact`'s public API while that crate is being
//! written: the same names and signatures, with exact-match redaction only.
//! It is deleted as soon as the real crate compiles.

use std::fmt;
use std::sync::{Arc, RwLock};

/// An error building a redactor.
#[derive(Debug)]
pub struct RedactError(String);

impl fmt::Display for RedactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedactError {}

/// Replaces registered secret values with a marker naming the secret.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    pub fn builder() -> RedactorBuilder {
        RedactorBuilder::default()
    }

    fn redact(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        out
    }
}

#[derive(Default)]
pub struct RedactorBuilder {
    secrets: Vec<(String, String)>,
}

impl RedactorBuilder {
    pub fn secret(mut self, name: &str, value: &str) -> Result<Self, RedactError> {
        if value.is_empty() {
            return Err(RedactError(format!("the secret {name} is empty")));
        }
        self.secrets.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    pub fn build(self) -> Redactor {
        Redactor {
            secrets: self.secrets,
        }
    }
}

/// A redactor shared by every sink.
#[derive(Clone)]
pub struct SharedRedactor {
    inner: Arc<RwLock<Redactor>>,
}

impl SharedRedactor {
    pub fn new(initial: Redactor) -> Self {
        SharedRedactor {
            inner: Arc::new(RwLock::new(initial)),
        }
    }

    pub fn redact_str(&self, s: &str) -> String {
        let redactor = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        redactor.redact(s)
    }

    pub fn redact_json(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.redact_str(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| self.redact_json(i)),
            serde_json::Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut value) in entries {
                    self.redact_json(&mut value);
                    map.insert(self.redact_str(&key), value);
                }
            }
            _ => {}
        }
    }
}
