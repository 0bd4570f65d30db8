//! The keyword automaton: every occurrence of every keyword (ASCII case
//! ignored, overlapping), as fast as a DFA can be read.
//!
//! A DFA reads one byte per step, and each step waits for the transition
//! the step before it loaded: on text the search is bound by that chain of
//! loads, not by the work per byte. So an input is cut into up to four
//! parts, each read by a state of its own, interleaved in one loop: the
//! chains of loads overlap, and the processor does several steps in the
//! time of one. Each part after the first is read from the start state
//! `longest - 1` bytes before it begins, so that it sees every keyword that
//! ends inside it, and reports only those. The occurrences come out
//! exactly as one overlapping search finds them: by end, and at one end in
//! the automaton's order (`keywords_tests.rs` holds it to that).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{AhoCorasick, Anchored, Input, PatternID};

/// A keyword occurrence: start, end, pattern index.
pub(crate) type Occurrence = (usize, usize, usize);

/// The shortest part of an input read as a stream of its own: below it, a
/// stream's start-up (`longest - 1` bytes read twice) costs more than the
/// interleaving saves.
const SPLIT_AT: usize = 48;

/// The most occurrences a stream's buffer starts with room for.
const MAX_ROOM: usize = 512;

/// The automaton over a fixed list of patterns.
#[derive(Debug, Clone)]
pub(crate) enum Keywords {
    /// The usual case: one DFA, read in up to four interleaved streams.
    Dfa {
        dfa: Box<DFA>,
        start: StateID,
        longest: usize,
    },
    /// A very large set of user keywords that does not fit a DFA.
    Nfa(AhoCorasick),
}

impl Keywords {
    /// Builds the automaton of `patterns`, matched ASCII case-insensitively.
    pub(crate) fn new(patterns: &[String]) -> Result<Keywords, String> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(patterns);
        if let Ok(dfa) = dfa {
            let start = dfa
                .start_state(Anchored::No)
                .map_err(|e| format!("keyword automaton: {e}"))?;
            let longest = dfa.max_pattern_len();
            return Ok(Keywords::Dfa {
                dfa: Box::new(dfa),
                start,
                longest,
            });
        }
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .map(Keywords::Nfa)
            .map_err(|e| format!("keyword automaton: {e}"))
    }

    /// Every occurrence in `hay[from..to]`, by end, appended to `out`.
    pub(crate) fn find_in(&self, hay: &[u8], from: usize, to: usize, out: &mut Vec<Occurrence>) {
        let to = to.min(hay.len());
        if from >= to {
            return;
        }
        match self {
            Keywords::Nfa(ac) => {
                let input = Input::new(hay).span(from..to);
                out.extend(
                    ac.find_overlapping_iter(input)
                        .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
                );
            }
            Keywords::Dfa {
                dfa,
                start,
                longest,
            } => {
                let len = to - from;
                if len >= 4 * SPLIT_AT {
                    streams::<4>(dfa, *start, *longest, hay, from, to, out);
                } else if len >= 2 * SPLIT_AT {
                    streams::<2>(dfa, *start, *longest, hay, from, to, out);
                } else {
                    streams::<1>(dfa, *start, *longest, hay, from, to, out);
                }
            }
        }
    }

    /// Every occurrence in `hay`.
    pub(crate) fn find_all(&self, hay: &[u8], out: &mut Vec<Occurrence>) {
        self.find_in(hay, 0, hay.len(), out);
    }
}

#[inline(always)]
fn step(dfa: &DFA, state: StateID, byte: u8) -> StateID {
    dfa.next_state(Anchored::No, state, byte)
}

/// The patterns of match state `state`, ending at `end`.
#[inline(never)]
fn report(dfa: &DFA, sid: StateID, end: usize, out: &mut Vec<Occurrence>) {
    for k in 0..dfa.match_len(sid) {
        let pattern: PatternID = dfa.match_pattern(sid, k);
        let len = dfa.pattern_len(pattern);
        out.push((end - len, end, pattern.as_usize()));
    }
}

/// Reads `hay[from..to]` as `N` parts at once. Part `k` after the first is
/// read from `longest - 1` bytes before it begins (so that it sees every
/// keyword that ends inside it) and reports the keywords that end inside
/// it. The parts are cut so that every stream reads about as many bytes,
/// lead included: the streams then finish together.
#[inline(always)]
fn streams<const N: usize>(
    dfa: &DFA,
    start: StateID,
    longest: usize,
    hay: &[u8],
    from: usize,
    to: usize,
    out: &mut Vec<Occurrence>,
) {
    let lead = longest.saturating_sub(1);
    // The bytes each stream reads, and how far apart their starts are.
    let each = (to - from + (N - 1) * lead).div_ceil(N);
    if N == 1 || each <= lead {
        out.reserve(((to - from) / 16).min(MAX_ROOM));
        let mut state = start;
        for (j, &byte) in (from..).zip(&hay[from..to]) {
            state = step(dfa, state, byte);
            if dfa.is_match(state) {
                report(dfa, state, j + 1, out);
            }
        }
        return;
    }
    let stride = each - lead;
    // Where stream `k` starts reading, where its reported ends begin (after
    // this), and where it stops.
    let reads: [usize; N] = std::array::from_fn(|k| from + k * stride);
    let begins: [usize; N] = std::array::from_fn(|k| if k == 0 { from } else { reads[k] + lead });
    let ends: [usize; N] = std::array::from_fn(|k| (reads[k] + each).min(to));
    let together = ends[N - 1] - reads[N - 1];
    let mut states = [start; N];
    // Text holds a keyword or cue word every twenty bytes or so: room for
    // about that many saves a short text the buffers' growing step by step
    // (a long one grows them a few times, which costs it nothing).
    let room = (each / 16).min(MAX_ROOM);
    out.reserve(room);
    let mut found: [Vec<Occurrence>; N] = std::array::from_fn(|k| {
        if k == 0 {
            Vec::new()
        } else {
            Vec::with_capacity(room)
        }
    });
    for step_index in 0..together {
        for k in 0..N {
            states[k] = step(dfa, states[k], hay[reads[k] + step_index]);
        }
        for k in 0..N {
            let j = reads[k] + step_index;
            if dfa.is_special(states[k]) && dfa.is_match(states[k]) && j >= begins[k] {
                let buffer = if k == 0 { &mut *out } else { &mut found[k] };
                report(dfa, states[k], j + 1, buffer);
            }
        }
    }
    // The last stream may be a few bytes shorter than the others.
    for k in 0..N - 1 {
        let buffer = if k == 0 { &mut *out } else { &mut found[k] };
        let mut state = states[k];
        let rest = reads[k] + together;
        for (j, &byte) in (rest..).zip(&hay[rest..ends[k]]) {
            state = step(dfa, state, byte);
            if dfa.is_match(state) && j >= begins[k] {
                report(dfa, state, j + 1, buffer);
            }
        }
    }
    for buffer in found.iter_mut().skip(1) {
        out.append(buffer);
    }
}
