//! Two runs side by side: their interactions aligned, the first place they
//! diverge, and every field that differs.
//!
//! Interactions are aligned on their call identity (method, tool and the
//! subject normalised by the match options, as replay matches calls): a
//! longest common subsequence of those identities pairs the calls both runs
//! made. Paired calls are compared on their outcome and notifications. Calls
//! left unpaired between two pairs are then paired up when they have the
//! same method and tool, so that "the agent asked for order o2 instead of
//! o1" shows as one changed call rather than one removed and one added.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::matching::{
    FieldDiff, MatchOptions, call_line, call_name, diff_values, params_without_meta,
};
use crate::model::Interaction;

/// The LCS table is quadratic; past this many cells (two runs of 2000
/// differing calls each) the alignment is greedy instead.
const LCS_CELLS: usize = 4_000_000;
/// How far ahead the greedy alignment looks for a call's counterpart.
const GREEDY_WINDOW: usize = 64;

/// Two runs side by side.
#[derive(Debug, Clone, Serialize)]
pub struct RunDiff {
    /// The left run's label.
    pub left: String,
    /// The right run's label.
    pub right: String,
    /// The aligned interactions, in order.
    pub entries: Vec<DiffEntry>,
    /// The index in `entries` of the first entry that is not `Same`.
    pub first_divergence: Option<usize>,
    /// Whether every entry is `Same`.
    pub identical: bool,
}

/// One step of a run diff.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiffEntry {
    /// The same call with the same outcome and notifications on both sides.
    Same {
        left_seq: u64,
        right_seq: u64,
        method: String,
        tool: Option<String>,
    },
    /// The same kind of call on both sides, differing in its params, its
    /// outcome or its notifications.
    Changed {
        left_seq: u64,
        right_seq: u64,
        method: String,
        tool: Option<String>,
        /// Params fields that differ (from the params' root).
        params: Vec<FieldDiff>,
        /// Outcome fields that differ (`result.content[0].text`).
        outcome: Vec<FieldDiff>,
        /// Notification fields that differ (`[0].params.progress`).
        notifications: Vec<FieldDiff>,
    },
    /// A call only the left run made.
    OnlyLeft {
        left_seq: u64,
        method: String,
        tool: Option<String>,
        params: Value,
    },
    /// A call only the right run made.
    OnlyRight {
        right_seq: u64,
        method: String,
        tool: Option<String>,
        params: Value,
    },
}

impl DiffEntry {
    fn is_same(&self) -> bool {
        matches!(self, DiffEntry::Same { .. })
    }
}

/// Aligns two runs' interactions and compares each pair.
pub fn diff_runs(
    left_label: &str,
    left: &[Interaction],
    right_label: &str,
    right: &[Interaction],
    options: &MatchOptions,
) -> RunDiff {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut id_of = |interaction: &Interaction| {
        let key = options.call_key(&interaction.method, &interaction.params);
        let next = ids.len();
        *ids.entry(key).or_insert(next)
    };
    let left_ids: Vec<usize> = left.iter().map(&mut id_of).collect();
    let right_ids: Vec<usize> = right.iter().map(&mut id_of).collect();
    let steps = align(&left_ids, &right_ids);

    let mut entries = Vec::new();
    let mut gap_left: Vec<usize> = Vec::new();
    let mut gap_right: Vec<usize> = Vec::new();
    for step in steps {
        match step {
            Step::Left(i) => gap_left.push(i),
            Step::Right(j) => gap_right.push(j),
            Step::Pair(i, j) => {
                close_gap(left, right, &mut gap_left, &mut gap_right, &mut entries);
                entries.push(compare(&left[i], &right[j], true));
            }
        }
    }
    close_gap(left, right, &mut gap_left, &mut gap_right, &mut entries);

    let first_divergence = entries.iter().position(|entry| !entry.is_same());
    RunDiff {
        left: left_label.to_owned(),
        right: right_label.to_owned(),
        identical: first_divergence.is_none(),
        first_divergence,
        entries,
    }
}

/// One step of an alignment: a pair, or an item of one side alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Pair(usize, usize),
    Left(usize),
    Right(usize),
}

