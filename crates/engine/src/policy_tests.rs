//! Tests of the policy stage, with policies loaded the way users write them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::*;

/// A policy state from the YAML under `policy:`.
fn state(policy: &str) -> PolicyState {
    let text = format!("version: 1\nname: p\ntools:\n  - name: t\npolicy:\n{policy}");
    let scenario = sandbar_scenario::load_str(&text, "p.yaml", None)
        .unwrap_or_else(|e| panic!("{}", e.detailed()));
    PolicyState::new(Arc::new(scenario.policy.expect("a policy")))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Decides a call of `tool` with `args` after `history`.
fn decide(state: &PolicyState, tool: &str, args: Value, history: &History) -> Verdict {
    let args = object(args);
    state.decide(&PolicyInput {
        tenant: "acme",
        token: Some("tok_1"),
        tool,
        args: &args,
        upstream: None,
        mode: "stub",
        history,
    })
}

fn allowed_by(rule: Option<&str>) -> Verdict {
    Verdict::Allow {
        rule: rule.map(str::to_owned),
    }
}

fn denied_by(verdict: &Verdict) -> Option<&str> {
    match verdict {
        Verdict::Deny { rule, .. } => Some(rule),
        _ => None,
    }
}

#[test]
fn the_first_rule_that_applies_decides() {
    let s = state(
        "  rules:\n    - allow: lookup_order\n    - deny: \"*\"\n      name: everything-else\n    - allow: \"*\"\n",
    );
    let history = History::default();
    assert_eq!(
        decide(&s, "lookup_order", json!({}), &history),
        allowed_by(Some("rule 1"))
    );
    let verdict = decide(&s, "issue_refund", json!({}), &history);
    assert_eq!(denied_by(&verdict), Some("everything-else"));
    let Verdict::Deny { message, .. } = verdict else {
        unreachable!()
    };
    assert!(message.contains("rule `everything-else`"), "{message}");
}

#[test]
fn the_default_decides_when_no_rule_does() {
    let history = History::default();
    let open = state("  rules:\n    - deny: issue_refund\n");
    assert_eq!(
        decide(&open, "lookup", json!({}), &history),
        allowed_by(None)
    );
    let closed = state("  default: deny\n  rules:\n    - allow: lookup\n");
    assert_eq!(
        decide(&closed, "lookup", json!({}), &history),
        allowed_by(Some("rule 1"))
    );
    let verdict = decide(&closed, "issue_refund", json!({}), &history);
    assert_eq!(denied_by(&verdict), Some(DEFAULT_RULE));
    assert_eq!(
        verdict,
        Verdict::Deny {
            rule: "default".to_owned(),
            message: "the scenario's policy denies `issue_refund`: no rule allows it".to_owned()
        }
    );
}

#[test]
fn patterns_match_tool_names() {
    let s = state(
        "  approval_timeout: 30s\n  rules:\n    - approve: \"send_*\"\n      message: ask first\n    - deny: \"v?_*\"\n",
    );
    let history = History::default();
    assert_eq!(
        decide(&s, "send_email", json!({}), &history),
        Verdict::Approve {
            rule: "rule 1".to_owned(),
            message: "ask first".to_owned(),
            timeout: Duration::from_secs(30)
        }
    );
    assert_eq!(
        decide(&s, "resend_email", json!({}), &history),
        allowed_by(None)
    );
    assert_eq!(
        denied_by(&decide(&s, "v1_get", json!({}), &history)),
        Some("rule 2")
    );
    assert_eq!(decide(&s, "v12_get", json!({}), &history), allowed_by(None));
}

#[test]
fn conditions_over_arguments() {
    let s = state(
        r#"  rules:
    - deny: "*"
      when: "args.amount > 500"
      name: big
    - deny: "*"
      when: "args.currency == 'EUR' && args.customer.tier != 'gold'"
      name: euro
    - deny: "*"
      when: "size(args.items) > 2 || args.items.exists(i, i.qty >= 10)"
      name: items
    - allow: "*"
"#,
    );
    let h = History::default();
    let base = |amount: Value| json!({"amount": amount, "currency": "USD", "customer": {"tier": "gold"}, "items": []});
    assert_eq!(
        denied_by(&decide(&s, "pay", base(json!(750)), &h)),
        Some("big")
    );
    assert_eq!(
        decide(&s, "pay", base(json!(100)), &h),
        allowed_by(Some("rule 4"))
    );
    assert_eq!(
        denied_by(&decide(&s, "pay", base(json!(500.5)), &h)),
        Some("big")
    );
    assert_eq!(
        decide(&s, "pay", base(json!(499.99)), &h),
        allowed_by(Some("rule 4"))
    );
    assert_eq!(
        decide(&s, "pay", base(json!(500.0)), &h),
        allowed_by(Some("rule 4"))
    );
    let euro = json!({"amount": 1, "currency": "EUR", "customer": {"tier": "silver"}, "items": []});
    assert_eq!(denied_by(&decide(&s, "pay", euro, &h)), Some("euro"));
    let gold = json!({"amount": 1, "currency": "EUR", "customer": {"tier": "gold"}, "items": []});
    assert_eq!(decide(&s, "pay", gold, &h), allowed_by(Some("rule 4")));
    let bulk = json!({"amount": 1, "currency": "USD", "customer": {"tier": "gold"},
        "items": [{"qty": 1}, {"qty": 12}]});
    assert_eq!(denied_by(&decide(&s, "pay", bulk, &h)), Some("items"));
}

#[test]
fn conditions_over_the_run_so_far() {
    let s = state(
        r#"  rules:
    - deny: issue_refund
      when: 'sum(calls.filter(c, c.tool == "issue_refund").map(c, c.args.amount)) + args.amount > 1000'
      name: refund-budget
    - deny: send_email
      when: "counts.send_email >= 2 || counts.never_called > 0"
      name: email-quota
    - deny: "*"
      when: "calls.exists(c, c.error) && tool == 'retry'"
      name: no-retry-after-error
"#,
    );
    let mut h = History::default();
    assert!(h.is_empty());
    h.push("issue_refund", &object(json!({"amount": 400})), false);
    h.push("lookup", &object(json!({"id": "o1"})), false);
    h.push("issue_refund", &object(json!({"amount": 300})), false);
    assert_eq!(h.len(), 3);
    assert_eq!(h.count("issue_refund"), 2);
    assert_eq!(
        denied_by(&decide(&s, "issue_refund", json!({"amount": 400}), &h)),
        Some("refund-budget")
    );
    assert_eq!(
        decide(&s, "issue_refund", json!({"amount": 300}), &h),
        allowed_by(None)
    );
    // `counts` names a tool not called yet: it reads 0.
    assert_eq!(decide(&s, "send_email", json!({}), &h), allowed_by(None));
    h.push("send_email", &Map::new(), false);
    h.push("send_email", &Map::new(), false);
    assert_eq!(
        denied_by(&decide(&s, "send_email", json!({}), &h)),
        Some("email-quota")
    );
    assert_eq!(decide(&s, "retry", json!({}), &h), allowed_by(None));
    h.push("lookup", &object(json!({"id": "nope"})), true);
    assert_eq!(
        denied_by(&decide(&s, "retry", json!({}), &h)),
        Some("no-retry-after-error")
    );
}

#[test]
fn sum_adds_ints_and_doubles() {
    let s = state(
        r#"  rules:
    - deny: "*"
      when: "sum(calls.map(c, c.args.x)) == 3.5 && sum([]) == 0 && sum([1, 2]) == 3"
"#,
    );
    let mut h = History::default();
    h.push("t", &object(json!({"x": 1})), false);
    h.push("t", &object(json!({"x": 2.5})), false);
    assert_eq!(denied_by(&decide(&s, "t", json!({}), &h)), Some("rule 1"));
    let wrong = state("  rules:\n    - deny: \"*\"\n      when: \"sum(['a']) > 0\"\n");
    let verdict = decide(&wrong, "t", json!({}), &History::default());
    let Verdict::Deny { message, .. } = verdict else {
        panic!("an error denies: {verdict:?}")
    };
    assert!(message.contains("sum adds numbers"), "{message}");
}

#[test]
fn the_call_itself_is_described() {
    let s = state(
        r#"  rules:
    - allow: "*"
      when: "tenant == 'acme' && token == 'tok_1' && tool == 't' && upstream == '' && mode == 'stub'"
    - deny: "*"
"#,
    );
    assert_eq!(
        decide(&s, "t", json!({}), &History::default()),
        allowed_by(Some("rule 1"))
    );
}

#[test]
fn rate_limits_slide() {
    let s = state(
        r#"  rules:
    - rate_limit: "search_*"
      calls: 2
      per: 200ms
      name: search-rate
    - deny: search_slow
    - allow: "*"
"#,
    );
    let h = History::default();
    assert_eq!(
        decide(&s, "search_web", json!({}), &h),
        allowed_by(Some("rule 3"))
    );
    assert_eq!(
        decide(&s, "search_web", json!({}), &h),
        allowed_by(Some("rule 3"))
    );
    let third = decide(&s, "search_web", json!({}), &h);
    let Verdict::RateLimited {
        rule,
        message,
        retry_after,
    } = third
    else {
        panic!("the third call is over the limit: {third:?}");
    };
    assert_eq!(rule, "search-rate");
    assert!(message.contains("at most 2 calls per 200ms"), "{message}");
    assert!(retry_after <= Duration::from_millis(200), "{retry_after:?}");
    // Tools the rule does not match are not limited.
    assert_eq!(
        decide(&s, "lookup", json!({}), &h),
        allowed_by(Some("rule 3"))
    );
    std::thread::sleep(Duration::from_millis(250));
    // Under the limit, the rule counts the call and the next rules decide.
    assert_eq!(
        denied_by(&decide(&s, "search_slow", json!({}), &h)),
        Some("rule 2")
    );
    assert_eq!(
        decide(&s, "search_web", json!({}), &h),
        allowed_by(Some("rule 3"))
    );
    assert!(matches!(
        decide(&s, "search_web", json!({}), &h),
        Verdict::RateLimited { .. }
    ));
}

#[test]
fn conditions_that_cannot_be_evaluated_deny() {
    let s = state(
        r#"  rules:
    - deny: "*"
      when: "args.amount > 500"
      name: big
    - allow: "*"
      when: "args.note"
      name: not-a-bool
"#,
    );
    let h = History::default();
    let verdict = decide(&s, "pay", json!({"currency": "EUR"}), &h);
    let Verdict::Deny { rule, message } = verdict else {
        panic!("a missing key denies: {verdict:?}");
    };
    assert_eq!(rule, "big");
    assert!(
        message.contains("policy rule `big` could not be evaluated"),
        "{message}"
    );
    assert!(message.contains("amount"), "{message}");
    let verdict = decide(&s, "pay", json!({"amount": "lots"}), &h);
    assert_eq!(denied_by(&verdict), Some("big"));
    let verdict = decide(&s, "pay", json!({"amount": 1, "note": "hi"}), &h);
    let Verdict::Deny { rule, message } = verdict else {
        panic!("a string is not a condition: {verdict:?}");
    };
    assert_eq!(rule, "not-a-bool");
    assert!(
        message.contains("a string where true or false was expected"),
        "{message}"
    );
}

#[test]
fn token_constraints_evaluate_alone() {
    let condition = sandbar_scenario::compile_condition(
        "args.to.endsWith('@example.com') && counts.send_email < 3",
    )
    .expect("compiles");
    let history = History::default();
    let check = |args: Value| {
        let args = object(args);
        evaluate(
            &condition,
            &PolicyInput {
                tenant: "acme",
                token: None,
                tool: "send_email",
                args: &args,
                upstream: Some("mailer"),
                mode: "live",
                history: &history,
            },
        )
    };
    assert_eq!(check(json!({"to": "ann@example.com"})), Ok(true));
    assert_eq!(check(json!({"to": "ann@elsewhere.test"})), Ok(false));
    let error = check(json!({})).expect_err("no `to`");
    assert!(error.contains("to"), "{error}");
}

#[test]
fn history_is_bounded_and_counts_stay_exact() {
    let s = state(
        "  rules:\n    - deny: \"*\"\n      when: \"size(calls) <= 10000 && size(calls) >= 9000 && counts.t == 10500\"\n",
    );
    let mut h = History::default();
    let args = object(json!({"n": 1}));
    for _ in 0..10_500 {
        h.push("t", &args, false);
    }
    assert_eq!(h.len(), 10_500);
    assert_eq!(h.count("t"), 10_500);
    assert_eq!(denied_by(&decide(&s, "t", json!({}), &h)), Some("rule 1"));
}

#[test]
fn json_numbers_become_ints_when_integral() {
    assert_eq!(cel_value(&json!(3)), CelValue::Int(3));
    assert_eq!(cel_value(&json!(3.0)), CelValue::Int(3));
    assert_eq!(cel_value(&json!(-2)), CelValue::Int(-2));
    assert_eq!(cel_value(&json!(2.5)), CelValue::Float(2.5));
    assert_eq!(cel_value(&json!(u64::MAX)), CelValue::UInt(u64::MAX));
    assert_eq!(cel_value(&json!(1e300)), CelValue::Float(1e300));
}

mod hostile {
    //! Conditions and arguments nobody would write on purpose: compiling a
    //! condition and evaluating it never panics, whatever the source and the
    //! call; a condition that cannot be evaluated is an error, which the
    //! gate turns into a refusal.

    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::super::{History, PolicyInput, evaluate};

    /// Pieces that CEL expressions are made of, and pieces that break them.
    const PIECES: &[&str] = &[
        "args",
        "args.amount",
        "args.to",
        "args.items",
        "calls",
        "counts",
        "counts.t",
        "tool",
        "token",
        "tenant",
        "mode",
        "upstream",
        "size(",
        "sum(",
        ".map(c, c.args)",
        ".filter(c, c.error)",
        ".exists(x, x > 1)",
        ".all(k, k != '')",
        "has(args.x)",
        "int(",
        "double(",
        "string(",
        ")",
        "(",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "?",
        ".",
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "!",
        " in ",
        "1",
        "0",
        "-1",
        "9223372036854775807",
        "1.5",
        "1e308",
        "'x'",
        "\"\"",
        "b'\\xff'",
        "true",
        "false",
        "null",
        "x",
        " ",
        "\\",
        "'",
        "\"",
        "\u{0}",
        "é",
        "matches(",
        "startsWith(",
        "[1,2]",
        "{'a': 1}",
    ];

    /// Mostly broken sources: pieces thrown together.
    fn pieces() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES.to_vec()), 1..24)
            .prop_map(|pieces| pieces.concat())
    }

    /// Mostly well-formed sources whose types may not fit the call's
    /// arguments: what fails at evaluation, not at parsing.
    fn expression() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            "[a-z]{1,4}".prop_map(|k| format!("args.{k}")),
            ("[a-z]{1,4}", "[a-z]{1,4}").prop_map(|(a, b)| format!("args.{a}.{b}")),
            "[a-z]{1,4}".prop_map(|k| format!("args['{k}']")),
            "[a-z]{1,4}".prop_map(|k| format!("size(args.{k})")),
            "[a-z]{1,4}".prop_map(|k| format!("has(args.{k})")),
            Just("counts.t".to_owned()),
            Just("size(calls)".to_owned()),
            Just("sum(calls.map(c, c.args.n))".to_owned()),
            Just("calls.exists(c, c.error)".to_owned()),
            Just("tool".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("1.5".to_owned()),
            Just("'x'".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("[1, 'a']".to_owned()),
        ];
        atom.prop_recursive(4, 32, 3, |inner| {
            let op = prop::sample::select(vec![
                "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||", "in",
            ]);
            prop_oneof![
                (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                inner.clone().prop_map(|a| format!("!({a})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
                inner
                    .clone()
                    .prop_map(|a| format!("string({a}).startsWith('a')")),
                inner.prop_map(|a| format!("int({a}) > 0")),
            ]
        })
    }

    fn source() -> impl Strategy<Value = String> {
        prop_oneof![1 => pieces(), 3 => expression()]
    }

    fn argument() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn arithmetic_at_the_edges_is_an_error_not_a_panic() {
        let args: Map<String, Value> = [
            ("n".to_owned(), json!(0)),
            ("m".to_owned(), json!(i64::MIN)),
        ]
        .into_iter()
        .collect();
        let history = History::default();
        let input = PolicyInput {
            tenant: "acme",
            token: None,
            tool: "t",
            args: &args,
            upstream: None,
            mode: "stub",
            history: &history,
        };
        for source in [
            "10 / args.n > 0",
            "10 % args.n > 0",
            "args.m / -1 > 0",
            "args.m % -1 > 0",
            "args.m - 1 < 0",
            "-args.m > 0",
            "9223372036854775807 + 1 > 0",
            "args.m * 2 < 0",
            "int(1e300) > 0",
            "uint(-1) > 0u",
            "double(args.m) / 0.0 > 0.0",
            "size('é' + string(args.m)) > 0",
            "'abc'.matches('(') ",
            "timestamp('nonsense') > timestamp('2026-01-01T00:00:00Z')",
        ] {
            let condition = sandbar_scenario::compile_condition(source)
                .unwrap_or_else(|e| panic!("{source}: {e}"));
            // Either answer is fine; only a panic would fail this.
            let _ = evaluate(&condition, &input);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn no_condition_and_no_call_makes_it_panic(
            source in source(),
            args in prop::collection::btree_map("[a-z]{1,8}", argument(), 0..5),
            earlier in prop::collection::vec((prop::sample::select(vec!["t", "u"]), any::<bool>()), 0..4),
        ) {
            let Ok(condition) = sandbar_scenario::compile_condition(&source) else {
                return Ok(());
            };
            let args: Map<String, Value> = args.into_iter().collect();
            let mut history = History::default();
            for (tool, error) in earlier {
                history.push(tool, &args, error);
            }
            let input = PolicyInput {
                tenant: "acme",
                token: None,
                tool: "t",
                args: &args,
                upstream: None,
                mode: "stub",
                history: &history,
            };
            // Either answer is fine; only a panic would fail this.
            let _ = evaluate(&condition, &input);
        }
    }
}
