//! Tests of run diffs: alignment, pairing within gaps, what counts as
//! changed, the first divergence, the text, and the bounded fallback.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::{DiffEntry, Step, align, diff_runs, greedy, lcs};
use crate::matching::{MatchConfig, MatchOptions, PathMatch};
use crate::test_support::{call, numbered};
use crate::{FieldDiff, Interaction, Notification, RecordedOutcome};

fn lookup(order: &str) -> Interaction {
    call(
        "lookup_order",
        json!({"order_id": order}),
        json!({"text": format!("order {order}")}),
    )
}

fn refund(order: &str) -> Interaction {
    call(
        "refund",
        json!({"order_id": order}),
        json!({"text": "refunded"}),
    )
}

fn run(interactions: Vec<Interaction>) -> Vec<Interaction> {
    numbered(interactions)
}

/// A compact picture of the entries: `=1/1`, `~1/1`, `-2`, `+3`.
fn shape(entries: &[DiffEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| match entry {
            DiffEntry::Same {
                left_seq,
                right_seq,
                ..
            } => format!("={left_seq}/{right_seq}"),
            DiffEntry::Changed {
                left_seq,
                right_seq,
                ..
            } => format!("~{left_seq}/{right_seq}"),
            DiffEntry::OnlyLeft { left_seq, .. } => format!("-{left_seq}"),
            DiffEntry::OnlyRight { right_seq, .. } => format!("+{right_seq}"),
        })
        .collect()
}

#[track_caller]
fn check(left: Vec<Interaction>, right: Vec<Interaction>, expect: &[&str], first: Option<usize>) {
    let diff = diff_runs("A", &run(left), "B", &run(right), &MatchOptions::default());
    assert_eq!(shape(&diff.entries), expect);
    assert_eq!(diff.first_divergence, first);
    assert_eq!(diff.identical, first.is_none());
}

#[test]
fn alignments() {
    check(vec![], vec![], &[], None);
    check(
        vec![lookup("o1"), refund("o1")],
        vec![lookup("o1"), refund("o1")],
        &["=1/1", "=2/2"],
        None,
    );
    // One changed argument: paired as one changed call.
    check(
        vec![lookup("o1"), refund("o1")],
        vec![lookup("o2"), refund("o1")],
        &["~1/1", "=2/2"],
        Some(0),
    );
    // One extra call on the right.
    check(
        vec![lookup("o1"), refund("o1")],
        vec![lookup("o1"), lookup("o9"), refund("o1")],
        &["=1/1", "+2", "=2/3"],
        Some(1),
    );
    // One call missing on the right, at the end.
    check(
        vec![lookup("o1"), refund("o1")],
        vec![lookup("o1")],
        &["=1/1", "-2"],
        Some(1),
    );
    // Different tools in the same gap stay apart.
    check(
        vec![lookup("o1"), refund("o1")],
        vec![lookup("o1"), call("escalate", json!({}), json!({}))],
        &["=1/1", "-2", "+2"],
        Some(1),
    );
    // Pairing within a gap keeps order and pairs like with like.
    check(
        vec![lookup("o1"), refund("o1"), lookup("o5")],
        vec![lookup("o2"), lookup("o3"), refund("o2")],
        &["~1/1", "+2", "~2/3", "-3"],
        Some(0),
    );
    // Reordered calls: one side of the swap is paired, the other is not.
    check(
        vec![lookup("o1"), refund("o1")],
        vec![refund("o1"), lookup("o1")],
        &["-1", "=2/1", "+2"],
        Some(0),
    );
}

