//! What an agent is shown of an upstream's answers: masked, and mapped back.
//!
//! An upstream in `live` or `record` mode answers with real data. Before the
//! agent sees an answer (or a notification, or a question the upstream asks
//! it), Sandbar redacts its secrets and replaces its personal data by the
//! policy of the `agent` sink — pseudonyms by default, the same ones the
//! store and the cassette hold, so a replay shows the agent exactly what it
//! was shown live.
//!
//! Each run keeps the pseudonyms it handed out, with the values they stand
//! for. When the agent passes one back in a later forwarded call (to look a
//! customer up by the email it was shown), Sandbar puts the real value back
//! before the call leaves for the upstream, and masks the answer again. The
//! map lives in the run's memory only: it is never written to any sink.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

use sandbar_redact::Sink;

use crate::call::Outcome;
use crate::run::Run;

/// A run's pseudonyms and the values they stand for.
#[derive(Default)]
pub(crate) struct Pseudonyms {
    real: HashMap<String, String>,
    /// The pseudonyms in the order learned, and an automaton over them
    /// (built when a restore needs it and the map has grown since).
    order: Vec<String>,
    matcher: Option<(usize, AhoCorasick)>,
}

impl std::fmt::Debug for Pseudonyms {
    // Never the values: the map holds the real personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pseudonyms({} held)", self.order.len())
    }
}

impl Pseudonyms {
    fn learn(&mut self, pseudonym: &str, real: &str) {
        if !self.real.contains_key(pseudonym) {
            self.real.insert(pseudonym.to_owned(), real.to_owned());
            self.order.push(pseudonym.to_owned());
        }
    }

    /// Replaces every pseudonym in the strings of `value` by the value it
    /// stands for; returns how many were replaced.
    fn restore(&mut self, value: &mut Value) -> usize {
        if self.order.is_empty() {
            return 0;
        }
        if self
            .matcher
            .as_ref()
            .is_none_or(|(n, _)| *n != self.order.len())
        {
            // Leftmost-longest: a pseudonym that contains another wins.
            let Ok(automaton) = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.order)
            else {
                return 0;
            };
            self.matcher = Some((self.order.len(), automaton));
        }
        let Some((_, matcher)) = &self.matcher else {
            return 0;
        };
        let mut restored = 0;
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) => {
                    let mut out = String::new();
                    let mut last = 0;
                    for m in matcher.find_iter(text.as_str()) {
                        // Whole values only: `Mara` stands for someone,
                        // the `Mara` in `Maradona` does not.
                        let bytes = text.as_bytes();
                        let glued = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
                        if glued(m.start().checked_sub(1).and_then(|i| bytes.get(i)))
                            || glued(bytes.get(m.end()))
                        {
                            continue;
                        }
                        out.push_str(&text[last..m.start()]);
                        out.push_str(&self.real[&self.order[m.pattern().as_usize()]]);
                        last = m.end();
                        restored += 1;
                    }
                    if last > 0 {
                        out.push_str(&text[last..]);
                        *text = out;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => stack.extend(map.values_mut()),
                _ => {}
            }
        }
        restored
    }
}

/// Masks `value` for the agent, learning the pseudonyms it hands out.
pub(crate) fn mask_value(run: &Run, value: &mut Value) {
    let redactor = run.engine().redactor.for_sink(Sink::Agent).snapshot();
    let mut learned: Vec<(String, String)> = Vec::new();
    redactor.redact_json_seen(value, &mut |pseudonym, real| {
        learned.push((pseudonym.to_owned(), real.to_owned()));
    });
    if !learned.is_empty() {
        let mut map = run.pseudonyms();
        for (pseudonym, real) in learned {
            map.learn(&pseudonym, &real);
        }
    }
}

/// Masks an upstream's answer for the agent.
pub(crate) fn mask_outcome(run: &Run, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Result(mut value) => {
            mask_value(run, &mut value);
            Outcome::Result(value)
        }
        Outcome::Error(mut error) => {
            let redactor = run.engine().redactor.for_sink(Sink::Agent).snapshot();
            error.message = redactor.redact_str(&error.message).into_owned();
            if let Some(data) = &mut error.data {
                mask_value(run, data);
            }
            Outcome::Error(error)
        }
    }
}

/// Redacts credentials (known secrets and credential rules, not personal
/// data) from what an upstream whose tool does not mask sends the agent:
/// the agent never holds a real secret, masked or not.
pub(crate) fn redact_secrets(run: &Run, value: &mut Value) {
    let redactor = run.engine().redactor.current();
    sandbar_redact::SinkRedactor::secrets_only(redactor, Sink::Agent).redact_json(value);
}

/// [`redact_secrets`] over an upstream's answer.
pub(crate) fn redact_outcome_secrets(run: &Run, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Result(mut value) => {
            redact_secrets(run, &mut value);
            Outcome::Result(value)
        }
        Outcome::Error(mut error) => {
            let redactor = run.engine().redactor.current();
            error.message = redactor.redact_str(&error.message).into_owned();
            if let Some(data) = &mut error.data {
                redact_secrets(run, data);
            }
            Outcome::Error(error)
        }
    }
}

/// Puts back the real values of the pseudonyms `value` holds, for the
/// upstream; returns how many.
pub(crate) fn restore(run: &Run, value: &mut Value) -> usize {
    run.pseudonyms().restore(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Pseudonyms;

    #[test]
    fn restores_every_known_pseudonym_and_nothing_else() {
        let mut map = Pseudonyms::default();
        map.learn("k.lind@example.net", "ada@real.test");
        map.learn("Mara Kowalski", "Ada Lovelace");
        let mut value = json!({
            "to": "k.lind@example.net",
            "body": ["Dear Mara Kowalski, k.lind@example.net", 3],
            "other": "nobody@else.test",
        });
        assert_eq!(map.restore(&mut value), 3);
        assert_eq!(
            value,
            json!({
                "to": "ada@real.test",
                "body": ["Dear Ada Lovelace, ada@real.test", 3],
                "other": "nobody@else.test",
            })
        );
    }

    #[test]
    fn the_longest_pseudonym_wins_and_the_automaton_follows_new_ones() {
        let mut map = Pseudonyms::default();
        map.learn("Mara", "Ada");
        let mut value = json!("Mara Kowalski");
        assert_eq!(map.restore(&mut value), 1);
        assert_eq!(value, json!("Ada Kowalski"));
        map.learn("Mara Kowalski", "Ada Lovelace");
        let mut value = json!("Mara Kowalski and Mara");
        assert_eq!(map.restore(&mut value), 2);
        assert_eq!(value, json!("Ada Lovelace and Ada"));
    }

    #[test]
    fn only_whole_pseudonyms_are_restored() {
        let mut map = Pseudonyms::default();
        map.learn("Mara", "Ada");
        let mut value = json!("Maradona met Mara, not 1Mara");
        assert_eq!(map.restore(&mut value), 1);
        assert_eq!(value, json!("Maradona met Ada, not 1Mara"));
    }

    #[test]
    fn a_pseudonym_learned_twice_keeps_its_first_value() {
        let mut map = Pseudonyms::default();
        map.learn("p", "first");
        map.learn("p", "second");
        let mut value = json!("p");
        map.restore(&mut value);
        assert_eq!(value, json!("first"));
    }
}
