//! Personal data in the sinks: which operator each sink applies to each
//! kind of personal datum, under the tenant's masking key.
//!
//! Secrets are always replaced by their placeholder, in every sink: a
//! secret is never worth keeping in any form. Personal data is found by the
//! detectors of `sandbar-mask` and replaced by the operator the policy
//! names for the sink and the kind. The default for every sink is
//! `pseudonymize`: a realistic value of the same kind, the same for the same
//! value under the same key, so that a run stays readable and two events
//! about one customer still name the same (pseudonymous) customer.
//!
//! The pseudonyms are the same in every sink that pseudonymizes under one
//! key, and the same as what an agent is shown when Sandbar masks an
//! upstream's answer ([`Sink::Agent`]): that is what lets a cassette replay
//! exactly what the agent saw.

use std::fmt;
use std::str::FromStr;

use sandbar_mask::{Detector, MaskKey, Masker, Operator, PersonalKind};

/// Where redacted text goes. Every writer of Sandbar names its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sink {
    /// The event store (SQLite rows).
    Store,
    /// Cassette files.
    Cassette,
    /// Tracing logs (stderr or a log file).
    Logs,
    /// Exports and what `runs`, `demo` and `replay` print.
    Export,
    /// Reports (divergence reports, diffs, summaries).
    Report,
    /// What an agent is shown of an upstream's answer.
    Agent,
}

impl Sink {
    /// Every sink, in declaration order.
    pub const ALL: &'static [Sink] = &[
        Sink::Store,
        Sink::Cassette,
        Sink::Logs,
        Sink::Export,
        Sink::Report,
        Sink::Agent,
    ];

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Store => "store",
            Sink::Cassette => "cassette",
            Sink::Logs => "logs",
            Sink::Export => "export",
            Sink::Report => "report",
            Sink::Agent => "agent",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sink {
    type Err = String;

    fn from_str(name: &str) -> Result<Sink, String> {
        Sink::ALL
            .iter()
            .copied()
            .find(|sink| sink.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Sink::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown sink `{name}`; sinks are {}", names.join(", "))
            })
    }
}

/// The operators for personal data: one for every kind, overridden per
/// kind, per sink, and per kind within a sink (the most specific wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyPolicy {
    /// For every kind in every sink, unless something more specific says
    /// otherwise. `pseudonymize` by default.
    pub personal: Operator,
    /// Per kind, in every sink.
    pub kinds: Vec<(PersonalKind, Operator)>,
    /// Per sink.
    pub sinks: Vec<(Sink, SinkPolicy)>,
}

/// What one sink does differently from the policy's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkPolicy {
    /// For every kind in this sink.
    pub personal: Option<Operator>,
    /// Per kind in this sink.
    pub kinds: Vec<(PersonalKind, Operator)>,
}

impl Default for PrivacyPolicy {
    fn default() -> Self {
        PrivacyPolicy {
            personal: Operator::Pseudonymize,
            kinds: Vec::new(),
            sinks: Vec::new(),
        }
    }
}

impl PrivacyPolicy {
    /// The operator `sink` applies to `kind`.
    pub fn operator(&self, sink: Sink, kind: PersonalKind) -> &Operator {
        let in_sink = self.sinks.iter().find(|(s, _)| *s == sink).map(|(_, p)| p);
        if let Some(op) = in_sink.and_then(|p| find(&p.kinds, kind)) {
            return op;
        }
        if let Some(op) = in_sink.and_then(|p| p.personal.as_ref()) {
            return op;
        }
        find(&self.kinds, kind).unwrap_or(&self.personal)
    }
}

fn find(list: &[(PersonalKind, Operator)], kind: PersonalKind) -> Option<&Operator> {
    list.iter().find(|(k, _)| *k == kind).map(|(_, op)| op)
}

/// A policy compiled under a key: one masker per sink.
#[derive(Clone)]
pub struct Privacy {
    key: MaskKey,
    policy: PrivacyPolicy,
    maskers: Vec<Masker>,
}

impl Privacy {
    /// Compiles `policy` under `key` (the tenant's masking key).
    pub fn new(key: MaskKey, policy: PrivacyPolicy) -> Privacy {
        // Every masker knows every mask character of the policy: a text
        // masked for one sink may be read again by another's masker.
        let mask_chars: Vec<char> = Sink::ALL
            .iter()
            .flat_map(|&sink| PersonalKind::ALL.iter().map(move |&kind| (sink, kind)))
            .map(|(sink, kind)| policy.operator(sink, kind))
            .chain(std::iter::once(&policy.personal))
            .filter_map(|op| match op {
                Operator::Mask { char, .. } => Some(*char),
                _ => None,
            })
            .collect();
        let detector = Detector::new();
        let detector = detector.with_mask_chars(&[detector.mask_chars(), &mask_chars].concat());
        let maskers = Sink::ALL
            .iter()
            .map(|&sink| {
                PersonalKind::ALL.iter().fold(
                    Masker::new(detector.clone(), key.clone(), policy.personal.clone()),
                    |masker, &kind| masker.with_operator(kind, policy.operator(sink, kind).clone()),
                )
            })
            .collect();
        Privacy {
            key,
            policy,
            maskers,
        }
    }

    /// The masker `sink` applies.
    pub fn masker(&self, sink: Sink) -> &Masker {
        &self.maskers[sink.index()]
    }

    /// The key everything is masked under.
    pub fn key(&self) -> &MaskKey {
        &self.key
    }

    /// The policy this was compiled from.
    pub fn policy(&self) -> &PrivacyPolicy {
        &self.policy
    }
}

impl fmt::Debug for Privacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privacy")
            .field("key", &self.key)
            .field("policy", &self.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one sink's mask left is not masked again by another sink's
    /// masker: an agent shown `######name:` (the mask of `Streetname:`)
    /// that repeats it in a call does not get `SSN`, which the first
    /// masking left alone, pseudonymized in the store.
    #[test]
    fn every_sink_knows_every_mask_character_of_the_policy() {
        let policy = PrivacyPolicy {
            sinks: vec![(
                Sink::Agent,
                SinkPolicy {
                    personal: Some(Operator::Mask { keep: 4, char: '#' }),
                    kinds: Vec::new(),
                },
            )],
            ..PrivacyPolicy::default()
        };
        let privacy = Privacy::new(MaskKey::from_bytes([7; 32]), policy);
        let shown = privacy
            .masker(Sink::Agent)
            .mask("Sincerely,\nStreetname: SSN DE89");
        assert_eq!(shown, "Sincerely,\n######name: SSN DE89");
        for &sink in Sink::ALL {
            assert_eq!(privacy.masker(sink).mask(&shown), shown, "{sink:?}");
        }
    }
}