#[test]
fn changed_entries_list_their_fields() {
    let left = run(vec![lookup("o1"), refund("o1")]);
    let mut changed = refund("o1");
    changed.outcome = RecordedOutcome::Error {
        code: -32000,
        message: "declined".into(),
        data: None,
    };
    let right = run(vec![lookup("o2"), changed]);
    let diff = diff_runs("A", &left, "B", &right, &MatchOptions::default());
    match &diff.entries[0] {
        DiffEntry::Changed {
            params,
            outcome,
            notifications,
            tool,
            ..
        } => {
            assert_eq!(tool.as_deref(), Some("lookup_order"));
            assert_eq!(
                params,
                &[FieldDiff {
                    path: "arguments.order_id".into(),
                    recorded: Some(json!("o1")),
                    received: Some(json!("o2"))
                }]
            );
            assert_eq!(
                outcome,
                &[FieldDiff {
                    path: "result.text".into(),
                    recorded: Some(json!("order o1")),
                    received: Some(json!("order o2"))
                }]
            );
            assert!(notifications.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // Same call, different outcome.
    match &diff.entries[1] {
        DiffEntry::Changed {
            params, outcome, ..
        } => {
            assert!(params.is_empty());
            let paths: Vec<&str> = outcome.iter().map(|d| d.path.as_str()).collect();
            assert_eq!(paths, ["error", "result"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn notifications_count() {
    let progress = |n: u64| Notification::new("notifications/progress", json!({"progress": n}));
    let mut a = lookup("o1");
    a.notifications = vec![progress(1), progress(2)];
    let mut b = lookup("o1");
    b.notifications = vec![progress(1), progress(3)];
    let diff = diff_runs(
        "A",
        &run(vec![a]),
        "B",
        &run(vec![b]),
        &MatchOptions::default(),
    );
    assert_eq!(diff.first_divergence, Some(0));
    match &diff.entries[0] {
        DiffEntry::Changed {
            notifications,
            outcome,
            ..
        } => {
            assert!(outcome.is_empty());
            assert_eq!(
                notifications,
                &[FieldDiff {
                    path: "[1].params.progress".into(),
                    recorded: Some(json!(2)),
                    received: Some(json!(3))
                }]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn match_options_decide_identity() {
    let with_time = |t: u64| call("search", json!({"q": "x", "at": t}), json!({"hits": 1}));
    let left = run(vec![with_time(1)]);
    let right = run(vec![with_time(2)]);
    let strict = diff_runs("A", &left, "B", &right, &MatchOptions::default());
    assert_eq!(shape(&strict.entries), ["~1/1"]);
    let options = MatchOptions {
        default: MatchConfig::new()
            .with_rule("at", PathMatch::Ignore)
            .unwrap(),
        ..MatchOptions::default()
    };
    let relaxed = diff_runs("A", &left, "B", &right, &options);
    assert!(relaxed.identical);
    assert_eq!(shape(&relaxed.entries), ["=1/1"]);
}

#[test]
fn text() {
    let left = run(vec![
        lookup("o1"),
        lookup("o1"),
        refund("o1"),
        refund("o4"),
        lookup("o7"),
    ]);
    let right = run(vec![
        lookup("o1"),
        lookup("o2"),
        refund("o1"),
        lookup("o7"),
        call("escalate", json!({"why": "late"}), json!({})),
    ]);
    let diff = diff_runs("run_a", &left, "run_b", &right, &MatchOptions::default());
    assert_eq!(
        diff.to_string(),
        [
            "left: run_a / right: run_b",
            "first divergence at left #2 / right #2",
            "  = 1 interaction the same",
            "  ~ left #2 / right #2: tools/call lookup_order",
            r#"      params arguments.order_id: left "o1", right "o2""#,
            r#"      outcome result.text: left "order o1", right "order o2""#,
            "  = 1 interaction the same",
            r#"  - left #4: tools/call refund {"order_id":"o4"} (only on the left)"#,
            "  = 1 interaction the same",
            r#"  + right #5: tools/call escalate {"why":"late"} (only on the right)"#,
        ]
        .join("\n")
    );
    let same = diff_runs("a", &left, "b", &left, &MatchOptions::default());
    assert_eq!(
        same.to_string(),
        "left: a / right: b\nidentical (5 interactions)"
    );
    let one = diff_runs("a", &left[..1], "b", &left[..1], &MatchOptions::default());
    assert_eq!(
        one.to_string(),
        "left: a / right: b\nidentical (1 interaction)"
    );
    let only_right = diff_runs("a", &[], "b", &left[..1], &MatchOptions::default());
    assert_eq!(
        only_right.to_string(),
        "left: a / right: b\nfirst divergence at right #1 (only on the right)\n  + right #1: tools/call lookup_order {\"order_id\":\"o1\"} (only on the right)"
    );
    // The diff serializes with a `kind` tag.
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(json["entries"][0]["kind"], "same");
    assert_eq!(json["entries"][1]["kind"], "changed");
    assert_eq!(json["first_divergence"], 1);
    assert_eq!(json["identical"], false);
}

/// Checks that `steps` is an alignment of `left` and `right`: every index
/// once, in order on each side, pairs only of equal items.
#[track_caller]
fn assert_alignment(left: &[usize], right: &[usize], steps: &[Step]) -> usize {
    let (mut next_left, mut next_right, mut pairs) = (0, 0, 0);
    for step in steps {
        match *step {
            Step::Pair(i, j) => {
                assert_eq!((i, j), (next_left, next_right), "{steps:?}");
                assert_eq!(left[i], right[j]);
                next_left += 1;
                next_right += 1;
                pairs += 1;
            }
            Step::Left(i) => {
                assert_eq!(i, next_left);
                next_left += 1;
            }
            Step::Right(j) => {
                assert_eq!(j, next_right);
                next_right += 1;
            }
        }
    }
    assert_eq!((next_left, next_right), (left.len(), right.len()));
    pairs
}

#[test]
fn lcs_is_longest() {
    for (left, right, longest) in [
        (vec![1, 2, 3, 4], vec![1, 3, 4], 3),
        (vec![1, 2, 3], vec![3, 2, 1], 1),
        (vec![], vec![1], 0),
        (vec![1, 2, 1, 2], vec![2, 1, 2, 1], 3),
        (vec![5, 1, 2, 3, 6], vec![7, 1, 2, 3, 8], 3),
    ] {
        assert_eq!(
            assert_alignment(&left, &right, &lcs(&left, &right)),
            longest
        );
        assert_eq!(
            assert_alignment(&left, &right, &align(&left, &right)),
            longest
        );
    }
}

#[test]
fn long_runs_fall_back_to_a_bounded_alignment() {
    // Two 2500-call runs that differ everywhere in the middle: more cells
    // than the LCS table may hold.
    let left: Vec<usize> = (0..2500)
        .map(|i| if i % 3 == 0 { 1_000_000 + i } else { i })
        .collect();
    let right: Vec<usize> = (0..2500)
        .map(|i| if i % 5 == 0 { 2_000_000 + i } else { i })
        .collect();
    let steps = align(&left, &right);
    let pairs = assert_alignment(&left, &right, &steps);
    // Every item that is not replaced on either side pairs up.
    let common = (0..2500).filter(|i| i % 3 != 0 && i % 5 != 0).count();
    assert_eq!(pairs, common);

    let g = greedy(&[1, 2, 3, 4], &[9, 2, 3, 8, 4]);
    assert_eq!(assert_alignment(&[1, 2, 3, 4], &[9, 2, 3, 8, 4], &g), 3);

    let interactions: Vec<Interaction> = (0..2100).map(|i| lookup(&format!("o{i}"))).collect();
    let others: Vec<Interaction> = (0..2100).map(|i| refund(&format!("o{i}"))).collect();
    let diff = diff_runs(
        "A",
        &run(interactions),
        "B",
        &run(others),
        &MatchOptions::default(),
    );
    assert_eq!(diff.entries.len(), 4200);
    assert_eq!(diff.first_divergence, Some(0));
}

#[test]
fn params_without_meta_are_compared() {
    let mut a = lookup("o1");
    a.params["_meta"] = json!({"progressToken": 1});
    let mut b = lookup("o1");
    b.outcome = RecordedOutcome::Result(Value::Null);
    let diff = diff_runs(
        "A",
        &run(vec![a]),
        "B",
        &run(vec![b]),
        &MatchOptions::default(),
    );
    match &diff.entries[0] {
        DiffEntry::Changed { params, .. } => assert!(params.is_empty(), "{params:?}"),
        other => panic!("{other:?}"),
    }
}