/// Aligns two sequences of identities: the common prefix and suffix as
/// they are, the middle by longest common subsequence, or greedily when the
/// middle is too large for the quadratic table.
fn align(left: &[usize], right: &[usize]) -> Vec<Step> {
    let prefix = left.iter().zip(right).take_while(|(a, b)| a == b).count();
    let suffix = left[prefix..]
        .iter()
        .rev()
        .zip(right[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let left_middle = &left[prefix..left.len() - suffix];
    let right_middle = &right[prefix..right.len() - suffix];

    let mut steps: Vec<Step> = (0..prefix).map(|i| Step::Pair(i, i)).collect();
    let middle = if left_middle.len().saturating_mul(right_middle.len()) <= LCS_CELLS {
        lcs(left_middle, right_middle)
    } else {
        greedy(left_middle, right_middle)
    };
    steps.extend(middle.into_iter().map(|step| match step {
        Step::Pair(i, j) => Step::Pair(i + prefix, j + prefix),
        Step::Left(i) => Step::Left(i + prefix),
        Step::Right(j) => Step::Right(j + prefix),
    }));
    let (left_tail, right_tail) = (left.len() - suffix, right.len() - suffix);
    steps.extend((0..suffix).map(|k| Step::Pair(left_tail + k, right_tail + k)));
    steps
}

/// The longest common subsequence alignment, by the classic table of
/// suffix lengths. Within a gap, left items come before right ones.
fn lcs(left: &[usize], right: &[usize]) -> Vec<Step> {
    let (n, m) = (left.len(), right.len());
    let width = m + 1;
    // table[i * width + j]: the LCS length of left[i..] and right[j..].
    let mut table = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * width + j] = if left[i] == right[j] {
                table[(i + 1) * width + j + 1] + 1
            } else {
                table[(i + 1) * width + j].max(table[i * width + j + 1])
            };
        }
    }
    let mut steps = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if left[i] == right[j] {
            steps.push(Step::Pair(i, j));
            i += 1;
            j += 1;
        } else if table[(i + 1) * width + j] >= table[i * width + j + 1] {
            steps.push(Step::Left(i));
            i += 1;
        } else {
            steps.push(Step::Right(j));
            j += 1;
        }
    }
    steps.extend((i..n).map(Step::Left));
    steps.extend((j..m).map(Step::Right));
    steps
}

/// A bounded alignment for long inputs: walking both sides, equal items
/// pair up; otherwise the nearer of the two items' counterparts within the
/// next [`GREEDY_WINDOW`] items of the other side is taken, skipping what
/// lies before it; with neither in sight, both items stay unpaired.
/// Linear in the input times the window.
fn greedy(left: &[usize], right: &[usize]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if left[i] == right[j] {
            steps.push(Step::Pair(i, j));
            i += 1;
            j += 1;
            continue;
        }
        let ahead_right = right[j..right.len().min(j + GREEDY_WINDOW)]
            .iter()
            .position(|&id| id == left[i]);
        let ahead_left = left[i..left.len().min(i + GREEDY_WINDOW)]
            .iter()
            .position(|&id| id == right[j]);
        match (ahead_right, ahead_left) {
            (Some(skip), other) if other.is_none_or(|o| skip <= o) => {
                steps.extend((j..j + skip).map(Step::Right));
                j += skip;
            }
            (_, Some(skip)) => {
                steps.extend((i..i + skip).map(Step::Left));
                i += skip;
            }
            _ => {
                steps.push(Step::Left(i));
                steps.push(Step::Right(j));
                i += 1;
                j += 1;
            }
        }
    }
    steps.extend((i..left.len()).map(Step::Left));
    steps.extend((j..right.len()).map(Step::Right));
    steps
}

