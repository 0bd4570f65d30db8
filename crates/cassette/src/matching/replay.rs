//! The replayer: hands a cassette's recorded interactions out to the calls
//! of one run, and explains each call it cannot answer.
//!
//! Identical calls get their recorded answers in order: the n-th call that
//! matches gets the n-th interaction that matches. In strict order mode a
//! call must match the next interaction not yet used, in file order.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use super::{
    FieldDiff, MatchOptions, comparable_params, diff_with_rules, normalise, params_without_meta,
    similarity, subject,
};
use crate::json::{clone_bounded, compact};
use crate::matching::COMPARE_DEPTH;
use crate::model::{Cassette, Interaction, tool_of};

/// How many candidates a divergence report lists.
const CANDIDATES: usize = 3;

/// Replays a cassette to one run. Shared between the run's tasks: the
/// bookkeeping sits behind a mutex held only while a call is looked up.
pub struct Replayer {
    cassette: Arc<Cassette>,
    entries: Vec<Entry>,
    /// The indices of the entries with each key, in file order.
    by_key: HashMap<String, Vec<usize>>,
    options: MatchOptions,
    skip: HashSet<String>,
    state: Mutex<State>,
}

struct Entry {
    interaction: Arc<Interaction>,
    key: String,
}

struct State {
    consumed: Vec<bool>,
    steps: u64,
    /// Strict order: no interaction before this index is still due. Only
    /// the interaction at the cursor is consumed in strict order (calls of
    /// skipped methods consume only interactions the cursor passes over),
    /// so it only moves forward.
    cursor: usize,
}

/// A call the cassette has no answer for.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{report}")]
pub struct Miss {
    /// Why, and what was recorded instead.
    pub report: DivergenceReport,
}

/// Where a replayed run left its recording: the call received, why no
/// recorded interaction answers it, and the closest recorded ones.
#[derive(Debug, Clone, Serialize)]
pub struct DivergenceReport {
    /// The 1-based index of this call among the calls the replayer has seen.
    pub step: u64,
    /// The call's method.
    pub method: String,
    /// The tool called, for `tools/call`.
    pub tool: Option<String>,
    /// The params received (without `_meta`).
    pub received: Value,
    /// In plain words: "no recorded call matches", "recorded 2 times; this
    /// is call 3", "strict order: expected call #5 (tools/call search) next".
    pub reason: String,
    /// In strict order mode, the seq of the interaction expected next.
    pub expected: Option<u64>,
    /// Up to three recorded interactions closest to the call, best first:
    /// calls of the same method and tool, and others only if they share
    /// something with it (a score above 0).
    pub candidates: Vec<Candidate>,
    /// How many interactions the cassette holds.
    pub recorded: usize,
}

/// A recorded interaction close to a call that had no match.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Its seq in the cassette.
    pub seq: u64,
    /// Its method.
    pub method: String,
    /// Its tool, for `tools/call`.
    pub tool: Option<String>,
    /// Its params.
    pub params: Value,
    /// How alike it is to the call, from 0 to 1 (identical).
    pub score: f64,
    /// The fields of the params that differ, from the params' root
    /// (`arguments.order_id`); differences the match rules make irrelevant
    /// are left out.
    pub diffs: Vec<FieldDiff>,
}