/// Emits the unpaired calls between two aligned pairs: a left and a right
/// call with the same method and tool become one `Changed` entry (pairing in
/// order, first come first paired), the rest stay `OnlyLeft`/`OnlyRight`.
fn close_gap(
    left: &[Interaction],
    right: &[Interaction],
    gap_left: &mut Vec<usize>,
    gap_right: &mut Vec<usize>,
    entries: &mut Vec<DiffEntry>,
) {
    // For each left call in order, the first right call of the same method
    // and tool after the previous pair: linear, through a queue of right
    // positions per method and tool.
    let mut waiting: HashMap<(&str, Option<&str>), VecDeque<usize>> = HashMap::new();
    for (position, &j) in gap_right.iter().enumerate() {
        waiting
            .entry((right[j].method.as_str(), right[j].tool()))
            .or_default()
            .push_back(position);
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    for (li, &i) in gap_left.iter().enumerate() {
        let Some(queue) = waiting.get_mut(&(left[i].method.as_str(), left[i].tool())) else {
            continue;
        };
        while queue.front().is_some_and(|&position| position < from) {
            queue.pop_front();
        }
        if let Some(position) = queue.pop_front() {
            pairs.push((li, position));
            from = position + 1;
        }
    }
    let (mut li, mut rj) = (0, 0);
    for (pl, pr) in pairs {
        entries.extend(gap_left[li..pl].iter().map(|&i| only_left(&left[i])));
        entries.extend(gap_right[rj..pr].iter().map(|&j| only_right(&right[j])));
        entries.push(compare(&left[gap_left[pl]], &right[gap_right[pr]], false));
        li = pl + 1;
        rj = pr + 1;
    }
    entries.extend(gap_left[li..].iter().map(|&i| only_left(&left[i])));
    entries.extend(gap_right[rj..].iter().map(|&j| only_right(&right[j])));
    gap_left.clear();
    gap_right.clear();
}

fn only_left(interaction: &Interaction) -> DiffEntry {
    DiffEntry::OnlyLeft {
        left_seq: interaction.seq,
        method: interaction.method.clone(),
        tool: interaction.tool().map(str::to_owned),
        params: interaction.params.clone(),
    }
}

fn only_right(interaction: &Interaction) -> DiffEntry {
    DiffEntry::OnlyRight {
        right_seq: interaction.seq,
        method: interaction.method.clone(),
        tool: interaction.tool().map(str::to_owned),
        params: interaction.params.clone(),
    }
}

/// Compares two paired calls. Calls paired on equal identities (`matched`)
/// are the same call when their outcomes and notifications agree; their
/// params may still differ in fields the match options ignore, which a
/// `Changed` entry then lists too.
fn compare(left: &Interaction, right: &Interaction, matched: bool) -> DiffEntry {
    let outcome = diff_values(&left.outcome.to_json(), &right.outcome.to_json());
    let notifications = diff_values(&notifications_json(left), &notifications_json(right));
    if matched && outcome.is_empty() && notifications.is_empty() {
        return DiffEntry::Same {
            left_seq: left.seq,
            right_seq: right.seq,
            method: left.method.clone(),
            tool: left.tool().map(str::to_owned),
        };
    }
    DiffEntry::Changed {
        left_seq: left.seq,
        right_seq: right.seq,
        method: left.method.clone(),
        tool: left.tool().map(str::to_owned),
        params: diff_values(
            &params_without_meta(&left.params),
            &params_without_meta(&right.params),
        ),
        outcome,
        notifications,
    }
}

fn notifications_json(interaction: &Interaction) -> Value {
    Value::Array(
        interaction
            .notifications
            .iter()
            .map(|notification| {
                let mut map = Map::new();
                map.insert(
                    "method".to_owned(),
                    Value::String(notification.method.clone()),
                );
                map.insert("params".to_owned(), notification.params.clone());
                if let Some(answer) = &notification.answer {
                    map.insert("answer".to_owned(), answer.to_json());
                }
                Value::Object(map)
            })
            .collect(),
    )
}

fn name(method: &str, tool: &Option<String>) -> String {
    call_name(method, tool.as_deref())
}

impl fmt::Display for RunDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "left: {} / right: {}", self.left, self.right)?;
        let Some(first) = self
            .first_divergence
            .and_then(|index| self.entries.get(index))
        else {
            let n = self.entries.len();
            let noun = if n == 1 {
                "interaction"
            } else {
                "interactions"
            };
            return write!(f, "\nidentical ({n} {noun})");
        };
        match first {
            DiffEntry::Same { .. } => {}
            DiffEntry::Changed {
                left_seq,
                right_seq,
                ..
            } => write!(
                f,
                "\nfirst divergence at left #{left_seq} / right #{right_seq}"
            )?,
            DiffEntry::OnlyLeft { left_seq, .. } => write!(
                f,
                "\nfirst divergence at left #{left_seq} (only on the left)"
            )?,
            DiffEntry::OnlyRight { right_seq, .. } => write!(
                f,
                "\nfirst divergence at right #{right_seq} (only on the right)"
            )?,
        }
        let mut same_run = 0usize;
        let flush = |f: &mut fmt::Formatter<'_>, same_run: &mut usize| -> fmt::Result {
            if *same_run > 0 {
                let noun = if *same_run == 1 {
                    "interaction"
                } else {
                    "interactions"
                };
                write!(f, "\n  = {same_run} {noun} the same")?;
                *same_run = 0;
            }
            Ok(())
        };
        for entry in &self.entries {
            match entry {
                DiffEntry::Same { .. } => same_run += 1,
                DiffEntry::Changed {
                    left_seq,
                    right_seq,
                    method,
                    tool,
                    params,
                    outcome,
                    notifications,
                } => {
                    flush(f, &mut same_run)?;
                    write!(
                        f,
                        "\n  ~ left #{left_seq} / right #{right_seq}: {}",
                        name(method, tool)
                    )?;
                    for (part, diffs) in [
                        ("params", params),
                        ("outcome", outcome),
                        ("notifications", notifications),
                    ] {
                        for diff in diffs {
                            write!(f, "\n      {part} {}", diff.line("left", "right"))?;
                        }
                    }
                }
                DiffEntry::OnlyLeft {
                    left_seq,
                    method,
                    params,
                    ..
                } => {
                    flush(f, &mut same_run)?;
                    write!(
                        f,
                        "\n  - left #{left_seq}: {} (only on the left)",
                        call_line(method, params)
                    )?;
                }
                DiffEntry::OnlyRight {
                    right_seq,
                    method,
                    params,
                    ..
                } => {
                    flush(f, &mut same_run)?;
                    write!(
                        f,
                        "\n  + right #{right_seq}: {} (only on the right)",
                        call_line(method, params)
                    )?;
                }
            }
        }
        flush(f, &mut same_run)
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