impl Replayer {
    /// A replayer over `cassette`, matching calls as `options` says.
    pub fn new(cassette: Arc<Cassette>, options: MatchOptions) -> Replayer {
        let entries: Vec<Entry> = cassette
            .interactions
            .iter()
            .map(|interaction| Entry {
                key: options.call_key(&interaction.method, &interaction.params),
                interaction: Arc::new(interaction.clone()),
            })
            .collect();
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            by_key.entry(entry.key.clone()).or_default().push(index);
        }
        let state = State {
            consumed: vec![false; entries.len()],
            steps: 0,
            cursor: 0,
        };
        Replayer {
            cassette,
            entries,
            by_key,
            options,
            skip: HashSet::new(),
            state: Mutex::new(state),
        }
    }

    /// Methods that are not replayed from the cassette (`tools/list`,
    /// `ping`, `initialize`...): their recorded interactions take no part in
    /// strict ordering and are never reported unused. Calls of these methods
    /// that are still passed to [`Replayer::answer`] are matched in any order.
    pub fn skip_methods(mut self, methods: &[&str]) -> Self {
        self.skip
            .extend(methods.iter().map(|method| (*method).to_owned()));
        self
    }

    /// The cassette being replayed.
    pub fn cassette(&self) -> &Arc<Cassette> {
        &self.cassette
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a list of flags and a counter, consistent after every
        // statement: a panic elsewhere cannot leave it half-updated.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The recorded interaction for this call, or a miss with its
    /// divergence report.
    #[allow(clippy::result_large_err)] // A miss is rare, and its report is the point.
    pub fn answer(&self, method: &str, params: &Value) -> Result<Arc<Interaction>, Miss> {
        let key = self.options.call_key(method, params);
        let mut state = self.lock();
        state.steps += 1;
        let step = state.steps;
        let matching: &[usize] = self.by_key.get(&key).map_or(&[], Vec::as_slice);
        let mut expected = None;
        let reason = if self.options.strict_order && !self.skip.contains(method) {
            while state.cursor < self.entries.len()
                && (state.consumed[state.cursor]
                    || self
                        .skip
                        .contains(&self.entries[state.cursor].interaction.method))
            {
                state.cursor += 1;
            }
            let next = Some(state.cursor).filter(|&i| i < self.entries.len());
            match next {
                Some(i) if self.entries[i].key == key => {
                    state.consumed[i] = true;
                    return Ok(Arc::clone(&self.entries[i].interaction));
                }
                Some(i) => {
                    let interaction = &self.entries[i].interaction;
                    expected = Some(interaction.seq);
                    format!(
                        "strict order: expected call #{} ({}) next",
                        interaction.seq,
                        call_name(&interaction.method, interaction.tool())
                    )
                }
                None if matching.is_empty() => {
                    "no recorded call matches, and every recorded call has been used".to_owned()
                }
                None => used_up(matching.len()),
            }
        } else {
            if let Some(&i) = matching.iter().find(|&&i| !state.consumed[i]) {
                state.consumed[i] = true;
                return Ok(Arc::clone(&self.entries[i].interaction));
            }
            if self.options.repeat_last
                && let Some(&i) = matching.last()
            {
                return Ok(Arc::clone(&self.entries[i].interaction));
            }
            if matching.is_empty() {
                "no recorded call matches".to_owned()
            } else {
                used_up(matching.len())
            }
        };
        drop(state);
        Err(Miss {
            report: self.report(step, method, params, reason, expected),
        })
    }

    /// How many calls this replayer has seen (the step of the last one).
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// The seqs of the interactions not used yet, leaving out those of
    /// skipped methods.
    pub fn unused(&self) -> Vec<u64> {
        let state = self.lock();
        self.entries
            .iter()
            .zip(&state.consumed)
            .filter(|(entry, consumed)| {
                !**consumed && !self.skip.contains(&entry.interaction.method)
            })
            .map(|(entry, _)| entry.interaction.seq)
            .collect()
    }

    fn report(
        &self,
        step: u64,
        method: &str,
        params: &Value,
        reason: String,
        expected: Option<u64>,
    ) -> DivergenceReport {
        let tool = tool_of(method, params);
        let scope = self.options.scope(method, params);
        let received = params_without_meta(params);
        let compared = comparable_params(method, params);
        let received_normal = normalise(&compared, &scope.rules, &scope.base, &mut Vec::new(), 0)
            .unwrap_or(Value::Null);
        let mut ranked: Vec<(bool, bool, Candidate)> = self
            .entries
            .iter()
            .map(|entry| {
                let interaction = &entry.interaction;
                let recorded = comparable_params(&interaction.method, &interaction.params);
                let recorded_normal =
                    normalise(&recorded, &scope.rules, &scope.base, &mut Vec::new(), 0)
                        .unwrap_or(Value::Null);
                let same_method = interaction.method == method;
                let mut score = similarity(&recorded_normal, &received_normal);
                if !same_method {
                    score *= 0.5;
                }
                let candidate = Candidate {
                    seq: interaction.seq,
                    method: interaction.method.clone(),
                    tool: interaction.tool().map(str::to_owned),
                    params: clone_bounded(&interaction.params, COMPARE_DEPTH),
                    score: (score * 10_000.0).round() / 10_000.0,
                    diffs: diff_with_rules(&recorded, &compared, &scope),
                };
                (same_method, interaction.tool() == tool, candidate)
            })
            .collect();
        // Same method first, then same tool, then the most alike, then the
        // fewest differing fields, then file order.
        // A call of another method or tool with nothing in common would
        // only pad the report.
        ranked.retain(|(same_method, same_tool, c)| (*same_method && *same_tool) || c.score > 0.0);
        ranked.sort_by(|(m1, t1, a), (m2, t2, b)| {
            m2.cmp(m1)
                .then(t2.cmp(t1))
                .then(b.score.total_cmp(&a.score))
                .then(a.diffs.len().cmp(&b.diffs.len()))
                .then(a.seq.cmp(&b.seq))
        });
        DivergenceReport {
            step,
            method: method.to_owned(),
            tool: tool.map(str::to_owned),
            received: clone_bounded(&received, COMPARE_DEPTH),
            reason,
            expected,
            candidates: ranked
                .into_iter()
                .take(CANDIDATES)
                .map(|(_, _, candidate)| candidate)
                .collect(),
            recorded: self.entries.len(),
        }
    }
}

fn used_up(recorded: usize) -> String {
    let times = if recorded == 1 { "time" } else { "times" };
    format!("recorded {recorded} {times}; this is call {}", recorded + 1)
}

/// `tools/call search` or `resources/read`.
pub(crate) fn call_name(method: &str, tool: Option<&str>) -> String {
    match tool {
        Some(tool) => format!("{method} {tool}"),
        None => method.to_owned(),
    }
}

/// A call in one line: its name and its compact subject.
pub(crate) fn call_line(method: &str, params: &Value) -> String {
    format!(
        "{} {}",
        call_name(method, tool_of(method, params)),
        compact(&subject(method, params), 200)
    )
}

impl fmt::Display for DivergenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step {}: {}",
            self.step,
            call_line(&self.method, &self.received)
        )?;
        writeln!(f, "reason: {}", self.reason)?;
        if self.candidates.is_empty() {
            return match self.recorded {
                0 => write!(
                    f,
                    "closest recorded calls: none (the cassette holds no interactions)"
                ),
                n => write!(
                    f,
                    "closest recorded calls: none alike (no recorded call of {} shares a field with it; the cassette holds {n} interaction{})",
                    call_name(&self.method, self.tool.as_deref()),
                    if n == 1 { "" } else { "s" }
                ),
            };
        }
        write!(f, "closest recorded calls:")?;
        for candidate in &self.candidates {
            write!(
                f,
                "\n  #{} {}, score {:.2}",
                candidate.seq,
                call_line(&candidate.method, &candidate.params),
                candidate.score
            )?;
            if candidate.diffs.is_empty() {
                write!(f, "\n    (no differences)")?;
            }
            for diff in &candidate.diffs {
                write!(f, "\n    {diff}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
